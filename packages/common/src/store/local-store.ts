import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import fs from "node:fs/promises";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { assertKey, NotFoundError, type ObjectStore } from "./object-store.ts";

const TMP = ".tmp";

/**
 * A folder as an object store. Writes go to a temp file in the same filesystem, are fsynced, then
 * renamed over the key, so a crash leaves the old object or the new one; create-only writes use
 * link(2), which fails atomically when the target exists.
 */
export class LocalStore implements ObjectStore {
  readonly kind = "local" as const;
  readonly location: string;

  constructor(private readonly root: string) {
    this.location = path.resolve(root);
  }

  private pathOf(key: string): string {
    return path.join(this.location, ...assertKey(key).split("/"));
  }

  private async writeTemp(body: Uint8Array | string): Promise<string> {
    const dir = path.join(this.location, TMP);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, randomUUID());
    const handle = await fs.open(tmp, "w");
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return tmp;
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = await this.writeTemp(body);
    try {
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async putStream(key: string, body: Readable | AsyncIterable<Uint8Array | string>): Promise<void> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const dir = path.join(this.location, TMP);
    await fs.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, randomUUID());
    try {
      await pipeline(body instanceof Readable ? body : Readable.from(body), createWriteStream(tmp));
      const handle = await fs.open(tmp, "r+");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  async putIfAbsent(key: string, body: Uint8Array | string): Promise<boolean> {
    const target = this.pathOf(key);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const tmp = await this.writeTemp(body);
    try {
      await fs.link(tmp, target);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  readonly conditionalCreate = async () => "atomic" as const;

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.pathOf(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(key);
      throw err;
    }
  }

  async getStream(key: string): Promise<Readable> {
    const file = this.pathOf(key);
    if (!(await this.head(key))) throw new NotFoundError(key);
    return createReadStream(file);
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      return st.isFile() ? { size: st.size } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<{ key: string; size: number }> {
    // Walk from the deepest folder the prefix names, then filter on the full prefix, in key order.
    const slash = prefix.lastIndexOf("/");
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : "";
    const start = dirKey ? this.pathOf(dirKey) : this.location;
    yield* this.walk(start, dirKey, prefix);
  }

  private async *walk(
    dir: string,
    dirKey: string,
    prefix: string,
  ): AsyncIterable<{ key: string; size: number }> {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (!dirKey && entry.name === TMP) continue;
      const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${key}/`) || key.startsWith(prefix))
          yield* this.walk(path.join(dir, entry.name), key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        yield { key, size: (await fs.stat(path.join(dir, entry.name))).size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  async ping(): Promise<void> {
    await fs.mkdir(this.location, { recursive: true });
    await fs.access(this.location, fs.constants.W_OK);
  }

  async close(): Promise<void> {}
}
