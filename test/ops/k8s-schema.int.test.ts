import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

/**
 * Every Kubernetes manifest in deploy/k8s validated offline against the published API schemas of
 * kubernetes-models (Kubernetes core, KEDA, Prometheus Operator CRDs), twice:
 *  - their validators (generated from the OpenAPI schemas) catch wrong types, missing required fields
 *    and bad enum values, but accept unknown fields, as the schemas do;
 *  - so each object is also type-checked, as an object literal, against the package's TypeScript
 *    type of its kind: an unknown field (`imagePullPolcy`, `replica`) is an excess-property error.
 * Each file is checked as written, and the `kubectl kustomize` output too where kubectl exists (it
 * does not on a fresh CI machine; the images and namespace it sets are checked in deploy.int.test.ts).
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
const K8S = path.join(ROOT, "deploy/k8s");

interface Kind {
  model: new (data: never) => { validate(): void };
  /** Module and interface name of the kind's TypeScript type. */
  type: [module: string, name: string];
}

const KINDS: Record<string, Kind> = {
  "v1/ConfigMap": { model: ConfigMap, type: ["kubernetes-models/v1/ConfigMap", "IConfigMap"] },
  "v1/Namespace": { model: Namespace, type: ["kubernetes-models/v1/Namespace", "INamespace"] },
  "v1/Secret": { model: Secret, type: ["kubernetes-models/v1/Secret", "ISecret"] },
  "v1/Service": { model: Service, type: ["kubernetes-models/v1/Service", "IService"] },
  "apps/v1/Deployment": { model: Deployment, type: ["kubernetes-models/apps/v1/Deployment", "IDeployment"] },
  "apps/v1/StatefulSet": {
    model: StatefulSet,
    type: ["kubernetes-models/apps/v1/StatefulSet", "IStatefulSet"],
  },
  "keda.sh/v1alpha1/ScaledObject": {
    model: ScaledObject,
    type: ["@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject", "IScaledObject"],
  },
  "monitoring.coreos.com/v1/PodMonitor": {
    model: PodMonitor,
    type: ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor", "IPodMonitor"],
  },
  "monitoring.coreos.com/v1/ServiceMonitor": {
    model: ServiceMonitor,
    type: [
      "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
      "IServiceMonitor",
    ],
  },
};

interface Manifest {
  where: string;
  object: { apiVersion: string; kind: string; [k: string]: unknown };
}

const kindKey = (m: Manifest) => `${m.object.apiVersion}/${m.object.kind}`;

function parseAll(where: string, text: string): Manifest[] {
  return YAML.parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest["object"] | null)
    .filter((o): o is Manifest["object"] => Boolean(o))
    .map((object, i) => ({ where: `${where}#${i}`, object }));
}

function fileManifests(): Manifest[] {
  return fs
    .readdirSync(K8S)
    .filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml")
    .flatMap((f) => parseAll(`deploy/k8s/${f}`, fs.readFileSync(path.join(K8S, f), "utf8")));
}

/** The schema validators: type, required and enum errors. */
function schemaErrors(manifests: Manifest[]): string[] {
  const errors: string[] = [];
  for (const m of manifests) {
    const kind = KINDS[kindKey(m)];
    if (!kind) {
      errors.push(`${m.where}: no schema for ${kindKey(m)} (add it to KINDS)`);
      continue;
    }
    try {
      new kind.model(m.object as never).validate();
    } catch (err) {
      errors.push(`${m.where} (${m.object.kind}): ${(err as Error).message}`);
    }
  }
  return errors;
}

