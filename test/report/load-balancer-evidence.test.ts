import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { type buildReport, renderReportMarkdown } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's load balancer item: load-balancer probes are its evidence, through the report to
// the scorecard, their balancer shown without its password.

const NOW = Date.UTC(2026, 10, 26, 12);

const lb = (id: string, url: string) =>
  ({ id, kind: 'load-balancer', labels: {}, url, resolve: 'all', requests: 20, max5xx: 0 }) as unknown as ProbeDefinition;
const http = (id: string) =>
  ({ id, kind: 'http', labels: {}, url: 'https://shop.example.com/health', expect: {} }) as unknown as ProbeDefinition;

/** A report over probes whose windows hold `runs` runs and `failures` failures each. */
const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 1_440) =>
  reportOver(probes, { now: NOW, runs, failures });

const item = (r: Awaited<ReturnType<typeof buildReport>>) => r.scorecard.items.find((i) => i.id === 'load-balancer');

describe('report: the load balancer checklist item', () => {
  it('takes load-balancer probes as evidence, and passes when every run in the window passed', async () => {
    const r = await report([lb('shop-lb', 'https://ops:hunter2@shop.example.com/health'), http('shop-health')], {});
    expect(r.checklist.loadBalancer).toEqual([
      { probeId: 'shop-lb', target: 'https://shop.example.com/health', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(item(r)).toMatchObject({ status: 'pass', evidence: [{ source: 'probe', probes: ['shop-lb'] }] });
    expect(JSON.stringify(r)).not.toContain('hunter2');
  });

  it('fails when a run failed, and shows the section in the markdown report', async () => {
    const r = await report([lb('shop-lb', 'https://shop.example.com/health')], { 'shop-lb': 2 });
    expect(item(r)?.status).toBe('fail');
    expect(item(r)?.evidence[0]?.detail).toContain('in 2 of 1440 runs');
    const md = renderReportMarkdown(r);
    expect(md).toContain('Load balancers (every instance healthy, no 5xx through the balancer)');
    expect(md).toMatch(/\| shop-lb \| https:\/\/shop\.example\.com\/health \| 1,440 \| 2 ▲ +\| no ▲ +\|/);
  });

  it('is unknown without a load-balancer probe', async () => {
    const r = await report([http('shop-health')], {});
    expect(r.checklist.loadBalancer).toEqual([]);
    expect(item(r)?.status).toBe('unknown');
  });
});
