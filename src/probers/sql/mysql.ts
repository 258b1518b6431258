import { Duplex } from 'node:stream';
import type mysql from 'mysql2';
import { codeOf, messageOf } from '../../lib/errors.js';
import { lazy } from '../../lib/lazy.js';
import { isTlsError, NETWORK_CODES, onAbort, type SqlDriver, type SqlFailure, type SqlRows, type SqlSession } from './shared.js';

/** A refused login: wrong password or unknown user (1045), or no right to the database (1044). */
const AUTH_CODES: ReadonlySet<string> = new Set(['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR']);
/** MariaDB's max_statement_time, MySQL's max_execution_time, and a query killed (by either). */
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['1969', 'ER_STATEMENT_TIMEOUT', 'ER_QUERY_TIMEOUT', 'ER_QUERY_INTERRUPTED']);
const READ_ONLY_CODES: ReadonlySet<string> = new Set(['ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION']);
/** MySQL has no max_statement_time (MariaDB's name): it answers this, and the MySQL name is used. */
const UNKNOWN_VARIABLE = 'ER_UNKNOWN_SYSTEM_VARIABLE';

const mysqlLib = lazy(async () => (await import('mysql2')).default);

/** MySQL and MariaDB through `mysql2`. */
export const mysqlDriver: SqlDriver = {
  async connect(target, limits) {
    const { createConnection } = await mysqlLib();
    const conn = createConnection({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database === '' ? undefined : target.database,
      connectTimeout: Math.max(1, Math.ceil(limits.connectMs)),
      // A query file may hold several statements (a SET before the SELECT); the last result set is judged.
      multipleStatements: true,
      rowsAsArray: true,
      ssl: target.tls === undefined ? undefined : { rejectUnauthorized: !target.tls.insecure, ca: target.tls.ca },
    });
    // end() only half-closes, and conn.destroy() marks the connection closing, after which mysql2
    // never fails the pending query: cutting the socket alone makes it fail every pending callback.
    // mysql2 keeps its socket as the untyped `stream` property: read it, and act only on a real stream.
    const destroy = () => {
      const socket: unknown = Reflect.get(conn, 'stream');
      if (socket instanceof Duplex) socket.destroy();
    };
    conn.on('error', () => {});
    const release = onAbort(limits.signal, destroy);
    try {
      await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      release();
      destroy();
      throw err;
    }
    return session(conn, destroy, release);
  },
  classify(err): SqlFailure {
    const errno = typeof err === 'object' && err !== null ? Reflect.get(err, 'errno') : undefined;
    // mysql2 names MySQL's codes only: MariaDB's own (1969, max_statement_time) arrive as a bare number.
    const code = codeOf(err) || (typeof errno === 'number' ? String(errno) : '');
    const detail = messageOf(err);
    if (AUTH_CODES.has(code)) return { kind: 'auth', code, detail };
    if (TIMEOUT_CODES.has(code)) return { kind: 'timeout', code, detail };
    if (READ_ONLY_CODES.has(code)) return { kind: 'read-only', code, detail };
    if (NETWORK_CODES.has(code) || code === 'PROTOCOL_CONNECTION_LOST') return { kind: 'connect', code, detail };
    // The server's own errors carry a SQLSTATE (their words may say "certificate" without being about TLS).
    if (code.startsWith('ER_') || (typeof err === 'object' && err !== null && 'sqlState' in err)) return { kind: 'query', code, detail };
    if (isTlsError(code, detail)) return { kind: 'tls', code, detail };
    return { kind: 'connect', code, detail };
  },
};

function session(conn: mysql.Connection, destroy: () => void, release: () => void): SqlSession {
  let closed = false;
  const query = (sql: string) =>
    new Promise<{ rows: unknown; fields: unknown }>((resolve, reject) =>
      conn.query(sql, (err, rows, fields) => (err ? reject(err) : resolve({ rows, fields }))),
    );
  return {
    async run(text, { readOnly, statementMs }): Promise<SqlRows> {
      // The server's own limit, so the query stops there and not only vigil's wait for it.
      const limit = Math.max(1, Math.floor(statementMs));
      await query(`SET SESSION max_statement_time = ${(limit / 1000).toFixed(3)}`).catch((err: unknown) => {
        if (codeOf(err) !== UNKNOWN_VARIABLE) throw err;
        return query(`SET SESSION max_execution_time = ${limit}`);
      });
      // The session default too, so a COMMIT inside the query does not leave a writable transaction after it.
      await query(readOnly ? 'SET SESSION TRANSACTION READ ONLY; START TRANSACTION READ ONLY' : 'START TRANSACTION');
      try {
        return lastRows(await query(text));
      } finally {
        if (!closed) await query('ROLLBACK').catch(() => {});
      }
    },
    close() {
      closed = true;
      release();
      destroy();
    },
  };
}

/**
 * mysql2 answers one statement with its rows (or an OK packet) and its column list, several with a
 * list of each: then `fields` holds one entry per statement (a column list, or nothing for an OK).
 * The last statement that returned columns is judged.
 */
function lastRows({ rows, fields }: { rows: unknown; fields: unknown }): SqlRows {
  const multi = Array.isArray(fields) && fields.some((f) => f === undefined || Array.isArray(f));
  const sets: Array<[unknown, unknown]> = multi ? (fields as unknown[]).map((f, i) => [(rows as unknown[])[i], f]) : [[rows, fields]];
  const last = sets.filter(([r, f]) => Array.isArray(r) && Array.isArray(f)).at(-1)?.[0] as unknown[][] | undefined;
  if (last === undefined) return { rows: 0, first: undefined };
  return { rows: last.length, first: last[0]?.[0] };
}
