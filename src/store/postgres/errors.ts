/**
 * A failed PostgreSQL call. `code` is the SQLSTATE PostgreSQL gave (`42P01`, `23505`, `57014`, …),
 * Node's errno code for a refused connection (`ECONNREFUSED`), or one of this store's own:
 * `PG_TIMEOUT` (no answer within the deadline), `PG_CLOSED` (the store was closed), `PG_ERROR`.
 */
export class PostgresError extends Error {
  readonly code: string;
  readonly detail?: string;
  readonly constraint?: string;
  constructor(message: string, code: string, extra: { detail?: string; constraint?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'PostgresError';
    this.code = code;
    if (extra.detail !== undefined) this.detail = extra.detail;
    if (extra.constraint !== undefined) this.constraint = extra.constraint;
  }
}

/** pg's own words for a call it gave up on (a read deadline, a connect deadline). */
const TIMEOUTS = ['Query read timeout', 'timeout exceeded when trying to connect', 'Connection terminated due to connection timeout'];

/**
 * Turns whatever `pg` threw into a PostgresError that says what happened: a deadline becomes
 * `PG_TIMEOUT` with the statement's first words, a connection that died under a statement
 * `08006` (connection_failure) and a statement sent after it died `08003`, as libpq would say.
 */
export function toPostgresError(err: unknown, sql: string, timeoutMs: number): PostgresError {
  if (err instanceof PostgresError) return err;
  // pg throws Errors with extra fields, and whatever a socket or a pool hands it: read each as unknown.
  const field = (key: string): unknown => (typeof err === 'object' && err !== null ? Reflect.get(err, key) : undefined);
  const code = field('code');
  const detail = field('detail');
  const constraint = field('constraint');
  const message = String(field('message') ?? err);
  const extra = {
    cause: err,
    ...(typeof detail === 'string' ? { detail } : {}),
    ...(typeof constraint === 'string' ? { constraint } : {}),
  };
  if (TIMEOUTS.includes(message)) {
    return new PostgresError(`PostgreSQL did not answer within ${timeoutMs} ms (${firstWords(sql)})`, 'PG_TIMEOUT', extra);
  }
  if (typeof code === 'string') return new PostgresError(message, code, extra);
  if (/^Connection terminated/.test(message)) return new PostgresError(message, '08006', extra);
  // A statement sent on a connection pg already saw die: connection_does_not_exist.
  if (/is not queryable/.test(message)) return new PostgresError(message, '08003', extra);
  return new PostgresError(message, 'PG_ERROR', extra);
}

/** Whether the connection itself is in doubt after this error (no answer, or gone), not just the statement. */
export function isConnectionLost(err: PostgresError): boolean {
  return err.code === 'PG_TIMEOUT' || err.code.startsWith('08') || err.code === '57P01' || err.code.startsWith('E');
}

const firstWords = (sql: string) => sql.trim().split(/\s+/).slice(0, 6).join(' ');
