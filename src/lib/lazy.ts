/**
 * A module loaded at its first use, once. The clients of kinds a config may never use (Redis, AMQP,
 * S3, MySQL, PostgreSQL, WebSocket) made importing the app cost 88 MB of RSS and ~2 s here; loaded
 * lazily, 56 MB and ~1.3 s: a service probing only HTTP endpoints pays for none of them.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => {
    loaded ??= load();
    return loaded;
  };
}
