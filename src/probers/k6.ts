import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import type { Clock } from '../lib/clock.js';
import { formatDuration, ms } from '../lib/duration.js';
import { codeOf } from '../lib/errors.js';
import { Duration } from '../lib/schema.js';
import { isFile, scriptEscapes, scriptPathProblem } from '../lib/script-file.js';
import { defineProber, type FailureCode, type ProbeResult, type SpecProblem } from './types.js';

const schema = Type.Object(
  {
    /** The k6 script, relative to the probes folder (`load/api-10x.js`). */
    script: Type.String({ minLength: 1, expected: 'a path to a k6 script inside probes/, e.g. load/api-10x.js' }),
    /** Passed as `-e KEY=VALUE`: the script reads them from `__ENV`. */
    env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), {
      default: {},
      expected: 'a map of environment variable names to strings',
    }),
    /** The k6 executable: a name looked up on PATH, or a path (relative paths resolve against probes/). */
    binary: Type.String({ minLength: 1, default: 'k6', expected: 'a command name or a path to the k6 binary' }),
    /** Extra `k6 run` arguments, placed before the script (e.g. `--summary-trend-stats=…`). */
    args: Type.Array(Type.String(), { default: [], expected: 'a list of extra k6 run arguments' }),
    /** Fails the run (ASSERTION) when http_req_duration p(95) is above this, even if k6 exits 0. */
    maxP95: Type.Optional(Duration()),
    /** Fails the run (ASSERTION) when the http_req_failed rate is above this fraction. */
    maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1, expected: 'a fraction between 0 and 1, e.g. 0.01' })),
    /** After the deadline k6 gets SIGTERM; this long later its whole process group gets SIGKILL. */
    stopGrace: Duration('5s'),
  },
  { additionalProperties: false },
);

/** The kind-specific fields of a `k6` definition. */
export type K6Spec = Static<typeof schema>;

/** One metric of a k6 summary: its flat stats and its thresholds (`true` = the threshold FAILED). */
export interface K6Metric {
  stats: Record<string, number>;
  thresholds: Record<string, boolean>;
}

/** The part of a k6 summary export vigil keeps with the run (`details.summary`). */
export interface K6Summary {
  format: 'summary-export' | 'machine-readable-1';
  metrics: Record<string, K6Metric>;
  thresholds: Array<{ metric: string; threshold: string; ok: boolean; value?: number }>;
  checks: Array<{ path: string; passes: number; fails: number }>;
}

/** Exit codes of `k6 run` (k6's errext/exitcodes) and what each means for a person. */
const EXIT_MEANING: Record<number, string> = {
  97: 'cloud test run failed',
  98: 'cannot get cloud test progress',
  99: 'thresholds crossed',
  100: 'setup() timed out',
  101: 'teardown() timed out',
  102: 'timed out',
  103: 'engine error',
  104: 'invalid configuration',
  105: 'stopped by a signal',
  106: 'cannot start the REST API; another k6 may hold its port, pass --address',
  107: 'script exception',
  108: 'the script called test.abort()',
  109: 'k6 crashed (Go panic)',
  110: 'the script called exec.test.fail()',
  255: 'generic error',
};

const STDERR_TAIL_BYTES = 4096;
const MESSAGE_MAX = 1000;
/** Metrics kept in `details.summary` besides those carrying thresholds. */
const KEPT_METRICS = [
  'http_req_duration',
  'http_req_failed',
  'http_reqs',
  'iterations',
  'iteration_duration',
  'dropped_iterations',
  'checks',
  'vus',
  'vus_max',
  'data_received',
  'data_sent',
];
const MAX_CHECKS = 100;

