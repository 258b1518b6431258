import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Static, Type } from '@sinclair/typebox';
import { artifactDir, artifactKey } from '../lib/artifacts.js';
import { formatDuration, ms } from '../lib/duration.js';
import { Duration } from '../lib/schema.js';
import { isFile, scriptEscapes, scriptPathProblem } from '../lib/script-file.js';
import { type BrowserJob, type BrowserOutcome, type PidRecord, RUNNER_MARK, type RunnerMessage } from './browser/protocol.js';
import { defineProber, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';

const StepExpect = Type.Object(
  {
    /** The step fails the run (ASSERTION) when it took longer than this. */
    maxDuration: Duration(),
  },
  { additionalProperties: false },
);

const schema = Type.Object(
  {
    /** The journey: a JavaScript module relative to the probes folder (`browser/login.js`) exporting `default async (page, ctx) => {}`. */
    script: Type.String({ minLength: 1, expected: 'a path to a JavaScript module inside probes/, e.g. browser/login.js' }),
    /** The script's `ctx.env`; values may be `${…}` secrets, which vigil hides in everything the run keeps. */
    env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), {
      default: {},
      expected: 'a map of names to strings',
    }),
    /** The Chromium executable; else CHROMIUM_PATH, /usr/bin/chromium, /usr/bin/chromium-browser. Relative paths resolve against probes/. */
    chromium: Type.Optional(Type.String({ minLength: 1, expected: 'a path to the Chromium executable, e.g. /usr/bin/chromium' })),
    viewport: Type.Optional(
      Type.Object(
        {
          width: Type.Integer({ minimum: 200, maximum: 7680 }),
          height: Type.Integer({ minimum: 200, maximum: 4320 }),
        },
        { additionalProperties: false, expected: 'a viewport such as { width: 1280, height: 720 }' },
      ),
    ),
    expect: Type.Object(
      {
        /** Console errors (and uncaught page exceptions) tolerated. */
        maxConsoleErrors: Type.Integer({ minimum: 0, default: 0 }),
        /** Requests that failed on the network or got a 5xx, tolerated. */
        maxFailedRequests: Type.Integer({ minimum: 0, default: 0 }),
        /** Largest Contentful Paint ceiling of the last navigation. */
        lcp: Type.Optional(Duration()),
        /** Per-step ceilings, by the name the script gives `ctx.step`. */
        steps: Type.Record(Type.String({ minLength: 1, maxLength: 64 }), StepExpect, {
          default: {},
          expected: 'a map of step names to { maxDuration: <duration> }',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

/** The kind-specific fields of a `browser` definition. */
export type BrowserSpec = Static<typeof schema>;

/** Playwright's own timeouts end this long before the deadline, so a failing step still leaves a screenshot. */
const ACTION_MARGIN_MS = 2_000;
const STDOUT_MAX = 1_000_000;
const STDERR_TAIL = 2_000;
const SHOWN_LIST = 3;

/**
 * The runner module beside this one. Under `tsx` (vigil started from source, the tests) only the
 * `.ts` exists and the child needs the same loader; the built image has the `.js`.
 */
const RUNNER = (() => {
  const js = fileURLToPath(new URL('./browser/runner.js', import.meta.url));
  if (existsSync(js)) return { file: js, execArgv: [] as string[] };
  // Resolved from here: the child starts in the script's folder, where `tsx` alone would not resolve.
  return { file: fileURLToPath(new URL('./browser/runner.ts', import.meta.url)), execArgv: ['--import', import.meta.resolve('tsx')] };
})();

/** A step's value name: `log in` → `step_log_in_ms`. */
export function stepValue(step: string): string {
  return `step_${step.replace(/[^A-Za-z0-9_]+/g, '_')}_ms`;
}

export const browser = defineProber({
  schema,
  report: { target: (spec) => spec.script, latency: false },
  // One Chromium at a time per vigil: a run's tree takes about half a gigabyte (bench --only browser).
  concurrency: 1,
  // Starting Chromium alone takes a second or two; the common 10 s leaves a journey little room.
  defaultTimeout: () => '30s',
  // The group is SIGKILLed at once: only its exit and the pid file's removal are waited for.
  abortGraceMs: () => 2_000,
  values: (spec) => [
    'duration_ms',
    ...Object.keys(spec.expect.steps).map(stepValue),
    'lcp_ms',
    'cls',
    'ttfb_ms',
    'failed_requests',
    'console_errors',
  ],
  check(spec) {
    const problems: SpecProblem[] = [];
    const outside = scriptPathProblem(spec.script);
    if (outside) problems.push(outside);
    else if (!/\.(m?js)$/.test(spec.script)) {
      problems.push({ path: 'script', message: `expected a JavaScript module (.js or .mjs), got ${JSON.stringify(spec.script)}` });
    }
    return problems;
  },
  async probe(spec, ctx) {
    const started = ctx.clock.now();
    if (ctx.signal.aborted)
      return { ok: false, code: 'TIMEOUT', message: 'the deadline passed before the browser could start', values: {} };
    if (scriptEscapes(spec.script)) {
      return { ok: false, code: 'CONFIG', message: `script ${JSON.stringify(spec.script)} is outside probes/`, values: {} };
    }
    const script = path.resolve(ctx.probesDir, spec.script);
    if (!(await isFile(script))) {
      return {
        ok: false,
        code: 'CONFIG',
        message: `browser script not found: ${script} (script is relative to ${ctx.probesDir})`,
        values: {},
      };
    }
    const pidDir = path.join(ctx.dataDir ?? os.tmpdir(), ctx.dataDir ? 'browser' : 'vigil-browser');
    try {
      await mkdir(pidDir, { recursive: true });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return { ok: false, code: 'BROWSER', message: `cannot keep browser pid files in ${pidDir}: ${why}`, values: {} };
    }
    await sweepStale(pidDir, ctx);
    const key = artifactKey(started, randomBytes(4).toString('hex'));
    const artifactsDir = ctx.dataDir === undefined ? undefined : artifactDir(ctx.dataDir, spec.id, key);
    const job: BrowserJob = {
      script,
      ...(spec.chromium ? { chromium: path.resolve(ctx.probesDir, spec.chromium) } : {}),
      ...(spec.viewport ? { viewport: spec.viewport } : {}),
      env: spec.env,
      // The runner cannot see which env values came from `${…}`: those the probe's redactor changes did.
      secrets: Object.values(spec.env).filter((v) => ctx.redactor !== undefined && ctx.redactor.text(v) !== v),
      actionTimeoutMs: Math.max(500, ctx.deadline - ctx.clock.now() - ACTION_MARGIN_MS),
      ...(artifactsDir ? { artifactsDir } : {}),
      keepOver: { consoleErrors: spec.expect.maxConsoleErrors, failedRequests: spec.expect.maxFailedRequests },
    };
    ctx.logger.debug({ script: spec.script }, 'browser run');
    const run = await runBrowser(job, pidDir, ctx);
    const elapsed = ctx.clock.now() - started;
    const result = judge(spec, run, elapsed);
    if (run.outcome && run.outcome.artifacts.length > 0) {
      result.details = { ...result.details, artifacts: { key, files: run.outcome.artifacts } };
    }
    return result;
  },
});

/**
 * The runner's environment: what Node and Chromium need, not vigil's own (a database URL or a
 * token read from the environment is none of a page script's business, nor a browser's).
 */
function runnerEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'TZ', 'LANG', 'LC_ALL', 'CHROMIUM_PATH', 'FONTCONFIG_PATH', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME'];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

/** How the runner process ended. */
interface RunnerEnd {
  outcome?: BrowserOutcome;
  /** The step that had started last, for a run killed at its deadline. */
  lastStep?: string;
  killed: boolean;
  exitCode: number | null;
  spawnError?: Error;
  stderr: string;
}

/**
 * Runs one job in a runner child, detached into its own process group, so one kill takes the
 * runner and every Chromium process it started. A pid file names the group while it lives, so a
 * vigil that crashed mid-run has its browsers found and killed at the next run (sweepStale).
 */
async function runBrowser(job: BrowserJob, pidDir: string, ctx: ProbeContext): Promise<RunnerEnd> {
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...RUNNER.execArgv, RUNNER.file, RUNNER_MARK], {
      cwd: path.dirname(job.script),
      env: runnerEnv(),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    return { killed: false, exitCode: null, spawnError: err instanceof Error ? err : new Error(String(err)), stderr: '' };
  }
  const pid = child.pid;
  const pidFile = pid === undefined ? undefined : path.join(pidDir, `${pid}.json`);
  const killGroup = () => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const end = await new Promise<RunnerEnd>((resolve) => {
    let out = '';
    let stderr = '';
    let lastStep: string | undefined;
    let outcome: BrowserOutcome | undefined;
    let killed = false;
    const onAbort = () => {
      killed = true;
      killGroup();
    };
    const take = (line: string) => {
      if (line.trim() === '') return;
      try {
        const msg = JSON.parse(line) as RunnerMessage;
        if ('step' in msg) lastStep = msg.step;
        else if ('outcome' in msg) outcome = msg.outcome;
      } catch {
        // Not the runner's: a script's own console.log goes to stdout too.
      }
    };
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (out.length > STDOUT_MAX) return;
      out += chunk;
      let nl = out.indexOf('\n');
      while (nl >= 0) {
        take(out.slice(0, nl));
        out = out.slice(nl + 1);
        nl = out.indexOf('\n');
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL);
    });
    child.stdin?.on('error', () => {});
    let settled = false;
    let drain: ReturnType<typeof setTimeout> | undefined;
    const finish = (extra: Partial<RunnerEnd>) => {
      if (settled) return;
      settled = true;
      if (drain !== undefined) clearTimeout(drain);
      ctx.signal.removeEventListener('abort', onAbort);
      resolve({ ...(outcome ? { outcome } : {}), ...(lastStep ? { lastStep } : {}), killed, exitCode: null, stderr, ...extra });
    };
    child.once('error', (err) => {
      if (child.pid === undefined) finish({ spawnError: err });
    });
    child.once('exit', (code) => {
      // The runner is gone: whatever it left in its group goes too, which closes their copies of
      // its pipes. A process that left the group (setsid) could hold them open: not waited for long.
      killGroup();
      drain = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        take(out);
        finish({ exitCode: code });
      }, 1_000);
    });
    child.once('close', (code) => {
      take(out);
      finish({ exitCode: code });
    });
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    // The runner writes the pid file itself (it knows its parent, vigil); it is removed below.
    child.stdin?.end(JSON.stringify({ ...job, ...(pidFile ? { pidFile } : {}) } satisfies BrowserJob));
  });
  // Whatever the runner left in its group (a Chromium helper that outlived browser.close()) goes too.
  killGroup();
  if (pidFile !== undefined) await rm(pidFile, { force: true });
  return end;
}

