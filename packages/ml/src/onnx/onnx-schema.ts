// The one home of capflow's ONNX protobuf: the messages it writes (the Keras encoder conversion, the
// int8 quantiser, the caption decoder's graphs), declared through protobufjs reflection with the field
// numbers of onnx/onnx.proto (proto2), their plain-object shapes, builders, and encode/decode.
import protobuf from "protobufjs";

export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

/** One field: name, field number, type and, for lists, "repeated". */
type FieldSpec = readonly [name: string, id: number, type: string, rule?: "repeated"];
const R = "repeated";

/** A message type from its fields (and the types nested in it), in declaration order. */
function message(name: string, fields: readonly FieldSpec[], nested: protobuf.Type[] = []): protobuf.Type {
  const type = new protobuf.Type(name);
  for (const n of nested) type.add(n);
  for (const [field, id, kind, rule] of fields) type.add(new protobuf.Field(field, id, kind, rule));
  return type;
}

function buildSchema(): { ModelProto: protobuf.Type } {
  const root = new protobuf.Root();
  const onnx = root.define("onnx");
  const messages = [
    message("TensorProto", [
      ["dims", 1, "int64", R],
      ["data_type", 2, "int32"],
      ["float_data", 4, "float", R],
      ["int64_data", 7, "int64", R],
      ["name", 8, "string"],
      ["raw_data", 9, "bytes"],
      ["doc_string", 12, "string"],
    ]),
    message("AttributeProto", [
      ["name", 1, "string"],
      ["f", 2, "float"],
      ["i", 3, "int64"],
      ["s", 4, "bytes"],
      ["t", 5, "TensorProto"],
      ["floats", 7, "float", R],
      ["ints", 8, "int64", R],
      ["doc_string", 13, "string"],
      ["type", 20, "int32"],
    ]),
    message("NodeProto", [
      ["input", 1, "string", R],
      ["output", 2, "string", R],
      ["name", 3, "string"],
      ["op_type", 4, "string"],
      ["attribute", 5, "AttributeProto", R],
      ["doc_string", 6, "string"],
      ["domain", 7, "string"],
    ]),
    message(
      "TensorShapeProto",
      [["dim", 1, "Dimension", R]],
      [
        message("Dimension", [
          ["dim_value", 1, "int64"],
          ["dim_param", 2, "string"],
          ["denotation", 3, "string"],
        ]),
      ],
    ),
    message(
      "TypeProto",
      [
        ["tensor_type", 1, "Tensor"],
        ["denotation", 6, "string"],
      ],
      [
        message("Tensor", [
          ["elem_type", 1, "int32"],
          ["shape", 2, "TensorShapeProto"],
        ]),
      ],
    ),
    message("ValueInfoProto", [
      ["name", 1, "string"],
      ["type", 2, "TypeProto"],
      ["doc_string", 3, "string"],
    ]),
    message("GraphProto", [
      ["node", 1, "NodeProto", R],
      ["name", 2, "string"],
      ["initializer", 5, "TensorProto", R],
      ["doc_string", 10, "string"],
      ["input", 11, "ValueInfoProto", R],
      ["output", 12, "ValueInfoProto", R],
      ["value_info", 13, "ValueInfoProto", R],
    ]),
    message("OperatorSetIdProto", [
      ["domain", 1, "string"],
      ["version", 2, "int64"],
    ]),
    message("StringStringEntryProto", [
      ["key", 1, "string"],
      ["value", 2, "string"],
    ]),
    message("ModelProto", [
      ["ir_version", 1, "int64"],
      ["producer_name", 2, "string"],
      ["producer_version", 3, "string"],
      ["domain", 4, "string"],
      ["model_version", 5, "int64"],
      ["doc_string", 6, "string"],
      ["graph", 7, "GraphProto"],
      ["opset_import", 8, "OperatorSetIdProto", R],
      ["metadata_props", 14, "StringStringEntryProto", R],
    ]),
  ];
  for (const m of messages) onnx.add(m);
  root.resolveAll();
  return { ModelProto: root.lookupType("onnx.ModelProto") };
}

let schema: { ModelProto: protobuf.Type } | undefined;
export function onnxSchema(): { ModelProto: protobuf.Type } {
  schema ??= buildSchema();
  return schema;
}

// Plain-object shapes of the messages (snake_case keys, as declared above).
export interface TensorMsg {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  int64_data?: number[];
}
export interface AttrMsg {
  name: string;
  type: number;
  i?: number;
  f?: number;
  s?: Uint8Array;
  ints?: number[];
  floats?: number[];
}
export interface NodeMsg {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: AttrMsg[];
  domain?: string;
}
type DimMsg = { dim_value: number } | { dim_param: string };
export interface ValueInfoMsg {
  name: string;
  type: { tensor_type: { elem_type: number; shape?: { dim: DimMsg[] } } };
}
export interface GraphMsg {
  name: string;
  node: NodeMsg[];
  initializer: TensorMsg[];
  input: ValueInfoMsg[];
  output: ValueInfoMsg[];
  value_info?: unknown[];
}
export interface ModelMsg {
  graph: GraphMsg;
  metadata_props?: { key: string; value: string }[];
  [k: string]: unknown;
}

/** ModelProto bytes as plain objects (int64 fields as numbers, lists always present). */
export function decodeModel(bytes: Uint8Array): ModelMsg {
  const { ModelProto } = onnxSchema();
  return ModelProto.toObject(ModelProto.decode(bytes), {
    longs: Number,
    arrays: true,
    defaults: false,
  }) as ModelMsg;
}

/** Checks a model against the schema (a misspelt field fails here, not in ONNX Runtime) and encodes it. */
export function encodeModel(model: ModelMsg): Uint8Array {
  const { ModelProto } = onnxSchema();
  const err = ModelProto.verify(model);
  if (err) throw new Error(`ONNX model does not verify: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(model)).finish();
}

// Builders for the shapes above, so each message's fields are spelled in one place.
export const int = (name: string, v: number): AttrMsg => ({ name, type: AttributeType.INT, i: v });
export const ints = (name: string, v: number[]): AttrMsg => ({ name, type: AttributeType.INTS, ints: v });
export const flt = (name: string, v: number): AttrMsg => ({ name, type: AttributeType.FLOAT, f: v });

export function tensor(name: string, dims: number[], dataType: number, raw: Uint8Array): TensorMsg {
  return { name, dims, data_type: dataType, raw_data: raw };
}

/** A float32 initializer; its raw_data views `data` without copying. */
export function floatTensor(name: string, dims: number[], data: Float32Array): TensorMsg {
  // ONNX raw_data is little-endian, as is every platform Node runs on in practice.
  return tensor(name, dims, DataType.FLOAT, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

export function node(
  op: string,
  name: string,
  input: string[],
  output: string[],
  attribute: AttrMsg[] = [],
): NodeMsg {
  return { name, op_type: op, input, output, attribute };
}

/** A graph input or output: element type and dims, a string dim being symbolic (e.g. "N"). */
export function valueInfo(name: string, elemType: number, dims: Array<number | string>): ValueInfoMsg {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === "string" ? { dim_param: d } : { dim_value: d })) },
      },
    },
  };
}