export const k6 = defineProber({
  schema,
  report: {
    target: (spec) => spec.script,
    // A load run is rare and long: its newest success is the evidence, however old.
    lastSuccess: true,
    evidence(spec, w, targets) {
      const s = w.lastSuccess;
      const p95 = s?.values.p95_ms ?? null;
      const errorRate = s?.values.error_rate ?? null;
      return {
        section: 'loadRuns',
        item: {
          probeId: spec.id,
          script: spec.script,
          lastSuccessAt: s?.at ?? null,
          p95Ms: p95,
          errorRate,
          rps: s?.values.rps ?? null,
          ok:
            s === null
              ? w.runs === 0
                ? null
                : false
              : p95 !== null && p95 <= targets.loadP95Ms && (errorRate ?? 0) <= targets.loadErrorRate,
          runs: w.runs,
          failures: w.failures,
        },
      };
    },
  },
  concurrency: 1,
  // A load run takes minutes; 10 s (the common default) would kill every one of them.
  defaultTimeout: () => '30m',
  // k6 gets its stop grace to write a partial summary, then its group is killed: wait for that.
  abortGraceMs: (spec) => ms(spec.stopGrace) + 1_000,
  values: () => ['p95_ms', 'p99_ms', 'error_rate', 'rps', 'iterations', 'checks_pass_rate', 'vus_max', 'duration_s'],
  check(spec) {
    const problems: SpecProblem[] = [];
    const outside = scriptPathProblem(spec.script);
    if (outside) problems.push(outside);
    spec.args.forEach((arg, i) => {
      if (/^--summary-export(=|$)/.test(arg)) {
        problems.push({ path: `args.${i}`, message: 'vigil sets --summary-export itself; remove it from args' });
      }
    });
    return problems;
  },
  async probe(spec, ctx) {
    const started = ctx.clock.now();
    if (ctx.signal.aborted) return { ok: false, code: 'TIMEOUT', message: 'the deadline passed before k6 could start', values: {} };
    if (scriptEscapes(spec.script)) {
      return { ok: false, code: 'CONFIG', message: `script ${JSON.stringify(spec.script)} is outside probes/`, values: {} };
    }
    const script = path.resolve(ctx.probesDir, spec.script);
    if (!(await isFile(script))) {
      return { ok: false, code: 'CONFIG', message: `k6 script not found: ${script} (script is relative to ${ctx.probesDir})`, values: {} };
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-k6-'));
    try {
      const exportFile = path.join(dir, 'summary.json');
      const args = ['run', `--summary-export=${exportFile}`, ...envArgs(spec.env), ...spec.args, script];
      const binary = spec.binary.includes('/') ? path.resolve(ctx.probesDir, spec.binary) : spec.binary;
      ctx.logger.debug({ binary, script: spec.script }, 'k6 run');
      const run = await runK6(binary, args, { cwd: ctx.probesDir, signal: ctx.signal, clock: ctx.clock, graceMs: ms(spec.stopGrace) });
      const elapsed = ctx.clock.now() - started;
      const summary = run.spawnError ? undefined : await readSummary(exportFile);
      return judge(spec, run, summary, elapsed);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  },
});

function envArgs(env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
}

/** How one k6 process ended. */
interface RunOutcome {
  exitCode: number | null;
  /** The signal that ended the process, when one did. */
  exitSignal: NodeJS.Signals | null;
  /** Set when the binary could not be started at all (ENOENT, EACCES). */
  spawnError?: Error;
  /** What vigil did at the deadline: nothing, SIGTERM, or SIGTERM then SIGKILL. */
  stopped: 'no' | 'SIGTERM' | 'SIGKILL';
  stderrTail: string;
}

/**
 * Runs k6 in its own process group so that everything it starts (browsers, helpers) dies with it.
 * At the deadline the group gets SIGTERM (k6 then stops and still writes its summary), and
 * SIGKILL after the grace period.
 */
function runK6(
  binary: string,
  args: string[],
  opts: { cwd: string; signal: AbortSignal; clock: Clock; graceMs: number },
): Promise<RunOutcome> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(binary, args, { cwd: opts.cwd, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      resolve({
        exitCode: null,
        exitSignal: null,
        spawnError: err instanceof Error ? err : new Error(String(err)),
        stopped: 'no',
        stderrTail: '',
      });
      return;
    }
    const tail = tailBuffer(STDERR_TAIL_BYTES);
    child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
    let stopped: RunOutcome['stopped'] = 'no';
    let killTimer: ReturnType<Clock['setTimeout']> | undefined;
    const signalGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    const onAbort = () => {
      stopped = 'SIGTERM';
      signalGroup('SIGTERM');
      killTimer = opts.clock.setTimeout(() => {
        stopped = 'SIGKILL';
        signalGroup('SIGKILL');
      }, opts.graceMs);
    };
    let settled = false;
    const finish = (outcome: Omit<RunOutcome, 'stopped' | 'stderrTail'>) => {
      if (settled) return;
      settled = true;
      opts.signal.removeEventListener('abort', onAbort);
      if (killTimer !== undefined) opts.clock.clearTimeout(killTimer);
      // A grandchild that escaped the group could hold stderr open forever: do not wait for it.
      const done = () => {
        child.stderr?.destroy();
        resolve({ ...outcome, stopped, stderrTail: tail.text() });
      };
      if (child.stderr?.readableEnded !== false) done();
      else {
        const t = setTimeout(done, 200);
        child.stderr.once('end', () => {
          clearTimeout(t);
          done();
        });
      }
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      // 'error' without a pid means the binary never started; with one, a kill failed and exit follows.
      if (child.pid === undefined) finish({ exitCode: null, exitSignal: null, spawnError: err });
    });
    child.once('exit', (code, sig) => {
      // Whatever k6 left behind in its group (a helper that ignored SIGTERM) goes with it.
      signalGroup('SIGKILL');
      finish({ exitCode: code, exitSignal: sig });
    });
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Keeps the last `limit` bytes written to it. */
function tailBuffer(limit: number) {
  let buf = Buffer.alloc(0);
  let truncated = false;
  return {
    push(chunk: Buffer) {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > limit) {
        buf = buf.subarray(buf.length - limit);
        truncated = true;
      }
    },
    text() {
      const s = buf.toString('utf8');
      // A cut line (and a cut UTF-8 character) at the start would only confuse.
      return truncated ? s.slice(s.indexOf('\n') + 1) : s;
    },
  };
}

/** Reads the export k6 wrote; undefined when it wrote none or it is not a k6 summary. */
async function readSummary(file: string): Promise<K6Summary | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return parseSummary(JSON.parse(text));
  } catch {
    return undefined;
  }
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function numbers(o: Json): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

