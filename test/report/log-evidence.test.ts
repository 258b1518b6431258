import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { type ProbeDefinition, probers } from '../../src/probers/index.js';
import { renderReportHtml } from '../../src/report/index.js';
import type { RollupBucket, ValueAggregate } from '../../src/store/index.js';
import { reportOver } from '../helpers/report-window.js';

// Log probes as checklist evidence, through the report to the scorecard: a triggered log-ingestion
// definition feeds three sections at once, log-query definitions the section their `checklist` names.

const NOW = Date.UTC(2026, 10, 26, 12);

function def(kind: 'log-ingestion' | 'log-query', id: string, fields: Record<string, unknown>): ProbeDefinition {
  const schema = definitionSchema(probers[kind].schema);
  return Value.Default(schema, { id, kind, schedule: '*/5 * * * *', ...fields }) as ProbeDefinition;
}

const audit = def('log-ingestion', 'audit', {
  backend: 'loki',
  url: 'http://loki:3100',
  streamLabels: { app: 'orders' },
  trigger: { url: 'https://api.example.com/orders', headers: { 'X-Request-Id': '{{canary}}' } },
  expect: { fields: ['timestamp', 'level', 'request_id'] },
  checklist: 'audit-logging',
});
const query = (id: string, checklist?: string) =>
  def('log-query', id, {
    backend: 'loki',
    url: 'http://loki:3100',
    query: '{app="orders"}',
    window: '1h',
    expect: { max: 0 },
    ...(checklist ? { checklist } : {}),
  });

const agg = (values: number[]): ValueAggregate => ({
  min: Math.min(...values),
  max: Math.max(...values),
  last: values.at(-1)!,
  sum: values.reduce((a, b) => a + b, 0),
  count: values.length,
});

const report = (probes: ProbeDefinition[], failures: Record<string, number>, values: Record<string, Record<string, ValueAggregate>> = {}) =>
  reportOver(probes, { now: NOW, runs: 100, failures, values });

describe('report: log probes as checklist evidence', () => {
  it('one triggered log-ingestion definition lands in logIngestion, auditLogging and structuredLogging', async () => {
    const r = await report(
      [audit],
      { audit: 0 },
      { audit: { fields_ok: agg(Array(100).fill(1)), ingestion_latency_ms: { ...agg([800]), p95: 900 } } },
    );
    expect(r.checklist.logIngestion.map((e) => e.probeId)).toEqual(['audit']);
    expect(r.checklist.auditLogging).toEqual([{ probeId: 'audit', target: 'loki http://loki:3100', runs: 100, failures: 0, ok: true }]);
    expect(r.checklist.structuredLogging).toEqual([
      { probeId: 'audit', target: 'loki http://loki:3100', runs: 100, failures: 0, ok: true },
    ]);
    const status = (id: string) => r.scorecard.items.find((i) => i.id === id)?.status;
    expect(status('audit-logging')).toBe('pass');
    expect(status('structured-logging')).toBe('pass');
  });

  it('a line without the fields breaks structured logging but not the audit trail', async () => {
    const fields = agg([...Array(97).fill(1), 0, 0, 0]);
    const r = await report([audit], { audit: 3 }, { audit: { fields_ok: fields } });
    expect(r.checklist.structuredLogging[0]).toMatchObject({ runs: 100, failures: 3, ok: false });
    expect(r.scorecard.items.find((i) => i.id === 'structured-logging')?.status).toBe('fail');
  });

  it('log-query definitions land in the section their checklist names, and decide secrets-not-in-logs', async () => {
    const r = await report([query('no-pii', 'secrets-not-in-logs'), query('retention', 'log-retention'), query('review')], { 'no-pii': 1 });
    expect(r.checklist.secretsInLogs).toEqual([{ probeId: 'no-pii', target: 'loki http://loki:3100', runs: 100, failures: 1, ok: false }]);
    expect(r.checklist.logRetention.map((e) => e.probeId)).toEqual(['retention']);
    const secrets = r.scorecard.items.find((i) => i.id === 'secrets-not-in-logs')!;
    expect(secrets.status).toBe('fail');
    expect(r.scorecard.gaps).toContain('secrets-not-in-logs');
  });

  it("charts a log query's count day by day (each day's highest), a day without runs as a gap", async () => {
    const DAY = 86_400_000;
    const start = NOW - 3 * DAY - (NOW % DAY);
    const day = (n: number, count: number[] | null): RollupBucket => ({
      probeId: 'failed-logins',
      period: 'day',
      start: start + n * DAY,
      runs: count === null ? 0 : count.length,
      failures: 0,
      values: count === null ? {} : { count: agg(count) },
      codes: {},
    });
    const r = await reportOver([query('failed-logins'), audit], {
      now: NOW,
      runs: 7,
      days: { 'failed-logins': [day(0, [2, 9, 4]), day(1, null), day(2, [0, 1, 0, 3])] },
    });
    const logins = r.probes.find((p) => p.id === 'failed-logins')!;
    expect(logins.daily.map((d) => d.values)).toEqual([{ count: 9 }, { count: null }, { count: 3 }]);
    // Kinds that chart nothing carry no daily values.
    expect(r.probes.find((p) => p.id === 'audit')!.daily).toEqual([]);
    const html = renderReportHtml(r).body;
    expect(html).toContain('failed-logins: daily highest count');
    expect(html).toContain('3 points, 1 without data; highest 9');
  });
});
