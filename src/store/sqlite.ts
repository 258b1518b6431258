import type Database from 'better-sqlite3';
import type { TimerHandle } from '../lib/clock.js';
import { messageOf } from '../lib/errors.js';
import { migrate } from './migrations.js';
import { createRollups } from './rollups.js';
import { type RunRow, runOf } from './rows.js';
import { createSqliteAlertStore } from './sqlite-alerts.js';
import { createSqliteAuditLog } from './sqlite-audit.js';
import { startCheckpointer } from './sqlite-checkpoint.js';
import { isCorruption, openSqlite, quickCheckAside, RESTORE_RUNBOOK } from './sqlite-open.js';
import type { LeaseState, Rollups, RunQuery, RunRecord, Store, StoredRun, StoreHealth, StoreStats } from './types.js';
import { type BatchedStoreOptions, requeue } from './write-queue.js';

export interface SqliteStoreOptions extends BatchedStoreOptions {
  /** File path, or `:memory:`. */
  path: string;
}

// Small enough that one chunk holds the event loop ~3 ms: pages keep flowing while a large prune runs.
const PRUNE_CHUNK = 1_000;
/** The run feed's one writer (FeedCursor): SQLite writes from one process, in commit order. */
const WRITER = 0;
/**
 * How long a statement waits for a lock another process holds. better-sqlite3 waits synchronously,
 * so this is how long the event loop can stand still: short, and a locked file is a failed write
 * that the queue retries, never a frozen monitor.
 */
const BUSY_TIMEOUT_MS = 20;
/** How often the store proves the file takes a write, for /health (which only reads the answer). */
const HEARTBEAT_MS = 2_000;

