import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { errorText, type K6Spec, k6, parseSummary } from '../../src/probers/k6.js';
import type { ProbeBase } from '../../src/probers/types.js';
import { probeContext } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE_K6 = path.resolve(here, '../helpers/fake-k6.mjs');
const REPO = path.resolve(here, '../..');

let probesDir: string;
let work: string;

beforeAll(async () => {
  await chmod(FAKE_K6, 0o755);
  work = await mkdtemp(path.join(os.tmpdir(), 'vigil-k6-test-'));
  probesDir = path.join(work, 'probes');
  await mkdir(path.join(probesDir, 'load'), { recursive: true });
  await writeFile(path.join(probesDir, 'load', 'smoke.js'), 'export default function () {}\n');
  await writeFile(
    path.join(probesDir, 'load', 'broken.js'),
    ['// FAKE_K6_MODE=exception', "import http from 'k6/http';", '', 'export default function () {', '  foo();', '}', ''].join('\n'),
  );
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

type Def = ProbeBase & K6Spec;

function def(overrides: Partial<Def> = {}): Def {
  return {
    id: 'api-10x',
    kind: 'k6',
    schedule: '0 4 * * *',
    timeout: '15m',
    retry: { count: 0, delay: '10s' },
    labels: {},
    locations: [],
    script: 'load/smoke.js',
    env: {},
    binary: FAKE_K6,
    args: [],
    stopGrace: '5s',
    ...overrides,
  };
}

function run(spec: Def, timeoutMs = 10_000) {
  return k6.probe(spec, probeContext(timeoutMs, { probesDir }));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** An orphan killed with its group is reaped by PID 1, which may take a moment; it must not survive. */
const gone = (pid: number) => waitFor(`process ${pid} to be gone`, () => !alive(pid), 5_000);

describe('k6 prober', () => {
  it('passes and reports the values of the summary export', async () => {
    const echo = path.join(work, 'echo-pass.json');
    const res = await run(def({ env: { FAKE_K6_MODE: 'pass', FAKE_K6_ECHO: echo } }));
    expect(res.ok, res.message).toBe(true);
    expect(res.values).toMatchObject({
      p95_ms: 6927.50588999999,
      p99_ms: 12966.030854999995,
      error_rate: 0.16555798252581413,
      rps: 68.43763613781972,
      iterations: 3226,
      checks_pass_rate: 0.8344420174741859,
      vus_max: 300,
    });
    expect(res.values.duration_s).toBeGreaterThan(0);
    const summary = res.details?.summary as ReturnType<typeof parseSummary>;
    expect(summary?.thresholds).toEqual([
      { metric: 'http_req_duration', threshold: 'p(95)<3000', ok: true, value: 6927.50588999999 },
      { metric: 'http_req_failed', threshold: 'rate<0.05', ok: true, value: 0.16555798252581413 },
    ]);
    expect(summary?.checks).toContainEqual({ path: '::Claim Entry::claim entry success', passes: 0, fails: 3332 });
    expect(Object.keys(summary?.metrics ?? {})).not.toContain('http_req_duration{expected_response:true}');
    // The export went to a private temp dir that is gone once the run is over.
    const called = JSON.parse(await readFile(echo, 'utf8'));
    expect(path.basename(path.dirname(called.summaryExport))).toMatch(/^vigil-k6-/);
    expect(existsSync(path.dirname(called.summaryExport))).toBe(false);
  });

  it('passes -e variables, extra args and the script to k6 run', async () => {
    const echo = path.join(work, 'echo-env.json');
    const res = await run(
      def({
        env: { TARGET: 'https://api.example.com', MULTIPLIER: '10', GREETING: 'a b=c', FAKE_K6_ECHO: echo },
        args: ['--tag', 'team=core'],
      }),
    );
    expect(res.ok, res.message).toBe(true);
    const called = JSON.parse(await readFile(echo, 'utf8'));
    expect(called.env).toEqual({ TARGET: 'https://api.example.com', MULTIPLIER: '10', GREETING: 'a b=c', FAKE_K6_ECHO: echo });
    expect(called.argv[0]).toBe('run');
    expect(called.argv[1]).toMatch(/^--summary-export=.*summary\.json$/);
    expect(called.argv).toContain('-e');
    expect(called.argv.slice(-3)).toEqual(['--tag', 'team=core', path.join(probesDir, 'load', 'smoke.js')]);
    expect(called.cwd).toBe(probesDir);
  });

  it('reads the k6 v1 export without thresholds or checks', async () => {
    const res = await run(def({ env: { FAKE_K6_FIXTURE: 'v1' } }));
    expect(res.ok, res.message).toBe(true);
    expect(res.values).toMatchObject({ p95_ms: 7.593239699999984, error_rate: 0, rps: 528.3735309289374, iterations: 1587, vus_max: 15 });
    expect(res.values).not.toHaveProperty('p99_ms');
    expect(res.values).not.toHaveProperty('checks_pass_rate');
  });

  it('reads the --new-machine-readable-summary export', async () => {
    const res = await run(def({ args: ['--new-machine-readable-summary'] }));
    expect(res.ok, res.message).toBe(true);
    expect(res.values).toMatchObject({ iterations: 1, checks_pass_rate: 1 });
    expect((res.details?.summary as { checks: unknown[] } | undefined)?.checks).toEqual([{ path: '::TRUE is TRUE', passes: 1, fails: 0 }]);
  });

  it('fails with THRESHOLDS on exit 99, naming each crossed threshold and its measured value', async () => {
    const res = await run(def({ env: { FAKE_K6_MODE: 'thresholds' } }));
    expect(res.ok).toBe(false);
    expect(res.code).toBe('THRESHOLDS');
    expect(res.message).toBe('http_req_duration p(95)<3000 crossed: p95 6928 ms; http_req_failed rate<0.05 crossed: rate 0.1656 (16.56%)');
    expect(res.values.p95_ms).toBe(6927.50588999999);
    expect(res.details?.exitCode).toBe(99);
    expect(res.details?.stderr).toContain('have been crossed');
  });

  it('fails with ASSERTION when k6 passes but maxP95 or maxErrorRate is crossed', async () => {
    const slow = await run(def({ maxP95: '5s' }));
    expect(slow).toMatchObject({ ok: false, code: 'ASSERTION', message: 'p95 6928 ms is over maxP95 5.00s' });
    const errors = await run(def({ maxP95: '10s', maxErrorRate: 0.05 }));
    expect(errors).toMatchObject({ ok: false, code: 'ASSERTION', message: 'error rate 0.1656 (16.56%) is over maxErrorRate 0.05' });
    const fine = await run(def({ maxP95: '10s', maxErrorRate: 0.2 }));
    expect(fine.ok, fine.message).toBe(true);
  });

  it('fails with SCRIPT_ERROR on exit 107, quoting the exception from stderr', async () => {
    const res = await run(def({ script: 'load/broken.js' }));
    expect(res.code).toBe('SCRIPT_ERROR');
    expect(res.message).toContain('k6 script load/broken.js threw an exception: ReferenceError: foo is not defined at default (file://');
    expect(res.message).toContain('/load/broken.js:5:3(12)) (script exception)');
    expect(res.message).not.toContain('running (');
    expect(res.values).not.toHaveProperty('p95_ms');
  });

  it.each([
    ['abort', 'ABORTED', 'called test.abort(): test aborted: TARGET answered 503'],
    ['fail', 'FAILED', 'marked the test as failed: test run was marked as failed'],
    ['config', 'CONFIG', 'k6 rejected the configuration (exit 104): invalid duration "forever"'],
    ['exit:105', 'SIGNAL', 'stopped by a signal from outside vigil (exit 105)'],
    ['exit:100', 'K6_ERROR', 'k6 exited with 100 (setup() timed out): fake k6 failure with exit code 100'],
    ['exit:3', 'K6_ERROR', 'k6 exited with 3: fake k6 failure with exit code 3'],
  ])('maps mode %s to %s', async (mode, code, message) => {
    const res = await run(def({ env: { FAKE_K6_MODE: mode } }));
    expect(res.ok).toBe(false);
    expect(res.code).toBe(code);
    expect(res.message).toContain(message);
  });

  it('keeps only a bounded stderr tail and does not block on a flood of output', async () => {
    const res = await run(def({ env: { FAKE_K6_MODE: 'noisy' } }));
    expect(res.code).toBe('K6_ERROR');
    expect(res.message).toBe('k6 exited with 103 (engine error): engine failed after the flood');
    expect(Buffer.byteLength(res.details?.stderr as string)).toBeLessThanOrEqual(4096);
    expect(res.details?.stderr).toMatch(/^running \(0m\d+s\)/);
  });

  it('stops a hanging run at the deadline with SIGTERM and leaves no process behind', async () => {
    const pids = path.join(work, 'pids-hang.json');
    const started = Date.now();
    const res = await run(def({ env: { FAKE_K6_MODE: 'hang', FAKE_K6_PIDS: pids } }), 1_500);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(res.code).toBe('TIMEOUT');
    expect(res.message).toMatch(/^k6 run timed out after 1\.\d\ds: stopped at the deadline \(partial results kept\)$/);
    expect(res.values.p95_ms).toBe(7.593239699999984);
    const { pid, child } = JSON.parse(await readFile(pids, 'utf8'));
    await gone(pid);
    await gone(child);
  });

  it('kills the whole process group with SIGKILL when k6 ignores SIGTERM', async () => {
    const pids = path.join(work, 'pids-stubborn.json');
    const started = Date.now();
    const res = await run(def({ env: { FAKE_K6_MODE: 'stubborn', FAKE_K6_PIDS: pids }, stopGrace: '300ms' }), 1_500);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1_700);
    expect(took).toBeLessThan(4_000);
    expect(res.code).toBe('TIMEOUT');
    expect(res.message).toMatch(/^k6 run timed out after 1\.\d\ds: killed with SIGKILL after 300ms grace$/);
    const { pid, child } = JSON.parse(await readFile(pids, 'utf8'));
    await gone(pid);
    await gone(child);
  });

  it('does not start k6 once the deadline has passed', async () => {
    const echo = path.join(work, 'echo-late.json');
    const ctx = probeContext(1_000, { probesDir });
    const controller = new AbortController();
    controller.abort();
    const res = await k6.probe(def({ env: { FAKE_K6_ECHO: echo } }), { ...ctx, signal: controller.signal });
    expect(res.code).toBe('TIMEOUT');
    expect(existsSync(echo)).toBe(false);
  });

  it('fails with K6_MISSING when the binary is not there', async () => {
    const onPath = await run(def({ binary: 'k6-not-installed-here' }));
    expect(onPath.code).toBe('K6_MISSING');
    expect(onPath.message).toContain('k6 binary "k6-not-installed-here" not found on PATH');
    expect(onPath.message).toContain('set binary: to its full path');
    const byPath = await run(def({ binary: '/nonexistent/bin/k6' }));
    expect(byPath.code).toBe('K6_MISSING');
    expect(byPath.message).toContain('not found at /nonexistent/bin/k6');
  });

  it('fails with CONFIG when the script is missing', async () => {
    const res = await run(def({ script: 'load/nope.js' }));
    expect(res.code).toBe('CONFIG');
    expect(res.message).toContain(`k6 script not found: ${path.join(probesDir, 'load', 'nope.js')}`);
  });

  it('rejects scripts outside probes/ and a --summary-export of its own', async () => {
    expect(k6.check?.(def())).toEqual([]);
    expect(k6.check?.(def({ script: '../secrets/x.js' }))).toEqual([
      { path: 'script', message: 'expected a path inside probes/ (no absolute path, no ".."), got "../secrets/x.js"' },
    ]);
    expect(k6.check?.(def({ script: 'load/../../x.js' }))).toHaveLength(1);
    expect(k6.check?.(def({ script: '/etc/passwd' }))).toHaveLength(1);
    expect(k6.check?.(def({ script: 'load/..hidden.js' }))).toEqual([]);
    expect(k6.check?.(def({ args: ['--summary-export', 'x.json'] }))).toEqual([
      { path: 'args.0', message: 'vigil sets --summary-export itself; remove it from args' },
    ]);
    const res = await run(def({ script: '../outside.js' }));
    expect(res.code).toBe('CONFIG');
  });
});

describe('k6 summary parsing', () => {
  it('reads the shared fixtures', async () => {
    const fixture = async (name: string) => JSON.parse(await readFile(path.join(REPO, 'test/fixtures/k6', name), 'utf8'));
    const classic = parseSummary(await fixture('k6-summary-export.json'));
    expect(classic?.thresholds.filter((t) => !t.ok).map((t) => `${t.metric} ${t.threshold}`)).toEqual([
      'http_req_duration p(95)<3000',
      'http_req_failed rate<0.05',
    ]);
    expect(classic?.checks).toHaveLength(6);
    const v1 = parseSummary(await fixture('k6-summary-export-v1-no-thresholds.json'));
    expect(v1?.metrics.dropped_iterations?.stats.count).toBe(17);
    const fresh = parseSummary(await fixture('k6-new-machine-readable-summary.json'));
    expect(fresh?.metrics.iteration_duration?.stats['p(95)']).toBe(0.123);
    expect(fresh?.metrics.checks?.stats).toMatchObject({ value: 1, passes: 1, fails: 0 });
    expect(parseSummary({ nothing: true })).toBeUndefined();
  });

  it('quotes error log lines and falls back to the last lines', () => {
    const tail = [
      'running (0m01.0s), 10/10 VUs, 9 complete and 0 interrupted iterations',
      'time="2025-01-15T04:00:01Z" level=error msg="GoError: cannot open \\"users.csv\\"\\n\\tat file:///p/s.js:3:1(4)" hint="script exception"',
    ].join('\n');
    expect(errorText(tail)).toBe('GoError: cannot open "users.csv" at file:///p/s.js:3:1(4) (script exception)');
    expect(errorText('ERRO[0001] test aborted: bad at file:///p/s.js:9:14(35)\n')).toBe('test aborted: bad at file:///p/s.js:9:14(35)');
    expect(errorText('a\nb\n\nc\n')).toBe('a | b | c');
  });
});

describe('k6 example definitions', () => {
  it('probes/examples/k6.yaml validates and its scripts exist', async () => {
    const text = await readFile(path.join(REPO, 'probes/examples/k6.yaml'), 'utf8');
    const defs = parse(text) as unknown[];
    expect(defs.length).toBeGreaterThan(0);
    const schema = definitionSchema(k6.schema);
    for (const raw of defs) {
      const value = Value.Convert(schema, Value.Default(schema, structuredClone(raw)));
      expect([...Value.Errors(schema, value)].map((e) => `${e.path} ${e.message}`)).toEqual([]);
      const spec = value as Def;
      expect(k6.check?.(spec)).toEqual([]);
      expect(existsSync(path.join(REPO, 'probes', spec.script)), spec.script).toBe(true);
    }
  });
});