/**
 * Understands both machine-readable formats of `--summary-export`: the classic one (metrics as
 * an object, stats flat, thresholds as booleans) and the opt-in
 * `--new-machine-readable-summary` one (schema "1.0.0", metrics as an array).
 */
export function parseSummary(doc: unknown): K6Summary | undefined {
  if (!isObject(doc)) return undefined;
  if (isObject(doc.metrics)) return parseClassic(doc, doc.metrics);
  if (typeof doc.version === 'string' && isObject(doc.results)) return parseMachineReadable(doc.results);
  return undefined;
}

function parseClassic(doc: Json, metricsDoc: Json): K6Summary {
  const metrics: Record<string, K6Metric> = {};
  for (const [name, m] of Object.entries(metricsDoc)) {
    if (!isObject(m)) continue;
    const thresholds: Record<string, boolean> = {};
    if (isObject(m.thresholds)) for (const [t, failed] of Object.entries(m.thresholds)) thresholds[t] = failed === true;
    metrics[name] = { stats: numbers(m), thresholds };
  }
  const checks: K6Summary['checks'] = [];
  collectChecks(doc.root_group, checks, 0);
  return { format: 'summary-export', metrics, thresholds: thresholdVerdicts(metrics), checks };
}

function collectChecks(group: unknown, out: K6Summary['checks'], depth: number) {
  if (!isObject(group) || depth > 16) return;
  const checks = isObject(group.checks) ? Object.values(group.checks) : Array.isArray(group.checks) ? group.checks : [];
  for (const c of checks) {
    if (out.length >= MAX_CHECKS) return;
    if (!isObject(c)) continue;
    const name = typeof c.name === 'string' ? c.name : '';
    out.push({ path: typeof c.path === 'string' ? c.path : `::${name}`, passes: Number(c.passes) || 0, fails: Number(c.fails) || 0 });
  }
  const groups = isObject(group.groups) ? Object.values(group.groups) : Array.isArray(group.groups) ? group.groups : [];
  for (const g of groups) collectChecks(g, out, depth + 1);
}

