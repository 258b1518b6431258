import type { RunArtifacts } from '../lib/artifacts.js';
import type { RunRecord } from '../probers/index.js';

// A run is the probers' output (through the scheduler's runner): its type lives with them.
export type { RunRecord, Trigger } from '../probers/index.js';

/** A run as stored: with its id. */
export interface StoredRun extends RunRecord {
  id: number;
}

/** Runs of one probe in a time window, newest first. */
export interface RunQuery {
  probeId: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  limit?: number;
  /** Only runs a feed starting at this cursor would not deliver: what the leader seeds its history from. */
  through?: FeedCursor;
}

/**
 * Where a reader of the run feed stands: per writer (a store writing runs, one per instance start;
 * SQLite has one), the highest run id it has read of that writer. A writer it does not name is read
 * from its first run. Within one writer ids become visible in ascending order (its batches commit
 * one at a time), so continuing each writer after its highest id seen misses nothing, and writers
 * never wait on each other.
 */
export type FeedCursor = ReadonlyMap<number, number>;

/** One page of the run feed and where the reader stands after it. */
export interface FeedPage {
  runs: StoredRun[];
  cursor: FeedCursor;
}

/**
 * A named lease as `lease()` leaves it: `held` says whether the caller holds it now; `holder` and
 * `expiresAt` (epoch ms, exclusive) are the current holder's. A lease is free from `expiresAt` on.
 */
export interface LeaseState {
  held: boolean;
  holder: string;
  expiresAt: number;
}

/** What `/health` needs to know of the store: kept from the store's own events, never a query. */
export interface StoreHealth {
  writable: boolean;
  /** Results waiting for the next batch. */
  queued: number;
  /** Says what is wrong, naming the backend ("PostgreSQL has not answered for 3.2 s"). */
  error?: string;
}

/** Counters of the batched run writes, the same for every backend. */
export interface StoreStats {
  written: number;
  writeErrors: number;
  /** Results dropped, oldest first, because the queue was at its bound while the database refused writes. */
  dropped: number;
}

/**
 * The store's public surface. Every backend (SQLite, PostgreSQL) implements it and passes the same
 * contract tests; callers never see SQL.
 *
 * Asynchronous end to end: nothing a caller does waits on the database synchronously, so a database
 * that hangs holds up only the promises that need it, never timers, probes or HTTP. What the probe
 * path and /health read synchronously (`latest`, `probeState`, `health`, `stats`) comes from memory.
 */
export interface Store {
  /** Resolves once the backend is usable (migrated, its in-memory state loaded); rejects with why not. */
  ready(): Promise<void>;
  /**
   * Queues a run for the next batched write. Never blocks and never throws on the probe path; past
   * the queue's bound the oldest queued run is dropped (and counted in `stats().dropped`).
   */
  append(run: RunRecord): void;
  /** Writes everything queued now. */
  flush(): Promise<void>;
  runs(query: RunQuery): Promise<StoredRun[]>;
  /** The newest successful run of a probe still kept raw (restore drills and load runs in the report). */
  lastSuccess(probeId: string): Promise<StoredRun | undefined>;
  /** The newest run of each probe (queued ones included), for state after a restart. */
  latest(probeId: string): StoredRun | RunRecord | undefined;
  /** Reads per-probe state kept across runs (see ProbeContext.state), from memory. */
  probeState(probeId: string): unknown;
  /** Sets it in memory at once; written to the database with the next batch. */
  setProbeState(probeId: string, value: unknown): void;
  /**
   * Deletes raw runs that started before `before` (epoch ms), in bounded chunks; returns how many.
   * Failed runs stay until `keep.failedBefore` (default `before`; never later than it): they are
   * few and what a person reads back. Each probe's newest successful run stays whatever its age:
   * the report's "last success" of a weekly drill or load test reads it.
   */
  prune(before: number, keep?: { failedBefore?: number }): Promise<number>;
  /**
   * Takes the lease `name` for `holder` until `now + ttlMs` when it is free or expired, renews it
   * when `holder` holds it, and otherwise reports who does; one atomic statement, so of instances
   * asking at once exactly one holds it. Times come from the caller, never from the database clock:
   * instances sharing a database need clocks within a small fraction of `ttlMs` of each other (NTP).
   */
  lease(name: string, holder: string, ttlMs: number, now: number): Promise<LeaseState>;
  /** Gives the lease up at once if `holder` holds it (another holder's lease is left alone). */
  release(name: string, holder: string): Promise<void>;
  /**
   * Runs of every probe and location with an id above `afterId`, ids ascending, at most `limit`
   * (capped at 10,000): a run by its id. Not a feed: on PostgreSQL several writers commit ids out of
   * order, so a reader continuing after the highest id seen could skip one (use runsFeed).
   */
  runsAfter(afterId: number, limit: number): Promise<StoredRun[]>;
  /**
   * The run feed a leader evaluates alert rules over: runs of every probe and location written after
   * `cursor`, at most `limit` (capped at 10,000), ids ascending, each run exactly once over the pages.
   */
  runsFeed(cursor: FeedCursor, limit: number): Promise<FeedPage>;
  /** Every writer's newest written run (queued ones not included): where a new feed starts. */
  feedEnd(): Promise<FeedCursor>;
  /**
   * Whether the database took the last write and answers now, from what the store saw (its batch
   * writes and a heartbeat write it makes itself every few seconds): never waits.
   */
  health(): StoreHealth;
  stats(): StoreStats;
  /** Flushes and closes. */
  close(): Promise<void>;
  /** Copies the live database to `file` online (other work goes on between steps). */
  backup(file: string): Promise<void>;
  /** Incidents, the outbox and silences, in the same database. */
  readonly alerts: AlertStore;
  /** Who wrote what through the API. */
  readonly audit: AuditLog;
  /**
   * Hourly and daily aggregates. Optional: a backend without them yet (or a test double) still is a
   * Store; callers fall back to raw runs when it is absent.
   */
  readonly rollups?: Rollups;
}