/** Unknown fields and wrong shapes: each object type-checked as a literal of its kind's type. */
function typeErrors(manifests: Manifest[]): string[] {
  const file = path.join(ROOT, "test/ops/__k8s_manifests__.ts");
  const lines: string[] = [];
  const owners: Array<{ from: number; where: string }> = [];
  const imported = new Set<string>();
  for (const m of manifests) {
    const kind = KINDS[kindKey(m)];
    if (!kind) continue;
    const [module, name] = kind.type;
    if (!imported.has(name)) {
      lines.unshift(`import type { ${name} } from "${module}";`);
      imported.add(name);
      for (const o of owners) o.from++;
    }
    owners.push({ from: lines.length, where: `${m.where} (${m.object.kind})` });
    lines.push(`export const m${owners.length}: ${name} = ${JSON.stringify(m.object, null, 1)};`);
  }
  const source = lines.join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sourceLines = source.split("\n");
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, "\n").split("\n")[0];
    if (d.file?.fileName !== file || d.start === undefined) return `${d.file?.fileName ?? "?"}: ${text}`;
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    const owner = owners.filter((o) => o.from <= line).at(-1);
    return `${owner?.where ?? "?"}: ${text} (at ${sourceLines[line]?.trim()})`;
  });
}

describe("Kubernetes manifests against the API schemas (kubernetes-models, offline)", () => {
  const manifests = fileManifests();

  it("catches a typo'd field, a wrong type and an unknown kind (the check can fail)", () => {
    // Two copies, one typo each: TypeScript reports the first excess property of a literal only.
    const base = manifests.find((m) => m.object.kind === "Deployment" && m.where.includes("feature-worker"))!;
    const [top, container] = [structuredClone(base), structuredClone(base)];
    (top.object.spec as Record<string, unknown>).replica = 2;
    const spec = container.object.spec as {
      template: { spec: { containers: Array<Record<string, unknown>> } };
    };
    spec.template.spec.containers[0]!.imagePullPolcy = "Always";
    const types = typeErrors([top, container]);
    expect(types).toHaveLength(2);
    expect(types[0]).toMatch(/'"?replica"?' does not exist in type 'IDeploymentSpec'/);
    expect(types[1]).toMatch(/'"?imagePullPolcy"?' does not exist in type 'IContainer'/);

    const monitor = structuredClone(manifests.find((m) => m.object.kind === "ServiceMonitor")!);
    (monitor.object.spec as { endpoints: Array<Record<string, unknown>> }).endpoints[0]!.interval = 15;
    expect(schemaErrors([monitor]).join("\n")).toMatch(/interval/);

    expect(schemaErrors([{ where: "x", object: { apiVersion: "v1", kind: "Pod" } }])).toEqual([
      "x: no schema for v1/Pod (add it to KINDS)",
    ]);
  });

  it("validates every object of every file in deploy/k8s", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(15);
    expect(new Set(manifests.map((m) => m.object.kind))).toEqual(
      new Set([
        "Namespace",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "StatefulSet",
        "ScaledObject",
        "PodMonitor",
        "ServiceMonitor",
      ]),
    );
    expect(schemaErrors(manifests)).toEqual([]);
    expect(typeErrors(manifests)).toEqual([]);
  });

  it("validates the `kubectl kustomize deploy/k8s` output where kubectl exists", () => {
    const r = spawnSync("kubectl", ["kustomize", K8S], { encoding: "utf8" });
    if (r.error || r.status !== 0) {
      console.warn(
        `[k8s] no kubectl kustomize here (${r.error?.message ?? r.stderr.trim()}): files checked one by one`,
      );
      return;
    }
    const rendered = parseAll("kustomize", r.stdout);
    expect(rendered.length).toBe(manifests.filter((m) => m.object.kind !== "Secret").length);
    expect(schemaErrors(rendered)).toEqual([]);
    expect(typeErrors(rendered)).toEqual([]);
    for (const m of rendered) {
      expect((m.object.metadata as { namespace?: string }).namespace ?? "capflow", m.where).toBe("capflow");
      for (const image of JSON.stringify(m.object).match(/"image":"[^"]+"/g) ?? [])
        expect(image, `${m.where}: a registry image with a tag`).toMatch(
          /"image":"[\w.-]+\.[\w.-]+\/[^"]+:[\w.-]+"/,
        );
    }
  });
});
