import pg from 'pg';
import type { TimerHandle } from '../../lib/clock.js';
import { type RunRow, runOf } from '../rows.js';
import type { LeaseState, Rollups, RunQuery, RunRecord, Store, StoredRun, StoreHealth } from '../types.js';
import { type BatchedStoreOptions, requeue, type StoreStats } from '../write-queue.js';
import { createPostgresAlertStore } from './alerts.js';
import { createPostgresAuditLog } from './audit.js';
import { createSyncBridge } from './bridge.js';
import { migratePostgres } from './migrations.js';
import { createPostgresRollups } from './rollups.js';

/** How often each instance re-reads the newest run of every probe, whichever instance ran it. */
const LATEST_REFRESH_MS = 2_000;

export interface PostgresStoreOptions extends BatchedStoreOptions {
  /** `postgresql://user:password@host:port/database`; libpq parameters (sslmode, options) as pg reads them. */
  url: string;
  /** Deadline of every synchronous call through the bridge. Default 10 s. */
  timeoutMs?: number;
  /** Connections of the pool for batched writes, run queries, prunes and roll-ups. Default 4. */
  poolSize?: number;
}

const RUN_COLUMNS = `r.id, p.name AS probe_id, p.kind, r.started_at, r.duration_ms, r.ok, r.code, r.message, r.attempts, r.trigger,
  r.vals, r.details, r.location`;
// Deleted per statement: a short lock and a short transaction, whatever the backlog.
const PRUNE_CHUNK = 5_000;
/**
 * Held from just before a batch takes its run ids until it commits, so batches from all instances
 * commit in id order; see runsAfter below.
 */
const RUN_ORDER_LOCK = 0x76_69_67_69_6c_03; // "vigil" 3

/** int8 as a JS number, for this pool only: ids and epoch-ms times stay far below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * The store on PostgreSQL, for several vigil instances sharing one database. Same interface, same
 * answers as SQLite (test/store/contract.test.ts runs both).
 *
 * Two paths to the database:
 * - The synchronous bridge (./bridge.ts: a worker thread holding one connection, waited on with
 *   Atomics.wait) for what the interface makes synchronous: alerts, audit, rollup reads, probe
 *   state, health, and the start (migrations, the probe keys, the latest run of each probe).
 * - An async pg.Pool for what the interface already makes async: batched run writes, run queries,
 *   prunes and roll-ups. A batch of 5,000 rows or a prune of a month would block the event loop
 *   (the scheduler, the HTTP API) for as long as PostgreSQL works on it if it went through the
 *   bridge; through the pool the loop keeps running and only that promise waits.
 */