/** Rollup granularity; days are UTC days. */
export type RollupPeriod = 'hour' | 'day';

/** min/max/last/sum/count of one named value over a bucket. */
export interface ValueAggregate {
  min: number;
  max: number;
  /** The value of the latest run in the bucket that reported it. */
  last: number;
  sum: number;
  count: number;
  /** Only for values the rollups sketch (`sketchValues`): within 1 % of the exact p95. */
  p95?: number;
}

/** One hour or day of one probe. Percentiles come from a sketch: within 1 % of the exact value. */
export interface RollupBucket {
  probeId: string;
  period: RollupPeriod;
  /** Epoch ms, start of the hour or UTC day. */
  start: number;
  runs: number;
  failures: number;
  /** Duration percentiles (ms), undefined when the bucket has no runs. */
  p50?: number;
  p95?: number;
  p99?: number;
  minMs?: number;
  maxMs?: number;
  meanMs?: number;
  values: Record<string, ValueAggregate>;
  /** Failure reasons of the bucket's failed runs: code → count. */
  codes: Record<string, number>;
}

/** A whole window of one probe, merged from day rows and hour rows at its ragged edges. */
export interface RollupSummary extends Omit<RollupBucket, 'period' | 'start'> {
  from: number;
  to: number;
  /** (runs − failures) / runs, or undefined without runs. */
  uptime?: number;
}

/** Hourly and daily rollups of raw runs; see src/store/rollups.ts. */
export interface Rollups {
  /**
   * Rolls up every hour completed by `now` (less a grace for late writes) since the last one rolled,
   * at most `maxHours` a call, and the UTC days those hours complete. Returns the hours rolled.
   */
  rollUp(now: number): Promise<number>;
  /** Deletes rollups older than `before` (default: now − retention); returns how many. */
  prune(before?: number): Promise<number>;
  /** Buckets of one probe with start in [from, to), oldest first. */
  query(probeId: string, from: number, to: number, period: RollupPeriod): Promise<RollupBucket[]>;
  /**
   * One probe over [from, to): day rows for whole UTC days, hour rows for the rest of what is rolled
   * up, raw runs for what is not yet (the current hour) and for unaligned edges.
   */
  summary(probeId: string, from: number, to: number): Promise<RollupSummary>;
  /** The same window, also split into UTC days (the first and last may be partial), oldest first. */
  window(probeId: string, from: number, to: number): Promise<{ days: RollupBucket[]; total: RollupSummary }>;
  /** Reads the day rows of [from, to) into memory ahead of the first report after a start; returns how many. */
  warm(from: number, to: number): Promise<number>;
  /** Start of the last hour rolled up, or undefined before the first roll-up. */
  lastHour(): number | undefined;
}

/** One write through the API, as the audit log keeps it. */
export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target?: string;
  requestId?: string;
  result: 'success' | 'failure';
  status: number;
  detail?: string;
}

