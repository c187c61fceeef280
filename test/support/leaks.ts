import { openQueueEvents, openRedisConnections, openWorkers, type RedisClient } from "@capflow/common";

/**
 * Whether the test closed `connection`: it has ended, or `disconnect()`/`quit()` was called and the
 * socket is still closing. ioredis emits "end" a tick after `disconnect()`, and never when the
 * connection was waiting to reconnect (the refused-TLS test in redis-topologies.int.test.ts): it only
 * sets its `manuallyClosing` flag, read here (test/support/leaks.int.test.ts checks it still does).
 */
function closedByTest(connection: RedisClient): boolean {
  return (
    connection.status === "end" ||
    (connection as unknown as { manuallyClosing?: boolean }).manuallyClosing === true
  );
}

/**
 * Closes every BullMQ worker, QueueEvents and Redis connection the test file left open (each holds a
 * socket that keeps retrying, and a worker or events reader would steal the next file's jobs or events)
 * and returns one line for each: what it was and, for connections, where it was opened.
 */
export async function closeLeaks(): Promise<string[]> {
  const workers = [...openWorkers];
  const events = [...openQueueEvents];
  await Promise.all([...workers.map((w) => w.close(true)), ...events.map((e) => e.close())]);
  const leaked = [
    ...workers.map((w) => `BullMQ worker ${w.name}`),
    ...events.map((e) => `BullMQ QueueEvents ${e.name}`),
  ];
  for (const [connection, what] of openRedisConnections) {
    if (closedByTest(connection)) continue;
    leaked.push(`Redis ${what}`);
    connection.disconnect();
  }
  return leaked;
}

/** The leak guard's failure: names every leak, so the message alone says what to close. */
export function leakMessage(leaked: string[]): string {
  return `test file left ${leaked.length} open: ${leaked.join("; ")}`;
}
