import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';

/**
 * A synchronous PostgreSQL connection for the parts of the Store interface that are synchronous
 * (the alert store, the audit log, rollup reads, probe state, health): the alerting engine applies
 * an incident change and its notifications as one transaction before anything else runs, and that
 * only holds if the call does not return to the event loop.
 *
 * How: a worker thread owns one `pg` Client. A call posts {sql, params} to it on a MessageChannel
 * and blocks the calling thread in `Atomics.wait` on a shared counter; the worker runs the query,
 * posts the answer and bumps the counter; the caller wakes and takes the answer off its port with
 * `receiveMessageOnPort` (no event loop turn needed). One connection, one call at a time, so
 * BEGIN … COMMIT and everything between them share a session.
 *
 * Every call has a deadline. PostgreSQL's own `statement_timeout` (a little shorter) cancels a slow
 * statement cleanly first; if the worker still does not answer, the caller throws, the worker is
 * terminated (PostgreSQL rolls back whatever it had open) and the next call starts a fresh one.
 */
export interface SyncBridge {
  /** Runs one statement; returns its rows as objects. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): T[];
  /** Runs one statement; returns its rows as arrays, in column order. */
  queryArrays<T extends unknown[] = unknown[]>(sql: string, params?: readonly unknown[]): T[];
  /** Runs one statement; returns how many rows it touched. */
  run(sql: string, params?: readonly unknown[]): number;
  /**
   * Runs `fn` in a transaction on the bridge's connection: COMMIT when it returns, ROLLBACK when it
   * throws. Nested calls become savepoints. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T): T;
  /** Ends the connection and the worker. Later calls throw. */
  close(): void;
}

export interface SyncBridgeOptions {
  /** A libpq-style connection URL. */
  url: string;
  /** Deadline of every call, connecting included. Default 10 s. */
  timeoutMs?: number;
  /** Shown in pg_stat_activity. Default `vigil`. */
  applicationName?: string;
}

/** SQLSTATE (or Node's errno code for a refused connection, or PG_BRIDGE_* for the bridge itself). */
export class PostgresError extends Error {
  readonly code: string;
  readonly detail?: string;
  readonly constraint?: string;
  constructor(message: string, code: string, extra: { detail?: string; constraint?: string } = {}) {
    super(message);
    this.name = 'PostgresError';
    this.code = code;
    if (extra.detail !== undefined) this.detail = extra.detail;
    if (extra.constraint !== undefined) this.constraint = extra.constraint;
  }
}

interface Request {
  id: number;
  sql: string;
  params: readonly unknown[];
  arrays: boolean;
  /** begin: opens a transaction (the worker remembers its connection); tx: must run on that connection. */
  scope?: 'begin' | 'tx';
  end?: true;
}

interface Answer {
  id: number;
  rows?: unknown[];
  rowCount?: number;
  error?: { message: string; code?: string; detail?: string; constraint?: string };
}