/** The audit log: appended on every write, read by admins, pruned by retention. */
export interface AuditLog {
  record(entry: Omit<AuditEntry, 'id'>): Promise<void>;
  /** Newest first. */
  list(q: { since?: number; until?: number; actor?: string; action?: string; limit?: number }): Promise<AuditEntry[]>;
  prune(before: number): Promise<number>;
}

/** Incident lifecycle. At most one unresolved incident per (probe, rule), enforced by the database. */
export type IncidentState = 'open' | 'acknowledged' | 'resolved';

/** An incident as stored. */
export interface Incident {
  id: number;
  probeId: string;
  rule: string;
  kind: string;
  severity: 'critical' | 'error' | 'warning' | 'info';
  state: IncidentState;
  summary: string;
  labels: Record<string, string>;
  /** Channels paged for this incident, copied from the rule when it opened. */
  channels: string[];
  openedAt: number;
  ackedAt?: number;
  ackedBy?: string;
  resolvedAt?: number;
  resolvedBy?: string;
  /** The failing run's code and message, and the files it kept (a browser run's screenshot). */
  lastError?: { code: string; message: string; at: number; artifacts?: RunArtifacts };
  flapping: boolean;
  /** The trigger page went out (or is queued); false while every page was muted. */
  notified: boolean;
  lastReminderAt?: number;
}

/** One entry of an incident's timeline. */
export interface IncidentEvent {
  id: number;
  incidentId: number;
  at: number;
  /** opened, acknowledged, resolved, reminded, muted, notified, flapping, settled, … */
  type: string;
  /** Who: a token name, or `vigil` for rule-driven changes. */
  actor: string;
  detail?: string;
}

/** Delivery state of one notification. */
export type OutboxState = 'pending' | 'delivered' | 'dead' | 'muted';

/** One notification to one channel. */
export interface OutboxItem {
  id: number;
  incidentId: number | null;
  channel: string;
  /** A person paged through the channel (by escalation), or absent for the channel's own target. */
  recipient?: string;
  action: 'trigger' | 'acknowledge' | 'resolve' | 'remind' | 'test';
  dedupKey: string;
  state: OutboxState;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  deliveredAt?: number;
  lastError?: string;
  mutedReason?: string;
  /** Held since then: its channel was not configured when it was due (it stays pending, unsent). */
  heldAt?: number;
  /** When its channel came back after a hold: its maximum age counts from here, not from createdAt. */
  releasedAt?: number;
  /** The channel's reference for this delivery (Slack channel + ts). */
  ref?: Record<string, string>;
  /** The incident as it was when the notification was queued: what the message says. */
  payload: Record<string, unknown>;
}

/** Notifications held for one channel that is not configured. */
export interface HeldPages {
  channel: string;
  count: number;
  /** Epoch ms of the oldest hold. */
  since: number;
}

/**
 * A delivery claim: `due()` hands the items it returns to `by` (one name per instance, unique) for
 * `forMs`; no other claimant gets them until the claim expires or its holder marks them.
 */
export interface OutboxClaim {
  by: string;
  forMs: number;
}

/** A notification to queue with an incident change. */
export interface NewNotification {
  channel: string;
  recipient?: string;
  action: OutboxItem['action'];
  dedupKey: string;
  payload: Record<string, unknown>;
  /** Recorded as muted (silence, maintenance, a failing dependency) instead of being sent. */
  mutedReason?: string;
}

/** An incident change and its consequences, applied in one transaction. */
export interface IncidentChange {
  /** Omitted to open a new incident with `open`. */
  id?: number;
  open?: Omit<Incident, 'id' | 'ackedAt' | 'ackedBy' | 'resolvedAt' | 'resolvedBy' | 'lastReminderAt'>;
  /** Fields to update on an existing incident. */
  patch?: Partial<Omit<Incident, 'id' | 'probeId' | 'rule' | 'openedAt'>>;
  event: Omit<IncidentEvent, 'id' | 'incidentId'>;
  /** The pages to queue, or how to make them from the incident as it is after the change (a new one's id). */
  notify: NewNotification[] | ((incident: Incident) => NewNotification[]);
  /** The escalation's new state (and, when it starts, the policy copied onto the incident). */
  escalation?: { policy?: unknown; state: EscalationRow['state'] };
}

/** An incident's escalation as stored. */
export interface EscalationRow {
  incidentId: number;
  policy: unknown;
  state: { pass: number; step: number; nextDueAt: number | null; reached: boolean };
}

/** A time-bounded on-call override: `person` is on call for `schedule` from `startsAt` to `endsAt`. */
export interface OncallOverride {
  id: number;
  schedule: string;
  person: string;
  startsAt: number;
  endsAt: number;
  author: string;
  createdAt: number;
}

