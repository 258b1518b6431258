import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';
import type { RunRecord } from '../store/index.js';
import { ProbeSeries } from './probe-series.js';

export { FastRegistry } from './probe-series.js';

/** A probe as metrics see it: its labels and the value names its runs report. */
export interface MetricProbe {
  id: string;
  kind: string;
  values: readonly string[];
  /** The newest stored run, so series resume after a restart instead of starting at 0. */
  last?: RunRecord | undefined;
}

/** Why a scheduled slot did not produce a run. */
export type SkipReason = 'overlap' | 'capacity' | 'kind_limit';

export interface MetricsOptions {
  registry: Registry;
  durationBuckets: number[];
  /** This instance's location: a `location` label on every probe series. */
  location?: string;
  /** Node process metrics (CPU, memory, event loop); off in benchmarks that build many registries. */
  processMetrics?: boolean;
  /** Read at scrape time. */
  storeStats?: () => { queued: number; written: number; writeErrors: number; dropped: number };
  /** Read at scrape time: unresolved incidents by severity. */
  openIncidents?: () => Record<string, number>;
  /** Read at scrape time. */
  outboxStats?: () => { pending: number; oldestPendingMs: number; dead: number };
  /** Read at scrape time: notifications held because their channel is not configured, by channel. */
  heldPages?: () => ReadonlyArray<{ channel: string; count: number }>;
  /** Read at scrape time: who is on call now, per schedule (undefined: nobody). */
  onCall?: () => Record<string, string | undefined>;
}

/** vigil's metrics. Every series a dashboard uses exists from the start (see setProbes). */
export interface Metrics {
  /** Declares the probes; series of probes no longer configured are removed. */
  setProbes(probes: MetricProbe[]): void;
  observeRun(run: RunRecord): void;
  schedulerLag(seconds: number): void;
  missed(schedule: string): void;
  skipped(reason: SkipReason): void;
  /** Declares the channels so their series exist from the start; again after a reload (the held gauge follows the last call). */
  setChannels(names: readonly string[]): void;
  notification(channel: string, outcome: NotificationOutcome): void;
  deliveryLatency(channel: string, seconds: number): void;
  /** Time to acknowledge / resolve an incident. */
  acknowledged(seconds: number): void;
  resolved(seconds: number): void;
  escalated(policy: string): void;
  /** A heartbeat ping to the dead-man's switch: sent or failed. */
  heartbeat(ok: boolean): void;
  /** A self-backup of vigil's database: written or failed, at a Unix time in seconds, its size. */
  selfBackup(ok: boolean, atSeconds: number, bytes?: number): void;
  /** This instance leads (alert rules, outbox) or not. */
  leader(isLeader: boolean): void;
  /** A config reload: applied or refused, at a Unix time in seconds. */
  reloaded(ok: boolean, atSeconds: number): void;
}

/** What became of one delivery attempt. */
export type NotificationOutcome = 'delivered' | 'retry' | 'dead' | 'muted';
const OUTCOMES: NotificationOutcome[] = ['delivered', 'retry', 'dead', 'muted'];
const SEVERITIES = ['critical', 'error', 'warning', 'info'];

const SKIP_REASONS: SkipReason[] = ['overlap', 'capacity', 'kind_limit'];

