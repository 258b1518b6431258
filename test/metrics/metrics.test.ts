import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { createMetrics, FastRegistry } from '../../src/metrics/index.js';
import { isProbeKind, type ProbeDefinition, proberFor, probers } from '../../src/probers/index.js';
import type { RunRecord } from '../../src/store/index.js';
import { freePort } from '../helpers/workspace.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Every example definition shipped in probes/examples, with schema defaults, one per kind at least. */
function examples(): ProbeDefinition[] {
  const dir = path.join(ROOT, 'probes/examples');
  const defs: ProbeDefinition[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const item of parse(readFileSync(path.join(dir, file), 'utf8')) as Array<Record<string, unknown>>) {
      if (!isProbeKind(item.kind)) throw new Error(`${file}: unknown kind ${String(item.kind)}`);
      defs.push(Value.Default(definitionSchema(proberFor(item.kind).schema), structuredClone(item)) as ProbeDefinition);
    }
  }
  return defs;
}

function setup(processMetrics = true) {
  const registry = new FastRegistry();
  const metrics = createMetrics({ registry, durationBuckets: [0.05, 0.25, 1, 5, 30], processMetrics });
  const defs = examples();
  metrics.setProbes(defs.map((d) => ({ id: d.id, kind: d.kind, values: proberFor(d.kind).values(d as never) })));
  return { registry, metrics, defs };
}

function run(def: ProbeDefinition, ok: boolean, values: Record<string, number>): RunRecord {
  return { probeId: def.id, kind: def.kind, startedAt: 1_790_000_000_000, durationMs: 420, ok, values, attempts: 1, trigger: 'schedule' };
}

