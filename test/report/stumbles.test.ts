import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { formatBudget } from '../../src/report/format.js';
import { type Report, renderReportHtml, renderReportMarkdown } from '../../src/report/index.js';
import { LINE_MAX } from '../../src/report/markdown.js';
import type { RunRecord } from '../../src/store/index.js';
import { SKETCH_ALPHA } from '../../src/store/sketch.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { sampleReport } from '../helpers/report-sample.js';
import { workspace } from '../helpers/workspace.js';

// Where a first reader of the report stumbled (issue 19), each on a report built from a real store:
// a budget of "100000 %", an error-rate axis up to 200 %, "Data through" the window's start, p95
// columns of "—", uptime weighted by run count, 31 days in a 30-day window, 218-character lines.

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const TODAY = Date.UTC(2026, 10, 20);
const NOW = TODAY + 13 * HOUR + 17 * MIN;

const CONFIG = `
service: { name: shop }
storage: { sqlite: { path: ./data/vigil.db } }
`;

// No launch date: the report covers the last 30 days.
const PROBES = `
- id: api
  kind: http
  url: https://api.example.com/health
  schedule: "0 * * * *"
- id: chatty
  kind: http
  url: https://www.example.com/
  schedule: { every: 1m }
`;

function run(probeId: string, startedAt: number, ok: boolean, values: Record<string, number>): RunRecord {
  return {
    probeId,
    kind: 'http',
    startedAt,
    durationMs: values.latency_ms ?? 50,
    ok,
    ...(ok ? {} : { code: 'HTTP_STATUS', message: 'failed' }),
    values,
    attempts: 1,
    trigger: 'schedule',
  };
}

/**
 * Two whole days before today: `api` hourly, every run of the first day failed; `chatty` every
 * minute, all passed. latency_ms of api: 1..24 ms on day two (p95 = the 22nd smallest, 22 ms).
 */
function history(): RunRecord[] {
  const runs: RunRecord[] = [];
  const start = TODAY - 2 * DAY;
  for (let h = 0; h < 48; h++) {
    const day2 = h >= 24;
    runs.push(run('api', start + h * HOUR, day2, { status: day2 ? 200 : 503, latency_ms: day2 ? (h % 24) + 1 : 5, dns_ms: 3 }));
  }
  for (let m = 0; m < 2 * 24 * 60; m++) runs.push(run('chatty', start + m * MIN + 30_000, true, { status: 200, latency_ms: 40 }));
  return runs.sort((a, b) => a.startedAt - b.startedAt);
}

describe('the report where a reader stumbled', () => {
  let ws: ReturnType<typeof workspace>;
  let app: App;

  beforeEach(async () => {
    ws = workspace({ 'config/default.yaml': CONFIG, 'probes/shop.yaml': PROBES });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger: memoryLogger().logger, clock: new ManualClock(NOW) });
    for (const r of history()) app.store.append(r);
    await app.store.flush();
  });
  afterEach(async () => {
    await app.server.close();
    await app.store.close();
    ws.remove();
  });

  const report = async (): Promise<Report> => {
    const res = await app.server.inject({ url: '/api/v1/report' });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Report;
  };

  it('covers exactly 30 UTC days, today the last', async () => {
    const r = await report();
    expect(r.window).toMatchObject({ from: new Date(TODAY - 29 * DAY).toISOString(), to: new Date(NOW).toISOString(), days: 30 });
    for (const p of r.probes) {
      expect(p.daily).toHaveLength(30);
      expect(p.daily.at(-1)?.day).toBe('2026-11-20');
    }
  });

  it('weighs overall uptime by time, not by run count', async () => {
    const r = await report();
    // api: day one 0 %, day two 100 %; chatty: 100 % both days. Four probe-days, one down: 75 %.
    // By run count it would be 2,856 of 2,904 runs: 98.3 %, hiding a whole day's outage.
    expect(r.summary).toMatchObject({ runs: 48 + 2_880, failures: 24 });
    expect(r.summary.uptime).toBeCloseTo(0.75, 12);
  });

  it('shows a spent error budget as a bounded multiple, and the error-rate axis up to 100 %', async () => {
    const r = await report();
    const api = r.probes.find((p) => p.id === 'api')!;
    // 24 of 48 runs failed against a 0.1 % budget.
    expect(api.slo.budgetSpent).toBeCloseTo(500, 9);
    const md = renderReportMarkdown(r);
    const html = renderReportHtml(r).body;
    for (const page of [md, html]) {
      expect(page).toContain('exhausted, 500× the budget');
      expect(page).not.toMatch(/\d{4,} %/);
    }
    // The day of 100 % errors tops the axis at 100 %, not at the next "nice" number, 200 %.
    expect(html).toMatch(/>100 %<\/text>/);
    expect(html).not.toMatch(/>200 %<\/text>/);
  });

  it('says where the data comes from, never "through" the window start', async () => {
    const before = renderReportMarkdown(await report());
    expect(before).not.toContain('Data through');
    expect(before).toContain('- Data: from 2026-10-22 00:00 UTC to 2026-11-20 13:17 UTC (read from raw runs, none rolled up yet)');
    await app.store.rollups!.rollUp(NOW);
    const after = renderReportMarkdown(await report());
    // One rollUp call rolls 48 hours: the two seeded days.
    expect(after).toContain('(rolled up through 2026-11-20 00:00 UTC, later runs read raw)');
  });

  it('fills the p95 of duration values, from raw runs and from rollups alike', async () => {
    for (const rolled of [false, true]) {
      if (rolled) await app.store.rollups!.rollUp(NOW);
      const r = await report();
      const api = r.probes.find((p) => p.id === 'api')!;
      // 48 latencies: 24 × 5 ms, then 1..24 ms: rank floor(0.95 × 47) = 44 of the sorted values is 21 ms.
      const p95 = api.values.latency_ms?.p95;
      expect(p95, `rolled: ${rolled}`).toBeDefined();
      expect(Math.abs(p95! - 21) / 21).toBeLessThanOrEqual(SKETCH_ALPHA + 1e-12);
      expect(api.values.dns_ms?.p95).toBeCloseTo(3, 1);
      // A status code is no duration: no p95 claimed for it.
      expect(api.values.status?.p95).toBeUndefined();
      const row = renderReportMarkdown(r)
        .split('\n')
        .find((l) => l.startsWith('| latency_ms'));
      expect(row?.split('|').map((c) => c.trim())[6]).toBe('21 ms');
    }
  });
});