/**
 * The worker, as CommonJS source: run with `eval: true` it needs no file of its own, so it starts
 * the same way from src/ (tsx) and from dist/ (tsc). `pg` comes by the absolute path the main
 * thread resolved.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pgPath);
const { port, signal, url, statementTimeoutMs, connectTimeoutMs, applicationName } = workerData;
const counter = new Int32Array(signal);
// int8 as a number: ids and epoch-ms times stay far below 2^53. Per client, so no global parser changes.
const types = { getTypeParser: (oid, format) => (oid === 20 ? Number : pg.types.getTypeParser(oid, format)) };
let client;
let txClient;
async function connection() {
  if (client !== undefined) return client;
  const c = new pg.Client({
    connectionString: url,
    types,
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: statementTimeoutMs,
    connectionTimeoutMillis: connectTimeoutMs,
    application_name: applicationName,
  });
  // A dropped connection is replaced on the next call, never in the middle of a transaction.
  c.on('error', () => { if (client === c) client = undefined; });
  c.on('end', () => { if (client === c) client = undefined; });
  client = c;
  try {
    await c.connect();
  } catch (err) {
    client = undefined;
    c.end().catch(() => {});
    throw err;
  }
  return c;
}
async function answer(req) {
  if (req.end) {
    if (client !== undefined) await client.end().catch(() => {});
    client = undefined;
    return { id: req.id, rows: [], rowCount: 0 };
  }
  if (req.scope === 'tx' && (client === undefined || client !== txClient)) {
    const e = new Error('the connection was lost inside a transaction; PostgreSQL rolled it back');
    e.code = '08003';
    throw e;
  }
  const c = await connection();
  if (req.scope === 'begin') txClient = c;
  try {
    const r = await c.query({ text: req.sql, values: req.params, rowMode: req.arrays ? 'array' : undefined });
    return { id: req.id, rows: r.rows, rowCount: r.rowCount ?? 0 };
  } catch (err) {
    // The connection died under the statement (pg says so without a SQLSTATE): connection_failure.
    if (err && err.code === undefined && client !== c) err.code = '08006';
    throw err;
  }
}
let chain = Promise.resolve();
port.on('message', (req) => {
  chain = chain.then(async () => {
    let out;
    try {
      out = await answer(req);
    } catch (err) {
      out = { id: req.id, error: { message: String(err && err.message || err), code: err && err.code, detail: err && err.detail, constraint: err && err.constraint } };
    }
    try {
      port.postMessage(out);
    } catch (err) {
      // Rows that cannot be cloned still get an answer, or the caller would wait out its deadline.
      port.postMessage({ id: req.id, error: { message: 'cannot pass the result back: ' + String(err && err.message || err), code: 'PG_BRIDGE_ERROR' } });
    }
    // Posted first, counted second: when the caller wakes, the answer is already on its port.
    Atomics.add(counter, 0, 1);
    Atomics.notify(counter, 0);
  });
});
`;

interface Session {
  worker: Worker;
  port: MessagePort;
  counter: Int32Array;
}

/** Opens a synchronous bridge; the connection is made on the first call. */
export function createSyncBridge(opts: SyncBridgeOptions): SyncBridge {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const pgPath = createRequire(import.meta.url).resolve('pg');
  // PostgreSQL cancels a slow statement itself a little before the bridge gives up, so a slow query
  // is an ordinary error (57014) on a connection that stays usable, not a worker restart.
  const statementTimeoutMs = Math.max(1, timeoutMs - Math.min(1_000, Math.floor(timeoutMs / 10)));
  let session: Session | undefined;
  let nextId = 0;
  let depth = 0;
  let closed = false;

  const start = (): Session => {
    const signal = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // Not the parent's flags: a loader such as `--import tsx` would be set up again in the worker,
      // and its startup waits on the parent's event loop, which is blocked in Atomics.wait.
      execArgv: [],
      workerData: {
        pgPath,
        port: port2,
        signal,
        url: opts.url,
        statementTimeoutMs,
        connectTimeoutMs: timeoutMs,
        applicationName: opts.applicationName ?? 'vigil',
      },
      transferList: [port2],
    });
    // The caller blocks while it waits, so neither the worker nor the port needs to keep the process alive.
    worker.unref();
    port1.unref();
    return { worker, port: port1, counter: new Int32Array(signal) };
  };

  const abandon = () => {
    if (session === undefined) return;
    const s = session;
    session = undefined;
    s.port.close();
    void s.worker.terminate();
  };

  function call(req: Omit<Request, 'id'>, deadlineMs = timeoutMs): Answer {
    if (closed) throw new PostgresError('the PostgreSQL bridge is closed', 'PG_BRIDGE_CLOSED');
    session ??= start();
    const s = session;
    const id = ++nextId;
    s.port.postMessage({ ...req, id } satisfies Request);
    const deadline = performance.now() + deadlineMs;
    for (;;) {
      // Read the counter before draining: an answer posted after the drain has moved it, so the wait returns at once.
      const count = Atomics.load(s.counter, 0);
      for (let got = receiveMessageOnPort(s.port); got !== undefined; got = receiveMessageOnPort(s.port)) {
        const a = got.message as Answer;
        // Each call waits for its own answer, so another id cannot come; never misread one if it did.
        if (a.id === id) return settle(a);
      }
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.wait(s.counter, 0, count, left) === 'timed-out') {
        abandon();
        throw new PostgresError(
          `PostgreSQL did not answer within ${deadlineMs} ms (${req.sql.trim().split(/\s+/).slice(0, 6).join(' ')}); the connection was reset`,
          'PG_BRIDGE_TIMEOUT',
        );
      }
    }
  }

  function settle(a: Answer): Answer {
    if (a.error === undefined) return a;
    const e = a.error;
    throw new PostgresError(e.message, e.code ?? 'PG_BRIDGE_ERROR', {
      ...(e.detail !== undefined ? { detail: e.detail } : {}),
      ...(e.constraint !== undefined ? { constraint: e.constraint } : {}),
    });
  }

  /** Statements inside a transaction must run on the connection that began it. */
  const inTx = (): Pick<Request, 'scope'> => (depth > 0 ? { scope: 'tx' } : {});
  const exec = (sql: string, scope: NonNullable<Request['scope']>) => call({ sql, params: [], arrays: false, scope });

  return {
    query: <T>(sql: string, params: readonly unknown[] = []) => call({ sql, params, arrays: false, ...inTx() }).rows as T[],
    queryArrays: <T extends unknown[]>(sql: string, params: readonly unknown[] = []) =>
      call({ sql, params, arrays: true, ...inTx() }).rows as T[],
    run: (sql, params = []) => call({ sql, params, arrays: false, ...inTx() }).rowCount ?? 0,
    transaction<T>(fn: () => T): T {
      const savepoint = depth > 0 ? `vigil_sp_${depth}` : undefined;
      exec(savepoint ? `SAVEPOINT ${savepoint}` : 'BEGIN', savepoint ? 'tx' : 'begin');
      depth++;
      let result: T;
      try {
        result = fn();
        if (result instanceof Promise) throw new TypeError('a bridge transaction must be synchronous');
      } catch (err) {
        depth--;
        try {
          exec(savepoint ? `ROLLBACK TO SAVEPOINT ${savepoint}` : 'ROLLBACK', 'tx');
        } catch {
          // The connection is gone (a timeout reset it): PostgreSQL has rolled back already.
        }
        throw err;
      }
      depth--;
      try {
        exec(savepoint ? `RELEASE SAVEPOINT ${savepoint}` : 'COMMIT', 'tx');
      } catch (err) {
        if (!savepoint) {
          try {
            exec('ROLLBACK', 'tx');
          } catch {
            // as above
          }
        }
        throw err;
      }
      return result;
    },
    close() {
      if (closed) return;
      if (session !== undefined) {
        try {
          call({ sql: '', params: [], arrays: false, end: true }, Math.min(timeoutMs, 2_000));
        } catch {
          // Ending politely is best effort; terminating the worker closes the socket anyway.
        }
      }
      closed = true;
      abandon();
    },
  };
}
