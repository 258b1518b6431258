import type { TimerHandle } from '../../lib/clock.js';
import { messageOf } from '../../lib/errors.js';
import { type RunRow, runOf } from '../rows.js';
import type { FeedCursor, LeaseState, Rollups, RunQuery, RunRecord, Store, StoredRun, StoreHealth, StoreStats } from '../types.js';
import { type BatchedStoreOptions, requeue } from '../write-queue.js';
import { createPostgresAlertStore } from './alerts.js';
import { createPostgresAuditLog } from './audit.js';
import { createPgDb, type PgDb, type Queryable } from './db.js';
import { isConnectionLost, PostgresError } from './errors.js';
import { migratePostgres } from './migrations.js';
import { createPostgresRollups } from './rollups.js';

/** How often each instance re-reads the newest run of every probe, whichever instance ran it. */
const LATEST_REFRESH_MS = 2_000;
/** How often the store proves the database takes a write, for /health (which only reads the answer). */
const HEARTBEAT_MS = 2_000;
/** A write or heartbeat unanswered this long makes the store unwritable in health(), whatever its deadline. */
const STALL_MS = 2_000;

export interface PostgresStoreOptions extends BatchedStoreOptions {
  /** `postgresql://user:password@host:port/database`; libpq parameters (sslmode, options) as pg reads them. */
  url: string;
  /** Deadline of every call: connecting, waiting for a free connection, each statement. Default 10 s. */
  timeoutMs?: number;
  /** Connections of the pool. Default 4. */
  poolSize?: number;
}

const RUN_COLUMNS = `r.id, p.name AS probe_id, p.kind, r.started_at, r.duration_ms, r.ok, r.code, r.message, r.attempts, r.trigger,
  r.vals, r.details, r.location`;
// One index probe per probe (LATERAL … LIMIT 1), not a scan of every run. Read once, at start.
// (Exported, with FRESH_SQL, for the bench's cluster phase, which times both at 10,000 probes.)
export const LATEST_SQL = `SELECT r.*, p.name AS probe_id, p.kind FROM probes p
  CROSS JOIN LATERAL (SELECT * FROM runs WHERE probe = p.id ORDER BY started_at DESC, id DESC LIMIT 1) r`;
// Deleted per statement: a short lock and a short transaction, whatever the backlog.
const PRUNE_CHUNK = 5_000;
/**
 * The runs after a feed cursor ($1 writers, $2 the highest id read of each; a writer not named from
 * its first run), at most $3 per writer, each writer's in its own id order, leaving out writer $4.
 * Only writers whose last_id moved past their cursor are read, each from its cursor on (never from
 * 0: from first_after), so a writer gone for good costs nothing and one that appears costs its own
 * runs: the planner may walk the primary key from there rather than runs_writer_id.
 */
const FEED_ROWS = `SELECT r.* FROM run_writers w
  LEFT JOIN unnest($1::int[], $2::bigint[]) AS c (writer, after) ON c.writer = w.id
  CROSS JOIN LATERAL (SELECT * FROM runs WHERE runs.writer = w.id AND runs.id > coalesce(c.after, w.first_after)
                       ORDER BY runs.id LIMIT $3) r
  WHERE w.id <> $4 AND w.last_id > coalesce(c.after, w.first_after)`;
/**
 * The latest refresh in one statement: of the runs other writers committed since the last refresh,
 * the newest of each probe, and how far it read each writer (its next cursor). JSON, so both come
 * back as one row.
 */
export const FRESH_SQL = `WITH r AS MATERIALIZED (${FEED_ROWS})
  SELECT (SELECT coalesce(json_agg(n), '[]') FROM (SELECT DISTINCT ON (r.probe) ${RUN_COLUMNS}
            FROM r JOIN probes p ON p.id = r.probe ORDER BY r.probe, r.started_at DESC, r.id DESC) n) AS newest,
         (SELECT coalesce(json_agg(json_build_array(writer, last)), '[]') FROM (SELECT writer, max(id) AS last FROM r GROUP BY writer) m) AS seen`;
