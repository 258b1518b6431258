import { describe, expect, it } from 'vitest';
import { emptyChecklist } from '../../src/probers/index.js';
import { type AlertingProbe, type ScorecardSetup, scorecard } from '../../src/report/index.js';
import type { ScorecardInput } from '../../src/report/scorecard.js';
import { sampleReport } from '../helpers/report-sample.js';

// The sample's window ends 2026-11-26 12:00 UTC; its drills and canaries pass unless a test says otherwise.
const NOW = Date.parse('2026-11-26T12:00:00Z');

function http(id: string, url: string, over: Partial<AlertingProbe> = {}): AlertingProbe {
  return {
    id,
    kind: 'http',
    url,
    schedule: '* * * * *',
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels: {},
    expect: { status: 200, httpsRedirect: false, maxLatency: '2s' },
    extract: {},
    alert: {
      failures: 2,
      recoveries: 1,
      values: [],
      severity: 'critical',
      channels: ['ops'],
      dependsOn: [],
      policy: 'primary',
      runbook: 'https://wiki.example.com/rb',
    },
    ...over,
  } as AlertingProbe;
}

const SETUP: ScorecardSetup = {
  channels: { ops: 'slack' },
  schedules: { primary: ['alice', 'bob'] },
  escalation: { primary: ['oncall:primary'] },
};

function input(over: Partial<ScorecardInput> = {}): ScorecardInput {
  const { scorecard: _, ...report } = sampleReport();
  report.incidents.notifications.dead = 0;
  report.incidents.mttaMs = 5 * 60_000;
  return {
    report,
    probes: [http('api', 'https://api.example.com/health')],
    setup: SETUP,
    attestations: {
      'secrets-not-in-logs': { status: 'pass', by: 'alice', date: '2026-11-20', evidence: 'gitleaks' },
      'audit-logging': { status: 'pass', by: 'bob', date: '2026-11-20', evidence: 'gateway logs' },
    },
    attestationMaxAgeMs: 90 * 86_400_000,
    now: NOW,
    ...over,
  };
}

const item = (s: ReturnType<typeof scorecard>, id: string) => s.items.find((i) => i.id === id)!;

