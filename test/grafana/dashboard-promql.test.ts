import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

// What the dashboard's queries answer when vigil runs in several places: two locations probing the
// same target (one sees it down), two instances sharing one PostgreSQL database (each exports the
// same open-incident count). Evaluated by promtool's PromQL unit tests over made-up series: the
// queries as Grafana sends them, every variable at "All".

const ROOT = path.resolve(import.meta.dirname, '../..');

interface Dashboard {
  panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  annotations: { list: Array<{ name: string; expr?: string; datasource?: { type: string } }> };
}
const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'grafana/dashboards/vigil.json'), 'utf8')) as Dashboard;

function exprOf(title: string): string {
  const expr = dashboard.panels.find((p) => p.title === title)?.targets?.[0]?.expr;
  if (expr === undefined) throw new Error(`no panel "${title}"`);
  return substitute(expr);
}

function substitute(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__range', '10m')
    .replace(/\$\{?(probe|kind|location)\}?/g, '.*');
}

// Minute by minute from 0: `web` passes in east and fails in west; `db` passes everywhere; both
// instances report one critical incident open (the same incident, in the shared database).
// East runs web every minute, all passing; west every minute, the last 5 of 10 failing.
const SERIES = [
  ['vigil_probe_success{probe="web",kind="http",location="east",instance="a"}', '1x10'],
  ['vigil_probe_success{probe="web",kind="http",location="west",instance="b"}', '1x5 0x5'],
  ['vigil_probe_success{probe="db",kind="sql",location="east",instance="a"}', '1x10'],
  ['vigil_probe_success{probe="db",kind="sql",location="west",instance="b"}', '1x10'],
  ['vigil_probe_runs_total{probe="web",kind="http",location="east",instance="a",outcome="success"}', '0+1x10'],
  ['vigil_probe_runs_total{probe="web",kind="http",location="east",instance="a",outcome="failure"}', '0x10'],
  ['vigil_probe_runs_total{probe="web",kind="http",location="west",instance="b",outcome="success"}', '0+1x5 5x5'],
  ['vigil_probe_runs_total{probe="web",kind="http",location="west",instance="b",outcome="failure"}', '0x5 1+1x4'],
  ['vigil_probe_last_success_timestamp_seconds{probe="web",kind="http",location="east",instance="a"}', '0+60x10'],
  ['vigil_probe_last_success_timestamp_seconds{probe="web",kind="http",location="west",instance="b"}', '0+60x5 300x5'],
  ['vigil_probe_last_success_timestamp_seconds{probe="db",kind="sql",location="west",instance="b"}', '0x10'],
  ['vigil_incidents_open{severity="critical",instance="a"}', '0x4 1x6'],
  ['vigil_incidents_open{severity="critical",instance="b"}', '0x4 1x6'],
  ['vigil_incidents_open{severity="warning",instance="a"}', '0x10'],
  ['vigil_incidents_open{severity="warning",instance="b"}', '0x10'],
];

const dir = mkdtempSync(path.join(tmpdir(), 'vigil-promql-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs promtool's unit test of `cases` over SERIES; the failures promtool names, or '' when all pass. */
function promtool(cases: Array<{ expr: string; eval_time: string; exp_samples: Array<{ labels: string; value: number }> }>): string {
  const file = path.join(dir, 'queries.test.yml');
  writeFileSync(
    file,
    stringify({
      evaluation_interval: '1m',
      tests: [{ interval: '1m', input_series: SERIES.map(([series, values]) => ({ series, values })), promql_expr_test: cases }],
    }),
  );
  try {
    execFileSync('promtool', ['test', 'rules', file], { stdio: 'pipe', encoding: 'utf8' });
    return '';
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err);
  }
}

describe('dashboard queries over several locations and instances', () => {
  it('shows a probe DOWN when one location sees it fail, and which location', () => {
    expect(
      promtool([
        {
          expr: exprOf('Probe status'),
          eval_time: '8m',
          exp_samples: [
            { labels: '{probe="web",kind="http"}', value: 0 },
            { labels: '{probe="db",kind="sql"}', value: 1 },
          ],
        },
        {
          expr: exprOf('Probe status per location'),
          eval_time: '8m',
          exp_samples: [
            { labels: '{probe="web",kind="http",location="east"}', value: 1 },
            { labels: '{probe="web",kind="http",location="west"}', value: 0 },
            { labels: '{probe="db",kind="sql",location="east"}', value: 1 },
            { labels: '{probe="db",kind="sql",location="west"}', value: 1 },
          ],
        },
      ]),
    ).toBe('');
  });

  it('counts an incident once however many instances export it', () => {
    expect(
      promtool([
        {
          expr: exprOf('Open incidents'),
          eval_time: '8m',
          exp_samples: [
            { labels: '{severity="critical"}', value: 1 },
            { labels: '{severity="warning"}', value: 0 },
          ],
        },
      ]),
    ).toBe('');
    // The old query counted it twice: the check above can fail.
    const twice = [
      { labels: '{severity="critical"}', value: 2 },
      { labels: '{severity="warning"}', value: 0 },
    ];
    expect(promtool([{ expr: 'sum by (severity) (vigil_incidents_open)', eval_time: '8m', exp_samples: twice }])).toBe('');
  });

  it('gives uptime per probe over the range and the time since its last success', () => {
    // At 9m over 10m: east 9 passed of 9; west 5 passed (runs 1-5), 4 failed (increase from 5m to 9m).
    expect(
      promtool([
        { expr: exprOf('Uptime over the range'), eval_time: '9m', exp_samples: [{ labels: '{probe="web"}', value: 14 / 18 }] },
        // db never passed (timestamp 0): left out. web last passed at 9 min in east: 0 s ago at 9 min.
        { expr: exprOf('Time since the last success'), eval_time: '9m', exp_samples: [{ labels: '{probe="web",kind="http"}', value: 0 }] },
      ]),
    ).toBe('');
  });

  it('annotates the time incidents were open, once per severity', () => {
    const annotation = dashboard.annotations.list.find((a) => a.name === 'Incidents');
    expect(annotation?.datasource?.type).toBe('prometheus');
    expect(
      promtool([
        { expr: substitute(annotation!.expr!), eval_time: '2m', exp_samples: [] },
        { expr: substitute(annotation!.expr!), eval_time: '6m', exp_samples: [{ labels: '{severity="critical"}', value: 1 }] },
      ]),
    ).toBe('');
  });
});