/** Runs a refresh reads of one writer at most; the rest come with the next. */
const FRESH_PER_WRITER = 50_000;
/** Cursors as the two arrays the feed statements take. */
const cursorParams = (c: FeedCursor) => [[...c.keys()], [...c.values()]];

/**
 * The store on PostgreSQL, for several vigil instances sharing one database. Same interface, same
 * answers as SQLite (test/store/contract.test.ts runs both).
 *
 * Asynchronous end to end over one pg.Pool (./db.ts): a frozen or unreachable PostgreSQL holds up
 * only the promises that need it, each until its deadline, never the event loop. The factory is
 * synchronous; migrations and loading what is kept in memory (probe keys, the newest run of each
 * probe, probe state, the last hour rolled up) happen in ready(), and every call waits for the
 * migrations first. Runs and probe state are written behind, in batches, one write at a time;
 * health() reports what those writes and a heartbeat write saw, without a query of its own.
 */
export function createPostgresStore(opts: PostgresStoreOptions): Store & { readonly rollups: Rollups } {
  const { clock, logger } = opts;
  const log = logger.child({ module: 'store', backend: 'postgres' });
  const pool = createPgDb({
    url: opts.url,
    logger: log,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.poolSize !== undefined ? { poolSize: opts.poolSize } : {}),
  });
  const batchRows = opts.batchRows ?? 5000;
  const batchIntervalMs = opts.batchIntervalMs ?? 200;
  const maxQueued = opts.maxQueued ?? 200_000;

  const probeKeys = new Map<string, number>();
  const latest = new Map<string, StoredRun | RunRecord>();
  const keepNewer = (row: RunRow) => {
    const run = runOf(row);
    const cur = latest.get(run.probeId);
    if (cur === undefined || cur.startedAt < run.startedAt) latest.set(run.probeId, run);
  };
  // Kept in memory as SQLite does: each instance reads its own writes without a round trip per run.
  const states = new Map<string, unknown>();

  /** This store's writer (FeedCursor): registered once it starts, one per start. */
  let writer = -1;
  /** How far the latest refresh has read every other writer's runs. */
  let freshCursor: FeedCursor = new Map();

  const migrated = migratePostgres(pool, clock, log);
  /** Every call but the start's own waits for the schema. */
  const db: PgDb = {
    query: (sql, params) => migrated.then(() => pool.query(sql, params)),
    queryArrays: (sql, params) => migrated.then(() => pool.queryArrays(sql, params)),
    run: (sql, params) => migrated.then(() => pool.run(sql, params)),
    withTransaction: (fn) => migrated.then(() => pool.withTransaction(fn)),
    withClient: (fn) => migrated.then(() => pool.withClient(fn)),
    close: () => pool.close(),
  };
  const rollups = createPostgresRollups(db, clock, log.child({ part: 'rollups' }), opts.rollups);
  const loaded = (async () => {
    await migrated;
    for (const row of await pool.query<{ id: number; name: string }>('SELECT id, name FROM probes')) probeKeys.set(row.name, row.id);
    // A writer of its own each start: a batch of an earlier run of this instance may still commit
    // (a lost connection), which must not land behind a cursor on this writer's runs.
    // Every id it draws is above the sequence's value now (a sequence never goes back).
    writer = (
      await pool.query<{ id: number }>(
        `INSERT INTO run_writers (started_at, first_after, last_id)
         SELECT $1, v, v FROM coalesce(pg_sequence_last_value('runs_id_seq'), 0) AS v RETURNING id`,
        [clock.now()],
      )
    )[0]!.id;
    // Taken before the full read: a run committed in between is read twice, harmlessly, never missed.
    freshCursor = await feedEnd(pool);
    for (const row of await pool.query<RunRow>(LATEST_SQL)) keepNewer(row);
    // A value set since the store was made is newer than the stored one.
    for (const row of await pool.query<{ probe_id: string; value: string }>('SELECT probe_id, value FROM probe_state')) {
      if (!states.has(row.probe_id)) states.set(row.probe_id, JSON.parse(row.value));
    }
    await rollups.load();
  })();
  // Observed by ready() and by every call; unobserved here, a failed start would crash the process.
  loaded.catch((err) => log.error({ err }, 'PostgreSQL store failed to start'));

  let queue: RunRecord[] = [];
  let timer: TimerHandle | undefined;
  let flushSoon = false;
  let lastError: string | undefined;
  let closed = false;
  /** Whether the queue is at its bound (logged once per streak, not once per dropped run). */
  let dropping = false;
  const stats: StoreStats = { written: 0, writeErrors: 0, dropped: 0 };

  // Other instances (other locations) write runs too: every instance's API and status page show the
  // newest run of each probe wherever it ran, and reads merge rollups up to the hour any of them rolled.
  let refreshTimer: TimerHandle | undefined;
  // One statement, reading only what other writers committed since the last refresh (not one index
  // probe per probe, as the full read at start does).
  const refreshLatest = () => {
    // After the start's full read, which sets this writer and the cursor.
    loaded
      .then(() =>
        db.query<{ newest: RunRow[]; seen: Array<[number, number]> }>(FRESH_SQL, [...cursorParams(freshCursor), FRESH_PER_WRITER, writer]),
      )
      .then(([row]) => {
        for (const run of row!.newest) keepNewer(run);
        if (row!.seen.length > 0) freshCursor = new Map([...freshCursor, ...row!.seen]);
        return rollups.load();
      })
      .catch((err) => log.warn({ err }, 'refreshing the latest runs failed'))
      .finally(() => {
        if (!closed) refreshTimer = clock.setTimeout(refreshLatest, LATEST_REFRESH_MS);
      });
  };
  refreshTimer = clock.setTimeout(refreshLatest, LATEST_REFRESH_MS);

  /** Inserts one batch in its transaction; returns the probe keys it made, valid once it commits. */
  async function insertBatch(tx: Queryable, rows: RunRecord[]): Promise<Map<string, number>> {
    const made = new Map<string, number>();
    // Sorted, so two instances adding the same new probes lock their rows in the same order.
    const missing = [...new Map(rows.filter((r) => !probeKeys.has(r.probeId)).map((r) => [r.probeId, r.kind]))].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    if (missing.length > 0) {
      const res = await tx.query<{ id: number; name: string }>(
        `INSERT INTO probes (name, kind) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind RETURNING id, name`,
        [missing.map(([n]) => n), missing.map(([, k]) => k)],
      );
      for (const r of res) made.set(r.name, r.id);
    }
    const key = (r: RunRecord) => probeKeys.get(r.probeId) ?? made.get(r.probeId)!;
    // One statement per batch: the columns go as arrays and unnest turns them back into rows, in
    // order. It moves this writer's last_id too, in the same transaction (its row only: writers
    // never wait on each other); see runsFeed for why no lock orders them.
    await tx.run(
      `WITH ins AS (
         INSERT INTO runs (probe, started_at, duration_ms, ok, code, message, attempts, trigger, vals, details, location, writer)
         SELECT *, $12::int FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::bool[], $5::text[], $6::text[], $7::int[],
                                        $8::text[], $9::text[], $10::text[], $11::text[])
         RETURNING id)
       UPDATE run_writers SET last_id = (SELECT max(id) FROM ins) WHERE id = $12`,
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
        writer,
      ],
    );
    return made;
  }

  /**
   * A batch whose connection was lost after it began (no answer, or a reset): PostgreSQL may still
   * commit it (a COMMIT already on the wire is read once a frozen server resumes), so it is neither
   * written again nor counted until txid_status says which. Its rows stay ahead of the queue.
   */
  let unsettled: { xid: number; rows: RunRecord[] } | undefined;
  async function settleUnsettled() {
    if (unsettled === undefined) return;
    const [row] = await pool.query<{ status: string | null }>('SELECT txid_status($1) AS status', [unsettled.xid]);
    if (row?.status === 'in progress')
      throw new Error(`an earlier batch (transaction ${unsettled.xid}) is still open on a lost connection`);
    const { rows } = unsettled;
    unsettled = undefined;
    if (row?.status === 'committed') stats.written += rows.length;
    else queue = requeue(rows, queue, maxQueued, stats);
  }

  /** Probe state set since the last write: written with the next batch, the newest value of each probe. */
  let dirtyStates = new Map<string, string>();
  async function writeStates() {
    if (dirtyStates.size === 0) return;
    const rows = dirtyStates;
    dirtyStates = new Map();
    try {
      await pool.run(
        `INSERT INTO probe_state (probe_id, value, updated_at) SELECT p, v, $3 FROM unnest($1::text[], $2::text[]) AS t (p, v)
         ON CONFLICT (probe_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [[...rows.keys()], [...rows.values()], clock.now()],
      );
    } catch (err) {
      // Newer values set meanwhile win over the ones that failed.
      for (const [id, text] of rows) if (!dirtyStates.has(id)) dirtyStates.set(id, text);
      throw err;
    }
  }

  /** When the write in flight started (clock ms): health() reports a write that has not answered. */
  let writeSince: number | undefined;
  /** Rows the write in flight took from the queue and has not committed yet: still waiting, for health(). */
  let inFlight = 0;
  async function writeNow() {
    flushSoon = false;
    writeSince = clock.now();
    let rows: RunRecord[] = [];
    let xid: number | undefined;
    try {
      await loaded;
      await settleUnsettled();
      await writeStates();
      rows = queue;
      queue = [];
      inFlight = rows.length;
      while (rows.length > 0) {
        const batch = rows.slice(0, batchRows);
        xid = undefined;
        const made = await pool.withTransaction(async (tx) => {
          xid = (await tx.query<{ xid: number }>('SELECT txid_current() AS xid'))[0]!.xid;
          return insertBatch(tx, batch);
        });
        // Committed batches stay written; only the rest is retried.
        rows = rows.slice(batch.length);
        inFlight = rows.length;
        for (const [name, key] of made) probeKeys.set(name, key);
        stats.written += batch.length;
        // A committed batch proves the database takes writes as well as a heartbeat does.
        heartbeatError = undefined;
      }
      lastError = undefined;
      if (dropping) {
        dropping = false;
        log.warn({ dropped: stats.dropped }, 'run queue below its bound again');
      }
    } catch (err) {
      stats.writeErrors++;
      lastError = messageOf(err);
      if (xid !== undefined && err instanceof PostgresError && isConnectionLost(err) && rows.length > 0) {
        const batch = rows.slice(0, batchRows);
        unsettled = { xid, rows: batch };
        rows = rows.slice(batch.length);
      }
      queue = requeue(rows, queue, maxQueued, stats);
      log.error({ err, queued: queue.length + (unsettled?.rows.length ?? 0) }, 'run write failed; rows kept for retry');
    } finally {
      writeSince = undefined;
      inFlight = 0;
    }
  }

  // One write in flight at a time: a tick while one is under way leaves it alone; the rows it did
  // not take go with the next.
  let writing: Promise<void> | undefined;
  const writeQueued = (): Promise<void> => {
    writing ??= writeNow().finally(() => {
      writing = undefined;
    });
    return writing;
  };

  /** The last heartbeat write's failure, or undefined when it took. */
  let heartbeatError: string | undefined;
  let lastBeat = Number.NEGATIVE_INFINITY;
  let beatSince: number | undefined;
  function beat() {
    const now = clock.now();
    if (beatSince !== undefined || now - lastBeat < HEARTBEAT_MS) return;
    lastBeat = now;
    beatSince = now;
    db.run('INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at', [now])
      .then(
        () => {
          heartbeatError = undefined;
        },
        (err: Error) => {
          heartbeatError = err.message;
        },
      )
      .finally(() => {
        beatSince = undefined;
      });
  }

  function tick() {
    timer = undefined;
    if (writing === undefined) void writeQueued();
    beat();
    if (!closed) timer = clock.setTimeout(tick, batchIntervalMs);
  }
  beat();
  timer = clock.setTimeout(tick, batchIntervalMs);

  /** Waits for the write in flight, then writes what is left. */
  async function writeAll() {
    while (writing !== undefined) await writing;
    await writeQueued();
  }

  return {
    alerts: createPostgresAlertStore(db),
    audit: createPostgresAuditLog(db),
    rollups,
    ready: () => loaded,
    append(run) {
      if (closed) throw new Error('store is closed');
      queue.push(run);
      latest.set(run.probeId, run);
      if (queue.length > maxQueued) {
        const drop = queue.length - maxQueued;
        queue.splice(0, drop);
        stats.dropped += drop;
        if (!dropping) {
          dropping = true;
          log.error({ maxQueued, error: lastError }, 'run queue full while PostgreSQL does not take writes; dropping the oldest runs');
        }
      }
      if (queue.length >= batchRows && !flushSoon && writing === undefined) {
        flushSoon = true;
        setImmediate(() => void writeQueued());
      }
    },
    async flush() {
      await writeAll();
      if (lastError !== undefined) throw new Error(`store write failed: ${lastError}`);
    },
    async runs(q: RunQuery) {
      const limit = Math.min(q.limit ?? 100, 10_000);
      // By name, not by a cached key: another instance may have written this probe's first runs.
      const rows = await db.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN probes p ON p.id = r.probe
          WHERE p.name = $1 AND r.started_at >= $2 AND r.started_at < $3
            AND ($5::int[] IS NULL OR EXISTS (SELECT 1 FROM unnest($5::int[], $6::bigint[]) AS c (writer, upto)
                                               WHERE c.writer = r.writer AND r.id <= c.upto))
          ORDER BY r.started_at DESC, r.id DESC LIMIT $4`,
        [q.probeId, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, limit, ...(q.through ? cursorParams(q.through) : [null, null])],
      );
      return rows.map(runOf);
    },
    async lastSuccess(probeId) {
      const [row] = await db.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN probes p ON p.id = r.probe
          WHERE p.name = $1 AND r.ok ORDER BY r.started_at DESC, r.id DESC LIMIT 1`,
        [probeId],
      );
      return row === undefined ? undefined : runOf(row);
    },
    async runsAfter(afterId, limit) {
      const rows = await db.query<RunRow>(
        `SELECT ${RUN_COLUMNS} FROM runs r JOIN probes p ON p.id = r.probe WHERE r.id > $1 ORDER BY r.id LIMIT $2`,
        [afterId, Math.max(0, Math.min(Math.floor(limit), 10_000))],
      );
      return rows.map(runOf);
    },
    /**
     * Why continuing each writer after its highest id seen misses nothing: ids come from one
     * bigserial, and concurrent transactions commit them out of order (A takes 10, B takes 11, B
     * commits, a reader moves past 11, then A commits 10 behind it), so one cursor over all ids
     * would skip 10. But one writer has one batch in flight at a time (writeQueued, and a batch lost
     * with its connection is settled by txid_status before the next begins), so its next batch
     * draws its ids only after the previous one committed: within a writer, any snapshot sees a
     * prefix of the ids that will ever commit (less rolled-back gaps). A cursor per writer therefore
     * never skips, and no lock orders writers against each other. The page is the lowest `limit`
     * ids over all writers, so of each writer it takes a prefix too. Holds as long as the sequence
     * keeps its default CACHE 1 (a per-session cache hands out ids out of order).
     */
    async runsFeed(cursor, limit) {
      const n = Math.max(0, Math.min(Math.floor(limit), 10_000));
      const rows = await db.query<RunRow & { writer: number }>(
        `SELECT ${RUN_COLUMNS}, r.writer FROM (${FEED_ROWS}) r JOIN probes p ON p.id = r.probe ORDER BY r.id LIMIT $3`,
        [...cursorParams(cursor), n, -1],
      );
      if (rows.length === 0) return { runs: [], cursor };
      const next = new Map(cursor);
      for (const row of rows) next.set(row.writer, row.id);
      return { runs: rows.map(runOf), cursor: next };
    },
    feedEnd: () => feedEnd(db),
    async lease(name, holder, ttlMs, now): Promise<LeaseState> {
      if (!(ttlMs > 0)) throw new RangeError(`a lease needs a positive ttl, got ${ttlMs}`);
      // One statement: the conflicting row is locked and re-checked, so of instances asking at once
      // exactly one takes a free lease. It returns nothing when another holds it: then read who.
      const [row] = await db.query<{ holder: string; expires_at: number }>(
        `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder
         RETURNING holder, expires_at`,
        [name, holder, now + ttlMs, now],
      );
      // Rows are never deleted, so after the upsert there is one to read.
      const r =
        row ??
        (await db.query<{ holder: string; expires_at: number }>('SELECT holder, expires_at FROM leases WHERE name = $1', [name]))[0]!;
      return { held: r.holder === holder && r.expires_at > now, holder: r.holder, expiresAt: r.expires_at };
    },
    async release(name, holder) {
      await db.run('UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2', [name, holder]);
    },
    latest: (probeId) => latest.get(probeId),
    probeState: (probeId) => states.get(probeId),
    setProbeState(probeId, value) {
      const text = JSON.stringify(value ?? null);
      dirtyStates.set(probeId, text);
      states.set(probeId, JSON.parse(text));
    },
    async prune(before, keep = {}) {
      // Per probe along the (probe, started_at) index, in chunks: exact whatever order instances
      // wrote in (ids from one sequence are not in time order across instances). Failed runs stay
      // until failedBefore, and the probe's newest successful run stays (see Store.prune).
      const failedBefore = Math.min(keep.failedBefore ?? before, before);
      let total = 0;
      const probes = await db.query<{ id: number }>('SELECT id FROM probes ORDER BY id');
      for (const { id } of probes) {
        for (;;) {
          const n = await db.run(
            `DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE probe = $1 AND started_at < $2 AND (ok OR started_at < $4)
               AND id IS DISTINCT FROM (SELECT id FROM runs WHERE probe = $1 AND ok ORDER BY started_at DESC, id DESC LIMIT 1)
               ORDER BY started_at LIMIT $3)`,
            [id, before, PRUNE_CHUNK, failedBefore],
          );
          total += n;
          if (n < PRUNE_CHUNK) break;
        }
      }
      if (total > 0) log.info({ deleted: total, before: new Date(before).toISOString() }, 'runs pruned');
      return total;
    },
    health(): StoreHealth {
      const queued = queue.length + inFlight + (unsettled?.rows.length ?? 0);
      const now = clock.now();
      const waitingSince = Math.min(writeSince ?? Number.POSITIVE_INFINITY, beatSince ?? Number.POSITIVE_INFINITY);
      if (now - waitingSince > STALL_MS) {
        return { writable: false, queued, error: `PostgreSQL has not answered for ${((now - waitingSince) / 1000).toFixed(1)} s` };
      }
      const error = lastError ?? heartbeatError;
      if (error === undefined) return { writable: true, queued };
      return { writable: false, queued, error: error.startsWith('PostgreSQL') ? error : `PostgreSQL: ${error}` };
    },
    stats: () => ({ ...stats }),
    async backup() {
      // A file copy of a shared server database is not this store's to make: PostgreSQL is backed up
      // with its own tools (pg_dump, or base backups and WAL archiving), once for every instance.
      throw new Error('the PostgreSQL store does not write file backups; back the database up with pg_dump or WAL archiving');
    },
    async close() {
      if (closed) return;
      // A store that never started has nothing it could write.
      if (
        await loaded.then(
          () => true,
          () => false,
        )
      )
        await writeAll();
      closed = true;
      if (refreshTimer !== undefined) clock.clearTimeout(refreshTimer);
      if (timer !== undefined) clock.clearTimeout(timer);
      const lost = queue.length + (unsettled?.rows.length ?? 0);
      if (lost > 0) log.error({ lost }, 'closing with unwritten runs');
      await pool.close();
    },
  };
}

/** Every writer's highest committed run id (last_id moves in the transaction that writes the runs). */
async function feedEnd(db: Queryable): Promise<FeedCursor> {
  const rows = await db.query<{ id: number; last: number }>('SELECT id, last_id AS last FROM run_writers');
  return new Map(rows.map((r) => [r.id, r.last]));
}
