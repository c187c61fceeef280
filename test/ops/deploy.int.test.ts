import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import type { z } from "zod";
import { CommonEnv } from "@capflow/common";
import { FeatureEnv } from "@capflow/feature-worker";
import { TrainerEnv } from "@capflow/trainer";
import { CaptionEnv } from "@capflow/caption-worker";
import { AdminEnv, ApiEnv } from "@capflow/api";
import { IngestWorkerEnv } from "@capflow/ingest";

/**
 * deploy/ checked statically (no Docker engine on these machines): every YAML parses, the compose
 * stack has its services and only known variables, k8s Deployments probe the right paths and ports,
 * KEDA targets exist, dashboards are well formed. `docker compose config` runs if a client exists.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
const DEPLOY = path.join(ROOT, "deploy");

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}
const yamlFiles = walk(DEPLOY).filter((f) => /\.ya?ml$/.test(f));
const docsOf = (file: string) =>
  YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { merge: true }).map(
    (d) => d.toJS({ maxAliasCount: -1 }) as Record<string, unknown>,
  );

/** Every variable a role reads: its env schema's keys. */
async function knownVariables(): Promise<Set<string>> {
  const schemas: Array<z.ZodObject> = [
    CommonEnv,
    FeatureEnv,
    TrainerEnv,
    CaptionEnv,
    AdminEnv,
    ApiEnv,
    IngestWorkerEnv,
  ] as never;
  const names = new Set(schemas.flatMap((s) => Object.keys(s.shape)));
  const example = path.join(ROOT, ".env.example");
  if (fs.existsSync(example)) {
    for (const m of fs.readFileSync(example, "utf8").matchAll(/^#?\s*(CAPFLOW_[A-Z0-9_]+)=/gm))
      names.add(m[1]!);
  }
  return names;
}

type Compose = {
  services: Record<
    string,
    {
      image?: string;
      command?: string[] | string;
      environment?: Record<string, string>;
      profiles?: string[];
      volumes?: string[];
      deploy?: {
        replicas?: number | string;
        resources?: {
          reservations?: {
            devices?: Array<{
              driver: string;
              capabilities: string[];
              count?: number;
              device_ids?: string[];
            }>;
          };
        };
      };
    }
  >;
};

describe("deploy/ (static checks)", () => {
  it("parses every YAML file", () => {
    expect(yamlFiles.length).toBeGreaterThan(10);
    for (const f of yamlFiles) {
      const errors = YAML.parseAllDocuments(fs.readFileSync(f, "utf8")).flatMap((d) =>
        d.errors.map((e) => e.message),
      );
      expect(errors, path.relative(ROOT, f)).toEqual([]);
    }
  });

  it("has the compose services, with known variables and pinned images", async () => {
    const compose = docsOf(path.join(DEPLOY, "docker-compose.yml"))[0] as unknown as Compose;
    const s = compose.services;
    for (const name of [
      "redis",
      "minio",
      "prometheus",
      "grafana",
      "api",
      "feature-worker",
      "feature-worker-gpu0",
      "feature-worker-gpu1",
      "trainer",
      "caption-worker",
      "ingest-worker",
    ]) {
      expect(s[name], name).toBeDefined();
    }
    const redisCmd = [s.redis!.command].flat().join(" ");
    expect(redisCmd).toContain("--maxmemory-policy noeviction");
    expect(redisCmd).toContain("--appendonly yes");
    // One service per GPU, each pinned to its own device: a scaled service (`count: 1`) put every
    // replica on GPU 0.
    const gpuServices = Object.entries(s).filter(([, svc]) =>
      svc.deploy?.resources?.reservations?.devices?.some((d) => d.driver === "nvidia"),
    );
    expect(gpuServices.map(([name]) => name).sort()).toEqual(["feature-worker-gpu0", "feature-worker-gpu1"]);
    const pinned: string[] = [];
    for (const [name, svc] of gpuServices) {
      expect(svc.profiles?.length, `${name}: behind a profile`).toBeGreaterThan(0);
      expect(svc.deploy?.replicas, `${name}: one process per GPU`).toBeUndefined();
      const devices = svc.deploy!.resources!.reservations!.devices!;
      expect(devices).toHaveLength(1);
      expect(devices[0]).toMatchObject({ driver: "nvidia", capabilities: ["gpu"] });
      expect(devices[0]!.count, `${name}: device_ids, not count`).toBeUndefined();
      expect(devices[0]!.device_ids, name).toHaveLength(1);
      pinned.push(devices[0]!.device_ids![0]!);
      expect(svc.environment!.CAPFLOW_FEATURE_EXECUTION_PROVIDERS).toBe("cuda,cpu");
      expect(svc.environment!.CAPFLOW_FEATURE_REQUIRE_PROVIDER).toBe("cuda");
    }
    expect(new Set(pinned).size, "each GPU service on its own device").toBe(pinned.length);

    const known = await knownVariables();
    const unknown: string[] = [];
    for (const [name, svc] of Object.entries(s)) {
      for (const v of Object.keys(svc.environment ?? {})) {
        if (v.startsWith("CAPFLOW_") && !known.has(v)) unknown.push(`${name}: ${v}`);
      }
      const image = svc.image ?? "";
      if (/capflow(-gpu)?:/.test(image)) continue;
      expect(image, `${name}: image pinned to a tag`).toMatch(/:[\w.-]+$/);
      expect(image, `${name}: not :latest`).not.toMatch(/:latest$/);
    }
    expect(unknown).toEqual([]);
    // The capflow images are built from the Dockerfiles here.
    expect(fs.existsSync(path.join(DEPLOY, "docker/Dockerfile"))).toBe(true);
    expect(fs.readFileSync(path.join(DEPLOY, "docker/Dockerfile"), "utf8")).toMatch(
      /^FROM node:\$\{NODE_VERSION\}-bookworm-slim/m,
    );
    expect(fs.readFileSync(path.join(DEPLOY, "docker/Dockerfile.gpu"), "utf8")).toMatch(
      /^FROM nvidia\/cuda:12\.[\d.]+-cudnn/m,
    );
    // Bind mounts point at files in deploy/.
    for (const [name, svc] of Object.entries(s)) {
      for (const v of svc.volumes ?? []) {
        const src = v.split(":")[0]!;
        if (src.startsWith("./")) expect(fs.existsSync(path.join(DEPLOY, src)), `${name}: ${src}`).toBe(true);
      }
    }
  });

  it("passes `docker compose config` when the docker compose plugin exists", () => {
    // A docker client without the compose plugin is common (this build machine has one).
    const version = spawnSync("docker", ["compose", "version"], { encoding: "utf8" });
    if (version.status !== 0) {
      console.warn(
        "[deploy] no `docker compose` here: skipped `docker compose config -q` (checked statically above)",
      );
      return;
    }
    const r = spawnSync(
      "docker",
      ["compose", "-f", path.join(DEPLOY, "docker-compose.yml"), "config", "-q"],
      { encoding: "utf8" },
    );
    expect(r.status, r.stderr).toBe(0);
  });

  it("gives every k8s Deployment probes on /healthz and /readyz at a declared port, and known variables", async () => {
    const objects = walk(path.join(DEPLOY, "k8s"))
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap(docsOf)
      .filter(Boolean) as Array<{ kind: string; metadata: { name: string }; [k: string]: unknown }>;
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
    const config = byKind("ConfigMap").find((c) => c.metadata.name === "capflow-config") as unknown as {
      data: Record<string, string>;
    };
    const secret = byKind("Secret").find((c) => c.metadata.name === "capflow-secrets") as unknown as {
      stringData: Record<string, string>;
    };
    expect(config).toBeDefined();
    expect(secret).toBeDefined();
    const known = await knownVariables();
    expect(
      [...Object.keys(config.data), ...Object.keys(secret.stringData)].filter((k) => !known.has(k)),
    ).toEqual([]);

    const deployments = byKind("Deployment") as unknown as Array<{
      metadata: { name: string };
      spec: {
        selector: { matchLabels: Record<string, string> };
        template: {
          metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
          spec: {
            containers: Array<{
              args: string[];
              ports: Array<{ name: string; containerPort: number }>;
              env?: Array<{ name: string }>;
              envFrom: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
              livenessProbe: { httpGet: { path: string; port: string } };
              readinessProbe: { httpGet: { path: string; port: string } };
              startupProbe?: { httpGet: { path: string; port: string } };
              resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
            }>;
          };
        };
      };
    }>;
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(
      [
        "capflow-api",
        "capflow-caption-worker",
        "capflow-feature-worker",
        "capflow-ingest-worker",
        "capflow-trainer",
      ].sort(),
    );
    for (const d of deployments) {
      const c = d.spec.template.spec.containers[0]!;
      const where = d.metadata.name;
      expect(d.spec.template.metadata.labels, where).toMatchObject(d.spec.selector.matchLabels);
      expect(c.livenessProbe.httpGet.path, where).toBe("/healthz");
      expect(c.readinessProbe.httpGet.path, where).toBe("/readyz");
      const probePort = c.ports.find((p) => p.name === c.readinessProbe.httpGet.port);
      expect(probePort, `${where}: probe port is a declared container port`).toBeDefined();
      expect(c.livenessProbe.httpGet.port).toBe(c.readinessProbe.httpGet.port);
      // Workers serve the probes on CAPFLOW_OPS_PORT; the API on its HTTP port (CAPFLOW_API_PORT).
      const envValue = (name: string) =>
        (c.env as Array<{ name: string; value?: string }> | undefined)?.find((e) => e.name === name)?.value ??
        config.data[name];
      const expected =
        c.args[0] === "api" ? Number(envValue("CAPFLOW_API_PORT")) : Number(config.data.CAPFLOW_OPS_PORT);
      expect(probePort!.containerPort, `${where}: probes hit the port the process listens on`).toBe(expected);
      expect(d.spec.template.metadata.annotations?.["prometheus.io/port"], where).toBe(String(expected));
      expect(c.envFrom.map((e) => e.configMapRef?.name ?? e.secretRef?.name).sort()).toEqual([
        "capflow-config",
        "capflow-secrets",
      ]);
      expect(
        // HOME is the process's own (the root filesystem is read-only; it points at the mounted /tmp).
        (c.env ?? []).map((e) => e.name).filter((n) => n !== "HOME" && !known.has(n)),
        where,
      ).toEqual([]);
      if (where === "capflow-feature-worker") {
        expect(c.resources?.requests?.["nvidia.com/gpu"]).toBe(1);
        expect(c.resources?.limits?.["nvidia.com/gpu"]).toBe(1);
      }
    }
    const workloads = [...deployments, ...(byKind("StatefulSet") as unknown as typeof deployments)];
    for (const svc of byKind("Service") as unknown as Array<{
      metadata: { name: string };
      spec: { selector: Record<string, string> };
    }>) {
      const match = workloads.some((d) =>
        Object.entries(svc.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
      );
      expect(match, `${svc.metadata.name} selects a Deployment or StatefulSet`).toBe(true);
    }

    const scaled = byKind("ScaledObject") as unknown as Array<{
      metadata: { name: string };
      spec: {
        scaleTargetRef: { name: string };
        triggers: Array<{ type: string; metadata: { query: string } }>;
      };
    }>;
    expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual([
      "capflow-caption-worker",
      "capflow-feature-worker",
    ]);
    for (const s of scaled) {
      expect(deployments.map((d) => d.metadata.name)).toContain(s.spec.scaleTargetRef.name);
      expect(s.spec.triggers[0]!.type).toBe("prometheus");
      expect(s.spec.triggers[0]!.metadata.query).toContain("capflow_queue_jobs");
    }
  });

  it("runs every k8s workload as non-root on a read-only root filesystem, with every written path mounted", () => {
    interface Container {
      name: string;
      image: string;
      securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
      volumeMounts?: Array<{ name: string; mountPath: string }>;
      env?: Array<{ name: string; value?: string }>;
    }
    interface Deployment {
      kind: string;
      metadata: { name: string };
      spec: {
        template: {
          spec: {
            securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
            containers: Container[];
            volumes?: Array<{ name: string; emptyDir?: unknown }>;
          };
        };
      };
    }
    const files = walk(path.join(DEPLOY, "k8s")).filter((f) => /\.ya?ml$/.test(f));
    const deployments = files
      .flatMap(docsOf)
      .filter((o) => o?.kind === "Deployment") as unknown as Deployment[];
    const config = files
      .flatMap(docsOf)
      .find((o) => o?.kind === "ConfigMap" && (o.metadata as { name: string }).name === "capflow-config") as {
      data: Record<string, string>;
    };
    expect(deployments.length).toBeGreaterThanOrEqual(4);
    const kustomization = YAML.parse(
      fs.readFileSync(path.join(DEPLOY, "k8s/kustomization.yaml"), "utf8"),
    ) as {
      resources: string[];
      images: Array<{ name: string }>;
    };
    const imageNames = new Set(kustomization.images.map((i) => i.name));
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext?.runAsNonRoot, d.metadata.name).toBe(true);
      expect(pod.securityContext?.runAsUser, d.metadata.name).toBeGreaterThan(0);
      const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
      for (const c of pod.containers) {
        const where = `${d.metadata.name}/${c.name}`;
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        // The image name is set once, in kustomization.yaml (no :latest pulled from Docker Hub).
        expect(imageNames.has(c.image), where).toBe(true);
        const mounts = c.volumeMounts ?? [];
        for (const m of mounts) expect(volumes.has(m.name), `${where}: volume ${m.name}`).toBe(true);
        const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? ""]));
        const written = [env.HOME, config.data.CAPFLOW_HOME, env.CAPFLOW_ENCODER_CACHE, "/tmp"].filter(
          Boolean,
        );
        if (/worker features|worker captions/.test(JSON.stringify((c as { args?: string[] }).args ?? [])))
          expect(
            env.CAPFLOW_ENCODER_CACHE,
            `${where}: the encoder cache must be set (EACCES under /app)`,
          ).toBeTruthy();
        for (const p of written as string[])
          expect(
            mounts.some((m) => p === m.mountPath || p.startsWith(`${m.mountPath}/`)),
            `${where}: ${p} is written but not on a mounted volume`,
          ).toBe(true);
      }
    }
    const listed = new Set(kustomization.resources);
    for (const f of files.map((f) => path.basename(f)))
      if (!["kustomization.yaml", "secret.example.yaml"].includes(f)) expect(listed.has(f), f).toBe(true);
  });

  it("runs Redis as a non-root StatefulSet with noeviction, AOF and a volume, scraped with its exporter", () => {
    type Pod = {
      metadata: { labels: Record<string, string> };
      spec: {
        securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
        containers: Array<{
          name: string;
          args?: string[];
          ports?: Array<{ name: string; containerPort: number }>;
          securityContext?: { readOnlyRootFilesystem?: boolean };
          volumeMounts?: Array<{ name: string; mountPath: string }>;
        }>;
        volumes?: Array<{ name: string; configMap?: { name: string } }>;
      };
    };
    const objects = walk(path.join(DEPLOY, "k8s"))
      .filter((f) => /\.ya?ml$/.test(f))
      .flatMap(docsOf)
      .filter(Boolean) as Array<{ kind: string; metadata: { name: string }; [k: string]: unknown }>;
    const one = <T>(kind: string, name: string) =>
      objects.find((o) => o.kind === kind && o.metadata.name === name) as unknown as T;
    const sts = one<{
      spec: {
        serviceName: string;
        template: Pod;
        volumeClaimTemplates: Array<{ metadata: { name: string } }>;
      };
    }>("StatefulSet", "redis");
    expect(sts).toBeDefined();
    const pod = sts.spec.template;
    expect(pod.spec.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.spec.securityContext?.runAsUser).toBeGreaterThan(0);
    const redis = pod.spec.containers.find((c) => c.name === "redis")!;
    expect(redis.securityContext?.readOnlyRootFilesystem).toBe(true);
    // Data on the claim, configuration from the ConfigMap the args name.
    const claims = sts.spec.volumeClaimTemplates.map((c) => c.metadata.name);
    const dataMount = redis.volumeMounts!.find((m) => claims.includes(m.name))!;
    expect(dataMount.mountPath).toBe("/data");
    const confMount = redis.volumeMounts!.find((m) => redis.args![0]!.startsWith(`${m.mountPath}/`))!;
    const cm = pod.spec.volumes!.find((v) => v.name === confMount.name)!.configMap!.name;
    const conf = one<{ data: Record<string, string> }>("ConfigMap", cm).data[path.basename(redis.args![0]!)]!;
    const directives = Object.fromEntries(
      conf
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => [l.split(/\s+/)[0], l.split(/\s+/).slice(1).join(" ")]),
    );
    expect(directives).toMatchObject({ "maxmemory-policy": "noeviction", appendonly: "yes", dir: "/data" });
    expect(one("Service", sts.spec.serviceName)).toBeDefined();
    // capflow's CAPFLOW_REDIS_URL names the Service that selects this pod.
    const url = new URL(
      one<{ data: Record<string, string> }>("ConfigMap", "capflow-config").data.CAPFLOW_REDIS_URL!,
    );
    const svc = one<{ spec: { ports: Array<{ name: string; port: number }> } }>(
      "Service",
      url.hostname.split(".")[0]!,
    );
    expect(svc.spec.ports.some((p) => p.port === Number(url.port))).toBe(true);

    // redis_exporter beside it, and a ServiceMonitor on the exporter's port.
    const exporter = pod.spec.containers.find((c) => c.name === "redis-exporter")!;
    const metricsPort = exporter.ports!.find((p) => p.containerPort === 9121)!;
    const sm = one<{
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> };
    }>("ServiceMonitor", "redis");
    expect(Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => pod.metadata.labels[k] === v)).toBe(
      true,
    );
    expect(svc.spec.ports.map((p) => p.name)).toContain(sm.spec.endpoints[0]!.port);
    expect(metricsPort.name).toBe(sm.spec.endpoints[0]!.port);

    // The PodMonitor scrapes every capflow pod on a port it declares, as job capflow-<component>.
    const pm = one<{
      spec: {
        selector: { matchLabels: Record<string, string> };
        podMetricsEndpoints: Array<{
          port: string;
          relabelings?: Array<{ targetLabel: string; replacement: string }>;
        }>;
      };
    }>("PodMonitor", "capflow");
    const ports = new Set(pm.spec.podMetricsEndpoints.map((e) => e.port));
    for (const d of objects.filter((o) => o.kind === "Deployment") as unknown as Array<{
      metadata: { name: string };
      spec: { template: Pod };
    }>) {
      const t = d.spec.template;
      expect(
        Object.entries(pm.spec.selector.matchLabels).every(([k, v]) => t.metadata.labels[k] === v),
        d.metadata.name,
      ).toBe(true);
      const declared = t.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      expect(
        declared.some((p) => ports.has(p)),
        `${d.metadata.name} exposes a scraped port`,
      ).toBe(true);
    }
    for (const e of pm.spec.podMetricsEndpoints)
      expect(e.relabelings).toContainEqual(
        expect.objectContaining({ targetLabel: "job", replacement: "capflow-$1" }),
      );
  });

  it("has Grafana dashboards that import into any Grafana: datasource, namespace and instance variables in every query", () => {
    const DS = { type: "prometheus", uid: "${datasource}" };
    const dir = path.join(DEPLOY, "grafana/dashboards");
    const files = fs.readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(files.sort()).toEqual([
      "captioning.json",
      "feature-extraction.json",
      "overview.json",
      "training.json",
    ]);
    const provisioned = docsOf(path.join(DEPLOY, "grafana/provisioning/datasources/prometheus.yml"))[0] as {
      datasources: Array<{ uid: string }>;
    };
    const uids = new Set<string>();
    const metrics = new Set<string>();
    for (const f of files) {
      const raw = fs.readFileSync(path.join(dir, f), "utf8");
      // No datasource uid of one Grafana (the provisioned one included) baked into a dashboard.
      expect(raw, `${f}: hard-coded datasource uid`).not.toContain(provisioned.datasources[0]!.uid);
      const dash = JSON.parse(raw) as {
        uid: string;
        templating: {
          list: Array<{
            name: string;
            type: string;
            query: unknown;
            datasource?: unknown;
            includeAll?: boolean;
            allValue?: string;
          }>;
        };
        panels: Array<{
          title: string;
          datasource?: unknown;
          targets?: Array<{ expr?: string; refId: string; datasource?: unknown }>;
        }>;
      };
      expect(uids.has(dash.uid), `${f}: unique uid`).toBe(false);
      uids.add(dash.uid);
      expect(dash.panels.length).toBeGreaterThan(3);
      const vars = new Map(dash.templating.list.map((v) => [v.name, v]));
      expect(vars.get("datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
      for (const name of ["namespace", "instance"]) {
        // "All" is `.*`, which also matches series without the label (compose has no namespace).
        expect(vars.get(name), `${f}: $${name}`).toMatchObject({
          type: "query",
          datasource: DS,
          includeAll: true,
          allValue: ".*",
        });
      }
      for (const p of dash.panels) {
        const where = `${f} / ${p.title}`;
        expect(p.datasource, where).toEqual(DS);
        expect(p.targets?.length, where).toBeGreaterThan(0);
        for (const t of p.targets!) {
          expect(t.datasource, where).toEqual(DS);
          const expr = t.expr?.trim() ?? "";
          expect(expr, where).toBeTruthy();
          expect(expr, `${where}: uses $namespace`).toContain('"$namespace"');
          for (const v of expr.matchAll(/\$(\w+)/g))
            expect(vars.has(v[1]!), `${where}: $${v[1]} defined`).toBe(true);
          // Every selector of a capflow (or standard process) metric filters on both variables;
          // dcgm-exporter's series carry the GPU pod's namespace as exported_namespace, and Hostname.
          for (const m of expr.matchAll(/\b((?:capflow|process|nodejs)_\w+|DCGM_\w+)(\{[^}]*\})?/g)) {
            metrics.add(m[1]!);
            const sel = m[2] ?? "";
            const wanted = m[1]!.startsWith("DCGM_")
              ? ['exported_namespace=~"$namespace"', 'Hostname=~"$gpu_node"']
              : ['namespace=~"$namespace"', 'instance=~"$instance"'];
            for (const w of wanted) expect(sel, `${where}: ${m[1]} filters ${w}`).toContain(w);
          }
        }
      }
    }
    // GPU panels beside the feature workers' throughput, from dcgm-exporter's standard names.
    const features = JSON.parse(fs.readFileSync(path.join(dir, "feature-extraction.json"), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }>; gridPos: { y: number } }>;
    };
    const rowOf = (metric: string) =>
      features.panels.find((p) => p.targets.some((t) => t.expr.includes(metric)))?.gridPos.y;
    expect(rowOf("DCGM_FI_DEV_GPU_UTIL")).toBeDefined();
    expect(rowOf("DCGM_FI_DEV_FB_USED")).toBe(rowOf("DCGM_FI_DEV_GPU_UTIL"));
    expect(
      Math.abs(
        rowOf("DCGM_FI_DEV_GPU_UTIL")! -
          rowOf('capflow_feature_images_total{namespace=~"$namespace", instance=~"$instance", status="ok"}')!,
      ),
    ).toBeLessThanOrEqual(8);
    expect(metrics.has("process_cpu_seconds_total")).toBe(true);
  });

  it("passes promtool on the Prometheus configs and rules", () => {
    if (!fs.existsSync("/usr/bin/promtool"))
      throw new Error("promtool missing: apt-get install -y prometheus");
    const rules = spawnSync("promtool", ["check", "rules", path.join(DEPLOY, "prometheus/alerts.yml")], {
      encoding: "utf8",
    });
    expect(rules.status, rules.stdout + rules.stderr).toBe(0);
    const compose = spawnSync(
      "promtool",
      ["check", "config", path.join(DEPLOY, "prometheus/prometheus.yml")],
      { encoding: "utf8" },
    );
    expect(compose.status, compose.stdout + compose.stderr).toBe(0);
    const k8s = spawnSync(
      "promtool",
      ["check", "config", path.join(DEPLOY, "prometheus/prometheus.k8s.yml")],
      { encoding: "utf8" },
    );
    if (k8s.status !== 0 && /kubernetes_sd_configs not found/.test(k8s.stdout + k8s.stderr)) {
      // Debian's prometheus is built without Kubernetes service discovery.
      console.warn(
        "[deploy] this promtool lacks kubernetes_sd_configs: prometheus.k8s.yml checked as YAML only",
      );
    } else {
      expect(k8s.status, k8s.stdout + k8s.stderr).toBe(0);
    }
  });
});