describe('formatBudget', () => {
  it('reads a share while budget is left, a multiple once it is exhausted', () => {
    expect(formatBudget(null)).toBe('—');
    expect(formatBudget(0.42)).toBe('42 %');
    expect(formatBudget(1)).toBe('100 %');
    expect(formatBudget(3.46)).toBe('exhausted, 3.5× the budget');
    expect(formatBudget(1000)).toBe('exhausted, 1,000× the budget');
    expect(formatBudget(Number.POSITIVE_INFINITY)).toBe('exhausted (the objective allows no failure)');
  });
});

describe('the Markdown report, line by line', () => {
  it('keeps every line within 120 characters and holds no raw HTML, with many probes and long names', () => {
    const r = sampleReport({ service: `shop-${'s'.repeat(40)}` });
    const template = r.probes[0]!;
    for (let i = 0; i < 60; i++) {
      const id = `${String(i).padStart(2, '0')}-${'checkout-service-payments-provider-callback'.padEnd(60, 'x')}`;
      r.probes.push({
        ...template,
        id,
        target: `https://api.example.com/${'v1/orders/'.repeat(8)}health?probe=${id}&verbose=${'1'.repeat(150)}`,
        labels: { team: 'payments-platform-reliability', tier: 'critical', region: 'eu-west-1-and-a-long-suffix' },
        last: {
          at: '2026-11-25T00:00:00.000Z',
          ok: false,
          code: 'HTTP_STATUS',
          message: `expected 200, got 503\n${'upstream '.repeat(30)}`,
        },
        slo: { ...template.slo, budgetSpent: 1000 },
      });
    }
    r.incidents.list[0]!.summary = `checkout failing\n${'the payment provider answered 503 '.repeat(8)}`;
    r.scorecard.items[0]!.evidence[0]!.detail = `${'a long piece of evidence '.repeat(10)}\nsecond line`;
    const md = renderReportMarkdown(r);
    expect(LINE_MAX).toBe(120);
    const lines = md.split('\n');
    expect(lines.length).toBeGreaterThan(500);
    for (const [i, line] of lines.entries()) expect(Array.from(line).length, `line ${i + 1}: ${line}`).toBeLessThanOrEqual(120);
    expect(md).not.toMatch(/<br/i);
    // No raw HTML: every `<` is escaped.
    expect(md).not.toMatch(/(?<!\\)</);
    // A 400-day window's sparkline stays on its line too.
    const long = sampleReport({ window: { ...r.window, days: 400 } });
    long.probes[0]!.daily = Array.from({ length: 400 }, (_, i) => ({ ...long.probes[0]!.daily[i % 30]! }));
    for (const line of renderReportMarkdown(long).split('\n')) expect(Array.from(line).length).toBeLessThanOrEqual(120);
  });
});