export function createMetrics(opts: MetricsOptions): Metrics {
  const registers = [opts.registry];
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: opts.registry, eventLoopMonitoringPrecision: 20 });

  const probes = new ProbeSeries(opts.durationBuckets, opts.location);
  for (const family of probes.families()) opts.registry.registerMetric(family as never);

  const lag = new Histogram({
    name: 'vigil_scheduler_lag_seconds',
    help: 'How late a run started after its planned instant.',
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2],
    registers,
  });
  const missed = new Counter({
    name: 'vigil_scheduler_missed_total',
    help: 'Schedule slots missed because the event loop was blocked past them (never replayed).',
    registers,
  });
  const skipped = new Counter({
    name: 'vigil_scheduler_skipped_total',
    help: 'Slots skipped: the previous run still going (overlap), too many runs in flight (capacity), or the kind at its limit (kind_limit).',
    labelNames: ['reason'],
    registers,
  });
  for (const r of SKIP_REASONS) skipped.inc({ reason: r }, 0);
  missed.inc(0);

  const stats = opts.storeStats;
  new Gauge({
    name: 'vigil_store_queue_rows',
    help: 'Results queued for the next batched write.',
    registers,
    collect() {
      if (stats) this.set(stats().queued);
    },
  });
  new Gauge({
    name: 'vigil_store_queue_depth',
    help: 'Results waiting in memory for the database (bounded; see vigil_store_dropped_total).',
    registers,
    collect() {
      if (stats) this.set(stats().queued);
    },
  });
  let droppedSeen = 0;
  new Counter({
    name: 'vigil_store_dropped_total',
    help: 'Results dropped, oldest first, because the in-memory queue was full while the database did not take writes.',
    registers,
    collect() {
      const dropped = stats?.().dropped ?? 0;
      if (dropped > droppedSeen) this.inc(dropped - droppedSeen);
      droppedSeen = dropped;
    },
  });
  new Gauge({
    name: 'vigil_store_rows_written',
    help: 'Results written to the store since start.',
    registers,
    collect() {
      if (stats) this.set(stats().written);
    },
  });
  new Gauge({
    name: 'vigil_store_write_errors',
    help: 'Batched writes that failed since start (rows are kept and retried).',
    registers,
    collect() {
      if (stats) this.set(stats().writeErrors);
    },
  });

  const incidents = opts.openIncidents;
  new Gauge({
    name: 'vigil_incidents_open',
    help: 'Unresolved incidents (open or acknowledged) by severity.',
    labelNames: ['severity'],
    registers,
    collect() {
      const counts = incidents?.() ?? {};
      for (const sev of SEVERITIES) this.set({ severity: sev }, counts[sev] ?? 0);
    },
  });
  const notifications = new Counter({
    name: 'vigil_notifications_total',
    help: 'Notification delivery attempts by channel and outcome (delivered, retry, dead, muted).',
    labelNames: ['channel', 'outcome'],
    registers,
  });
  const delivery = new Histogram({
    name: 'vigil_notification_delivery_seconds',
    help: 'From the incident change to the notification delivered.',
    labelNames: ['channel'],
    buckets: [0.1, 0.5, 1, 5, 30, 120, 600],
    registers,
  });
  const outbox = opts.outboxStats;
  new Gauge({
    name: 'vigil_outbox_pending',
    help: 'Notifications waiting to be delivered.',
    registers,
    collect() {
      if (outbox) this.set(outbox().pending);
    },
  });
  new Gauge({
    name: 'vigil_outbox_oldest_pending_seconds',
    help: 'Age of the oldest notification waiting (0 when none).',
    registers,
    collect() {
      if (outbox) this.set(outbox().oldestPendingMs / 1000);
    },
  });
  /** Channels declared by setChannels: their held series exist (at 0) from the start. */
  const declared = new Set<string>();
  const held = opts.heldPages;
  new Gauge({
    name: 'vigil_outbox_held',
    help: 'Notifications held (not sent, not given up) because their channel is not configured, by channel.',
    labelNames: ['channel'],
    registers,
    collect() {
      if (!held) return;
      // Reset: a channel whose pages went out (or that is no longer configured and holds none) drops its series.
      this.reset();
      for (const channel of declared) this.set({ channel }, 0);
      for (const h of held()) this.set({ channel: h.channel }, h.count);
    },
  });
  new Gauge({
    name: 'vigil_outbox_dead',
    help: 'Notifications given up on (permanent error, or still failing at their maximum age).',
    registers,
    collect() {
      if (outbox) this.set(outbox().dead);
    },
  });

  const timeBuckets = [60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600];
  const mtta = new Histogram({
    name: 'vigil_incident_ack_seconds',
    help: 'Time from an incident opening to its acknowledgement (MTTA).',
    buckets: timeBuckets,
    registers,
  });
  const mttr = new Histogram({
    name: 'vigil_incident_resolve_seconds',
    help: 'Time from an incident opening to its resolution (MTTR).',
    buckets: timeBuckets,
    registers,
  });
  const escalations = new Counter({
    name: 'vigil_escalation_steps_total',
    help: 'Escalation steps fired, by policy.',
    labelNames: ['policy'],
    registers,
  });
  const heartbeats = new Counter({
    name: 'vigil_heartbeats_total',
    help: "Pings to the dead-man's switch, by outcome.",
    labelNames: ['outcome'],
    registers,
  });
  heartbeats.inc({ outcome: 'sent' }, 0);
  heartbeats.inc({ outcome: 'failed' }, 0);
  const leaderGauge = new Gauge({
    name: 'vigil_leader',
    help: '1 while this instance holds the leader lease (always 1 on SQLite, a single instance).',
    registers,
  });
  leaderGauge.set(0);
  const reloads = new Counter({
    name: 'vigil_config_reloads_total',
    help: 'Config reloads (SIGHUP or the admin API), by result.',
    labelNames: ['result'],
    registers,
  });
  reloads.inc({ result: 'success' }, 0);
  reloads.inc({ result: 'failure' }, 0);
  const lastReloadOk = new Gauge({
    name: 'vigil_config_last_reload_success',
    help: '1 when the last config reload was applied (or none was tried), 0 when it was refused.',
    registers,
  });
  lastReloadOk.set(1);
  const lastReloadAt = new Gauge({
    name: 'vigil_config_last_reload_timestamp_seconds',
    help: 'When the last config reload was tried (0: never).',
    registers,
  });
  lastReloadAt.set(0);
  const backups = new Counter({
    name: 'vigil_self_backups_total',
    help: "Online backups of vigil's own database, by result.",
    labelNames: ['result'],
    registers,
  });
  backups.inc({ result: 'success' }, 0);
  backups.inc({ result: 'failure' }, 0);
  const lastBackup = new Gauge({
    name: 'vigil_self_backup_last_success_timestamp_seconds',
    help: 'When the newest self-backup was written (0: none yet).',
    registers,
  });
  lastBackup.set(0);
  const backupBytes = new Gauge({ name: 'vigil_self_backup_bytes', help: 'Size of the newest self-backup.', registers });
  backupBytes.set(0);
  const onCall = opts.onCall;
  new Gauge({
    name: 'vigil_oncall',
    help: 'Who is on call now: 1 for the person on call per schedule (person="" when nobody is).',
    labelNames: ['schedule', 'person'],
    registers,
    collect() {
      this.reset();
      for (const [schedule, person] of Object.entries(onCall?.() ?? {})) this.set({ schedule, person: person ?? '' }, 1);
    },
  });

  let known = new Set<string>();

  return {
    setProbes(list) {
      const next = new Set(list.map((p) => p.id));
      for (const id of known) if (!next.has(id)) probes.remove(id);
      // Every probe of the list takes new room (declare, and revalue too): made at once.
      probes.reserve(
        list.length,
        list.reduce((sum, p) => sum + p.values.length, 0),
      );
      for (const p of list) {
        if (probes.kindOf(p.id) === p.kind) probes.revalue(p.id, p.values);
        else
          probes.declare(
            p.id,
            p.kind,
            p.values,
            p.last ? { ok: p.last.ok, at: p.last.startedAt / 1000, values: p.last.values } : undefined,
          );
      }
      known = next;
    },
    observeRun(run) {
      probes.observe(run.probeId, run.ok, run.durationMs / 1000, (run.startedAt + run.durationMs) / 1000, run.values);
    },
    schedulerLag: (s) => lag.observe(s),
    missed: () => missed.inc(),
    skipped: (reason) => skipped.inc({ reason }),
    setChannels(names) {
      declared.clear();
      for (const channel of names) {
        declared.add(channel);
        for (const outcome of OUTCOMES) notifications.inc({ channel, outcome }, 0);
        delivery.zero({ channel });
      }
    },
    notification: (channel, outcome) => notifications.inc({ channel, outcome }),
    acknowledged: (seconds) => mtta.observe(seconds),
    resolved: (seconds) => mttr.observe(seconds),
    escalated: (policy) => escalations.inc({ policy }),
    heartbeat: (ok) => heartbeats.inc({ outcome: ok ? 'sent' : 'failed' }),
    selfBackup(ok, atSeconds, bytes) {
      backups.inc({ result: ok ? 'success' : 'failure' });
      if (!ok) return;
      lastBackup.set(atSeconds);
      if (bytes !== undefined) backupBytes.set(bytes);
    },
    leader: (isLeader) => leaderGauge.set(isLeader ? 1 : 0),
    reloaded(ok, atSeconds) {
      reloads.inc({ result: ok ? 'success' : 'failure' });
      lastReloadOk.set(ok ? 1 : 0);
      lastReloadAt.set(atSeconds);
    },
    deliveryLatency: (channel, seconds) => delivery.observe({ channel }, seconds),
  };
}
