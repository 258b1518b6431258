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

const SKIP_REASONS: SkipReason[] = ['overlap', 'capacity', 'kind_limit'];

export function createMetrics(opts: MetricsOptions): Metrics {
  const registers = [opts.registry];
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: opts.registry, eventLoopMonitoringPrecision: 20 });

  const probes = new ProbeSeries(opts.durationBuckets);
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

  let known = new Set<string>();

  return {
    setProbes(list) {
      const next = new Set(list.map((p) => p.id));
      for (const id of known) if (!next.has(id)) probes.remove(id);
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
  };
}
