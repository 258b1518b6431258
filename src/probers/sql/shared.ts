import { TRUST_ERRORS } from '../sockets.js';

/**
 * What the `sql` kind's two drivers share: where to connect, what a session can do, and the few
 * kinds of failure the prober tells apart (each driver maps its own error codes onto them).
 */

/** Where and how to connect, taken apart from the definition's URL (its password decoded, never shown). */
export interface SqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** TLS when set: trust the extra CAs, or nothing at all (`insecure`). */
  tls?: { ca?: string[]; insecure: boolean; servername?: string };
}

/** One connection's limits, from the run's remaining deadline. */
export interface SqlLimits {
  connectMs: number;
  /** The session's transactions default to read-only (a COMMIT in the query cannot escape the read-only one). */
  readOnly: boolean;
  /** Aborts at the run's deadline: the driver destroys its socket at once. */
  signal: AbortSignal;
}

/** What a query returned: the last result set's row count and its first row's first value. */
export interface SqlRows {
  rows: number;
  /** `undefined` when the result had no row (or no column). */
  first: unknown;
}

/** An open connection. `close` destroys it, whatever state it is in. */
export interface SqlSession {
  /**
   * Runs `query` inside a transaction that is always rolled back, read-only when asked, the server
   * cancelling it after `statementMs`.
   */
  run(query: string, opts: { readOnly: boolean; statementMs: number }): Promise<SqlRows>;
  close(): void;
}

/** The failures the prober tells apart; everything else is a plain query or protocol error. */
export type SqlFailureKind = 'auth' | 'connect' | 'tls' | 'timeout' | 'read-only' | 'query';

/** A driver error as the prober reads it. */
export interface SqlFailure {
  kind: SqlFailureKind;
  /** The driver's or server's code (`28P01`, `ER_ACCESS_DENIED_ERROR`, `ECONNREFUSED`), '' when none. */
  code: string;
  /** The server's or driver's own words. */
  detail: string;
}

/** One driver: connect, and read its errors. */
export interface SqlDriver {
  connect(target: SqlTarget, limits: SqlLimits): Promise<SqlSession>;
  classify(err: unknown): SqlFailure;
}

/** Node's socket codes that mean the server could not be reached (or the name did not resolve). */
export const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EADDRNOTAVAIL',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NODATA',
  'ENODATA',
]);

/** Calls `destroy` once `signal` aborts (at once if it has); returns what removes the listener. */
export function onAbort(signal: AbortSignal, destroy: () => void): () => void {
  if (signal.aborted) {
    destroy();
    return () => {};
  }
  signal.addEventListener('abort', destroy, { once: true });
  return () => signal.removeEventListener('abort', destroy);
}

/** A failed handshake or an untrusted certificate, by Node's code (or, from a driver that drops it, its words). */
export function isTlsError(code: string, detail: string): boolean {
  return (
    TRUST_ERRORS.has(code) ||
    /^(ERR_TLS|ERR_SSL|CERT_)/.test(code) ||
    code === 'HANDSHAKE_NO_SSL_SUPPORT' ||
    /certificate|does not support SSL/i.test(detail)
  );
}
