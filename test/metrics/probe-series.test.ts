import { describe, expect, it } from 'vitest';
import { ProbeSeries } from '../../src/metrics/probe-series.js';

const BOUNDS = [0.1, 1, 10];

/** What one probe's series should read, kept the plain way. */
interface Model {
  kind: string;
  names: string[];
  success: number;
  lastRun: number;
  lastSuccess: number;
  ok: number;
  failed: number;
  buckets: number[];
  sum: number;
  count: number;
  values: Map<string, number>;
}

/** Every sample of every family, `metric{labels}` → value. */
async function samples(series: ProbeSeries): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const family of series.families()) {
    for (const v of (await family.get()).values) {
      const labels = Object.entries(v.labels)
        .map(([k, x]) => `${k}=${x}`)
        .join(',');
      out.set(`${v.metricName}{${labels}}`, v.value);
    }
  }
  return out;
}

function expected(models: Map<string, Model>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [id, m] of models) {
    const l = `probe=${id},kind=${m.kind}`;
    out.set(`vigil_probe_success{${l}}`, m.success);
    let cum = 0;
    [...BOUNDS.map(String), '+Inf'].forEach((le, b) => {
      cum += m.buckets[b] ?? 0;
      out.set(`vigil_probe_duration_seconds_bucket{${l},le=${le}}`, cum);
    });
    out.set(`vigil_probe_duration_seconds_sum{${l}}`, m.sum);
    out.set(`vigil_probe_duration_seconds_count{${l}}`, m.count);
    out.set(`vigil_probe_runs_total{${l},outcome=success}`, m.ok);
    out.set(`vigil_probe_runs_total{${l},outcome=failure}`, m.failed);
    out.set(`vigil_probe_last_run_timestamp_seconds{${l}}`, m.lastRun);
    out.set(`vigil_probe_last_success_timestamp_seconds{${l}}`, m.lastSuccess);
    for (const n of m.names) out.set(`vigil_probe_value{${l},name=${n}}`, m.values.get(n) ?? Number.NaN);
  }
  return out;
}

describe('probe series', () => {
  it('keeps every probe its own numbers through declares, runs, renames of values, removals, room made ahead and compactions', async () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const series = new ProbeSeries(BOUNDS);
    const models = new Map<string, Model>();
    const nameSets = [['latency_ms', 'status'], ['days_remaining'], [], ['a', 'b', 'c', 'd', 'e', 'f']];
    // Enough probes and churn that the slab grows past its first size and compacts several times.
    for (let step = 0; step < 6_000; step++) {
      const id = `p${Math.floor(rnd() * 400)}`;
      const r = rnd();
      const m = models.get(id);
      if (m === undefined || r < 0.1) {
        const names = nameSets[Math.floor(rnd() * nameSets.length)]!;
        series.declare(id, 'http', names);
        // Declared again: as new, in the place it had.
        models.set(id, {
          kind: 'http',
          names,
          success: 0,
          lastRun: 0,
          lastSuccess: 0,
          ok: 0,
          failed: 0,
          buckets: [0, 0, 0, 0],
          sum: 0,
          count: 0,
          values: new Map(),
        });
      } else if (r < 0.2) {
        series.remove(id);
        models.delete(id);
      } else if (r < 0.3) {
        const names = nameSets[Math.floor(rnd() * nameSets.length)]!;
        series.revalue(id, names);
        m.values = new Map(names.filter((n) => m.values.has(n)).map((n) => [n, m.values.get(n)!]));
        m.names = names;
      } else if (r < 0.33) {
        // Room made ahead (what setProbes does): it may compact and move every probe's numbers.
        series.reserve(Math.floor(rnd() * 300), Math.floor(rnd() * 600));
      } else {
        const ok = rnd() < 0.7;
        const seconds = Math.round(rnd() * 2000) / 100;
        const at = 1_790_000_000 + step;
        const values = Object.fromEntries(m.names.map((n) => [n, Math.round(rnd() * 1000)]));
        series.observe(id, ok, seconds, at, values);
        m.success = ok ? 1 : 0;
        m.lastRun = at;
        if (ok) {
          m.lastSuccess = at;
          m.ok++;
        } else m.failed++;
        const b = BOUNDS.findIndex((x) => seconds <= x);
        m.buckets[b === -1 ? BOUNDS.length : b]!++;
        m.sum += seconds;
        m.count++;
        m.values = new Map(Object.entries(values));
      }
      if (step % 1_500 === 1_499) expect(await samples(series)).toEqual(expected(models));
    }
    expect(models.size).toBeGreaterThan(100);
  });

  it('starts a probe declared with its last run from that run', async () => {
    const series = new ProbeSeries(BOUNDS);
    series.declare('web', 'http', ['latency_ms', 'status'], { ok: true, at: 1_790_000_000, values: { latency_ms: 12 } });
    const s = await samples(series);
    expect(s.get('vigil_probe_success{probe=web,kind=http}')).toBe(1);
    expect(s.get('vigil_probe_last_success_timestamp_seconds{probe=web,kind=http}')).toBe(1_790_000_000);
    expect(s.get('vigil_probe_value{probe=web,kind=http,name=latency_ms}')).toBe(12);
    expect(s.get('vigil_probe_value{probe=web,kind=http,name=status}')).toBeNaN();
    expect(s.get('vigil_probe_runs_total{probe=web,kind=http,outcome=success}')).toBe(0);
  });
});
