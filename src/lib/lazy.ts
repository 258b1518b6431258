/**
 * A module loaded at its first use, once. The clients of kinds and channels a config may never use
 * (Redis, AMQP, S3, MySQL, PostgreSQL, WebSocket, Slack, SMTP) cost ~150 MB of RSS and seconds of
 * start-up when imported eagerly: a service probing only HTTP endpoints pays for none of them.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => {
    loaded ??= load();
    return loaded;
  };
}