describe('metrics', () => {
  it('exposes every series of every probe kind from the start, values NaN until a run', async () => {
    const { registry, defs } = setup();
    const text = await registry.metrics();
    const kinds = new Set(defs.map((d) => d.kind));
    // Every registered kind ships an example, so every kind's series are checked here.
    expect(kinds).toEqual(new Set(Object.keys(probers)));
    for (const d of defs) {
      const labels = `probe="${d.id}",kind="${d.kind}"`;
      expect(text).toContain(`vigil_probe_success{${labels}} 0`);
      expect(text).toContain(`vigil_probe_runs_total{${labels},outcome="failure"} 0`);
      expect(text).toContain(`vigil_probe_duration_seconds_count{${labels}} 0`);
      expect(text).toContain(`vigil_probe_last_run_timestamp_seconds{${labels}} 0`);
      for (const name of proberFor(d.kind).values(d as never)) expect(text).toContain(`vigil_probe_value{${labels},name="${name}"} NaN`);
    }
  });

  it('updates the series from runs and drops a probe that is no longer configured', async () => {
    const { registry, metrics, defs } = setup();
    const tls = defs.find((d) => d.kind === 'tls')!;
    const k6 = defs.find((d) => d.kind === 'k6')!;
    metrics.observeRun(run(tls, false, { days_remaining: 9, chain_valid: 1 }));
    metrics.observeRun(run(k6, true, { p95_ms: 4120.5, error_rate: 0.002 }));
    let text = await registry.metrics();
    expect(text).toContain(`vigil_probe_success{probe="${tls.id}",kind="tls"} 0`);
    expect(text).toContain(`vigil_probe_value{probe="${tls.id}",kind="tls",name="days_remaining"} 9`);
    expect(text).toContain(`vigil_probe_value{probe="${tls.id}",kind="tls",name="handshake_ms"} NaN`);
    expect(text).toContain(`vigil_probe_runs_total{probe="${tls.id}",kind="tls",outcome="failure"} 1`);
    expect(text).toContain(`vigil_probe_value{probe="${k6.id}",kind="k6",name="p95_ms"} 4120.5`);
    expect(text).toContain(`vigil_probe_duration_seconds_bucket{probe="${k6.id}",kind="k6",le="0.25"} 0`);
    expect(text).toContain(`vigil_probe_duration_seconds_bucket{probe="${k6.id}",kind="k6",le="1"} 1`);
    expect(text).toContain(`vigil_probe_last_success_timestamp_seconds{probe="${k6.id}",kind="k6"} 1790000000.42`);

    metrics.setProbes([{ id: k6.id, kind: 'k6', values: ['p95_ms'] }]);
    text = await registry.metrics();
    expect(text).not.toContain(`probe="${tls.id}"`);
    // Kept: the same probe keeps its counts; a value no longer reported is gone.
    expect(text).toContain(`vigil_probe_runs_total{probe="${k6.id}",kind="k6",outcome="success"} 1`);
    expect(text).not.toContain('name="error_rate"');
  });

  it('escapes label values', async () => {
    const registry = new FastRegistry();
    const metrics = createMetrics({ registry, durationBuckets: [1], processMetrics: false });
    metrics.setProbes([{ id: 'a"b\\c', kind: 'http', values: ['status'] }]);
    expect(await registry.metrics()).toContain('vigil_probe_success{probe="a\\"b\\\\c",kind="http"} 0');
  });

  it('hands a large exposition out in pieces that join to the text, all of one instant', async () => {
    const registry = new FastRegistry();
    const metrics = createMetrics({ registry, durationBuckets: [0.05, 0.25, 1, 5, 30], processMetrics: false });
    const ids = Array.from({ length: 3_000 }, (_, i) => `p${i}`);
    const values = ['status', 'latency_ms'];
    metrics.setProbes(ids.map((id) => ({ id, kind: 'http', values })));
    const ran = (id: string, ok: boolean, latency: number): RunRecord => ({
      probeId: id,
      kind: 'http',
      startedAt: 1_790_000_000_000,
      durationMs: 120,
      ok,
      values: { status: ok ? 200 : 503, latency_ms: latency },
      attempts: 1,
      trigger: 'schedule',
    });
    for (const id of ids) metrics.observeRun(ran(id, true, 12.5));
    const before = await registry.metrics();

    const pieces = (await registry.exposition())[Symbol.iterator]();
    let text = pieces.next().value ?? '';
    // Runs end, and a reload drops half the probes, while the scrape is being sent.
    for (const id of ids) metrics.observeRun(ran(id, false, 999));
    metrics.setProbes(ids.slice(0, 1_500).map((id) => ({ id, kind: 'http', values })));
    let count = 1;
    for (let next = pieces.next(); !next.done; next = pieces.next()) {
      text += next.value;
      count++;
    }
    expect(count).toBeGreaterThan(10);
    expect(text).toBe(before);

    const after = await registry.metrics();
    expect(after).toContain('vigil_probe_success{probe="p0",kind="http"} 0');
    expect(after).toContain('vigil_probe_value{probe="p0",kind="http",name="latency_ms"} 999');
    expect(after).not.toContain('probe="p2999"');
    // The JSON form (prom-client's getMetricsAsJSON) reads the same numbers.
    const json = await registry.getMetricsAsJSON();
    const runs = json.find((m) => m.name === 'vigil_probe_runs_total');
    expect(runs?.values).toContainEqual({
      metricName: 'vigil_probe_runs_total',
      labels: { probe: 'p0', kind: 'http', outcome: 'failure' },
      value: 1,
    });
  });

  it('is valid exposition text by promtool, and real Prometheus scrapes it', async () => {
    // promtool lints names, types and format, exiting non-zero on any problem. (prom-client's own
    // process metrics fail its lint — `nodejs_active_handles_total` is a gauge — so they are left out here.)
    const lint = setup(false);
    lint.metrics.observeRun(run(lint.defs[0]!, true, { status: 200 }));
    execFileSync('promtool', ['check', 'metrics'], { input: await lint.registry.metrics() });

    const { registry, metrics, defs } = setup();
    metrics.observeRun(run(defs[0]!, true, { status: 200 }));

    const server = createServer(async (_req, res) => {
      res.setHeader('content-type', registry.contentType);
      res.end(await registry.metrics());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-prom-'));
    const promPort = await freePort();
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: vigil\n    static_configs: [{ targets: ["${target}"] }]\n`,
    );
    const prom = spawn(
      'prometheus',
      [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: 'ignore' },
    );
    try {
      const query = async (q: string) => {
        const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
        return (await res.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      };
      let series: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
      for (let i = 0; i < 100 && series.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 200));
        series = await query('vigil_probe_success').then(
          (r) => r.data.result,
          () => [],
        );
      }
      expect(series.length).toBe(defs.length);
      const up = await query('up{job="vigil"}');
      expect(up.data.result[0]?.value[1]).toBe('1');
      const perKind = await query('count by (kind) (vigil_probe_value)');
      expect(perKind.data.result.map((r) => r.metric.kind).sort()).toEqual(Object.keys(probers).sort());
      const ran = await query(`vigil_probe_runs_total{probe="${defs[0]!.id}",outcome="success"}`);
      expect(ran.data.result[0]?.value[1]).toBe('1');
    } finally {
      prom.kill('SIGKILL');
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
