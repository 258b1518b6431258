import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { type buildReport, renderReportHtml, renderReportMarkdown } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's firewall item ("SSH to a database server from the internet should time out or
// reject"): tcp probes with refused: true are its evidence, through the report to the scorecard.

const NOW = Date.UTC(2026, 10, 26, 12);

const tcp = (id: string, fields: Record<string, unknown>) =>
  ({
    id,
    kind: 'tcp',
    labels: {},
    host: 'db.example.com',
    port: 22,
    tls: false,
    steps: [],
    refused: false,
    ipProtocol: 'auto',
    ...fields,
  }) as unknown as ProbeDefinition;

/** A report over probes whose windows hold `runs` runs and `failures` failures each. */
const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 1_440) =>
  reportOver(probes, { now: NOW, runs, failures, code: 'REACHABLE' });

const firewallItem = (r: Awaited<ReturnType<typeof buildReport>>) => r.scorecard.items.find((i) => i.id === 'firewall')!;

describe('report: the firewall checklist item', () => {
  it('takes only refused tcp probes as evidence, and passes when each stayed closed all window', async () => {
    const r = await report(
      [
        tcp('db-ssh', { refused: true }),
        tcp('smtp-banner', { port: 25, steps: [{ expect: '^220' }] }),
        tcp('db-pg', { port: 5432, refused: true }),
      ],
      {},
    );
    expect(r.checklist.firewall).toEqual([
      { probeId: 'db-pg', target: 'db.example.com:5432', runs: 1_440, failures: 0, ok: true },
      { probeId: 'db-ssh', target: 'db.example.com:22', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(firewallItem(r)).toMatchObject({
      tier: 'important',
      status: 'pass',
      evidence: [
        { source: 'probe', detail: 'db.example.com:5432 stayed closed (refused or timed out) in all 1440 runs', probes: ['db-pg'] },
        { source: 'probe', detail: 'db.example.com:22 stayed closed (refused or timed out) in all 1440 runs', probes: ['db-ssh'] },
      ],
    });
  });

  it('fails when any of them was reachable in the window, saying how often', async () => {
    const r = await report([tcp('db-ssh', { refused: true }), tcp('db-pg', { port: 5432, refused: true })], { 'db-ssh': 3 });
    expect(firewallItem(r).status).toBe('fail');
    expect(firewallItem(r).evidence).toContainEqual({
      source: 'probe',
      detail: 'db.example.com:22 failed the closed-port check (open from vigil, or the check could not run) in 3 of 1440 runs',
      probes: ['db-ssh'],
    });
  });

  it('is not a pass without runs, and says "no evidence" when no probe checks a port', async () => {
    const idle = await report([tcp('db-ssh', { refused: true })], {}, 0);
    expect(idle.checklist.firewall).toEqual([{ probeId: 'db-ssh', target: 'db.example.com:22', runs: 0, failures: 0, ok: null }]);
    expect(firewallItem(idle).status).toBe('fail');

    const none = await report([tcp('smtp-banner', { port: 25 })], {});
    expect(none.checklist.firewall).toEqual([]);
    expect(firewallItem(none)).toMatchObject({
      status: 'unknown',
      evidence: [{ source: 'none', detail: expect.stringMatching(/^no probe watches this yet/) }],
    });
  });

  it('shows the section in the markdown and HTML reports', async () => {
    const r = await report([tcp('db-ssh', { refused: true })], { 'db-ssh': 2 });
    const md = renderReportMarkdown(r);
    expect(md).toContain('### Firewall (ports that must stay closed: refused or timed out)');
    expect(md).toMatch(/\| db-ssh \| db\.example\.com:22 \| 1,440 \| 2 ▲ +\| no ▲ +\|/);
    const html = renderReportHtml(r).body;
    expect(html).toContain('Firewall (ports that must stay closed: refused or timed out)');
    expect(html).toContain('db.example.com:22');

    const empty = renderReportMarkdown(await report([], {}));
    expect(empty).toContain('No firewall checks.');
  });
});
