import pg from 'pg';
import type { Logger } from '../../lib/logger.js';
import { isConnectionLost, PostgresError, toPostgresError } from './errors.js';

/** Statements on one connection (a transaction's) or on any (the pool's). */
export interface Queryable {
  /** Runs one statement; returns its rows as objects. */
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs one statement; returns its rows as arrays, in column order. */
  queryArrays<T extends unknown[] = unknown[]>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs one statement; returns how many rows it touched. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** The store's one pool of PostgreSQL connections. Every call has a deadline; errors are PostgresErrors. */
export interface PgDb extends Queryable {
  /**
   * Runs `fn` in a transaction on one connection: COMMIT when it resolves, ROLLBACK when it rejects
   * (the connection is dropped instead when it is in doubt, and PostgreSQL rolls back itself).
   */
  withTransaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs `fn` on one connection of its own, outside a transaction (a session advisory lock). */
  withClient<T>(fn: (c: Queryable) => Promise<T>): Promise<T>;
  /** Ends every connection; later calls reject with `PG_CLOSED`. */
  close(): Promise<void>;
}

export interface PgDbOptions {
  /** A libpq-style connection URL. */
  url: string;
  /** Deadline of every call, connecting and waiting for a free connection included. Default 10 s. */
  timeoutMs?: number;
  /** Connections in the pool. Default 4. */
  poolSize?: number;
  /** Shown in pg_stat_activity. Default `vigil`. */
  applicationName?: string;
  logger: Logger;
}

/** int8 as a JS number, for this pool only: ids and epoch-ms times stay far below 2^53. */
const types: pg.CustomTypesConfig = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? Number : format === 'binary' ? pg.types.getTypeParser(oid, format) : pg.types.getTypeParser(oid, 'text'),
};

/**
 * Opens the pool; connections are made on demand. Three deadlines, so a frozen or silent server ends
 * as a rejected promise, never a hang: `connectionTimeoutMillis` (connecting, or waiting for a free
 * connection), PostgreSQL's `statement_timeout` a little shorter than the deadline (it cancels a slow
 * statement cleanly, and the connection stays usable), and pg's `query_timeout` (the server does not
 * answer at all: the connection is dropped).
 */
export function createPgDb(opts: PgDbOptions): PgDb {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const statementTimeoutMs = Math.max(1, timeoutMs - Math.min(1_000, Math.floor(timeoutMs / 10)));
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 4,
    types,
    application_name: opts.applicationName ?? 'vigil',
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    // JIT compiles a statement whose estimated cost is high, in hundreds of ms (1.3 s measured for
    // the latest refresh, estimated from a run_writers table too small to have statistics), to save
    // a few ms on a statement that reads a few thousand rows: vigil's statements are all of that
    // kind. Set on each new connection before the pool hands it out (a failure fails the connect).
    onConnect: (client) => client.query('SET jit = off'),
  });
  // An idle connection dropped by the server must not crash the process: the pool replaces it.
  pool.on('error', (err) => opts.logger.warn({ err }, 'idle PostgreSQL connection lost'));

  let closed = false;

  const checkOpen = () => {
    if (closed) throw new PostgresError('the PostgreSQL store is closed', 'PG_CLOSED');
  };
  const on = (c: pg.Pool | pg.PoolClient): Queryable => ({
    async query<T extends pg.QueryResultRow>(sql: string, params: readonly unknown[] = []) {
      try {
        return (await c.query<T>({ text: sql, values: [...params] })).rows;
      } catch (err) {
        throw toPostgresError(err, sql, timeoutMs);
      }
    },
    async queryArrays<T extends unknown[]>(sql: string, params: readonly unknown[] = []) {
      try {
        return (await c.query<T>({ text: sql, values: [...params], rowMode: 'array' })).rows;
      } catch (err) {
        throw toPostgresError(err, sql, timeoutMs);
      }
    },
    async run(sql: string, params: readonly unknown[] = []) {
      try {
        return (await c.query({ text: sql, values: [...params] })).rowCount ?? 0;
      } catch (err) {
        throw toPostgresError(err, sql, timeoutMs);
      }
    },
  });
  const anyConnection = on(pool);

  // A checked-out connection that dies emits 'error' on itself (the pool listens only while it is
  // idle): unheard, that would crash the process. The statement in flight rejects on its own.
  const onLost = (err: Error) => opts.logger.warn({ err }, 'PostgreSQL connection lost while in use');
  async function connect(): Promise<pg.PoolClient> {
    checkOpen();
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw toPostgresError(err, 'connect', timeoutMs);
    }
    client.on('error', onLost);
    return client;
  }
  const release = (client: pg.PoolClient, broken: Error | undefined) => {
    client.off('error', onLost);
    client.release(broken);
  };

  return {
    async query<T extends pg.QueryResultRow>(sql: string, params?: readonly unknown[]) {
      checkOpen();
      return anyConnection.query<T>(sql, params);
    },
    async queryArrays<T extends unknown[]>(sql: string, params?: readonly unknown[]) {
      checkOpen();
      return anyConnection.queryArrays<T>(sql, params);
    },
    async run(sql, params) {
      checkOpen();
      return anyConnection.run(sql, params);
    },
    async withTransaction(fn) {
      const client = await connect();
      const tx = on(client);
      // Set when the connection must not go back to the pool: the pool drops it instead.
      let broken: Error | undefined;
      try {
        await tx.run('BEGIN');
        const out = await fn(tx);
        await tx.run('COMMIT');
        return out;
      } catch (err) {
        // A connection in doubt is dropped, not rolled back: a ROLLBACK would wait out another
        // deadline behind the statement that did not answer, and PostgreSQL rolls back a
        // transaction whose connection is gone.
        if (err instanceof PostgresError && isConnectionLost(err)) broken = err;
        else
          await tx.run('ROLLBACK').catch((rollbackErr: Error) => {
            broken = rollbackErr;
          });
        throw err;
      } finally {
        release(client, broken);
      }
    },
    async withClient(fn) {
      const client = await connect();
      let broken: Error | undefined;
      try {
        return await fn(on(client));
      } catch (err) {
        if (err instanceof PostgresError && isConnectionLost(err)) broken = err;
        throw err;
      } finally {
        release(client, broken);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
