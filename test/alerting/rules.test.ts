import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { type AlertConfig, evaluate, flapShare, isFlapping, type RunPoint } from '../../src/alerting/rules.js';
import { AlertSchema } from '../../src/config/schema.js';

const alert = (over: Record<string, unknown> = {}) => Value.Default(AlertSchema, structuredClone(over)) as AlertConfig;
const T0 = 1_790_000_000_000;
const runs = (pattern: string, every = 60_000, durationMs = 100): RunPoint[] =>
  [...pattern].map((c, i) => ({
    at: T0 + i * every,
    ok: c === '+',
    durationMs,
    values: {},
    code: c === '+' ? undefined : 'HTTP_STATUS',
    message: '503',
  }));
const now = (h: RunPoint[]) => (h.at(-1)?.at ?? T0) + 1;
const judge = (a: AlertConfig, h: RunPoint[], rule = 'failures') => evaluate(a, h, now(h)).find((v) => v.rule === rule)?.judgement;

describe('alert rules', () => {
  it('opens after N consecutive failures and clears after M consecutive successes, holding between', () => {
    const a = alert({ failures: 2, recoveries: 2 });
    expect(judge(a, runs('+-'))).toBe('hold');
    expect(judge(a, runs('+--'))).toBe('fire');
    expect(judge(a, runs('--+'))).toBe('hold');
    expect(judge(a, runs('--++'))).toBe('clear');
    expect(judge(a, runs('-+-'))).toBe('hold');
    expect(evaluate(a, runs('--'), now(runs('--')))[0]?.reason).toBe('HTTP_STATUS: 503 (2 runs in a row)');
  });

  it('judges the error rate over a window, ignoring older runs', () => {
    const a = alert({ errorRate: { over: '10m', above: '5%' } });
    // 20 runs a minute apart: the last 10 minutes hold 10 runs.
    expect(judge(a, runs('----------+++++++++-'), 'errorRate')).toBe('fire');
    expect(judge(a, runs('----------++++++++++'), 'errorRate')).toBe('clear');
    const v = evaluate(a, runs('----------+++++++++-'), now(runs('----------+++++++++-'))).find((x) => x.rule === 'errorRate');
    expect(v?.reason).toBe('error rate 10% over 10m (limit 5%, 10 runs)');
    expect(judge(alert({ errorRate: { over: '10m', above: 0.2 } }), runs('----------++++++++--'), 'errorRate')).toBe('clear');
    expect(judge(a, [], 'errorRate')).toBe('hold');
  });

  it('judges p95 latency over a window, by nearest rank', () => {
    const a = alert({ latency: { p95: '5s', over: '1h' } });
    const h = runs('+'.repeat(20)).map((r, i) => ({ ...r, durationMs: i === 19 ? 9000 : 1000 }));
    // 20 runs: rank ceil(0.95 * 20) = 19 is 1000 ms, the single slow run is the 100th percentile.
    expect(judge(a, h, 'latency')).toBe('clear');
    h[18] = { ...(h[18] as RunPoint), durationMs: 7000 };
    expect(judge(a, h, 'latency')).toBe('fire');
    expect(evaluate(a, h, now(h)).find((x) => x.rule === 'latency')?.reason).toBe('p95 latency 7.00s over 1h (limit 5s, 20 runs)');
  });

  it('judges thresholds on named values of the last run', () => {
    const a = alert({ values: ['days_remaining < 14', 'p95_ms >= 5000'] });
    const h = runs('+').map((r) => ({ ...r, values: { days_remaining: 9, p95_ms: 4999 } }));
    const v = evaluate(a, h, now(h));
    expect(v.find((x) => x.rule === 'values[0]')).toMatchObject({ judgement: 'fire', reason: 'days_remaining is 9 (days_remaining < 14)' });
    expect(v.find((x) => x.rule === 'values[1]')?.judgement).toBe('clear');
    // A run without the value (a failed TLS handshake) says nothing about it.
    expect(judge(a, runs('-'), 'values[0]')).toBe('hold');
  });

  it('measures flapping as Nagios does, with hysteresis', () => {
    expect(flapShare(runs('+'.repeat(21)))).toBe(0);
    expect(flapShare(runs('+-'.repeat(11)))).toBeCloseTo(1, 5);
    // Too few runs to say.
    expect(flapShare(runs('+-+-'))).toBe(0);
    // Recent changes weigh more than old ones.
    const recent = flapShare(runs(`${'+'.repeat(17)}-+-+`));
    const old = flapShare(runs(`+-+-${'+'.repeat(17)}`));
    expect(recent).toBeGreaterThan(old);
    const t = { start: 0.5, stop: 0.25 };
    expect(isFlapping(false, 0.4, t)).toBe(false);
    expect(isFlapping(false, 0.5, t)).toBe(true);
    expect(isFlapping(true, 0.3, t)).toBe(true);
    expect(isFlapping(true, 0.2, t)).toBe(false);
  });
});
