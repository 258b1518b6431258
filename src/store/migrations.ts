import type Database from 'better-sqlite3';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

/** Ordered, append-only: a released migration is never edited, only followed by a new one. */
const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'runs',
    sql: `
      -- Probe ids are stored once; runs refer to them by a small integer. That keeps rows and the
      -- index small: one index on (probe, started_at) costs a third of what a text one does.
      CREATE TABLE probes (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL
      );
      CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        probe       INTEGER NOT NULL REFERENCES probes (id),
        started_at  INTEGER NOT NULL,
        duration_ms REAL    NOT NULL,
        ok          INTEGER NOT NULL,
        code        TEXT,
        message     TEXT,
        attempts    INTEGER NOT NULL DEFAULT 1,
        trigger     TEXT    NOT NULL,
        vals        TEXT,
        details     TEXT
      );
      -- "runs of probe X between T1 and T2". Pruning by age walks the rowid instead (runs are
      -- appended in time order), so no second index slows every insert.
      CREATE INDEX runs_probe_time ON runs (probe, started_at);
      CREATE TABLE probe_state (
        probe_id   TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE heartbeat (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
    `,
  },
];

/** Applies the migrations this database has not seen, each in its own transaction, and records them. */
export function migrate(db: Database.Database, clock: Clock, log: Logger): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const done = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version));
  const newest = Math.max(0, ...done);
  const known = Math.max(...MIGRATIONS.map((m) => m.version));
  if (newest > known) {
    throw new Error(
      `database schema version ${newest} is newer than this vigil knows (${known}); upgrade vigil or restore a matching backup`,
    );
  }
  const applied: number[] = [];
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, clock.now());
    })();
    applied.push(m.version);
    log.info({ version: m.version, name: m.name }, 'migration applied');
  }
  return applied;
}