function parseMachineReadable(results: Json): K6Summary {
  const metrics: Record<string, K6Metric> = {};
  const add = (list: unknown) => {
    if (!Array.isArray(list)) return;
    for (const m of list) {
      if (!isObject(m) || typeof m.name !== 'string' || !isObject(m.values)) continue;
      metrics[m.name] = { stats: classicStats(numbers(m.values), m.type), thresholds: {} };
    }
  };
  add(results.metrics);
  const checkGroup = isObject(results.checks) ? results.checks : {};
  add(checkGroup.metrics);
  // The classic export names the check pass rate `checks`; keep one name for both formats.
  const succeeded = metrics.checks_succeeded;
  if (succeeded && !metrics.checks) metrics.checks = succeeded;
  const checks: K6Summary['checks'] = [];
  collectChecks(
    {
      checks: Array.isArray(checkGroup.results) ? checkGroup.results : [],
      groups: isObject(results.root_group) ? [results.root_group] : [],
    },
    checks,
    0,
  );
  return { format: 'machine-readable-1', metrics, thresholds: thresholdVerdicts(metrics), checks };
}

/** Renames the new format's stats to the classic ones (`p95` → `p(95)`, a rate's `rate` → `value`). */
function classicStats(values: Record<string, number>, type: unknown): Record<string, number> {
  const stats: Record<string, number> = {};
  for (const [k, v] of Object.entries(values)) {
    const p = /^p(\d+(?:\.\d+)?)$/.exec(k);
    stats[p ? `p(${p[1]})` : k] = v;
  }
  if (type === 'rate' && values.rate !== undefined) {
    stats.value = values.rate;
    delete stats.rate;
    if (values.matches !== undefined) stats.passes = values.matches;
    if (values.matches !== undefined && values.total !== undefined) stats.fails = values.total - values.matches;
  }
  return stats;
}

const THRESHOLD = /^\s*(avg|min|max|med|count|rate|value|p\(\d+(?:\.\d+)?\))\s*(<=|>=|===|==|!=|<|>)\s*(.+?)\s*$/;

function thresholdVerdicts(metrics: Record<string, K6Metric>): K6Summary['thresholds'] {
  const out: K6Summary['thresholds'] = [];
  for (const [metric, m] of Object.entries(metrics)) {
    for (const [threshold, failed] of Object.entries(m.thresholds)) {
      const value = measured(m, threshold)?.value;
      out.push({ metric, threshold, ok: !failed, ...(value === undefined ? {} : { value }) });
    }
  }
  return out;
}

/** The stat a threshold expression judges (`p(95)<5000` → the metric's p(95)), when present. */
function measured(m: K6Metric, threshold: string): { stat: string; value: number } | undefined {
  const agg = THRESHOLD.exec(threshold)?.[1];
  if (agg === undefined) return undefined;
  const key = agg === 'rate' && m.stats.rate === undefined ? 'value' : agg;
  const value = m.stats[key];
  return value === undefined ? undefined : { stat: agg, value };
}

