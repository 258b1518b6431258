import net from 'node:net';
import type pg from 'pg';
import { codeOf, messageOf } from '../../lib/errors.js';
import { lazy } from '../../lib/lazy.js';
import { isTlsError, NETWORK_CODES, onAbort, type SqlDriver, type SqlFailure, type SqlRows, type SqlSession } from './shared.js';

/** SQLSTATEs of a refused login: wrong password (28P01), or no such role / pg_hba rejects (28000). */
const AUTH_STATES: ReadonlySet<string> = new Set(['28P01', '28000']);
/** query_canceled: what statement_timeout raises. */
const CANCELED = '57014';
/** read_only_sql_transaction. */
const READ_ONLY = '25006';

const pgLib = lazy(async () => {
  loaded = (await import('pg')).default;
  return loaded;
});
/** The driver once a run has loaded it: classify() only ever sees errors of a run that did. */
let loaded: typeof pg | undefined;

/** PostgreSQL through `pg`, on a socket vigil owns so an abort can destroy it mid-handshake. */
export const postgresDriver: SqlDriver = {
  async connect(target, limits) {
    const { Client } = await pgLib();
    const socket = new net.Socket();
    const client = new Client({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      application_name: 'vigil',
      connectionTimeoutMillis: Math.max(1, Math.ceil(limits.connectMs)),
      // Session defaults, so a COMMIT inside the query leaves no writable or unlimited statement after it.
      statement_timeout: Math.max(1, Math.ceil(limits.connectMs)),
      options: limits.readOnly ? '-c default_transaction_read_only=on' : undefined,
      ssl:
        target.tls === undefined
          ? false
          : { rejectUnauthorized: !target.tls.insecure, ca: target.tls.ca, servername: target.tls.servername },
      stream: () => socket,
    });
    // A socket error after the abort (or a server going away) must never be an unhandled 'error' event.
    client.on('error', () => {});
    const release = onAbort(limits.signal, () => socket.destroy());
    try {
      await client.connect();
    } catch (err) {
      release();
      socket.destroy();
      throw err;
    }
    return session(client, socket, release);
  },
  classify(err): SqlFailure {
    const code = codeOf(err);
    const detail = messageOf(err);
    if (AUTH_STATES.has(code)) return { kind: 'auth', code, detail };
    if (code === CANCELED) return { kind: 'timeout', code, detail };
    if (code === READ_ONLY) return { kind: 'read-only', code, detail };
    if (NETWORK_CODES.has(code)) return { kind: 'connect', code, detail };
    // The server's own error (a SQLSTATE): its words may say "certificate" without being about TLS.
    if (loaded !== undefined && err instanceof loaded.DatabaseError) return { kind: 'query', code, detail };
    if (isTlsError(code, detail)) return { kind: 'tls', code, detail };
    // "Connection terminated unexpectedly", a connect timeout: the server went away or never answered.
    return { kind: 'connect', code, detail };
  },
};

function session(client: pg.Client, socket: net.Socket, release: () => void): SqlSession {
  return {
    async run(query, { readOnly, statementMs }): Promise<SqlRows> {
      // One round trip: the transaction, and the server's own limit, which cancels the backend's
      // query (a client that just hangs up would leave it running).
      await client.query(`BEGIN${readOnly ? ' READ ONLY' : ''}; SET LOCAL statement_timeout = ${Math.max(1, Math.floor(statementMs))}`);
      try {
        const out = (await client.query({ text: query, rowMode: 'array' })) as pg.QueryArrayResult | pg.QueryArrayResult[];
        return lastRows(Array.isArray(out) ? out : [out]);
      } finally {
        // Always rolled back: a probe reads, it never leaves a change behind (also readOnly: false).
        if (!socket.destroyed) await client.query('ROLLBACK').catch(() => {});
      }
    },
    close() {
      release();
      socket.destroy();
    },
  };
}

/** The last statement that returned rows (a multi-statement query's earlier ones set things up). */
function lastRows(results: pg.QueryArrayResult[]): SqlRows {
  const withRows = results.filter((r) => r.fields.length > 0);
  const last = withRows.at(-1) ?? results.at(-1);
  if (last === undefined) return { rows: 0, first: undefined };
  return { rows: last.rows.length, first: last.rows[0]?.[0] };
}
