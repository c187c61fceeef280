import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Copy, DockerfileParser, type Instruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { dockerContext } from "../support/docker-context.ts";

/**
 * The container images, checked without a Docker engine (none runs on these machines; `docker build`
 * was never run here): both Dockerfiles pass dockerfile-utils' linter (the VS Code Docker language
 * server's checks), their runtime stage holds only the production tree built in an earlier stage and
 * runs as a non-root user, base images take a digest, and the build context that .dockerignore leaves
 * (matched with Docker's own rules, @balena/dockerignore) carries no node_modules, home or git data
 * but everything the Dockerfiles COPY.
 */

const ROOT = path.resolve(import.meta.dirname, "../..");
const DOCKERFILES = ["deploy/docker/Dockerfile", "deploy/docker/Dockerfile.gpu"];

interface Stage {
  name: string;
  image: string;
  instructions: Instruction[];
}

function stagesOf(file: string): { stages: Stage[]; globalArgs: string[] } {
  const df = DockerfileParser.parse(fs.readFileSync(path.join(ROOT, file), "utf8"));
  const stages: Stage[] = [];
  const globalArgs: string[] = [];
  for (const i of df.getInstructions()) {
    const keyword = i.getKeyword();
    if (keyword === "FROM") {
      const [image = "", , name = ""] = i.getArguments().map((a) => a.getValue());
      stages.push({ name, image, instructions: [] });
    } else if (stages.length === 0) {
      if (keyword === "ARG") globalArgs.push(i.getArgumentsContent() ?? "");
    } else {
      stages.at(-1)!.instructions.push(i);
    }
  }
  return { stages, globalArgs };
}

const text = (i: Instruction) => (i.getArgumentsContent() ?? "").replace(/\\\r?\n/g, " ");
/** The stage a COPY takes from (`--from=`), or undefined for the build context. */
const copiedFrom = (i: Instruction) => (i instanceof Copy ? i.getFromFlag()?.getValue() : undefined);
const runs = (s: Stage) => s.instructions.filter((i) => i.getKeyword() === "RUN").map(text);

