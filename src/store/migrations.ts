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
  {
    version: 2,
    name: 'incidents, outbox, silences',
    sql: `
      CREATE TABLE incidents (
        id               INTEGER PRIMARY KEY,
        probe_id         TEXT    NOT NULL,
        rule             TEXT    NOT NULL,
        kind             TEXT    NOT NULL,
        severity         TEXT    NOT NULL,
        state            TEXT    NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
        summary          TEXT    NOT NULL,
        labels           TEXT    NOT NULL DEFAULT '{}',
        channels         TEXT    NOT NULL DEFAULT '[]',
        opened_at        INTEGER NOT NULL,
        acked_at         INTEGER,
        acked_by         TEXT,
        resolved_at      INTEGER,
        resolved_by      TEXT,
        last_error       TEXT,
        flapping         INTEGER NOT NULL DEFAULT 0,
        notified         INTEGER NOT NULL DEFAULT 0,
        last_reminder_at INTEGER
      );
      -- At most one unresolved incident per (probe, rule): the database says so, not luck.
      CREATE UNIQUE INDEX incidents_one_unresolved ON incidents (probe_id, rule) WHERE state <> 'resolved';
      CREATE INDEX incidents_opened ON incidents (opened_at);
      CREATE TABLE incident_events (
        id          INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents (id),
        at          INTEGER NOT NULL,
        type        TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        detail      TEXT
      );
      CREATE INDEX incident_events_incident ON incident_events (incident_id, id);
      -- Written in the same transaction as the incident change that causes it.
      CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        incident_id     INTEGER REFERENCES incidents (id),
        channel         TEXT    NOT NULL,
        -- A person paged through the channel (escalation), or NULL for the channel's own target.
        recipient       TEXT,
        action          TEXT    NOT NULL,
        dedup_key       TEXT    NOT NULL,
        state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'muted')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        delivered_at    INTEGER,
        last_error      TEXT,
        muted_reason    TEXT,
        ref             TEXT,
        payload         TEXT    NOT NULL
      );
      CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE state = 'pending';
      CREATE INDEX outbox_incident ON outbox (incident_id, channel, recipient, id);
      -- An incident's escalation: the policy copied when it opened, and where it stands.
      CREATE TABLE escalations (
        incident_id INTEGER PRIMARY KEY REFERENCES incidents (id),
        policy      TEXT    NOT NULL,
        pass        INTEGER NOT NULL,
        step        INTEGER NOT NULL,
        next_due_at INTEGER,
        reached     INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX escalations_due ON escalations (next_due_at) WHERE next_due_at IS NOT NULL;
      CREATE TABLE oncall_overrides (
        id         INTEGER PRIMARY KEY,
        schedule   TEXT    NOT NULL,
        person     TEXT    NOT NULL,
        starts_at  INTEGER NOT NULL,
        ends_at    INTEGER NOT NULL,
        author     TEXT    NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX oncall_overrides_schedule ON oncall_overrides (schedule, ends_at);
      CREATE TABLE silences (
        id         INTEGER PRIMARY KEY,
        probes     TEXT    NOT NULL,
        labels     TEXT    NOT NULL,
        starts_at  INTEGER NOT NULL,
        ends_at    INTEGER NOT NULL,
        author     TEXT    NOT NULL,
        comment    TEXT    NOT NULL,
        created_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'rollups',
    sql: `
      -- Hourly and daily aggregates per probe, kept far longer than raw runs (400 days by default).
      -- WITHOUT ROWID: the primary key is the only access path, so the row lives in it once.
      CREATE TABLE rollups (
        probe    INTEGER NOT NULL REFERENCES probes (id),
        period   TEXT    NOT NULL CHECK (period IN ('hour', 'day')),
        start    INTEGER NOT NULL,
        runs     INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        duration TEXT    NOT NULL, -- quantile sketch JSON (src/store/sketch.ts), 1 % relative error
        vals     TEXT    NOT NULL, -- {name: {min, max, last, sum, count}}
        codes    TEXT    NOT NULL, -- {code: count} of failed runs: the failure reasons
        PRIMARY KEY (probe, period, start)
      ) WITHOUT ROWID;
      -- One row: the start of the last hour rolled up, so a restart resumes where it stopped.
      CREATE TABLE rollup_state (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        last_hour INTEGER NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'report indexes',
    sql: `
      -- The report reads a window's notifications (delivery latency, pages per person) by time.
      CREATE INDEX outbox_created ON outbox (created_at);
    `,
  },
  {
    version: 5,
    name: 'audit log',
    sql: `
      -- Every write through the API: who, what, when, the request, the outcome. Kept by its own retention.
      CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        at         INTEGER NOT NULL,
        actor      TEXT    NOT NULL, -- a token name, a person from a signed link or Slack, or "anonymous"
        action     TEXT    NOT NULL, -- "POST /api/v1/incidents/:id/ack"
        target     TEXT,             -- the route's parameters, e.g. {"id":"7"}
        request_id TEXT,
        result     TEXT    NOT NULL CHECK (result IN ('success', 'failure')),
        status     INTEGER NOT NULL,
        detail     TEXT              -- why it failed
      );
      CREATE INDEX audit_at ON audit (at);
    `,
  },
  {
    version: 6,
    name: 'run location',
    sql: `
      -- The location of the instance that ran it; '' for an instance without one (and runs from before).
      ALTER TABLE runs ADD COLUMN location TEXT NOT NULL DEFAULT '';
    `,
  },
  {
    version: 7,
    name: 'leases',
    sql: `
      -- Named leases (the alerting leader among instances): who holds each and until when (epoch ms,
      -- from the holder's clock). A released lease keeps its row with expires_at 0.
      CREATE TABLE leases (
        name       TEXT    PRIMARY KEY,
        holder     TEXT    NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 8,
    name: 'held notifications',
    sql: `
      -- A page whose channel is not configured when it is due waits (held_at: since when) instead of
      -- being dead-lettered; released_at: when its channel came back, where its maximum age restarts.
      ALTER TABLE outbox ADD COLUMN held_at INTEGER;
      ALTER TABLE outbox ADD COLUMN released_at INTEGER;
      CREATE INDEX outbox_held ON outbox (channel) WHERE held_at IS NOT NULL;
    `,
  },
];

/** Applies the migrations this database has not seen, each in its own transaction, and records them. */
export function migrate(db: Database.Database, clock: Clock, log: Logger): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  const done = new Set(db.prepare<[], number>('SELECT version FROM schema_migrations').pluck().all());
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
