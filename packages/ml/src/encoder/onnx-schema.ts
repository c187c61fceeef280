// The ONNX messages capflow writes (the Keras conversion, the int8 quantiser, the decoder graph),
// declared through protobufjs reflection with the field numbers of onnx/onnx.proto (proto2).
import protobuf from "protobufjs";

export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;

function field(name: string, id: number, type: string, rule?: "repeated"): protobuf.Field {
  return new protobuf.Field(name, id, type, rule);
}

function buildSchema(): { ModelProto: protobuf.Type } {
  const root = new protobuf.Root();
  const onnx = root.define("onnx");
  onnx.add(
    new protobuf.Type("TensorProto")
      .add(field("dims", 1, "int64", "repeated"))
      .add(field("data_type", 2, "int32"))
      .add(field("float_data", 4, "float", "repeated"))
      .add(field("int64_data", 7, "int64", "repeated"))
      .add(field("name", 8, "string"))
      .add(field("raw_data", 9, "bytes"))
      .add(field("doc_string", 12, "string")),
  );
  onnx.add(
    new protobuf.Type("AttributeProto")
      .add(field("name", 1, "string"))
      .add(field("f", 2, "float"))
      .add(field("i", 3, "int64"))
      .add(field("s", 4, "bytes"))
      .add(field("t", 5, "TensorProto"))
      .add(field("floats", 7, "float", "repeated"))
      .add(field("ints", 8, "int64", "repeated"))
      .add(field("doc_string", 13, "string"))
      .add(field("type", 20, "int32")),
  );
  onnx.add(
    new protobuf.Type("NodeProto")
      .add(field("input", 1, "string", "repeated"))
      .add(field("output", 2, "string", "repeated"))
      .add(field("name", 3, "string"))
      .add(field("op_type", 4, "string"))
      .add(field("attribute", 5, "AttributeProto", "repeated"))
      .add(field("doc_string", 6, "string"))
      .add(field("domain", 7, "string")),
  );
  const dimension = new protobuf.Type("Dimension")
    .add(field("dim_value", 1, "int64"))
    .add(field("dim_param", 2, "string"))
    .add(field("denotation", 3, "string"));
  onnx.add(
    new protobuf.Type("TensorShapeProto").add(dimension).add(field("dim", 1, "Dimension", "repeated")),
  );
  const tensorType = new protobuf.Type("Tensor")
    .add(field("elem_type", 1, "int32"))
    .add(field("shape", 2, "TensorShapeProto"));
  onnx.add(
    new protobuf.Type("TypeProto")
      .add(tensorType)
      .add(field("tensor_type", 1, "Tensor"))
      .add(field("denotation", 6, "string")),
  );
  onnx.add(
    new protobuf.Type("ValueInfoProto")
      .add(field("name", 1, "string"))
      .add(field("type", 2, "TypeProto"))
      .add(field("doc_string", 3, "string")),
  );
  onnx.add(
    new protobuf.Type("GraphProto")
      .add(field("node", 1, "NodeProto", "repeated"))
      .add(field("name", 2, "string"))
      .add(field("initializer", 5, "TensorProto", "repeated"))
      .add(field("doc_string", 10, "string"))
      .add(field("input", 11, "ValueInfoProto", "repeated"))
      .add(field("output", 12, "ValueInfoProto", "repeated"))
      .add(field("value_info", 13, "ValueInfoProto", "repeated")),
  );
  onnx.add(
    new protobuf.Type("OperatorSetIdProto")
      .add(field("domain", 1, "string"))
      .add(field("version", 2, "int64")),
  );
  onnx.add(
    new protobuf.Type("StringStringEntryProto")
      .add(field("key", 1, "string"))
      .add(field("value", 2, "string")),
  );
  onnx.add(
    new protobuf.Type("ModelProto")
      .add(field("ir_version", 1, "int64"))
      .add(field("producer_name", 2, "string"))
      .add(field("producer_version", 3, "string"))
      .add(field("domain", 4, "string"))
      .add(field("model_version", 5, "int64"))
      .add(field("doc_string", 6, "string"))
      .add(field("graph", 7, "GraphProto"))
      .add(field("opset_import", 8, "OperatorSetIdProto", "repeated"))
      .add(field("metadata_props", 14, "StringStringEntryProto", "repeated")),
  );
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
  type: { tensor_type: { elem_type: number; shape: { dim: DimMsg[] } } };
}
