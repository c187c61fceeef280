import { createHash } from "node:crypto";

/** Hex SHA-256: the content id of images, shards, weights and jobs everywhere in capflow. */
export const sha256 = (data: Uint8Array | string): string => createHash("sha256").update(data).digest("hex");