describe('go/no-go scorecard', () => {
  it('is GO when every critical item passes, with its evidence', () => {
    const s = scorecard(input());
    expect(s.verdict).toBe('GO');
    expect(s.gaps).toEqual([]);
    expect(s.items.map((i) => [i.id, i.tier, i.status])).toEqual([
      ['backup-restore', 'critical', 'pass'],
      ['tls-everywhere', 'critical', 'pass'],
      ['secrets-not-in-logs', 'critical', 'pass'],
      ['audit-logging', 'critical', 'pass'],
      ['alerting', 'critical', 'pass'],
      ['load-test-10x', 'important', 'pass'],
      ['runbooks', 'important', 'pass'],
      ['oncall-rotation', 'important', 'pass'],
      ['centralized-logging', 'important', 'pass'],
      ['firewall', 'important', 'pass'],
      ['cache-persistence', 'important', 'unknown'],
      ['queue-delivery', 'important', 'unknown'],
      ['load-balancer', 'important', 'unknown'],
      ['object-storage', 'important', 'unknown'],
      ['replication', 'important', 'unknown'],
      ['credentials-separation', 'important', 'unknown'],
      ['log-retention', 'important', 'unknown'],
      ['structured-logging', 'important', 'unknown'],
      ['secret-rotation', 'important', 'unknown'],
      ['multi-region-failover', 'nice', 'unknown'],
      ['chaos-testing', 'nice', 'unknown'],
      ['security-scanning', 'nice', 'unknown'],
    ]);
  });

  it('fails TLS for a public plain-http endpoint, but not for a loopback self-check or a redirect check', () => {
    const probes = [
      http('api', 'https://api.example.com/health'),
      http('self', 'http://127.0.0.1:8080/health'),
      http('www', 'http://www.example.com/', { expect: { status: 301, httpsRedirect: true } } as Partial<AlertingProbe>),
    ];
    expect(item(scorecard(input({ probes })), 'tls-everywhere').status).toBe('pass');
    const plain = scorecard(input({ probes: [...probes, http('old', 'http://legacy.example.com/')] }));
    expect(item(plain, 'tls-everywhere')).toMatchObject({ status: 'fail' });
    expect(item(plain, 'tls-everywhere').evidence[0]!.detail).toBe('plain http:// without an httpsRedirect check: old');
    expect(plain).toMatchObject({ verdict: 'NO-GO', gaps: ['tls-everywhere'], advice: 'NO-GO: one critical gap; fix it now.' });
  });

  it('fails alerting when a page was lost or nothing pages, and lists what is short', () => {
    const lost = input();
    lost.report.incidents.notifications.dead = 2;
    expect(item(scorecard(lost), 'alerting').status).toBe('fail');
    const quiet = scorecard(
      input({
        probes: [
          http('api', 'https://api.example.com/health', { expect: { status: 200, httpsRedirect: false } } as Partial<AlertingProbe>),
        ],
      }),
    );
    expect(item(quiet, 'alerting').status).toBe('fail');
    expect(item(quiet, 'alerting').evidence[0]!.detail).toBe('alerts short of that: api (no latency rule)');
  });

  it('lets an attestation decide only what evidence cannot, and never a stale or future one', () => {
    // Evidence says fail (a drill too old): an attestation of pass does not override it.
    const old = input({
      attestations: { 'backup-restore': { status: 'pass', by: 'carol', date: '2026-11-25', evidence: 'manual restore' } },
    });
    old.report.checklist.restoreDrills[0]!.lastSuccessAt = '2026-11-01T03:00:00.000Z';
    const s = scorecard(old);
    expect(item(s, 'backup-restore').status).toBe('fail');
    expect(item(s, 'backup-restore').evidence.map((e) => e.source)).toEqual(['probe', 'attestation']);

    const stale = scorecard(
      input({
        attestations: {
          'secrets-not-in-logs': { status: 'pass', by: 'alice', date: '2026-05-01', evidence: 'scan' },
          'audit-logging': { status: 'pass', by: 'bob', date: '2026-12-25', evidence: 'logs' },
          'chaos-testing': { status: 'fail', by: 'dan', date: '2026-11-10', evidence: 'no game day yet' },
        },
      }),
    );
    expect(item(stale, 'secrets-not-in-logs').status).toBe('unknown');
    expect(item(stale, 'secrets-not-in-logs').evidence[0]!.detail).toMatch(/older than .*not counted/);
    expect(item(stale, 'audit-logging').evidence[0]!.detail).toMatch(/dated in the future: not counted/);
    expect(item(stale, 'chaos-testing').status).toBe('fail');
    expect(stale.gaps).toEqual(['secrets-not-in-logs', 'audit-logging']);
    expect(stale.advice).toBe('NO-GO: 2 critical gaps; delay the launch.');
  });

  it('judges on-call from schedules, escalation and the time to acknowledge', () => {
    const slow = input();
    slow.report.incidents.mttaMs = 40 * 60_000;
    expect(item(scorecard(slow), 'oncall-rotation').status).toBe('fail');
    expect(item(scorecard(input({ setup: { ...SETUP, schedules: {} } })), 'oncall-rotation').status).toBe('fail');
    const pd = scorecard(input({ setup: { channels: { pd: 'pagerduty' }, schedules: {}, escalation: {} } }));
    expect(item(pd, 'oncall-rotation').status).toBe('unknown');
    expect(item(scorecard(input({ setup: { ...SETUP, schedules: { primary: ['alice'] } } })), 'oncall-rotation').status).toBe('fail');
  });

  it('judges secrets-not-in-logs and audit-logging from log probes when any feed them, attestation otherwise', () => {
    const check = (probeId: string, target: string, failures: number) => ({ probeId, target, runs: 24, failures, ok: failures === 0 });
    const judged = input();
    judged.report.checklist.secretsInLogs = [
      check('no-pii', 'loki http://loki:3100', 0),
      check('no-tokens', 'elasticsearch https://es:9200', 2),
    ];
    judged.report.checklist.auditLogging = [check('audit', 'loki http://loki:3100', 0)];
    const s = scorecard(judged);
    // The passing attestation does not outvote a query that found secrets.
    expect(item(s, 'secrets-not-in-logs')).toMatchObject({ status: 'fail' });
    expect(item(s, 'secrets-not-in-logs').evidence.map((e) => e.detail)).toEqual([
      'loki http://loki:3100 found no secrets or personal data in all 24 runs',
      'elasticsearch https://es:9200 found secrets or personal data in the logs, or could not search in 2 of 24 runs',
      'pass by alice: gitleaks',
    ]);
    expect(item(s, 'audit-logging').status).toBe('pass');
    expect(item(s, 'audit-logging').evidence[0]).toEqual({
      source: 'probe',
      detail: 'loki http://loki:3100 found every request in the audit log in time in all 24 runs',
      probes: ['audit'],
    });
    expect(s.gaps).toEqual(['secrets-not-in-logs']);

    const unattested = input({ attestations: {} });
    expect(scorecard(unattested).gaps).toEqual(['secrets-not-in-logs', 'audit-logging']);
    expect(item(scorecard(unattested), 'audit-logging').evidence[0]!.detail).toBe(
      'no probe watches this yet; add one or attest it under report.attestations',
    );
  });

  it('reports unknown, with what would settle it, when no probe watches an item', () => {
    const bare = input({ probes: [] });
    bare.report.checklist = emptyChecklist();
    const s = scorecard(bare);
    expect(item(s, 'backup-restore')).toMatchObject({
      status: 'unknown',
      evidence: [{ source: 'none', detail: 'no probe watches this yet; add one or attest it under report.attestations' }],
    });
    expect(s.gaps).toEqual(['backup-restore', 'tls-everywhere', 'alerting']);
  });
});