/** The embedded store: one SQLite file in WAL mode, results written in batched transactions. */
export function createSqliteStore(opts: SqliteStoreOptions): Store & { readonly db: Database.Database; readonly rollups: Rollups } {
  const { clock, logger } = opts;
  const log = logger.child({ module: 'store' });
  const db = openSqlite(opts.path, {
    configure(db) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma('foreign_keys = ON');
      // The (probe, started_at) index is touched at a thousand places a second: its newest page per
      // probe stays in memory up to ~4,000 probes (16 MiB). Past that the hot set outgrows any cache
      // worth holding (a page per probe: 240 MB at 60,000), and a page missed here is a read from the
      // OS's file cache. 64 MiB grew the process by ~27 MB in its first 4 minutes at 60,000 probes;
      // the 2,000-probes-a-second bench stayed at 0.93-0.94x the bare loop's CPU a run with 16.
      db.pragma('cache_size = -16384');
      // Each commit rewrites the index pages it touched; checkpointing every 4 MB (the default) doubles that.
      db.pragma('wal_autocheckpoint = 10000');
    },
    migrate: (db) => migrate(db, clock, log),
  });
  // Checkpoints off the event loop (a file has a WAL to copy back; `:memory:` has none).
  const checkpointer = opts.path === ':memory:' || opts.path === '' ? undefined : startCheckpointer(db, opts.path, log);

  const batchRows = opts.batchRows ?? 5000;
  const batchIntervalMs = opts.batchIntervalMs ?? 200;
  const maxQueued = opts.maxQueued ?? 200_000;

  const insert = db.prepare(
    `INSERT INTO runs (probe, started_at, duration_ms, ok, code, message, attempts, trigger, vals, details, location)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // Probe name → key. Filled at open from every probe's newest run (below), not by a read of its own
  // (60,000 names: 0.05-0.1 s of a restart here). A probe whose runs are all gone is not in it: it has no runs
  // to read, and its next write finds its key again (insertProbe returns the row already there).
  const probeKeys = new Map<string, number>();
  const insertProbe = db.prepare<[string, string], { id: number }>(
    'INSERT INTO probes (name, kind) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind RETURNING id',
  );
  // Keys made inside a batch count only once it commits: a rolled-back batch takes its probe rows with it.
  let newKeys = new Map<string, number>();
  const keyOf = (r: RunRecord) => {
    let key = probeKeys.get(r.probeId) ?? newKeys.get(r.probeId);
    if (key === undefined) {
      const row = insertProbe.get(r.probeId, r.kind);
      if (!row) throw new Error(`INSERT INTO probes … RETURNING gave no row for ${r.probeId}`);
      key = row.id;
      newKeys.set(r.probeId, key);
    }
    return key;
  };
  const insertBatch = db.transaction((rows: RunRecord[]) => {
    for (const r of rows) {
      insert.run(
        keyOf(r),
        r.startedAt,
        r.durationMs,
        r.ok ? 1 : 0,
        r.code ?? null,
        r.message ?? null,
        r.attempts,
        r.trigger,
        JSON.stringify(r.values),
        r.details === undefined ? null : JSON.stringify(r.details),
        r.location ?? '',
      );
    }
  });
  const heartbeat = db.prepare('INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at');
  const upsertState = db.prepare(
    'INSERT INTO probe_state (probe_id, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (probe_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  );
  const writeStateRows = db.transaction((rows: Array<[string, string]>, at: number) => {
    for (const [id, text] of rows) upsertState.run(id, text, at);
  });
  // Ok runs go at `before`, failed ones at the older `failedBefore` (see Store.prune).
  const pruneChunk = db.prepare('DELETE FROM runs WHERE id >= ? AND id < ? AND started_at < ? AND (ok = 1 OR started_at < ?)');
  const pruneOne = db.prepare('DELETE FROM runs WHERE id = ? AND started_at < ? AND (ok = 1 OR started_at < ?)');
  const allProbeIds = db.prepare<[], number>('SELECT id FROM probes').pluck();
  const newestOk = db.prepare<[number], { id: number; started_at: number }>(
    'SELECT id, started_at FROM runs WHERE probe = ? AND ok = 1 ORDER BY started_at DESC, id DESC LIMIT 1',
  );
  const idRange = db.prepare<[], { lo: number | null; hi: number | null }>('SELECT min(id) AS lo, max(id) AS hi FROM runs');
  const startedAtOf = db.prepare<[number], { started_at: number }>('SELECT started_at FROM runs WHERE id >= ? ORDER BY id LIMIT 1');
  /**
   * The first id whose run started at or after `before`. Runs are appended in about time order (a
   * batch holds runs that ended within a few hundred ms), so a binary search over ids finds it with
   * ~30 point reads; `started_at < before` in the delete keeps a stray late row safe.
   */
  const firstIdAtOrAfter = (before: number, lo: number, hi: number) => {
    let a = lo;
    let b = hi + 1;
    while (a < b) {
      const mid = Math.floor((a + b) / 2);
      const row = startedAtOf.get(mid);
      if (row === undefined || row.started_at >= before) b = mid;
      else a = mid + 1;
    }
    return a;
  };

  /** Where the last prune's sweeps ended (ids), and the runs it kept as their probe's newest success. */
  const sweptTo = { failed: 0, ok: 0 };
  let keptRuns = new Set<number>();
  const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

  const latest = new Map<string, StoredRun | RunRecord>();
  // Every probe's newest run in one statement (60,000 probes: ~0.35 s; one statement a probe took ~0.65 s of a restart).
  const newestOfEach = db.prepare<[], RunRow & { probe: number }>(
    `SELECT r.*, p.name AS probe_id, p.kind FROM probes p
     JOIN runs r ON r.id = (SELECT id FROM runs WHERE probe = p.id ORDER BY started_at DESC, id DESC LIMIT 1)`,
  );
  for (const row of newestOfEach.iterate()) {
    latest.set(row.probe_id, runOf(row));
    probeKeys.set(row.probe_id, row.probe);
  }
  const selectRuns = db.prepare<[number, number, number, number, number], RunRow>(
    `SELECT r.*, p.name AS probe_id, p.kind FROM runs r JOIN probes p ON p.id = r.probe
     WHERE r.probe = ? AND r.started_at >= ? AND r.started_at < ? AND r.id <= ?
     ORDER BY r.started_at DESC, r.id DESC LIMIT ?`,
  );
  const lastOk = db.prepare<[number], RunRow>(
    `SELECT r.*, p.name AS probe_id, p.kind FROM runs r JOIN probes p ON p.id = r.probe
     WHERE r.probe = ? AND r.ok = 1 ORDER BY r.started_at DESC, r.id DESC LIMIT 1`,
  );
  // Writes are serialised by the database lock and ids are taken inside them, so ids are in commit
  // order. (Without AUTOINCREMENT an id is max + 1: it can come back only if the newest runs were
  // pruned, i.e. after no run was written for a whole retention period.)
  const runsAfter = db.prepare<[number, number], RunRow>(
    `SELECT r.*, p.name AS probe_id, p.kind FROM runs r JOIN probes p ON p.id = r.probe WHERE r.id > ? ORDER BY r.id LIMIT ?`,
  );
  // Whole and within 0..10,000: SQLite would read a negative LIMIT as none.
  const runsAfterId = (afterId: number, limit: number) =>
    runsAfter.all(afterId, Math.max(0, Math.min(Math.floor(limit), 10_000))).map(runOf);
  const maxRunId = db.prepare<[], { id: number }>('SELECT coalesce(max(id), 0) AS id FROM runs');
  // One statement: take it when free or expired, renew it for its holder, else change nothing.
  type LeaseRow = { holder: string; expires_at: number };
  const takeLease = db.prepare<[string, string, number, number], LeaseRow>(
    `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
     RETURNING holder, expires_at`,
  );
  const readLease = db.prepare<[string], LeaseRow>('SELECT holder, expires_at FROM leases WHERE name = ?');
  const releaseLease = db.prepare('UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?');
  const states = new Map<string, unknown>();
  for (const row of db.prepare<[], { probe_id: string; value: string }>('SELECT probe_id, value FROM probe_state').all()) {
    states.set(row.probe_id, JSON.parse(row.value));
  }

  let queue: RunRecord[] = [];
  let timer: TimerHandle | undefined;
  let flushSoon = false;
  let lastError: string | undefined;
  let closed = false;
  const stats: StoreStats = { written: 0, writeErrors: 0, dropped: 0 };
  /** Set once a failed write turns out to be a damaged file: no retry fixes that, a restore does. */
  let damaged: string | undefined;
  /** A quick_check of the running file, on its worker thread (it reads the whole file): one at a time. */
  let checking = false;
  const markDamaged = (problem: string) => {
    if (damaged !== undefined) return;
    damaged = problem;
    log.error({ file: opts.path, problem, runbook: RESTORE_RUNBOOK }, 'the database is damaged');
  };
  /**
   * After a write failed: is the file itself damaged? SQLite says so itself when the write hit a bad
   * page; otherwise quick_check runs once at the first failure of a streak (not at every retry of a
   * full disk), off the event loop: on a file of some GB it reads for seconds, and probes, /health
   * and the API go on meanwhile. Its answer turns health() to damaged when it comes.
   */
  const checkAfterFailure = (err: unknown, firstOfStreak: boolean) => {
    if (damaged !== undefined) return;
    if (isCorruption(err)) markDamaged(messageOf(err));
    else if (firstOfStreak && !checking && opts.path !== ':memory:' && opts.path !== '') {
      checking = true;
      void quickCheckAside(opts.path).then((problems) => {
        checking = false;
        if (problems !== undefined && !closed) markDamaged(problems);
      });
    }
  };

  /** Probe state set since the last write: written with the next batch, the newest value of each probe. */
  let dirtyStates = new Map<string, string>();
  function writeStates() {
    if (dirtyStates.size === 0) return;
    const rows = dirtyStates;
    dirtyStates = new Map();
    try {
      writeStateRows([...rows], clock.now());
    } catch (err) {
      // Newer values set meanwhile win over the ones that failed.
      for (const [id, text] of rows) if (!dirtyStates.has(id)) dirtyStates.set(id, text);
      lastError = messageOf(err);
      log.error({ err, states: rows.size }, 'probe state write failed; kept for retry');
    }
  }

  function writeQueued() {
    flushSoon = false;
    writeStates();
    if (queue.length === 0) return;
    const rows = queue;
    queue = [];
    // Each batch is its own transaction: count what committed, so a retry writes only the rest.
    let committed = 0;
    try {
      for (let i = 0; i < rows.length; i += batchRows) {
        newKeys = new Map();
        const batch = rows.slice(i, i + batchRows);
        insertBatch(batch);
        for (const [name, key] of newKeys) probeKeys.set(name, key);
        committed += batch.length;
        stats.written += batch.length;
        // A committed batch proves the file takes writes as well as a heartbeat does.
        heartbeatError = undefined;
      }
      lastError = undefined;
    } catch (err) {
      // A full disk or a locked file must not lose results: the rest waits for the next interval.
      stats.writeErrors++;
      checkAfterFailure(err, lastError === undefined);
      lastError = messageOf(err);
      queue = requeue(rows.slice(committed), queue, maxQueued, stats);
      log.error({ err, queued: queue.length }, 'run write failed; rows kept for retry');
    }
  }

  /** The last heartbeat write's failure, or undefined when it took. */
  let heartbeatError: string | undefined;
  let lastBeat = Number.NEGATIVE_INFINITY;
  function beat() {
    const now = clock.now();
    if (now - lastBeat < HEARTBEAT_MS) return;
    lastBeat = now;
    try {
      heartbeat.run(now);
      heartbeatError = undefined;
    } catch (err) {
      checkAfterFailure(err, false);
      heartbeatError = messageOf(err);
    }
  }

  function tick() {
    timer = undefined;
    writeQueued();
    beat();
    if (!closed) timer = clock.setTimeout(tick, batchIntervalMs);
  }
  beat();
  timer = clock.setTimeout(tick, batchIntervalMs);

  return {
    db,
    alerts: createSqliteAlertStore(db),
    audit: createSqliteAuditLog(db),
    rollups: createRollups(db, clock, log.child({ part: 'rollups' }), opts.rollups),
    append(run) {
      if (closed) throw new Error('store is closed');
      queue.push(run);
      latest.set(run.probeId, run);
      if (queue.length >= batchRows && !flushSoon) {
        flushSoon = true;
        setImmediate(writeQueued);
      }
    },
    async flush() {
      writeQueued();
      if (lastError !== undefined) throw new Error(`store write failed: ${lastError}`);
    },
    async runs(q: RunQuery) {
      const limit = Math.min(q.limit ?? 100, 10_000);
      const key = probeKeys.get(q.probeId);
      if (key === undefined) return [];
      // One writer: a cursor covers the ids up to its one position.
      const through = q.through === undefined ? Number.MAX_SAFE_INTEGER : (q.through.get(WRITER) ?? 0);
      const rows = selectRuns.all(key, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, through, limit);
      return rows.map(runOf);
    },
    async lastSuccess(probeId) {
      const key = probeKeys.get(probeId);
      const row = key === undefined ? undefined : lastOk.get(key);
      return row === undefined ? undefined : runOf(row);
    },
    runsAfter: async (afterId, limit) => runsAfterId(afterId, limit),
    async runsFeed(cursor, limit) {
      const runs = runsAfterId(cursor.get(WRITER) ?? 0, limit);
      const last = runs.at(-1);
      return { runs, cursor: last === undefined ? cursor : new Map([[WRITER, last.id]]) };
    },
    async feedEnd() {
      // coalesce(max(id), 0): one row even over an empty table.
      return new Map([[WRITER, maxRunId.get()?.id ?? 0]]);
    },
    ready: async () => {},
    async lease(name, holder, ttlMs, now): Promise<LeaseState> {
      if (!(ttlMs > 0)) throw new RangeError(`a lease needs a positive ttl, got ${ttlMs}`);
      // Not taken means another holder has it, so its row is there to read.
      const row = takeLease.get(name, holder, now + ttlMs, now) ?? readLease.get(name);
      if (!row) throw new Error(`lease ${name}: neither taken nor held`);
      return { held: row.holder === holder && row.expires_at > now, holder: row.holder, expiresAt: row.expires_at };
    },
    async release(name, holder) {
      releaseLease.run(name, holder);
    },
    latest: (probeId) => latest.get(probeId),
    probeState: (probeId) => states.get(probeId),
    setProbeState(probeId, value) {
      const text = JSON.stringify(value ?? null);
      dirtyStates.set(probeId, text);
      states.set(probeId, JSON.parse(text));
    },
    async prune(before, keep = {}) {
      const failedBefore = Math.min(keep.failedBefore ?? before, before);
      const { lo, hi } = idRange.get() ?? { lo: null, hi: null };
      if (lo === null || hi === null) return 0;
      // Ids come back (max + 1) only once every run was pruned: then sweep from the start again.
      if (hi < sweptTo.ok) sweptTo.ok = 0;
      if (hi < sweptTo.failed) sweptTo.failed = 0;
      // Each probe's newest successful run stays (what the report's "last success" reads).
      const kept = new Set<number>();
      let n = 0;
      // From the table, not probeKeys: a probe has rows there however its runs were written.
      for (const key of allProbeIds.all()) {
        const row = newestOk.get(key);
        if (row !== undefined && row.started_at < before) kept.add(row.id);
        if (++n % 200 === 0) await yieldLoop();
      }
      let total = 0;
      // A run kept last time that is no longer its probe's newest success goes like any other.
      for (const id of keptRuns) if (!kept.has(id)) total += pruneOne.run(id, before, failedBefore).changes;
      keptRuns = kept;
      const skip = [...kept].sort((a, b) => a - b);
      /** Deletes in [from, to) a chunk at a time around the kept runs, yielding between chunks. */
      const sweep = async (from: number, to: number) => {
        for (let a = from; a < to; a += PRUNE_CHUNK) {
          const b = Math.min(a + PRUNE_CHUNK, to);
          let x = a;
          for (const id of skip) {
            if (id < x || id >= b) continue;
            if (x < id) total += pruneChunk.run(x, id, before, failedBefore).changes;
            x = id + 1;
          }
          if (x < b) total += pruneChunk.run(x, b, before, failedBefore).changes;
          // Yield between chunks so a large prune never holds the event loop or the write lock long.
          await yieldLoop();
        }
      };
      // Everything before failedBefore, then ok runs up to before. Each sweep starts where the last
      // one ended: below it only kept runs are left, and failed runs kept 30 days would otherwise
      // make every hourly round walk a month of ids.
      const failedEnd = firstIdAtOrAfter(failedBefore, lo, hi);
      await sweep(Math.max(lo, sweptTo.failed), failedEnd);
      sweptTo.failed = Math.max(sweptTo.failed, failedEnd);
      const okEnd = firstIdAtOrAfter(before, lo, hi);
      await sweep(Math.max(lo, sweptTo.ok), okEnd);
      sweptTo.ok = Math.max(sweptTo.ok, okEnd);
      if (total > 0)
        log.info(
          { deleted: total, before: new Date(before).toISOString(), failedBefore: new Date(failedBefore).toISOString() },
          'runs pruned',
        );
      return total;
    },
    health(): StoreHealth {
      if (damaged !== undefined)
        return { writable: false, queued: queue.length, error: `SQLite: the database is damaged (${damaged}): follow ${RESTORE_RUNBOOK}` };
      const error = lastError ?? heartbeatError;
      return { writable: error === undefined, queued: queue.length, ...(error !== undefined ? { error: `SQLite: ${error}` } : {}) };
    },
    stats: () => ({ ...stats }),
    async backup(file) {
      if (closed) throw new Error('store is closed');
      // 256 pages a step, then back to the event loop: a 100 MB database goes in ~100 short steps.
      await db.backup(file, { progress: () => 256 });
    },
    async close() {
      if (closed) return;
      writeQueued();
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (queue.length > 0) log.error({ lost: queue.length }, 'closing with unwritten runs');
      // Its connection first: the last one to close checkpoints the WAL into the file and removes it.
      await checkpointer?.close();
      db.close();
    },
  };
}