/**
 * Kills the groups of browser runs whose vigil is gone (killed mid-run): their pid files are
 * still here. A group is killed only if its leader is gone (its members are then ours: Linux
 * does not reuse a pid while a group has it) or still runs the runner; a pid reused by something
 * else is left alone.
 */
export async function sweepStale(pidDir: string, ctx: Pick<ProbeContext, 'logger'>): Promise<number> {
  let killed = 0;
  let names: string[];
  try {
    names = await readdir(pidDir);
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const file = path.join(pidDir, name);
    let rec: PidRecord;
    try {
      rec = JSON.parse(await readFile(file, 'utf8')) as PidRecord;
    } catch {
      continue;
    }
    if (!Number.isSafeInteger(rec.pgid) || rec.pgid <= 1 || !Number.isSafeInteger(rec.parent)) continue;
    // A run of a vigil still alive: this one's in flight (kindConcurrency above 1), or another's.
    if (await isAlive(rec.parent)) continue;
    const cmdline = await readFile(`/proc/${rec.pgid}/cmdline`, 'utf8').catch(() => undefined);
    if (cmdline === undefined || cmdline.includes(RUNNER_MARK)) {
      try {
        process.kill(-rec.pgid, 'SIGKILL');
        killed++;
        ctx.logger.warn({ pgid: rec.pgid, vigil: rec.parent }, 'killed a browser left over by a vigil that stopped mid-run');
      } catch {
        // The group is gone already.
      }
    }
    await rm(file, { force: true });
  }
  return killed;
}