/** Matches probes by id (with `*` wildcards) and labels. */
export interface Silence {
  id: number;
  probes: string[];
  labels: Record<string, string>;
  startsAt: number;
  endsAt: number;
  author: string;
  comment: string;
  createdAt: number;
}

/**
 * Incidents, their timelines, the outbox and silences: what alerting keeps. Every call is a promise;
 * `applyIncidentChange` is one transaction (the change, its event, its pages and its escalation).
 */
export interface AlertStore {
  /** Applies the change and queues its notifications atomically; returns the incident after it. */
  applyIncidentChange(change: IncidentChange): Promise<Incident>;
  incident(id: number): Promise<Incident | undefined>;
  /** Unresolved incidents, for the engine's state at start and its periodic sweep. */
  unresolvedIncidents(): Promise<Incident[]>;
  /** Newest first. `since`: not resolved before it; `until`: opened before it. */
  incidents(q: { state?: IncidentState; probeId?: string; since?: number; until?: number; limit?: number }): Promise<Incident[]>;
  /** Notifications queued in [from, to), oldest first, without their payloads. */
  deliveries(from: number, to: number): Promise<Array<Omit<OutboxItem, 'payload' | 'ref'>>>;
  timeline(incidentId: number): Promise<IncidentEvent[]>;
  notifications(incidentId: number): Promise<OutboxItem[]>;
  /** Queues notifications not tied to an incident change (channel test pages). */
  enqueue(items: Array<NewNotification & { incidentId: number | null }>, at: number): Promise<OutboxItem[]>;
  /**
   * Pending notifications due at `now`, oldest first; at most one per (incident, channel, recipient)
   * so they go in order. With a `claim`, several instances can deliver from one outbox: PostgreSQL
   * hands each item to one claimant at a time (items claimed by another until after `now` are left
   * out; the claimant's own come back, their claim renewed). SQLite, one process, ignores the claim.
   * Without one it is a plain read.
   */
  due(now: number, limit: number, claim?: OutboxClaim): Promise<OutboxItem[]>;
  outboxItem(id: number): Promise<OutboxItem | undefined>;
  /**
   * The marks end a delivery attempt and release its claim. Fenced on PostgreSQL: given the
   * `claimant` that called due(), a mark applies only while that claimant still holds the item's
   * claim (expired but not taken over counts as held), and is ignored once another claimant took it
   * over or it was already marked. Without a claimant (and always on SQLite) a mark applies.
   */
  markDelivered(id: number, at: number, ref?: Record<string, string>, claimant?: string): Promise<void>;
  markRetry(id: number, at: number, error: string, nextAttemptAt: number, claimant?: string): Promise<void>;
  markDead(id: number, at: number, error: string, claimant?: string): Promise<void>;
  /**
   * Holds a due notification whose channel is not configured: it stays pending but is no longer
   * due (nor sent, nor aged) until `releaseHeld` names its channel. Fenced like the marks.
   */
  markHeld(id: number, at: number, reason: string, claimant?: string): Promise<void>;
  /** Makes the held notifications of these channels due at `at`; returns how many. */
  releaseHeld(channels: readonly string[], at: number): Promise<number>;
  /** Held notifications by channel: how many and since when (the oldest hold). */
  held(): Promise<HeldPages[]>;
  /** The ref a channel returned for the latest delivered notification of an incident (to a recipient). */
  refFor(incidentId: number, channel: string, recipient?: string): Promise<Record<string, string> | undefined>;
  /** Everyone an incident's pages went (or are going) to: (channel, recipient) pairs, muted ones excluded. */
  paged(incidentId: number): Promise<Array<{ channel: string; recipient?: string }>>;
  outboxStats(now: number): Promise<{ pending: number; oldestPendingMs: number; dead: number }>;
  escalation(incidentId: number): Promise<EscalationRow | undefined>;
  /** Escalations with a step due at `now`, of incidents still open (not acknowledged, not resolved). */
  dueEscalations(now: number): Promise<EscalationRow[]>;
  addOverride(o: Omit<OncallOverride, 'id'>): Promise<OncallOverride>;
  /** Overrides that have not ended by `now`. */
  overrides(now: number): Promise<OncallOverride[]>;
  deleteOverride(id: number): Promise<boolean>;
  addSilence(s: Omit<Silence, 'id'>): Promise<Silence>;
  silences(now?: number): Promise<Silence[]>;
  deleteSilence(id: number, now: number): Promise<boolean>;
}
