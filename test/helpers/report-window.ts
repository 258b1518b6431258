import { Value } from '@sinclair/typebox/value';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { buildReport, ReportConfigSchema, type ReportDeps } from '../../src/report/index.js';
import type { RollupBucket, RollupSummary, ValueAggregate } from '../../src/store/index.js';
import { ManualClock } from './clock.js';

const DAY = 86_400_000;

/** What every probe's 30-day window holds in {@link reportOver}. */
export interface WindowFigures {
  /** The report's "now" (epoch ms). */
  now: number;
  /** Runs in each probe's window (default 1,440). */
  runs?: number;
  /** Failed runs by probe id (default none). */
  failures?: Record<string, number>;
  /** The failure code the failed runs carry (default FAILED). */
  code?: string;
  /** Named values' aggregates by probe id. */
  values?: Record<string, Record<string, ValueAggregate>>;
  /** Day rows by probe id (default none: the window's figures are its total only). */
  days?: Record<string, RollupBucket[]>;
}

/**
 * The launch report over `probes` whose rollups hold exactly `figures`: no incidents, no raw runs,
 * default report config. What the checklist-evidence tests need to follow a kind's evidence through
 * the report to the scorecard.
 */
export function reportOver(probes: ProbeDefinition[], figures: WindowFigures) {
  const runs = figures.runs ?? 1_440;
  const total = (probeId: string): RollupSummary => {
    const failures = figures.failures?.[probeId] ?? 0;
    return {
      probeId,
      from: figures.now - 30 * DAY,
      to: figures.now,
      runs,
      failures,
      uptime: runs === 0 ? 0 : 1 - failures / runs,
      p95: 3,
      codes: failures > 0 ? { [figures.code ?? 'FAILED']: failures } : {},
      values: figures.values?.[probeId] ?? {},
    };
  };
  const deps: ReportDeps = {
    service: 'shop',
    clock: new ManualClock(figures.now),
    store: {
      latest: () => undefined,
      lastSuccess: async () => undefined,
      rollups: { lastHour: () => undefined, window: async (probeId) => ({ days: figures.days?.[probeId] ?? [], total: total(probeId) }) },
      alerts: { incidents: async () => [], deliveries: async () => [] },
    },
    probes: () => probes,
    config: Value.Default(ReportConfigSchema, {}) as ReportDeps['config'],
    setup: () => ({ channels: {}, schedules: {}, escalation: {} }),
  };
  return buildReport(deps);
}