/** Whether a process exists, by /proc (read already for command lines: this sweep is Linux's). */
async function isAlive(pid: number): Promise<boolean> {
  try {
    await stat(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/** The run's values from what the runner measured. */
function valuesOf(o: BrowserOutcome | undefined, elapsedMs: number): Record<string, number> {
  const values: Record<string, number> = { duration_ms: Math.round((o?.durationMs || elapsedMs) * 10) / 10 };
  if (!o) return values;
  for (const [step, t] of Object.entries(o.steps)) values[stepValue(step)] = t;
  if (o.vitals.lcpMs !== undefined) values.lcp_ms = o.vitals.lcpMs;
  if (o.vitals.cls !== undefined) values.cls = o.vitals.cls;
  if (o.vitals.ttfbMs !== undefined) values.ttfb_ms = o.vitals.ttfbMs;
  values.failed_requests = o.failedRequestCount;
  values.console_errors = o.consoleErrorCount;
  return values;
}

/** Measure, then judge: the runner's outcome against the definition's expectations. */
function judge(spec: BrowserSpec, run: RunnerEnd, elapsedMs: number): ProbeResult {
  const o = run.outcome;
  const values = valuesOf(o, elapsedMs);
  const details: Record<string, unknown> = {};
  if (o) {
    details.steps = o.steps;
    if (o.consoleErrors.length > 0) details.consoleErrors = o.consoleErrors;
    if (o.failedRequests.length > 0) details.failedRequests = o.failedRequests;
    if (o.failedStep) details.failedStep = o.failedStep;
  }
  const fail = (code: string, message: string): ProbeResult => ({ ok: false, code, message, values, details });
  if (run.spawnError) return fail('BROWSER', `cannot start the browser runner: ${run.spawnError.message}`);
  if (run.killed) {
    const during = run.lastStep ? ` during step '${run.lastStep}'` : '';
    return fail('TIMEOUT', `browser run timed out after ${formatDuration(elapsedMs)}${during}: the runner and Chromium were killed`);
  }
  if (!o) {
    const why = run.stderr.trim().split('\n').slice(-3).join(' | ');
    return fail('BROWSER', `the browser runner exited (${run.exitCode ?? 'signal'}) without a result${why ? `: ${why}` : ''}`);
  }
  if (!o.ok) {
    if (o.code === 'STEP' && o.failedStep) return fail('STEP', `step '${o.failedStep}' failed: ${o.error ?? 'unknown error'}`);
    return fail(o.code ?? 'SCRIPT', o.code === 'BROWSER' ? (o.error ?? 'browser failed') : `script failed: ${o.error ?? 'unknown error'}`);
  }
  const problems: string[] = [];
  const e = spec.expect;
  if (o.consoleErrorCount > e.maxConsoleErrors) {
    problems.push(`${o.consoleErrorCount} console error(s), at most ${e.maxConsoleErrors} allowed: ${listed(o.consoleErrors)}`);
  }
  if (o.failedRequestCount > e.maxFailedRequests) {
    problems.push(`${o.failedRequestCount} failed request(s), at most ${e.maxFailedRequests} allowed: ${listed(o.failedRequests)}`);
  }
  if (e.lcp !== undefined) {
    const limit = ms(e.lcp);
    if (o.vitals.lcpMs === undefined) problems.push('expect.lcp is set but the page reported no Largest Contentful Paint');
    else if (o.vitals.lcpMs > limit) problems.push(`LCP ${Math.round(o.vitals.lcpMs)} ms is over ${formatDuration(limit)}`);
  }
  for (const [step, limit] of Object.entries(e.steps)) {
    const took = Object.hasOwn(o.steps, step) ? o.steps[step] : undefined;
    if (took === undefined) problems.push(`step '${step}' never ran (expect.steps names it)`);
    else if (took > ms(limit.maxDuration)) {
      problems.push(`step '${step}' took ${Math.round(took)} ms, over ${formatDuration(ms(limit.maxDuration))}`);
    }
  }
  if (problems.length > 0) return fail('ASSERTION', problems.join('; '));
  return { ok: true, values, details };
}

function listed(items: string[]): string {
  const shown = items.slice(0, SHOWN_LIST).join(' | ');
  return items.length > SHOWN_LIST ? `${shown} | …` : shown;
}
