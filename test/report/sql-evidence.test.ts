import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { type buildReport, renderReportMarkdown } from '../../src/report/index.js';
import { reportOver } from '../helpers/report-window.js';

// The checklist's "the database replicates" and "staging credentials cannot reach production":
// sql probes with evidence: replication and with expectError: true, through the report to the scorecard.

const NOW = Date.UTC(2026, 10, 26, 12);

const sqlProbe = (id: string, fields: Record<string, unknown>) =>
  ({
    id,
    kind: 'sql',
    labels: {},
    driver: 'postgres',
    url: 'postgres://vigil:s3cret@db.example.com:5432/shop',
    expectError: false,
    readOnly: true,
    tls: false,
    insecure: false,
    ...fields,
  }) as unknown as ProbeDefinition;

const report = (probes: ProbeDefinition[], failures: Record<string, number>, runs = 1_440) =>
  reportOver(probes, { now: NOW, runs, failures });

const item = (r: Awaited<ReturnType<typeof buildReport>>, id: string) => r.scorecard.items.find((i) => i.id === id)!;

describe('report: sql probes as checklist evidence', () => {
  const probes = [
    sqlProbe('replica-lag', { url: 'postgres://vigil:s3cret@replica.example.com:5432/shop', query: 'SELECT 1', evidence: 'replication' }),
    sqlProbe('staging-refused', { url: 'postgres://staging:s3cret@db.example.com:5432/shop', expectError: true }),
    sqlProbe('migrations', { query: 'SELECT count(*) FROM schema_migrations', expect: { eq: 42 } }),
  ];

  it('puts evidence: replication under replication, expectError under credentials separation, others nowhere', async () => {
    const r = await report(probes, {});
    expect(r.checklist.replication).toEqual([
      { probeId: 'replica-lag', target: 'postgres://replica.example.com:5432/shop', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(r.checklist.credentialsSeparation).toEqual([
      { probeId: 'staging-refused', target: 'postgres://db.example.com:5432/shop', runs: 1_440, failures: 0, ok: true },
    ]);
    expect(item(r, 'replication')).toMatchObject({ status: 'pass', evidence: [{ source: 'probe', probes: ['replica-lag'] }] });
    expect(item(r, 'credentials-separation')).toMatchObject({
      status: 'pass',
      evidence: [{ source: 'probe', probes: ['staging-refused'] }],
    });
    expect(JSON.stringify(r)).not.toContain('s3cret');
  });

  it('fails the items when a run in the window failed', async () => {
    const r = await report(probes, { 'replica-lag': 4, 'staging-refused': 1 });
    expect(item(r, 'replication').status).toBe('fail');
    expect(item(r, 'credentials-separation')).toMatchObject({
      status: 'fail',
      evidence: [
        {
          detail: 'postgres://db.example.com:5432/shop let the other environment in, or the check could not reach it in 1 of 1440 runs',
        },
      ],
    });
    expect(renderReportMarkdown(r)).toContain("### Credentials separation (another environment's login refused)");
  });
});
