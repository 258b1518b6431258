import { formatDuration, ms } from '../lib/duration.js';
import { type AlertConfig, share } from '../lib/schema.js';

export type { AlertConfig } from '../lib/schema.js';

/** What rules read of a run. */
export interface RunPoint {
  /** Epoch ms the run started. */
  at: number;
  ok: boolean;
  durationMs: number;
  values: Record<string, number>;
  code?: string;
  message?: string;
}

/**
 * A rule's judgement of the history: `fire` opens (or keeps) an incident, `clear` resolves it,
 * `hold` keeps whatever state it is in (between N failures and M recoveries; no data in a window).
 */
export type Judgement = 'fire' | 'clear' | 'hold';

export interface Verdict {
  /** `failures`, `errorRate`, `latency`, or `values[i]`. */
  rule: string;
  judgement: Judgement;
  /** What a person reads: `503 Service Unavailable: cache down`, `error rate 12% over 10m (limit 5%)`. */
  reason: string;
}

/** How many runs back the rules look, besides their time windows. */
export function historyNeeded(alert: AlertConfig): { runs: number; ms: number } {
  return {
    runs: Math.max(alert.failures, alert.recoveries, FLAP_WINDOW),
    ms: Math.max(alert.errorRate ? ms(alert.errorRate.over) : 0, alert.latency ? ms(alert.latency.over) : 0),
  };
}

/** Judges every rule of an alert block over a probe's history (oldest first) at `now`. Pure. */
export function evaluate(alert: AlertConfig, history: readonly RunPoint[], now: number): Verdict[] {
  const verdicts: Verdict[] = [consecutive(alert, history)];
  if (alert.errorRate) verdicts.push(errorRate(alert.errorRate, history, now));
  if (alert.latency) verdicts.push(latency(alert.latency, history, now));
  alert.values.forEach((expr, i) => {
    verdicts.push(threshold(`values[${i}]`, expr, history.at(-1)));
  });
  return verdicts;
}

function consecutive(alert: AlertConfig, history: readonly RunPoint[]): Verdict {
  const last = history.at(-1);
  const reason = last ? (last.ok ? 'recovered' : `${last.code ?? 'FAILED'}: ${last.message ?? 'failed'}`) : 'no runs yet';
  const tail = (n: number) => history.slice(-n);
  if (history.length >= alert.failures && tail(alert.failures).every((r) => !r.ok)) {
    return { rule: 'failures', judgement: 'fire', reason: alert.failures > 1 ? `${reason} (${alert.failures} runs in a row)` : reason };
  }
  if (history.length >= alert.recoveries && tail(alert.recoveries).every((r) => r.ok))
    return { rule: 'failures', judgement: 'clear', reason };
  return { rule: 'failures', judgement: 'hold', reason };
}

function pct(n: number): string {
  return `${Math.round(n * 1000) / 10}%`;
}

function errorRate(rule: NonNullable<AlertConfig['errorRate']>, history: readonly RunPoint[], now: number): Verdict {
  const windowMs = ms(rule.over);
  const runs = history.filter((r) => r.at > now - windowMs);
  if (runs.length === 0) return { rule: 'errorRate', judgement: 'hold', reason: `no runs in the last ${rule.over}` };
  const rate = runs.filter((r) => !r.ok).length / runs.length;
  const limit = share(rule.above);
  const reason = `error rate ${pct(rate)} over ${rule.over} (limit ${pct(limit)}, ${runs.length} runs)`;
  return { rule: 'errorRate', judgement: rate > limit ? 'fire' : 'clear', reason };
}

function latency(rule: NonNullable<AlertConfig['latency']>, history: readonly RunPoint[], now: number): Verdict {
  const windowMs = ms(rule.over);
  const durations = history
    .filter((r) => r.at > now - windowMs)
    .map((r) => r.durationMs)
    .sort((a, b) => a - b);
  // Nearest-rank p95: the value at rank ceil(0.95 n), exact over the runs in the window (none when empty).
  const p95 = durations[Math.ceil(0.95 * durations.length) - 1];
  if (p95 === undefined) return { rule: 'latency', judgement: 'hold', reason: `no runs in the last ${rule.over}` };
  const limit = ms(rule.p95);
  const reason = `p95 latency ${formatDuration(p95)} over ${rule.over} (limit ${rule.p95}, ${durations.length} runs)`;
  return { rule: 'latency', judgement: p95 > limit ? 'fire' : 'clear', reason };
}

const OPS = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
} satisfies Record<string, (a: number, b: number) => boolean>;
type Op = keyof typeof OPS;
const isOp = (s: string | undefined): s is Op => s !== undefined && Object.hasOwn(OPS, s);

/** Parses `days_remaining < 14`; undefined when it is not one (the config schema already checked). */
export function parseThreshold(expr: string): { name: string; op: Op; limit: number } | undefined {
  const [, name, op, limit] = /^\s*([a-z_][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expr) ?? [];
  return name !== undefined && isOp(op) ? { name, op, limit: Number(limit) } : undefined;
}

function threshold(rule: string, expr: string, last: RunPoint | undefined): Verdict {
  const t = parseThreshold(expr);
  const value = t && last ? last.values[t.name] : undefined;
  if (!t || value === undefined) return { rule, judgement: 'hold', reason: `${expr}: no value yet` };
  const crossed = OPS[t.op](value, t.limit);
  return { rule, judgement: crossed ? 'fire' : 'clear', reason: `${t.name} is ${value} (${expr})` };
}

/** Nagios weighs the last 21 states: 20 transitions, the oldest counting 0.75 and the newest 1.25. */
export const FLAP_WINDOW = 21;

/** The weighted share of state changes over the last 21 runs, 0 (steady) to 1 (changing every run). */
export function flapShare(history: readonly RunPoint[]): number {
  const states = history.slice(-FLAP_WINDOW).map((r) => r.ok);
  if (states.length < FLAP_WINDOW) return 0;
  let sum = 0;
  for (let i = 1; i < states.length; i++) {
    if (states[i] !== states[i - 1]) sum += 0.75 + ((i - 1) / (FLAP_WINDOW - 2)) * 0.5;
  }
  return sum / (FLAP_WINDOW - 1);
}

/** Flapping with hysteresis: starts at or above `start`, stops only below `stop`. */
export function isFlapping(wasFlapping: boolean, shareNow: number, thresholds: { start: number; stop: number }): boolean {
  return wasFlapping ? shareNow >= thresholds.stop : shareNow >= thresholds.start;
}