/** Trend metrics k6 records in milliseconds. */
function isTimeMetric(name: string): boolean {
  const base = name.replace(/\{.*$/, '');
  return /^http_req_(?!failed$)|_duration$|^ws_(connecting|ping)$|^grpc_req_duration$|^browser_web_vital_(?!cls$)/.test(base);
}

function formatMeasured(metric: string, stat: string, value: number): string {
  const label = stat.replace(/^p\((.+)\)$/, 'p$1');
  const trend = stat.startsWith('p(') || ['avg', 'min', 'max', 'med'].includes(stat);
  if (trend && isTimeMetric(metric)) return `${label} ${Math.round(value)} ms`;
  if (stat === 'rate' || (stat === 'value' && value >= 0 && value <= 1 && !Number.isInteger(value))) {
    return `${label} ${round(value)} (${round(value * 100)}%)`;
  }
  return `${label} ${round(value)}`;
}

function round(v: number): number {
  return Number.isInteger(v) ? v : Number(v.toPrecision(4));
}

/** The run's named values, from whatever the summary holds. */
function summaryValues(summary: K6Summary | undefined, elapsedMs: number): Record<string, number> {
  const values: Record<string, number> = { duration_s: Math.round(elapsedMs) / 1000 };
  if (!summary) return values;
  const m = summary.metrics;
  const set = (name: string, v: number | undefined) => {
    if (v !== undefined) values[name] = v;
  };
  set('p95_ms', m.http_req_duration?.stats['p(95)']);
  set('p99_ms', m.http_req_duration?.stats['p(99)']);
  set('error_rate', m.http_req_failed?.stats.value);
  set('rps', m.http_reqs?.stats.rate);
  set('iterations', m.iterations?.stats.count);
  set('checks_pass_rate', m.checks?.stats.value);
  set('vus_max', m.vus_max?.stats.value ?? m.vus_max?.stats.max);
  return values;
}

/** What `details.summary` keeps: the metrics the report uses plus every metric with thresholds. */
function keptSummary(summary: K6Summary): K6Summary {
  const metrics: Record<string, K6Metric> = {};
  for (const [name, m] of Object.entries(summary.metrics)) {
    if (KEPT_METRICS.includes(name) || Object.keys(m.thresholds).length > 0) metrics[name] = m;
  }
  return { ...summary, metrics };
}

/** Turns the process outcome and the export into the run's verdict. */
function judge(spec: K6Spec, run: RunOutcome, summary: K6Summary | undefined, elapsedMs: number): ProbeResult {
  const values = summaryValues(summary, elapsedMs);
  const details: Record<string, unknown> = { exitCode: run.exitCode };
  if (summary) details.summary = keptSummary(summary);
  const fail = (code: FailureCode, message: string): ProbeResult => ({
    ok: false,
    code,
    message: clip(message),
    values,
    details: { ...details, ...(run.stderrTail ? { stderr: run.stderrTail } : {}) },
  });
  const why = errorText(run.stderrTail);
  const because = why ? `: ${why}` : '';

  if (run.spawnError) {
    const e = run.spawnError;
    const code = codeOf(e);
    if (code === 'ENOENT') {
      const where = spec.binary.includes('/') ? `at ${spec.binary}` : 'on PATH';
      return fail(
        'K6_MISSING',
        `k6 binary ${JSON.stringify(spec.binary)} not found ${where}: install k6 ≥ 0.50 in vigil's image (https://grafana.com/docs/k6/latest/set-up/install-k6/) or set binary: to its full path`,
      );
    }
    if (code === 'EACCES') return fail('K6_MISSING', `k6 binary ${JSON.stringify(spec.binary)} is not executable (EACCES): chmod +x it`);
    return fail('K6_ERROR', `cannot start k6 (${spec.binary}): ${code} ${e.message}`.trim());
  }
  if (run.stopped !== 'no') {
    const how =
      run.stopped === 'SIGKILL' ? `killed with SIGKILL after ${formatDuration(ms(spec.stopGrace))} grace` : 'stopped at the deadline';
    const partial = summary ? ' (partial results kept)' : '';
    return fail('TIMEOUT', `k6 run timed out after ${formatDuration(elapsedMs)}: ${how}${partial}`);
  }
  if (run.exitCode === null) {
    return fail('SIGNAL', `k6 was killed by ${run.exitSignal ?? 'a signal'} from outside vigil (out of memory?)${because}`);
  }
  const limits = limitProblems(spec, summary);
  switch (run.exitCode) {
    case 0:
      if (!summary) return fail('K6_ERROR', `k6 exited 0 but wrote no readable summary export${because}`);
      if (limits.length > 0) return fail('ASSERTION', limits.join('; '));
      return { ok: true, values, details };
    case 99: {
      const crossed = crossedThresholds(summary);
      const list = crossed.length > 0 ? crossed : [`k6 reports thresholds crossed but its summary names none${because}`];
      return fail('THRESHOLDS', [...list, ...limits].join('; '));
    }
    case 104:
      return fail('CONFIG', `k6 rejected the configuration (exit 104)${because}`);
    case 105:
      return fail('SIGNAL', `k6 was stopped by a signal from outside vigil (exit 105)${because}`);
    case 107:
      return fail('SCRIPT_ERROR', `k6 script ${spec.script} threw an exception${because}`);
    case 108:
      return fail('ABORTED', `k6 script ${spec.script} called test.abort()${because}`);
    case 110:
      return fail('FAILED', `k6 script ${spec.script} marked the test as failed${because}`);
    default: {
      const meaning = EXIT_MEANING[run.exitCode];
      return fail('K6_ERROR', `k6 exited with ${run.exitCode}${meaning ? ` (${meaning})` : ''}${because}`);
    }
  }
}

/** "http_req_duration p(95)<5000 crossed: p95 6234 ms", one per failed threshold. */
function crossedThresholds(summary: K6Summary | undefined): string[] {
  if (!summary) return [];
  return summary.thresholds
    .filter((t) => !t.ok)
    .map((t) => {
      const m = summary.metrics[t.metric];
      const got = m ? measured(m, t.threshold) : undefined;
      const shown = got ? formatMeasured(t.metric, got.stat, got.value) : 'value not in the summary export';
      return `${t.metric} ${t.threshold} crossed: ${shown}`;
    });
}

/** vigil's own limits (maxP95, maxErrorRate), judged on the summary when k6 itself passed. */
function limitProblems(spec: K6Spec, summary: K6Summary | undefined): string[] {
  if (!summary) return [];
  const problems: string[] = [];
  if (spec.maxP95 !== undefined) {
    const limit = ms(spec.maxP95);
    const p95 = summary.metrics.http_req_duration?.stats['p(95)'];
    if (p95 === undefined)
      problems.push('maxP95 is set but the summary has no http_req_duration p(95): did the script make HTTP requests?');
    else if (p95 > limit) problems.push(`p95 ${Math.round(p95)} ms is over maxP95 ${formatDuration(limit)}`);
  }
  if (spec.maxErrorRate !== undefined) {
    const rate = summary.metrics.http_req_failed?.stats.value;
    if (rate === undefined)
      problems.push('maxErrorRate is set but the summary has no http_req_failed rate: did the script make HTTP requests?');
    else if (rate > spec.maxErrorRate) {
      problems.push(`error rate ${round(rate)} (${round(rate * 100)}%) is over maxErrorRate ${spec.maxErrorRate}`);
    }
  }
  return problems;
}

/**
 * The lines of k6's stderr that explain a failure: its error-level log lines (with the message
 * unquoted), else the last few lines. Progress lines are noise here.
 */
export function errorText(tail: string): string {
  const lines = tail.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => /\blevel=(error|fatal)\b|^(ERRO|FATA)\[/.test(l)).map(logMessage);
  const picked = errors.length > 0 ? errors : lines.slice(-5);
  return picked.join(' | ').replace(/\s+/g, ' ').trim();
}

/** `time="…" level=error msg="X\n\tat y" hint="h"` → `X at y (h)`; other lines unchanged. */
function logMessage(line: string): string {
  const text = /\bmsg=("(?:[^"\\]|\\.)*")/.exec(line)?.[1] ?? /^(?:ERRO|FATA)\[\d+\]\s*(.*)$/.exec(line)?.[1];
  if (text === undefined) return line;
  let msg = text;
  if (text.startsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(text);
      msg = typeof parsed === 'string' ? parsed : text.slice(1, -1);
    } catch {
      msg = text.slice(1, -1);
    }
  }
  const hint = /\bhint=("(?:[^"\\]|\\.)*"|\S+)/.exec(line)?.[1];
  return hint ? `${msg} (${hint.replace(/^"|"$/g, '')})` : msg;
}

function clip(message: string): string {
  return message.length > MESSAGE_MAX ? `${message.slice(0, MESSAGE_MAX - 1)}…` : message;
}
