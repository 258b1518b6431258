import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { migrate } from './migrations.js';
import type { RunQuery, RunRecord, Store, StoredRun, StoreHealth } from './types.js';

export interface SqliteStoreOptions {
  /** File path, or `:memory:`. */
  path: string;
  clock: Clock;
  logger: Logger;
  /** Rows per transaction; reaching it triggers a flush at once. */
  batchRows?: number;
  /** How often queued rows are written when fewer than batchRows wait. */
  batchIntervalMs?: number;
  /** Bound on rows held while the database refuses writes; the oldest are dropped past it. */
  maxQueued?: number;
}

/** Counters the metrics read. */
export interface StoreStats {
  written: number;
  writeErrors: number;
  dropped: number;
}

interface RunRow {
  id: number;
  probe_id: string;
  kind: string;
  started_at: number;
  duration_ms: number;
  ok: number;
  code: string | null;
  message: string | null;
  attempts: number;
  trigger: string;
  vals: string | null;
  details: string | null;
}

const PRUNE_CHUNK = 5_000;

/** The embedded store: one SQLite file in WAL mode, results written in batched transactions. */
export function createSqliteStore(opts: SqliteStoreOptions): Store & { stats(): StoreStats; readonly db: Database.Database } {
  const { clock, logger } = opts;
  const log = logger.child({ module: 'store' });
  if (opts.path !== ':memory:') mkdirSync(path.dirname(path.resolve(opts.path)), { recursive: true });
  const db = new Database(opts.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db, clock, log);

  const batchRows = opts.batchRows ?? 1000;
  const batchIntervalMs = opts.batchIntervalMs ?? 200;
  const maxQueued = opts.maxQueued ?? 200_000;

  const insert = db.prepare(
    `INSERT INTO runs (probe_id, kind, started_at, duration_ms, ok, code, message, attempts, trigger, vals, details)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertBatch = db.transaction((rows: RunRecord[]) => {
    for (const r of rows) {
      insert.run(
        r.probeId,
        r.kind,
        r.startedAt,
        r.durationMs,
        r.ok ? 1 : 0,
        r.code ?? null,
        r.message ?? null,
        r.attempts,
        r.trigger,
        JSON.stringify(r.values),
        r.details === undefined ? null : JSON.stringify(r.details),
      );
    }
  });
  const heartbeat = db.prepare('INSERT INTO heartbeat (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at');
  const upsertState = db.prepare(
    'INSERT INTO probe_state (probe_id, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (probe_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  );
  const pruneChunk = db.prepare(
    `DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE started_at < ? ORDER BY started_at LIMIT ${PRUNE_CHUNK})`,
  );

  const latest = new Map<string, StoredRun | RunRecord>();
  for (const row of db
    .prepare(
      `SELECT r.* FROM runs r JOIN (SELECT probe_id, MAX(started_at) AS m FROM runs GROUP BY probe_id) l
       ON r.probe_id = l.probe_id AND r.started_at = l.m`,
    )
    .all() as RunRow[]) {
    latest.set(row.probe_id, fromRow(row));
  }
  const states = new Map<string, unknown>();
  for (const row of db.prepare('SELECT probe_id, value FROM probe_state').all() as Array<{ probe_id: string; value: string }>) {
    states.set(row.probe_id, JSON.parse(row.value));
  }

  let queue: RunRecord[] = [];
  let timer: TimerHandle | undefined;
  let flushSoon = false;
  let lastError: string | undefined;
  let closed = false;
  const stats: StoreStats = { written: 0, writeErrors: 0, dropped: 0 };

  function writeQueued() {
    flushSoon = false;
    if (queue.length === 0) return;
    const rows = queue;
    queue = [];
    try {
      for (let i = 0; i < rows.length; i += batchRows) insertBatch(rows.slice(i, i + batchRows));
      stats.written += rows.length;
      lastError = undefined;
    } catch (err) {
      // Keep the rows: a full disk or a locked file must not lose results. Retry next interval.
      stats.writeErrors++;
      lastError = (err as Error).message;
      queue = rows.concat(queue);
      if (queue.length > maxQueued) {
        const drop = queue.length - maxQueued;
        queue.splice(0, drop);
        stats.dropped += drop;
      }
      log.error({ err, queued: queue.length }, 'run write failed; rows kept for retry');
    }
  }

  function tick() {
    timer = undefined;
    writeQueued();
    if (!closed) timer = clock.setTimeout(tick, batchIntervalMs);
  }
  timer = clock.setTimeout(tick, batchIntervalMs);

  return {
    db,
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
      const rows = db
        .prepare(
          `SELECT * FROM runs WHERE probe_id = ? AND started_at >= ? AND started_at < ?
           ORDER BY started_at DESC, id DESC LIMIT ?`,
        )
        .all(q.probeId, q.since ?? 0, q.until ?? Number.MAX_SAFE_INTEGER, limit) as RunRow[];
      return rows.map(fromRow);
    },
    latest: (probeId) => latest.get(probeId),
    probeState: (probeId) => states.get(probeId),
    setProbeState(probeId, value) {
      const text = JSON.stringify(value ?? null);
      upsertState.run(probeId, text, clock.now());
      states.set(probeId, JSON.parse(text));
    },
    async prune(before) {
      let total = 0;
      for (;;) {
        const n = pruneChunk.run(before).changes;
        total += n;
        if (n < PRUNE_CHUNK) break;
        // Yield between chunks so a large prune never holds the event loop or the write lock long.
        await new Promise((r) => setImmediate(r));
      }
      if (total > 0) log.info({ deleted: total, before: new Date(before).toISOString() }, 'runs pruned');
      return total;
    },
    health(): StoreHealth {
      try {
        heartbeat.run(clock.now());
        return { writable: lastError === undefined, queued: queue.length, ...(lastError ? { error: lastError } : {}) };
      } catch (err) {
        return { writable: false, queued: queue.length, error: (err as Error).message };
      }
    },
    stats: () => ({ ...stats }),
    async close() {
      if (closed) return;
      writeQueued();
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (queue.length > 0) log.error({ lost: queue.length }, 'closing with unwritten runs');
      db.close();
    },
  };
}

function fromRow(row: RunRow): StoredRun {
  return {
    id: row.id,
    probeId: row.probe_id,
    kind: row.kind,
    startedAt: row.started_at,
    durationMs: row.duration_ms,
    ok: row.ok === 1,
    ...(row.code !== null ? { code: row.code } : {}),
    ...(row.message !== null ? { message: row.message } : {}),
    attempts: row.attempts,
    trigger: row.trigger as StoredRun['trigger'],
    values: row.vals ? JSON.parse(row.vals) : {},
    ...(row.details ? { details: JSON.parse(row.details) } : {}),
  };
}