export function createPostgresStore(opts: PostgresStoreOptions): Store & { stats(): StoreStats; readonly rollups: Rollups } {
  const { clock, logger } = opts;
  const log = logger.child({ module: 'store', backend: 'postgres' });
  const bridge = createSyncBridge({ url: opts.url, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
  try {
    migratePostgres(bridge, clock, log);
  } catch (err) {
    bridge.close();
    throw err;
  }
  const db = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolSize ?? 4,
    types,
    application_name: 'vigil',
    connectionTimeoutMillis: opts.timeoutMs ?? 10_000,
  });
  // An idle pooled connection dropped by the server must not crash the process: the pool replaces it.
  db.on('error', (err) => log.warn({ err }, 'idle PostgreSQL connection lost'));

  const batchRows = opts.batchRows ?? 5000;
  const batchIntervalMs = opts.batchIntervalMs ?? 200;
  const maxQueued = opts.maxQueued ?? 200_000;

  const probeKeys = new Map<string, number>();
  for (const row of bridge.query<{ id: number; name: string }>('SELECT id, name FROM probes')) probeKeys.set(row.name, row.id);

  const latest = new Map<string, StoredRun | RunRecord>();
  // One index probe per probe (LATERAL … LIMIT 1), not a scan of every run.
  const LATEST_SQL = `SELECT r.*, p.name AS probe_id, p.kind FROM probes p
       CROSS JOIN LATERAL (SELECT * FROM runs WHERE probe = p.id ORDER BY started_at DESC, id DESC LIMIT 1) r`;
  const keepNewer = (row: RunRow) => {
    const run = runOf(row);
    const cur = latest.get(run.probeId);
    if (cur === undefined || cur.startedAt < run.startedAt) latest.set(run.probeId, run);
  };
  for (const row of bridge.query<RunRow>(LATEST_SQL)) keepNewer(row);
  // Other instances (other locations) write runs too: every instance's API and status page show the
  // newest run of each probe wherever it ran, refreshed off the event loop every few seconds.
  let refreshTimer: TimerHandle | undefined;
  const refreshLatest = () => {
    db.query<RunRow>(LATEST_SQL)
      .then((res) => {
        for (const row of res.rows) keepNewer(row);
      })
      .catch((err) => log.warn({ err }, 'refreshing the latest runs failed'))
      .finally(() => {
        if (!closed) refreshTimer = clock.setTimeout(refreshLatest, LATEST_REFRESH_MS);
      });
  };
  // Kept in memory as SQLite does: each instance reads its own writes without a round trip per run.
  const states = new Map<string, unknown>();
  for (const row of bridge.query<{ probe_id: string; value: string }>('SELECT probe_id, value FROM probe_state')) {
    states.set(row.probe_id, JSON.parse(row.value));
  }

  let queue: RunRecord[] = [];
  let timer: TimerHandle | undefined;
  let flushSoon = false;
  let lastError: string | undefined;
  let closed = false;
  refreshTimer = clock.setTimeout(refreshLatest, LATEST_REFRESH_MS);
  const stats: StoreStats = { written: 0, writeErrors: 0, dropped: 0 };

  /** Inserts one batch in one transaction; returns the probe keys it made, valid once it commits. */
  async function insertBatch(client: pg.PoolClient, rows: RunRecord[]): Promise<Map<string, number>> {
    const made = new Map<string, number>();
    // Sorted, so two instances adding the same new probes lock their rows in the same order.
    const missing = [...new Map(rows.filter((r) => !probeKeys.has(r.probeId)).map((r) => [r.probeId, r.kind]))].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    if (missing.length > 0) {
      const res = await client.query<{ id: number; name: string }>(
        `INSERT INTO probes (name, kind) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind RETURNING id, name`,
        [missing.map(([n]) => n), missing.map(([, k]) => k)],
      );
      for (const r of res.rows) made.set(r.name, r.id);
    }
    const key = (r: RunRecord) => probeKeys.get(r.probeId) ?? made.get(r.probeId)!;
    // After the probe rows (their locks come first, in one order everywhere) and only for the
    // INSERT and the COMMIT that follows it: the run feed's ordering (see runsAfter).
    await client.query('SELECT pg_advisory_xact_lock($1)', [RUN_ORDER_LOCK]);
    // One statement per batch: the columns go as arrays and unnest turns them back into rows, in order.
    await client.query(
      `INSERT INTO runs (probe, started_at, duration_ms, ok, code, message, attempts, trigger, vals, details, location)
       SELECT * FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::bool[], $5::text[], $6::text[], $7::int[], $8::text[],
                            $9::text[], $10::text[], $11::text[])`,
      [
        rows.map(key),
        rows.map((r) => r.startedAt),
        rows.map((r) => r.durationMs),
        rows.map((r) => r.ok),
        rows.map((r) => r.code ?? null),
        rows.map((r) => r.message ?? null),
        rows.map((r) => r.attempts),
        rows.map((r) => r.trigger),
        rows.map((r) => JSON.stringify(r.values)),
        rows.map((r) => (r.details === undefined ? null : JSON.stringify(r.details))),
        rows.map((r) => r.location ?? ''),
      ],
    );
    return made;
  }

  async function writeNow() {
    flushSoon = false;
    if (queue.length === 0) return;
    const rows = queue;
    queue = [];
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    try {
      client = await db.connect();
      for (let i = 0; i < rows.length; i += batchRows) {
        await client.query('BEGIN');
        try {
          const made = await insertBatch(client, rows.slice(i, i + batchRows));
          await client.query('COMMIT');
          for (const [name, key] of made) probeKeys.set(name, key);
          stats.written += Math.min(batchRows, rows.length - i);
        } catch (err) {
          await client.query('ROLLBACK').catch((e: Error) => {
            broken = e;
          });
          // Committed batches stay written; only the rest is retried.
          rows.splice(0, i);
          throw err;
        }
      }
      lastError = undefined;
    } catch (err) {
      stats.writeErrors++;
      lastError = (err as Error).message;
      queue = requeue(rows, queue, maxQueued, stats);
      log.error({ err, queued: queue.length }, 'run write failed; rows kept for retry');
    } finally {
      client?.release(broken);
    }
  }

  // One write at a time, in order: a flush waits for the write in flight, then writes what is left.
  let writing: Promise<void> = Promise.resolve();
  const writeQueued = (): Promise<void> => {
    writing = writing.then(writeNow, writeNow);
    return writing;
  };

  function tick() {
    timer = undefined;
    void writeQueued().finally(() => {
      if (!closed) timer = clock.setTimeout(tick, batchIntervalMs);
    });
  }
  timer = clock.setTimeout(tick, batchIntervalMs);

  return {
    alerts: createPostgresAlertStore(bridge),
    audit: createPostgresAuditLog(bridge),
    rollups: createPostgresRollups(bridge, db, clock, log.child({ part: 'rollups' }), opts.rollups),
    append(run) {
      if (closed) throw new Error('store is closed');
      queue.push(run);
      latest.set(run.probeId, run);
      if (queue.length >= batchRows && !flushSoon) {
        flushSoon = true;
        setImmediate(() => void writeQueued());
      }
    },
    async flush() {
      await writeQueued();
      if (lastError !== undefined) throw new Error(`store write failed: ${lastError}`);
    },
    async runs(q: RunQuery) {
      const limit = Math.min(q.limit ?? 100, 10_000);
      // By name, not by a cached key: another instance may have written this probe's first runs.
      const res = await db.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN probes p ON p.id = r.probe
          WHERE p.name = $1 AND r.started_at >= $2 AND r.started_at < $3
          ORDER BY r.started_at DESC, r.id DESC LIMIT $4`,
        [q.probeId, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, limit],
      );
      return res.rows.map(runOf);
    },
    async lastSuccess(probeId) {
      const res = await db.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN probes p ON p.id = r.probe
          WHERE p.name = $1 AND r.ok ORDER BY r.started_at DESC, r.id DESC LIMIT 1`,
        [probeId],
      );
      const row = res.rows[0];
      return row === undefined ? undefined : runOf(row);
    },
    /**
     * Why reading `id > afterId` misses nothing here: ids come from one bigserial, and concurrent
     * transactions can commit them out of order (A takes 10, B takes 11, B commits, a reader moves
     * past 11, then A commits 10 behind it). So every batch takes RUN_ORDER_LOCK before its INSERT
     * draws ids and holds it to its COMMIT; PostgreSQL makes a commit visible before it releases the
     * transaction's locks, so the next batch draws higher ids only once the previous one is visible.
     * Any snapshot therefore sees a prefix of the ids that will ever commit (less rolled-back gaps),
     * and a reader continuing after the highest id it has seen never skips one. The cost: batch
     * inserts of all instances take turns (one INSERT and COMMIT each, milliseconds), which run
     * volumes here afford; an xid-ordered feed or an overlap window with de-duplication would avoid
     * it, but need a cursor of two values or a window wider than the longest transaction. Holds as
     * long as the sequence keeps its default CACHE 1 (a per-session cache hands out ids out of order).
     */
    async runsAfter(afterId, limit) {
      const res = await db.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN probes p ON p.id = r.probe WHERE r.id > $1 ORDER BY r.id LIMIT $2`,
        [afterId, Math.max(0, Math.min(Math.floor(limit), 10_000))],
      );
      return res.rows.map(runOf);
    },
    async maxRunId() {
      return (await db.query<{ id: number }>('SELECT coalesce(max(id), 0) AS id FROM runs')).rows[0]!.id;
    },
    lease(name, holder, ttlMs, now): LeaseState {
      if (!(ttlMs > 0)) throw new RangeError(`a lease needs a positive ttl, got ${ttlMs}`);
      // One statement: the conflicting row is locked and re-checked, so of instances asking at once
      // exactly one takes a free lease. It returns nothing when another holds it: then read who.
      const [row] = bridge.query<{ holder: string; expires_at: number }>(
        `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder
         RETURNING holder, expires_at`,
        [name, holder, now + ttlMs, now],
      );
      // Rows are never deleted, so after the upsert there is one to read.
      const r =
        row ?? bridge.query<{ holder: string; expires_at: number }>('SELECT holder, expires_at FROM leases WHERE name = $1', [name])[0]!;
      return { held: r.holder === holder && r.expires_at > now, holder: r.holder, expiresAt: r.expires_at };
    },
    release(name, holder) {
      bridge.run('UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2', [name, holder]);
    },
    latest: (probeId) => latest.get(probeId),
    probeState: (probeId) => states.get(probeId),
    setProbeState(probeId, value) {
      const text = JSON.stringify(value ?? null);
      bridge.run(
        `INSERT INTO probe_state (probe_id, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (probe_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [probeId, text, clock.now()],
      );
      states.set(probeId, JSON.parse(text));
    },
    async prune(before) {
      // Per probe along the (probe, started_at) index, in chunks: exact whatever order instances
      // wrote in (ids from one sequence are not in time order across instances).
      let total = 0;
      const probes = (await db.query<{ id: number }>('SELECT id FROM probes ORDER BY id')).rows;
      for (const { id } of probes) {
        for (;;) {
          const n =
            (
              await db.query(
                'DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE probe = $1 AND started_at < $2 ORDER BY started_at LIMIT $3)',
                [id, before, PRUNE_CHUNK],
              )
            ).rowCount ?? 0;
          total += n;
          if (n < PRUNE_CHUNK) break;
        }
      }
      if (total > 0) log.info({ deleted: total, before: new Date(before).toISOString() }, 'runs pruned');
      return total;
    },
    health(): StoreHealth {
      try {
        bridge.run('INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at', [clock.now()]);
        return { writable: lastError === undefined, queued: queue.length, ...(lastError ? { error: lastError } : {}) };
      } catch (err) {
        return { writable: false, queued: queue.length, error: (err as Error).message };
      }
    },
    stats: () => ({ ...stats }),
    async backup() {
      // A file copy of a shared server database is not this store's to make: PostgreSQL is backed up
      // with its own tools (pg_dump, or base backups and WAL archiving), once for every instance.
      throw new Error('the PostgreSQL store does not write file backups; back the database up with pg_dump or WAL archiving');
    },
    async close() {
      if (closed) return;
      await writeQueued();
      closed = true;
      if (refreshTimer !== undefined) clock.clearTimeout(refreshTimer);
      if (timer !== undefined) clock.clearTimeout(timer);
      if (queue.length > 0) log.error({ lost: queue.length }, 'closing with unwritten runs');
      await db.end();
      bridge.close();
    },
  };
}