describe("container images (static: no Docker engine here)", () => {
  it("passes the Dockerfile linter (dockerfile-utils), which does flag a broken file", () => {
    const broken = validate("FROM node:22\nRUNN true\nCOPY --frm=x a b\n").map((d) => d.message);
    expect(broken).toEqual(["Unknown instruction: RUNN", "Unknown flag: frm"]);
    for (const file of DOCKERFILES) {
      const diagnostics = validate(fs.readFileSync(path.join(ROOT, file), "utf8")).map(
        (d) => `${file}:${d.range.start.line + 1}: ${d.message}`,
      );
      expect(diagnostics).toEqual([]);
    }
  });

  for (const file of DOCKERFILES) {
    it(`${path.basename(file)}: the runtime stage ships only a production install built in an earlier stage`, () => {
      const { stages } = stagesOf(file);
      expect(stages.length, "multi-stage").toBeGreaterThanOrEqual(2);
      const runtime = stages.at(-1)!;
      const build = stages.find((s) => s.name === "build")!;
      expect(build, "a stage named build").toBeDefined();

      // The runtime stage installs no packages from a registry and runs no package manager.
      for (const cmd of runs(runtime)) expect(cmd, "runtime RUN").not.toMatch(/\b(pnpm|npm|yarn|npx)\b/);
      // Its code and node_modules come from the build stage, never from the host's context.
      const copies = runtime.instructions.filter((i) => i.getKeyword() === "COPY");
      expect(copies.length).toBeGreaterThan(0);
      for (const c of copies) expect(copiedFrom(c), `runtime COPY ${text(c)}`).toBe("build");
      expect(copies.some((c) => /\bnode_modules\b/.test(text(c)))).toBe(true);

      // The build stage: a full install (dev dependencies, for the type check), the check, then the
      // tree is replaced by a frozen production-only install: that is the one the runtime copies.
      const script = runs(build).join(" && ");
      const installs = [...script.matchAll(/pnpm install[^&]*/g)].map((m) => m[0]);
      expect(installs.length, script).toBeGreaterThanOrEqual(2);
      expect(installs[0]).not.toContain("--prod");
      const last = installs.at(-1)!;
      expect(last).toContain("--prod");
      expect(last).toContain("--frozen-lockfile");
      const typecheck = script.indexOf("pnpm typecheck");
      const wipe = script.indexOf("rm -rf node_modules packages/*/node_modules");
      expect(typecheck, "type check in the build stage").toBeGreaterThan(-1);
      expect(wipe, "dev tree removed after the check").toBeGreaterThan(typecheck);
      expect(script.lastIndexOf(last)).toBeGreaterThan(wipe);
    });

    it(`${path.basename(file)}: runs as a non-root user, with base images that take a digest`, () => {
      const { stages, globalArgs } = stagesOf(file);
      const runtime = stages.at(-1)!;
      const users = runtime.instructions.filter((i) => i.getKeyword() === "USER").map(text);
      expect(users.length).toBeGreaterThan(0);
      const user = users.at(-1)!.split(":")[0]!;
      expect(user).not.toMatch(/^(root|0)$/);
      expect(Number(user), "a numeric uid (runAsNonRoot can verify it)").toBeGreaterThan(0);
      // The user comes after the last RUN (nothing runs as root after it) and before ENTRYPOINT.
      const kinds = runtime.instructions.map((i) => i.getKeyword());
      expect(kinds.lastIndexOf("USER")).toBeGreaterThan(kinds.lastIndexOf("RUN"));
      expect(kinds.lastIndexOf("ENTRYPOINT")).toBeGreaterThan(kinds.lastIndexOf("USER"));

      // Every base is `image:tag${X_DIGEST:+@${X_DIGEST}}`: a tag by default, a digest when the
      // registry build passes one (docs/operations.md, "Images").
      for (const s of stages) {
        const m = /^[\w./-]+:[\w.${}-]+\$\{(\w+_DIGEST):\+@\$\{(\w+_DIGEST)\}\}$/.exec(s.image);
        expect(m, `${s.name}: ${s.image}`).not.toBeNull();
        expect(m![1]).toBe(m![2]);
        expect(globalArgs.some((a) => a.startsWith(`${m![1]}=`))).toBe(true);
        expect(s.image).not.toMatch(/:latest\b/);
      }
      expect(globalArgs.some((a) => /^NODE_VERSION=22\.\d+\.\d+$/.test(a))).toBe(true);
    });
  }

  it("Dockerfile.gpu installs onnxruntime-node's CUDA provider and fails the build without it", () => {
    const { stages } = stagesOf("deploy/docker/Dockerfile.gpu");
    const script = runs(stages.find((s) => s.name === "build")!).join(" && ");
    const prod = script.indexOf(
      "npm_config_onnxruntime_node_install=cuda12 pnpm install --frozen-lockfile --prod",
    );
    expect(prod).toBeGreaterThan(-1);
    // pnpm-workspace.yaml denies the install script on offline machines: the image allows it first.
    expect(script.indexOf("onnxruntime-node: true")).toBeGreaterThan(-1);
    expect(script.indexOf("onnxruntime-node: true")).toBeLessThan(prod);
    expect(fs.readFileSync(path.join(ROOT, "pnpm-workspace.yaml"), "utf8")).toMatch(
      /^ {2}onnxruntime-node: false$/m,
    );
    expect(script.slice(prod)).toMatch(/ls \S*libonnxruntime_providers_cuda\.so/);
    expect(stages.at(-1)!.image).toMatch(/^nvidia\/cuda:12\.[\d.]+-cudnn/);
  });

  it(".dockerignore leaves a context without node_modules, homes or git data, holding what the Dockerfiles copy", () => {
    const { files, ignored, patterns } = dockerContext(ROOT);
    expect(
      patterns.filter((p) => p.startsWith("!")),
      "no exceptions (the walk prunes folders)",
    ).toEqual([]);
    for (const p of [
      "node_modules/tsx/package.json",
      "packages/ml/node_modules/nsfwjs/package.json",
      ".capflow/redis/dump.rdb",
      "packages/cli/.capflow/store/x",
      ".git/HEAD",
      ".env",
      "coverage/index.html",
      "bench-out/run.json",
      "packages/api/test/api.int.test.ts",
      "packages/ml/src/model/caption-model.test.ts",
    ])
      expect(ignored(p), p).toBe(true);
    for (const f of files) expect(f, "in the context").not.toMatch(/(^|\/)(node_modules|\.capflow|\.git)\//);

    const context = new Set(files);
    const inContext = (src: string) =>
      context.has(src) || files.some((f) => f.startsWith(`${src.replace(/\/$/, "")}/`));
    for (const file of DOCKERFILES) {
      for (const s of stagesOf(file).stages) {
        for (const c of s.instructions.filter((i) => ["COPY", "ADD"].includes(i.getKeyword()))) {
          if (copiedFrom(c)) continue;
          const args = c.getArguments().map((a) => a.getValue());
          for (const src of args.slice(0, -1)) expect(inContext(src), `${file}: COPY ${src}`).toBe(true);
        }
      }
    }
    for (const pkg of fs.readdirSync(path.join(ROOT, "packages")))
      expect(context.has(`packages/${pkg}/src/index.ts`), pkg).toBe(true);
    const bytes = files.reduce((n, f) => n + fs.statSync(path.join(ROOT, f)).size, 0);
    console.warn(`[images] build context: ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB`);
  });
});
