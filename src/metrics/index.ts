import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';
import type { RunRecord } from '../store/index.js';

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
  /** Node process metrics (CPU, memory, event loop); off in benchmarks that build many registries. */
  processMetrics?: boolean;
  /** Read at scrape time. */
  storeStats?: () => { queued: number; written: number; writeErrors: number; dropped: number };
}

/** vigil's metrics. Every series a dashboard uses exists from the start (see setProbes). */
export interface Metrics {
  /** Declares the probes; series of probes no longer configured are removed. */
  setProbes(probes: MetricProbe[]): void;
  observeRun(run: RunRecord): void;
  schedulerLag(seconds: number): void;
  missed(schedule: string): void;
  skipped(reason: SkipReason): void;
}

const OUTCOMES = ['success', 'failure'] as const;
const SKIP_REASONS: SkipReason[] = ['overlap', 'capacity', 'kind_limit'];

export function createMetrics(opts: MetricsOptions): Metrics {
  const registers = [opts.registry];
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: opts.registry, eventLoopMonitoringPrecision: 20 });

  const success = new Gauge({
    name: 'vigil_probe_success',
    help: 'Whether the last run of the probe succeeded (1) or failed (0).',
    labelNames: ['probe', 'kind'],
    registers,
  });
  const duration = new Histogram({
    name: 'vigil_probe_duration_seconds',
    help: 'Duration of probe runs (the attempt that decided the outcome).',
    labelNames: ['probe', 'kind'],
    buckets: opts.durationBuckets,
    registers,
  });
  const runs = new Counter({
    name: 'vigil_probe_runs_total',
    help: 'Probe runs by outcome.',
    labelNames: ['probe', 'kind', 'outcome'],
    registers,
  });
  const lastRun = new Gauge({
    name: 'vigil_probe_last_run_timestamp_seconds',
    help: 'When the probe last ran (0 = never).',
    labelNames: ['probe', 'kind'],
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'vigil_probe_last_success_timestamp_seconds',
    help: 'When the probe last succeeded (0 = not since start).',
    labelNames: ['probe', 'kind'],
    registers,
  });
  const value = new Gauge({
    name: 'vigil_probe_value',
    help: 'A named value of the last run (latency_ms, days_remaining, p95_ms, …); NaN before the first.',
    labelNames: ['probe', 'kind', 'name'],
    registers,
  });
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

  let known = new Map<string, MetricProbe>();

  function removeSeries(p: MetricProbe, valueNames: readonly string[], valuesOnly = false) {
    const labels = { probe: p.id, kind: p.kind };
    for (const name of valueNames) value.remove({ ...labels, name });
    if (valuesOnly) return;
    success.remove(labels);
    duration.remove(labels);
    lastRun.remove(labels);
    lastSuccess.remove(labels);
    for (const outcome of OUTCOMES) runs.remove({ ...labels, outcome });
  }

  return {
    setProbes(probes) {
      const next = new Map(probes.map((p) => [p.id, p]));
      for (const old of known.values()) {
        if (next.get(old.id)?.kind !== old.kind) removeSeries(old, old.values);
      }
      for (const p of probes) {
        const labels = { probe: p.id, kind: p.kind };
        const old = known.get(p.id);
        if (old?.kind === p.kind) {
          // Same probe, maybe other values: drop the gone ones, start the new ones as NaN.
          removeSeries(
            old,
            old.values.filter((n) => !p.values.includes(n)),
            true,
          );
          for (const name of p.values) if (!old.values.includes(name)) value.set({ ...labels, name }, Number.NaN);
          continue;
        }
        for (const outcome of OUTCOMES) runs.inc({ ...labels, outcome }, 0);
        duration.zero(labels);
        success.set(labels, p.last?.ok ? 1 : 0);
        lastRun.set(labels, p.last ? p.last.startedAt / 1000 : 0);
        lastSuccess.set(labels, p.last?.ok ? p.last.startedAt / 1000 : 0);
        for (const name of p.values) value.set({ ...labels, name }, p.last?.values[name] ?? Number.NaN);
      }
      known = next;
    },
    observeRun(run) {
      const labels = { probe: run.probeId, kind: run.kind };
      const at = (run.startedAt + run.durationMs) / 1000;
      success.set(labels, run.ok ? 1 : 0);
      duration.observe(labels, run.durationMs / 1000);
      runs.inc({ ...labels, outcome: run.ok ? 'success' : 'failure' });
      lastRun.set(labels, at);
      if (run.ok) lastSuccess.set(labels, at);
      const names = known.get(run.probeId)?.values ?? Object.keys(run.values);
      for (const name of names) value.set({ ...labels, name }, run.values[name] ?? Number.NaN);
    },
    schedulerLag: (s) => lag.observe(s),
    missed: () => missed.inc(),
    skipped: (reason) => skipped.inc({ reason }),
  };
}
