/**
 * `npm run bench`: how much vigil costs per run, measured against baselines in the same run.
 *
 *   writes   batched result writes through the store vs. a bare better-sqlite3 insert loop
 *   scrape   /metrics of the built app at 1,000, 10,000 and 60,000 probes (--scrape-probes), each size in a
 *              process of its own (bench/scrape-phase.mjs): render time and transient memory in-process,
 *              and the same through the Fastify route over loopback with the longest event-loop stall.
 *   load     a loopback target (own process) probed at N/60 runs/s by
 *              - a bare undici loop, fresh connection per request, batched SQLite writes (baseline)
 *              - prometheus-blackbox-exporter, when installed (its own CPU, from /proc)
 *              - vigil itself: N probes on "* * * * *" for one whole minute
 *   alerts   alert latency: the built app (dist/app.js) in this process, N probes on `every: 1s`
 *              alerting into one Slack channel, against a target that flips to failing; target and
 *              Slack Web API server (test/helpers/slack-api.ts) in a child process of their own. Per
 *              incident: the Slack message's arrival minus the failing answer that fired the rule (the
 *              `failures`-th in a row), i.e. what vigil adds beyond `failures × interval` of schedule;
 *              also first failing answer → message. Rounds: cold (first incidents after start), warm,
 *              and warm while store.prune() deletes a prefilled table of old runs. Each round then
 *              flips back and checks every message is updated to resolved, none missed or doubled.
 *            outbox throughput: N incidents opened (incident, event, outbox row: one transaction each),
 *              then delivered by the outbox worker through a webhook channel to a loopback server
 *              answering 204 at once, and through an in-process no-op channel.
 *   rollups  --rollup-probes N (default 100) at 1/min for --rollup-days D (default 30) written straight
 *              into a store file, rolled up into hour and day rows, then pruned as housekeeping does by
 *              default (ok runs older than 3 days, failed ones older than 30); roll-up time and the
 *              longest event-loop stall during it (target <= 20 ms), the D-day report warm (target
 *              < 20 ms) and whether it is unchanged by the prune (uptime exact, p95 within the sketch's
 *              1 % of the exact figure from all raw rows, same scorecard); then the disk use of
 *              --disk-probes N (default 1,000) one-minute probes after 90 days (target <= 2 GB), as
 *              the steady state written directly (see diskUse90Days).
 *   cluster  runs per minute (the store's sustained write rate bounds it): three instances, each its own
 *              process writing runs with its own location, against one private PostgreSQL 15
 *              (test/helpers/postgres.ts); one PostgreSQL instance alone; one SQLite instance (baseline).
 *              --seconds per phase, at most 15. CPU-bound on a small machine: the output says so. Then the
 *              same 3-vs-1 with each instance held to --cluster-cap of a core by a cgroup CPU quota
 *              (bench/cgroup.ts; root only), as if each ran on a host of its own.
 *
 *   flood    2,000 keep-alive connections × 20 s with a wrong token on API routes (own process) against
 *              `node dist/main.js` at the default limits, /health polled every 100 ms on a fresh
 *              connection: its p50/p99/max and timeouts, the 401/429 counts, vigil's peak RSS, and
 *              the log bytes, audit rows and WAL the flood left. --flood-connections N, --flood-seconds S (≤ 60).
 *
 *   object-storage  a 100 MB object-storage round trip (upload, read back, SHA-256, delete) against s3rver
 *              in a child process on loopback: MB/s both ways and vigil's RSS growth during the run
 *              (it streams both ways: the target is < 64 MB). --s3-size (default 100MB).
 *
 *   browser  one browser run (src/probers/browser.ts: runner child + headless Chromium) of a login-and-fetch
 *              journey against a loopback page, three times: CPU-seconds of the whole tree (this process's
 *              cutime+cstime, which counts reaped descendants), peak memory of the runner and its
 *              descendants (PSS and RSS summed, sampled every 25 ms from /proc), and this process's own
 *              RSS (where vigil's prober runs) before and after.
 *
 *   startup  --startup-probes N (default 60,000) http probes on "* * * * *" at the loopback target, as one
 *              file and then spread over 600 files, each run by `node dist/main.js`: ms from spawn to the
 *              first /health 200, peak RSS (VmRSS sampled every 250 ms, and the kernel's VmHWM) from spawn
 *              to the end of the first whole minute after it, and how many probes ran in that minute.
 *
 * Options: `npm run bench -- --help` (bench/options.ts).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type RequestListener } from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { Client } from 'undici';
import { systemClock } from '../src/lib/clock.js';
import { type Channel, createChannels, createOutboxWorker, type IncidentView } from '../src/notify/index.js';
import type { ProbeDefinition } from '../src/probers/index.js';
import { buildReport, type ReportConfig, ReportConfigSchema, renderReportHtml } from '../src/report/index.js';
import { createSqliteStore, type RunRecord } from '../src/store/index.js';
import { Aggregate, withoutValueSketches } from '../src/store/rollup-core.js';
import type { CpuCap } from './cgroup.js';
import { parseBenchArgs, parseEnvFile, usage } from './options.js';

// --help and a bad option (exit 2) are answered before any benchmark runs or dist/ is built.
let parsed: ReturnType<typeof parseBenchArgs>;
try {
  parsed = parseBenchArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\nusage: npm run bench -- --help\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(usage());
  process.exit(0);
}
const args = parsed.values;
/**
 * What vigil processes here run under: runtime.env, as the image (its ENV) and the systemd unit
 * (EnvironmentFile=) run vigil; `--runtime-env none` measures node as it comes.
 */
const RUNTIME_ENV_FILE = args.get('runtime-env') ?? 'runtime.env';
let RUNTIME_ENV: Record<string, string> = {};
try {
  if (RUNTIME_ENV_FILE !== 'none')
    RUNTIME_ENV = parseEnvFile(readFileSync(path.resolve(import.meta.dirname, '..', RUNTIME_ENV_FILE), 'utf8'));
} catch (err) {
  process.stderr.write(`bench: --runtime-env: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
}

// The alerts and flood phases run the built service (dist/): built here, after the options were checked.
execFileSync('npm', ['run', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
const PROBES = Number(args.get('probes') ?? 60_000);
const SMALL = Number(args.get('small') ?? 10_000);
const SOAK_MINUTES = Number(args.get('soak-minutes') ?? 10);
const THROUGHPUT_PROBES = Number(args.get('throughput-probes') ?? 2_000);
const SECONDS = Number(args.get('seconds') ?? 20);
const ONLY = args.get('only');
const ALERT_PROBES = Number(args.get('alert-probes') ?? 200);
const PREFILL = Number(args.get('prefill') ?? 1_000_000);
const OUTBOX = Number(args.get('outbox') ?? 5_000);
const ROLLUP_PROBES = Number(args.get('rollup-probes') ?? 100);
const ROLLUP_DAYS = Number(args.get('rollup-days') ?? 30);
const SCRAPE_PROBES = (args.get('scrape-probes') ?? '1000,10000,60000').split(',').map(Number);
const DISK_PROBES = Number(args.get('disk-probes') ?? 1_000);
const ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

const out = (line: string) => process.stdout.write(`${line}\n`);
const silent = pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false }));
const tmp = mkdtempSync(path.join(tmpdir(), 'vigil-bench-'));

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const f = (n: number, d = 2) => n.toFixed(d);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(i: number, t: number): RunRecord {
  return {
    probeId: `probe-${i % 1000}`,
    kind: 'http',
    startedAt: t,
    durationMs: 1.7,
    ok: true,
    values: { status: 200, latency_ms: 1.7, dns_ms: 0, connect_ms: 0.2, ttfb_ms: 1.1, body_bytes: 36 },
    attempts: 1,
    trigger: 'schedule',
  };
}

async function benchWrites() {
  out('\n## writes: batched result rows (median of 3 alternating rounds of 200,000 rows)');
  const n = 200_000;
  const rows = Array.from({ length: n }, (_, i) => run(i, Date.now() + i));
  const bareRates: number[] = [];
  const storeRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    const bare = new Database(path.join(tmp, `bare-${round}.db`));
    bare.pragma('journal_mode = WAL');
    bare.pragma('synchronous = NORMAL');
    bare.exec(
      'CREATE TABLE runs (id INTEGER PRIMARY KEY, probe_id TEXT, kind TEXT, started_at INTEGER, duration_ms REAL, ok INTEGER, vals TEXT)',
    );
    const ins = bare.prepare('INSERT INTO runs (probe_id, kind, started_at, duration_ms, ok, vals) VALUES (?, ?, ?, ?, ?, ?)');
    const insertAll = bare.transaction((batch: RunRecord[]) => {
      for (const r of batch) ins.run(r.probeId, r.kind, r.startedAt, r.durationMs, 1, JSON.stringify(r.values));
    });
    let t = performance.now();
    for (let i = 0; i < n; i += 5000) insertAll(rows.slice(i, i + 5000));
    bareRates.push(n / ((performance.now() - t) / 1000));
    bare.close();

    const store = createSqliteStore({
      path: path.join(tmp, `store-${round}.db`),
      clock: systemClock,
      logger: silent,
      batchRows: 5000,
      batchIntervalMs: 200,
    });
    t = performance.now();
    for (const r of rows) store.append(r);
    await store.flush();
    storeRates.push(n / ((performance.now() - t) / 1000));
    await store.close();
  }
  const bareRate = pct(
    bareRates.sort((a, b) => a - b),
    50,
  );
  const storeRate = pct(
    storeRates.sort((a, b) => a - b),
    50,
  );
  out(`bare better-sqlite3 inserts, no index (5,000 a transaction): ${f(bareRate / 1000, 0)}k rows/s`);
  out(
    `vigil store (append + batched flush, indexed):            ${f(storeRate / 1000, 0)}k rows/s  (${f(storeRate / bareRate)}x the bare loop; target >= 100k rows/s)`,
  );
}

/** Targets of issue 21 (10,000 and 60,000 probes) and the older one at 1,000: milliseconds, and MB where one is set. */
const SCRAPE_TARGETS: Record<number, { ms: number; mb?: number }> = { 1000: { ms: 20 }, 10000: { ms: 150 }, 60000: { ms: 1_000, mb: 100 } };

/** `/metrics` of the built app at each --scrape-probes size, each in a process of its own (bench/scrape-phase.mjs). */
async function benchScrape() {
  out('\n## scrape: /metrics of the built app (dist/), one process per size');
  out(
    'probes: 6 in 10 https, 2 plain http, 1 tls, 1 dns, every series their kinds export, one run each observed. ' +
      'render = the exposition made and UTF-8 encoded in-process (median of 5); GET = through the Fastify route to a ' +
      'loopback socket (median of 3). transient = peak of V8 used heap + external memory during one scrape over its ' +
      'level after a gc() just before it (max over the scrapes).',
  );
  for (const n of SCRAPE_PROBES) {
    const child = spawn(process.execPath, ['--expose-gc', path.join(import.meta.dirname, 'scrape-phase.mjs'), String(n)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout?.on('data', (d) => {
      text += d;
    });
    const code = await new Promise((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`bench: scrape-phase.mjs ${n} exited with ${String(code)}`);
    const r = JSON.parse(text) as {
      bytes: number;
      renderMs: number;
      renderMb: number;
      httpMs: number;
      httpMb: number;
      httpStallMs: number;
    };
    const target = SCRAPE_TARGETS[n];
    const ms = (v: number) => `${f(v, 0)} ms${target ? ` (target < ${target.ms} ms)` : ''}`;
    const mb = (v: number) => `${f(v, 0)} MB${target?.mb ? ` (target <= ${target.mb} MB)` : ''}`;
    out(
      `${n.toLocaleString('en')} probes, ${f(r.bytes / 1e6, 1)} MB of text: render ${ms(r.renderMs)}, transient ${mb(r.renderMb)}; ` +
        `GET /metrics ${ms(r.httpMs)}, transient ${mb(r.httpMb)}, longest event-loop stall ${f(r.httpStallMs, 0)} ms`,
    );
  }
}

async function startTarget(): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [path.join(import.meta.dirname, 'target.mjs'), ADDRESSES.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve) => proc.stdout?.once('data', (d) => resolve(Number(String(d).trim()))));
  return { port, proc };
}

/** Runs `tick` `rate` times a second, paced in 10 ms steps, for `seconds`. */
async function paced(seconds: number, rate: number, tick: (i: number) => Promise<unknown>) {
  const end = Date.now() + seconds * 1000;
  const inFlight = new Set<Promise<unknown>>();
  let i = 0;
  const start = Date.now();
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (i < due) {
      const p = tick(i++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(10);
  }
  await Promise.allSettled([...inFlight]);
  return i;
}

async function bareLoop(port: number, rate: number) {
  const db = new Database(path.join(tmp, `loop-${rate}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE runs (id INTEGER PRIMARY KEY, probe_id TEXT, started_at INTEGER, duration_ms REAL, ok INTEGER, vals TEXT)');
  const ins = db.prepare('INSERT INTO runs (probe_id, started_at, duration_ms, ok, vals) VALUES (?, ?, ?, ?, ?)');
  let queue: Array<[string, number, number, number, string]> = [];
  const write = db.transaction((rows: typeof queue) => {
    for (const r of rows) ins.run(...r);
  });
  const flusher = setInterval(() => {
    const rows = queue;
    queue = [];
    write(rows);
  }, 200);
  let ok = 0;
  const c0 = cpuMs();
  const n = await paced(SECONDS, rate, async (i) => {
    const origin = `http://${ADDRESSES[i % ADDRESSES.length]}:${port}`;
    const client = new Client(origin);
    const t = performance.now();
    try {
      const res = await client.request({ path: '/health', method: 'GET', signal: AbortSignal.timeout(10_000) });
      await res.body.text();
      if (res.statusCode === 200) ok++;
      queue.push([`p${i}`, Date.now(), performance.now() - t, 1, JSON.stringify({ status: res.statusCode })]);
    } finally {
      await client.destroy();
    }
  });
  clearInterval(flusher);
  write(queue);
  db.close();
  const cpu = cpuMs() - c0;
  return { n, ok, cpuPerRun: cpu / n };
}

async function blackbox(port: number, rate: number) {
  const bin = '/usr/bin/prometheus-blackbox-exporter';
  try {
    readFileSync(bin);
  } catch {
    return undefined;
  }
  const cfg = path.join(tmp, 'blackbox.yml');
  writeFileSync(cfg, 'modules:\n  http_2xx:\n    prober: http\n    timeout: 10s\n    http:\n      preferred_ip_protocol: ip4\n');
  const listen = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
  const proc = spawn(bin, [`--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${listen}`, '--log.level=error'], { stdio: 'ignore' });
  const procCpu = () => {
    const fields = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime+stime in ms (CLK_TCK 100)
  };
  try {
    for (let k = 0; k < 50; k++) {
      try {
        await (await fetch(`http://127.0.0.1:${listen}/-/healthy`)).text();
        break;
      } catch {
        await sleep(100);
      }
    }
    const driver = new Client(`http://127.0.0.1:${listen}`, { pipelining: 1 });
    let ok = 0;
    const c0 = procCpu();
    const n = await paced(SECONDS, rate, async (i) => {
      const target = encodeURIComponent(`http://${ADDRESSES[i % ADDRESSES.length]}:${port}/health`);
      const res = await driver.request({ path: `/probe?target=${target}&module=http_2xx`, method: 'GET' });
      const text = await res.body.text();
      if (/probe_success 1/.test(text)) ok++;
    });
    const cpu = procCpu() - c0;
    await driver.close();
    return { n, ok, cpuPerRun: cpu / n };
  } finally {
    proc.kill('SIGKILL');
  }
}

/** vigil in a child process on the production build, so RSS and CPU are its own. */
async function vigilPhase(port: number, probes: number, period: 'minute' | 'second' = 'minute') {
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'vigil-phase.mjs'), String(port), String(probes), ADDRESSES.join(','), period],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...RUNTIME_ENV } },
  );
  let text = '';
  child.stdout?.on('data', (d) => {
    text += d;
  });
  await new Promise((r) => child.once('exit', r));
  return JSON.parse(text) as {
    runs: number;
    failed: number;
    lagP50: number;
    lagP99: number;
    cpuPerRun: number;
    rss: number;
    loadMs: number;
    scrapeMs: number;
    notRun: Record<string, number>;
    twice: number;
  };
}

/**
 * Each vigil phase against baselines at its own rate (N probes a minute = N/60 runs a second): a
 * fresh connection costs the same at any rate, but fixed costs (timer wake-ups, a commit per batch)
 * spread over fewer runs at a lower rate, for the bare loop as for vigil.
 */
async function benchLoad() {
  out('\n## load: fresh-connection HTTP probes against a loopback target (own process)');
  const { port, proc } = await startTarget();
  try {
    for (const n of [SMALL, PROBES]) {
      const rate = Math.round(n / 60);
      out(`\n### ${n} probes at 1/min (${rate} runs/s)`);
      const base = await bareLoop(port, rate);
      out(
        `bare undici loop + batched SQLite: ${base.n} requests in ${SECONDS}s, ${base.ok} ok, ${f(base.cpuPerRun, 3)} CPU-ms per run (baseline)`,
      );
      const bb = await blackbox(port, rate);
      if (bb)
        out(
          `blackbox_exporter:                 ${bb.n} probes in ${SECONDS}s, ${bb.ok} ok, ${f(bb.cpuPerRun, 3)} CPU-ms per probe (its process)`,
        );
      else out('blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter), skipped');
      const v = await vigilPhase(port, n);
      out(
        `vigil: ${v.runs} runs in one minute (${v.failed} failed), lag p50 ${v.lagP50} ms p99 ${v.lagP99} ms, ` +
          `${f(v.cpuPerRun, 3)} CPU-ms per run = ${f(v.cpuPerRun / base.cpuPerRun)}x bare loop${bb ? `, ${f(v.cpuPerRun / bb.cpuPerRun)}x blackbox_exporter` : ''}, ` +
          `peak RSS ${f(v.rss / 1048576, 0)} MB, config load ${f(v.loadMs / 1000, 1)} s, scrape ${f(v.scrapeMs, 0)} ms`,
      );
    }
  } finally {
    proc.kill('SIGKILL');
  }
}

/**
 * Issue 21's first target: 2,000 http probes at 1/s (120,000 runs a minute) on this machine's cores,
 * against the bare undici loop and blackbox_exporter at the same rate, measured in the same run.
 */
async function benchThroughput() {
  const n = THROUGHPUT_PROBES;
  out(`\n## throughput: ${n} http probes on \`every: 1s\` (${n * 60} runs a minute), fresh connection per run`);
  const { port, proc } = await startTarget();
  try {
    const base = await bareLoop(port, n);
    out(
      `bare undici loop + batched SQLite: ${base.n} requests in ${SECONDS}s, ${base.ok} ok, ${f(base.cpuPerRun, 3)} CPU-ms per run (baseline)`,
    );
    const bb = await blackbox(port, n);
    if (bb)
      out(
        `blackbox_exporter:                 ${bb.n} probes in ${SECONDS}s, ${bb.ok} ok, ${f(bb.cpuPerRun, 3)} CPU-ms per probe (its process)`,
      );
    else out('blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter), skipped');
    const v = await vigilPhase(port, n, 'second');
    out(
      `vigil: ${v.runs} runs in one minute (target ${n * 60}, ${n * 60 - v.runs} missed, ${v.failed} failed), ` +
        `lag p50 ${v.lagP50} ms p99 ${v.lagP99} ms (target p99 < 50 ms), ${f(v.cpuPerRun, 3)} CPU-ms per run = ` +
        `${f(v.cpuPerRun / base.cpuPerRun)}x bare loop (target ≤ 1.1x)${bb ? `, ${f(v.cpuPerRun / bb.cpuPerRun)}x blackbox_exporter (target ≤ 0.45x)` : ''}, ` +
        `peak RSS ${f(v.rss / 1048576, 0)} MB; slots not run since start: ${JSON.stringify(v.notRun)}, (probe, slot) pairs counted twice: ${v.twice}`,
    );
  } finally {
    proc.kill('SIGKILL');
  }
}

/**
 * Issue 21's soak: 60,000 runs a minute (1,000 probes at 1/s) for --soak-minutes; the heap after a
 * full collection at each minute's end must stay within 5 % from minute 2 on (minute 1 still warms up).
 */
async function benchSoak() {
  const probes = 1_000;
  out(
    `\n## soak: ${probes} http probes on \`every: 1s\` (${probes * 60} runs a minute) for ${SOAK_MINUTES} minutes, heap after full GCs (floor of 5 in each minute's last 10 s)`,
  );
  const { port, proc } = await startTarget();
  try {
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        path.join(import.meta.dirname, 'vigil-soak.mjs'),
        String(port),
        String(probes),
        ADDRESSES.join(','),
        String(SOAK_MINUTES),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...RUNTIME_ENV } },
    );
    let text = '';
    child.stdout?.on('data', (d) => {
      text += d;
    });
    await new Promise((r) => child.once('exit', r));
    const soak = JSON.parse(text) as { minutes: Array<{ minute: number; heapMB: number; rssMB: number; runs: number }>; cpuPerRun: number };
    for (const s of soak.minutes)
      out(`minute ${String(s.minute).padStart(2)}: heap ${f(s.heapMB, 1)} MB, RSS ${f(s.rssMB, 0)} MB, ${s.runs} runs so far`);
    const from = soak.minutes.find((s) => s.minute === 2) ?? soak.minutes[0];
    const to = soak.minutes.at(-1);
    if (from && to && to !== from) {
      const span = soak.minutes.filter((s) => s.minute >= from.minute).map((s) => s.heapMB);
      const spread = ((Math.max(...span) - Math.min(...span)) / Math.min(...span)) * 100;
      out(
        `heap minute ${from.minute} → ${to.minute}: ${f(from.heapMB, 1)} → ${f(to.heapMB, 1)} MB (${f(((to.heapMB - from.heapMB) / from.heapMB) * 100, 1)} %), ` +
          `largest spread ${f(spread, 1)} % (target within 5 %); ${f(soak.cpuPerRun, 3)} CPU-ms per run`,
      );
    }
  } finally {
    proc.kill('SIGKILL');
  }
}

/** Listens on 127.0.0.1, port 0; resolves to the base URL and a close. */
async function listenHttp(handler: RequestListener) {
  const server = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function until(what: string, ms: number, done: () => boolean) {
  const end = Date.now() + ms;
  while (!done()) {
    if (Date.now() > end) throw new Error(`bench: timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

const DAY_MS = 86_400_000;
const FAILURES = 2;
const INTERVAL_MS = 1_000;

/** Old runs of the bench probes, written before vigil starts (a bulk insert would hold the write lock under it). */
async function prefillRuns(file: string, probes: string[], rows: number) {
  const store = createSqliteStore({ path: file, clock: systemClock, logger: silent });
  await store.close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const key = db.prepare("INSERT INTO probes (name, kind) VALUES (?, 'http') RETURNING id");
  const keys = probes.map((p) => (key.get(p) as { id: number }).id);
  const ins = db.prepare(
    "INSERT INTO runs (probe, started_at, duration_ms, ok, attempts, trigger, vals) VALUES (?, ?, 1.5, 1, 1, 'schedule', ?)",
  );
  // 200 days old, in time order (pruning walks ids): all of it is past a 90-day retention.
  const start = Date.now() - 200 * DAY_MS;
  const step = Math.max(1, Math.floor((100 * DAY_MS) / Math.max(1, rows)));
  const write = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) ins.run(keys[i % keys.length], start + i * step, '{"status":200,"latency_ms":1.5}');
  });
  for (let i = 0; i < rows; i += 100_000) write(i, Math.min(rows, i + 100_000));
  db.close();
}

/**
 * The alert benchmark's peers, in a process of their own: the target (200, or 503 once flipped down)
 * and the Slack Web API server (test/helpers/slack-api.ts, the one the tests use). Sharing vigil's
 * process would bill their work to vigil's event loop, and a busy Node loop accepts one connection
 * per turn, so probes' fresh connections would queue behind vigil's own work (a prune) in a way no
 * remote target makes them. Records, per probe (the path), its failing answers since the flip down
 * and its first good one since the flip up, and when each Slack call arrived.
 */
const PEERS = `
import { createServer } from 'node:http';
const { startSlackApi } = await import(process.env.SLACK_HELPER);
const slack = await startSlackApi({ token: 'xoxb-bench' });
const arrivals = [];
void (async () => {
  for (let i = 1; ; i++) {
    await slack.waitForCalls(i);
    arrivals[i - 1] = Date.now();
  }
})();
const keyOf = (c) => /dedup \`([^\`]+)\`/.exec(JSON.stringify(c.body.blocks ?? ''))?.[1];
let failing = false;
let failed = {};
let recovered = {};
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const id = url.pathname.slice(1);
  if (req.method === 'POST' && (id === '_down' || id === '_up')) {
    failing = id === '_down';
    if (failing) failed = {};
    else recovered = {};
    return res.end('');
  }
  if (id === '_report') {
    const from = Number(url.searchParams.get('from') ?? 0);
    const calls = slack.calls.slice(from).map((c, k) => ({ method: c.method, mode: c.mode, key: keyOf(c), at: arrivals[from + k] }));
    return res.end(JSON.stringify({ failed, recovered, total: slack.calls.length, calls }));
  }
  if (failing) {
    (failed[id] ??= []).push(Date.now());
    res.writeHead(503, { 'content-type': 'application/json' });
    return res.end('{"status":"fail","checks":{"db":"down"}}');
  }
  if (!(id in recovered)) recovered[id] = Date.now();
  res.end('ok');
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ target: 'http://127.0.0.1:' + server.address().port, slack: slack.apiUrl }) + '\\n'));
`;

interface PeerReport {
  failed: Record<string, number[]>;
  recovered: Record<string, number>;
  /** Slack calls received so far. */
  total: number;
  /** From the asked index on: method, how it was answered, the incident key (`probe/rule/id`), arrival time. */
  calls: Array<{ method: string; mode: string; key?: string; at: number }>;
}

async function startPeers() {
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', PEERS], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SLACK_HELPER: pathToFileURL(path.resolve(import.meta.dirname, '../test/helpers/slack-api.ts')).href },
  });
  const urls = await new Promise<{ target: string; slack: string }>((resolve) =>
    proc.stdout?.once('data', (d) => resolve(JSON.parse(String(d)))),
  );
  return {
    ...urls,
    flip: async (state: 'down' | 'up') => {
      await (await fetch(`${urls.target}/_${state}`, { method: 'POST' })).text();
    },
    report: async (from = 0) => (await (await fetch(`${urls.target}/_report?from=${from}`)).json()) as PeerReport,
    close: async () => {
      proc.kill('SIGKILL');
    },
  };
}

/** A report's accepted calls of one method, by probe id: their arrival times. */
function arrivalsByProbe(report: PeerReport, method: string): Map<string, number[]> {
  const by = new Map<string, number[]>();
  for (const c of report.calls) {
    if (c.method !== method || c.mode !== 'ok' || c.key === undefined) continue;
    const probe = c.key.slice(0, c.key.indexOf('/'));
    by.set(probe, [...(by.get(probe) ?? []), c.at]);
  }
  return by;
}

/**
 * Alert latency, end to end through the built app: target down → probe runs → rules → incident and
 * outbox row in one transaction → worker → Slack `chat.postMessage` received by the local server.
 */
async function alertLatency() {
  const n = ALERT_PROBES;
  const root = path.resolve(import.meta.dirname, '..');
  const { createApp } = (await import(pathToFileURL(path.join(root, 'dist/app.js')).href)) as typeof import('../src/app.js');
  const { loadConfig } = (await import(
    pathToFileURL(path.join(root, 'dist/config/index.js')).href
  )) as typeof import('../src/config/index.js');
  const peers = await startPeers();

  const dir = path.join(tmp, 'alerts');
  mkdirSync(path.join(dir, 'probes'), { recursive: true });
  const ids = Array.from({ length: n }, (_, i) => `a${i}`);
  writeFileSync(
    path.join(dir, 'default.yaml'),
    [
      'service: { host: 127.0.0.1, port: 0, logLevel: info }',
      // The app prunes at start: a long retention leaves the prefilled rows for the bench to prune on cue.
      'storage: { sqlite: { path: ./vigil.db }, retention: { runs: 3650d } }',
      `channels: { slack-bench: { type: slack, token: "\${SLACK_TOKEN}", channel: "#bench", apiUrl: "${peers.slack}" } }`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'probes', 'bench.yaml'),
    ids
      .map(
        (id) =>
          `- id: ${id}\n  kind: http\n  url: ${peers.target}/${id}\n  schedule: { every: 1s }\n  timeout: 2s\n` +
          `  alert: { failures: ${FAILURES}, recoveries: 1, channels: [slack-bench] }\n`,
      )
      .join(''),
  );
  const t0 = performance.now();
  await prefillRuns(path.join(dir, 'vigil.db'), ids, PREFILL);
  const prefillMs = performance.now() - t0;

  const config = loadConfig({ cwd: dir, configDir: '.', env: { SLACK_TOKEN: 'xoxb-bench' } });
  const app = createApp({ config, logger: silent });
  await app.start();
  out(
    `vigil (dist/app.js) in this process; target and Slack API server in another. ${n} probes on every: 1s, ` +
      `alert { failures: ${FAILURES}, recoveries: 1 }, delivery defaults (concurrency 4); ${PREFILL.toLocaleString('en')} old runs prefilled in ${f(prefillMs / 1000, 1)} s`,
  );
  // Two clean runs of every probe before the first flip.
  await sleep(2_500);

  /** Slots the scheduler missed or skipped so far (a blocked event loop shows here first). */
  const slotsLost = async () => {
    let total = 0;
    for (const line of (await app.registry.metrics()).split('\n')) {
      if (/^vigil_scheduler_(missed|skipped)_total/.test(line)) total += Number(line.split(' ').at(-1));
    }
    return total;
  };
  /** Waits until `count` calls of `method` arrived since `from`, then one interval and a poll more, so a double would show. */
  const settle = async (what: string, from: number, method: string, count: number) => {
    const end = Date.now() + 20_000;
    for (;;) {
      const r = await peers.report(from);
      if (r.calls.filter((c) => c.method === method).length >= count) break;
      if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
      await sleep(50);
    }
    await sleep(INTERVAL_MS + 1_000);
    return peers.report(from);
  };
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  try {
    for (const round of ['cold (the first incidents after start)', 'warm, idle', 'warm, while pruning'] as const) {
      const lost0 = await slotsLost();
      loop.reset();
      const from = (await peers.report(Number.MAX_SAFE_INTEGER)).total;
      let prune: Promise<{ rows: number; ms: number; end: number }> | undefined;
      await peers.flip('down');
      if (round === 'warm, while pruning') {
        const p0 = performance.now();
        prune = app.store.prune(Date.now() - 90 * DAY_MS).then((rows) => ({ rows, ms: performance.now() - p0, end: Date.now() }));
      }
      const report = await settle(`${n} pages`, from, 'chat.postMessage', n);
      const pages = arrivalsByProbe(report, 'chat.postMessage');
      const added: number[] = [];
      const sinceFirst: number[] = [];
      for (const id of ids) {
        const [at] = pages.get(id) ?? [];
        const fails = report.failed[id] ?? [];
        if (at === undefined || fails.length < FAILURES) continue;
        added.push(at - (fails[FAILURES - 1] as number));
        sinceFirst.push(at - (fails[0] as number));
      }
      added.sort((a, b) => a - b);
      sinceFirst.sort((a, b) => a - b);
      const missed = ids.filter((id) => !pages.has(id)).length;
      const doubled = [...pages.values()].filter((t) => t.length > 1).length;
      const pruned = prune ? await prune : undefined;
      const lost = (await slotsLost()) - lost0;
      const loopMax = loop.max / 1e6;
      const during = pruned ? [...pages.values()].filter((t) => (t[0] as number) <= pruned.end).length : 0;
      out(
        `${round}: ${pages.size} of ${n} incidents paged, ${missed} missed, ${doubled} doubled; ` +
          `added beyond the failing answer that fired the rule p50 ${f(pct(added, 50), 0)} ms p99 ${f(pct(added, 99), 0)} ms max ${f(added.at(-1) ?? Number.NaN, 0)} ms ` +
          `(target p99 < 250 ms; first failing answer → message p50 ${f(pct(sinceFirst, 50), 0)} ms p99 ${f(pct(sinceFirst, 99), 0)} ms)` +
          (pruned
            ? `; prune deleted ${pruned.rows.toLocaleString('en')} rows in ${f(pruned.ms / 1000, 1)} s, ${during} of the pages arrived while it ran`
            : '') +
          `; event loop delay max ${f(loopMax, 0)} ms, ${lost} schedule slots missed or skipped`,
      );

      // Back up: every incident resolves, its message updated once.
      const upFrom = (await peers.report(Number.MAX_SAFE_INTEGER)).total;
      await peers.flip('up');
      const up = await settle(`${n} resolve updates`, upFrom, 'chat.update', n);
      const updates = arrivalsByProbe(up, 'chat.update');
      const resolveMs = ids
        .filter((id) => updates.has(id) && up.recovered[id] !== undefined)
        .map((id) => (updates.get(id)?.[0] as number) - (up.recovered[id] as number))
        .sort((a, b) => a - b);
      out(
        `  resolve: ${updates.size} of ${n} messages updated, ${ids.filter((id) => !updates.has(id)).length} missed, ` +
          `${[...updates.values()].filter((t) => t.length > 1).length} doubled; first good answer → update p50 ${f(pct(resolveMs, 50), 0)} ms p99 ${f(pct(resolveMs, 99), 0)} ms`,
      );
    }
  } finally {
    loop.disable();
    await app.stop();
    await peers.close();
  }
}

/** Outbox throughput: N incidents opened (incident, event and outbox row in one transaction each), then delivered. */
async function outboxThroughput() {
  const n = OUTBOX;
  let received = 0;
  const hook = await listenHttp((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(204);
      res.end();
    });
  });
  const noop: Channel = { send: async () => ({}), close: async () => {} };
  try {
    for (const [name, concurrency] of [
      ['webhook', 4],
      ['webhook', 16],
      ['no-op', 4],
    ] as const) {
      const store = createSqliteStore({ path: path.join(tmp, `outbox-${name}-${concurrency}.db`), clock: systemClock, logger: silent });
      const channels =
        name === 'webhook'
          ? createChannels(
              { out: { type: 'webhook', url: `${hook.url}/vigil`, headers: {} } as { type: string } },
              { logger: silent, clock: systemClock },
            )
          : new Map([['out', noop]]);
      const t0 = performance.now();
      for (let k = 0; k < n; k++) {
        const now = Date.now();
        await store.alerts.applyIncidentChange({
          open: {
            probeId: `p${k}`,
            rule: 'failures',
            kind: 'http',
            severity: 'error',
            state: 'open',
            summary: `p${k}: HTTP_STATUS: 503 Service Unavailable`,
            labels: {},
            channels: ['out'],
            openedAt: now,
            lastError: { code: 'HTTP_STATUS', message: '503 Service Unavailable: db down (expected 200)', at: now },
            flapping: false,
            notified: true,
          },
          event: { at: now, type: 'opened', actor: 'vigil', detail: 'bench' },
          notify: (i) => {
            const view: IncidentView = { ...i, key: `${i.probeId}/${i.rule}/${i.id}` };
            return [{ channel: 'out', action: 'trigger', dedupKey: view.key, payload: view as unknown as Record<string, unknown> }];
          },
        });
      }
      const queueMs = performance.now() - t0;
      let delivered = 0;
      const worker = createOutboxWorker({
        store: store.alerts,
        channels,
        clock: systemClock,
        logger: silent,
        observer: {
          outcome: (_c, o) => {
            if (o === 'delivered') delivered++;
          },
          latency: () => {},
        },
        baseUrl: 'http://127.0.0.1:8080',
        maxAgeMs: DAY_MS,
        sendTimeoutMs: 10_000,
        minBackoffMs: 1_000,
        maxBackoffMs: 300_000,
        concurrency,
        pollIntervalMs: 1_000,
      });
      const before = received;
      const t1 = performance.now();
      const c0 = cpuMs();
      worker.start();
      await until(`${n} deliveries`, 60_000, () => delivered >= n);
      const sendMs = performance.now() - t1;
      const cpu = cpuMs() - c0;
      await worker.stop(1_000);
      const stats = await store.alerts.outboxStats(Date.now());
      if (name === 'webhook' && received - before !== n) throw new Error(`bench: the webhook server got ${received - before} of ${n}`);
      if (stats.pending !== 0 || stats.dead !== 0) throw new Error(`bench: outbox left ${stats.pending} pending, ${stats.dead} dead`);
      await Promise.allSettled([...channels.values()].map((c) => c.close()));
      await store.close();
      out(
        `${name === 'webhook' ? 'webhook (loopback, 204 at once)' : 'no-op channel (in-process)'}, concurrency ${concurrency}: ` +
          `${n} delivered in ${f(sendMs / 1000, 2)} s = ${f(n / (sendMs / 1000), 0)} notifications/s, ${f(cpu / n, 3)} CPU-ms each ` +
          `(queued with their incidents at ${f(n / (queueMs / 1000), 0)} incident changes/s)`,
      );
    }
  } finally {
    await hook.close();
  }
}

async function benchAlerts() {
  out('\n## alerts: alert latency (target down → Slack message received) and outbox throughput');
  await alertLatency();
  out('\n### outbox throughput');
  await outboxThroughput();
}

/** Bytes the database would take after VACUUM: pages in use (free pages excluded). */
function liveBytes(db: Database.Database) {
  const page = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * page;
}

/** Bytes of one table and its indexes, from the dbstat virtual table (undefined where it is not compiled in). */
function tableBytes(db: Database.Database, names: string[]) {
  try {
    const rows = db.prepare(`SELECT sum(pgsize) AS n FROM dbstat WHERE name IN (${names.map(() => '?').join(', ')})`).get(...names) as {
      n: number | null;
    };
    return rows.n ?? 0;
  } catch {
    return undefined;
  }
}

/** A SQLite store on `file` with `probes` http probes (probe-0…) and the statement that inserts a run straight into it. */
function seededStore(file: string, clock: typeof systemClock, probes: number) {
  const store = createSqliteStore({ path: file, clock, logger: silent });
  const db = store.db;
  const key = db.prepare("INSERT INTO probes (name, kind) VALUES (?, 'http') RETURNING id");
  const keys = Array.from({ length: probes }, (_, i) => (key.get(`probe-${i}`) as { id: number }).id);
  const ins = db.prepare(
    "INSERT INTO runs (probe, started_at, duration_ms, ok, code, attempts, trigger, vals) VALUES (?, ?, ?, ?, ?, 1, 'schedule', ?)",
  );
  return { store, db, keys, ins };
}

/** A repeatable pseudo-random sequence in [0, 1) (a linear congruential generator): the same runs every bench. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

async function benchRollups() {
  const probes = ROLLUP_PROBES;
  const days = ROLLUP_DAYS;
  const total = probes * days * 1440;
  out(
    `\n## rollups: ${probes} probes at 1/min for ${days} days (${f(total / 1e6, 2)} M runs), pruned as by default: ` +
      `ok runs after ${RAW_DAYS} days, failed runs after ${FAILED_DAYS}`,
  );
  const file = path.join(tmp, 'rollups.db');
  // A UTC-midnight start, so the window is whole days; "now" is 10 minutes after the last run.
  const start = Date.UTC(2026, 9, 1);
  const end = start + days * DAY_MS;
  const clock = { ...systemClock, now: () => end + 10 * 60_000 };
  const { store, db, keys, ins } = seededStore(file, clock, probes);
  // Straight inserts in large transactions, in time order as the scheduler writes them: the store's
  // append path is measured by `writes`; here only the resulting file matters.
  const rand = seededRandom(1);
  let failures = 0;
  const writeMinutes = db.transaction((from: number, to: number) => {
    for (let m = from; m < to; m++) {
      for (let p = 0; p < probes; p++) {
        // Log-normal-ish latency around 40 ms per probe scale, and a 0.5 % failure rate.
        const d = (20 + (p % 10) * 5) * Math.exp(0.6 * (rand() + rand() + rand() - 1.5) * 2);
        const ok = rand() >= 0.005;
        if (!ok) failures++;
        const status = ok ? 200 : 503;
        ins.run(
          keys[p],
          start + m * 60_000 + p * 300,
          d,
          ok ? 1 : 0,
          ok ? null : 'HTTP_STATUS',
          `{"status":${status},"latency_ms":${d.toFixed(1)}}`,
        );
      }
    }
  });
  let t = performance.now();
  const minutes = days * 1440;
  for (let m = 0; m < minutes; m += 600) writeMinutes(m, Math.min(minutes, m + 600));
  db.pragma('wal_checkpoint(TRUNCATE)');
  const genMs = performance.now() - t;
  const rawBytes = liveBytes(db);
  out(`generated ${total} runs (${failures} failed) in ${f(genMs / 1000, 1)} s; database ${f(rawBytes / 1e6, 0)} MB live pages`);

  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  // And a 1 ms interval's lateness: the longest the loop went without turning, as a timer sees it.
  // With the process's CPU time over that worst gap: far below the gap, the process was waiting
  // for a core (a shared machine), not running a long slice.
  let late = 0;
  let lateCpu = 0;
  /** The longest gap counted only as far as the process used the CPU in it: the slices themselves. */
  let held = 0;
  let tick = performance.now();
  let tickCpu = cpuMs();
  const ticker = setInterval(() => {
    const now = performance.now();
    const cpu = cpuMs();
    held = Math.max(held, Math.min(now - tick - 1, cpu - tickCpu));
    if (now - tick - 1 > late) {
      late = now - tick - 1;
      lateCpu = cpu - tickCpu;
    }
    tick = now;
    tickCpu = cpu;
  }, 1);
  t = performance.now();
  let hours = 0;
  let calls = 0;
  for (;;) {
    const n = await store.rollups.rollUp(clock.now());
    if (n === 0) break;
    hours += n;
    calls++;
  }
  const rollMs = performance.now() - t;
  clearInterval(ticker);
  loop.disable();
  const rollupRows = (db.prepare('SELECT count(*) AS n FROM rollups').get() as { n: number }).n;
  db.pragma('wal_checkpoint(TRUNCATE)');
  const withRollups = liveBytes(db);
  const rollupBytes = tableBytes(db, ['rollups']);
  out(
    `rolled up ${hours} hours in ${calls} calls of <= 48: ${f(rollMs / 1000, 1)} s (${f(total / (rollMs / 1000) / 1000, 0)}k runs/s), ` +
      `longest event-loop stall during the roll-up ${f(Math.max(loop.max / 1e6, late), 1)} ms (target <= 20 ms; monitorEventLoopDelay max ` +
      `${f(loop.max / 1e6, 1)} ms, 1 ms interval late by ${f(late, 1)} ms at most, the process using ${f(lateCpu, 1)} CPU-ms meanwhile; ` +
      `load average ${f(loadavg()[0]!, 1)} on ${cpus().length} cores; longest gap counting only the process's CPU time in it ${f(held, 1)} ms); ` +
      `${rollupRows} rollup rows` +
      (rollupBytes !== undefined ? `, ${f(rollupBytes / 1e6, 1)} MB (~${f(((rollupBytes / days) * 400) / 1e6, 0)} MB for 400 days)` : ''),
  );

  // Baseline for the report: exact percentiles straight from raw rows over the same window, through
  // the (probe, started_at) index: what a report costs without rollups.
  t = performance.now();
  const rawScan = db.prepare('SELECT duration_ms, ok FROM runs WHERE probe = ? AND started_at >= ? AND started_at < ?').raw();
  let rawP95 = 0;
  /** Per probe, from every raw row: what the report must still say once the raw runs are pruned. */
  const exact = new Map<string, { uptime: number; p95: number }>();
  for (const [i, k] of keys.entries()) {
    const rows = rawScan.all(k, start, end) as Array<[number, number]>;
    const ds = rows.map((r) => r[0]).sort((a, b) => a - b);
    rawP95 = ds[Math.floor(0.95 * (ds.length - 1))]!;
    const failed = rows.filter((r) => r[1] === 0).length;
    exact.set(`probe-${i}`, { uptime: (rows.length - failed) / rows.length, p95: rawP95 });
  }
  const rawScanMs = performance.now() - t;
  out(
    `baseline: exact p95 of all ${probes} probes from raw rows over ${days} days: ${f(rawScanMs, 0)} ms (last probe p95 ${f(rawP95, 1)} ms)`,
  );

  const defs = keys.map((_, i) => ({
    id: `probe-${i}`,
    kind: 'http',
    url: `https://api.example.com/p/${i}`,
    schedule: '* * * * *',
    timeout: '10s',
    retry: { count: 0, delay: '10s' },
    labels: {},
    expect: { status: 200, httpsRedirect: false },
    extract: {},
  })) as unknown as ProbeDefinition[];
  const reportDeps = {
    service: 'bench',
    clock,
    store,
    probes: () => defs,
    config: Value.Default(ReportConfigSchema, {}) as ReportConfig,
    setup: () => ({ channels: {}, schedules: {}, escalation: {} }),
  };
  // The report before the prune, for the comparison after it.
  const before = await buildReport(reportDeps, { from: start, days });
  t = performance.now();
  const pruned = await store.prune(clock.now() - RAW_DAYS * DAY_MS, { failedBefore: clock.now() - FAILED_DAYS * DAY_MS });
  const pruneMs = performance.now() - t;
  db.pragma('wal_checkpoint(TRUNCATE)');
  const afterPrune = liveBytes(db);
  t = performance.now();
  db.exec('VACUUM');
  const vacuumMs = performance.now() - t;
  db.pragma('wal_checkpoint(TRUNCATE)');
  const fileBytes = statSync(file).size;
  out(
    `database without pruning: ${f(withRollups / 1e6, 0)} MB (raw runs ${f(rawBytes / 1e6, 0)} MB + rollups); ` +
      `ok runs older than ${RAW_DAYS} days, failed ones older than ${FAILED_DAYS} pruned (${pruned} rows, ${f(pruneMs / 1000, 1)} s): ${f(afterPrune / 1e6, 0)} MB live, ` +
      `file ${f(fileBytes / 1e6, 0)} MB after VACUUM (${f(vacuumMs / 1000, 1)} s)`,
  );

  // The report's question: every probe over the whole window, from day rows (and hour rows at the edges).
  const times: number[] = [];
  let sample: Awaited<ReturnType<typeof store.rollups.summary>> | undefined;
  for (let round = 0; round < 5; round++) {
    t = performance.now();
    for (let p = 0; p < probes; p++) sample = await store.rollups.summary(`probe-${p}`, start, end);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  out(
    `${days}-day summary (p50/p95/p99, uptime, values, codes) of all ${probes} probes from rollups: median ${f(times[2]!, 1)} ms ` +
      `(${f(times[2]! / probes, 3)} ms a probe); e.g. ${sample!.probeId}: ${sample!.runs} runs, uptime ${f(sample!.uptime! * 100, 3)} %, ` +
      `p95 ${f(sample!.p95!, 1)} ms`,
  );
  // A ragged window (not day-aligned) takes hour rows at both edges.
  t = performance.now();
  for (let p = 0; p < probes; p++) await store.rollups.summary(`probe-${p}`, start + 5 * 3_600_000, end - 3 * 3_600_000);
  out(`same over a window not aligned to days (day rows + edge hour rows): ${f(performance.now() - t, 1)} ms for all probes`);

  // The whole report (JSON) as GET /api/v1/report builds it: every probe's window and daily points,
  // incidents, checklist evidence, the scorecard; and the longest event-loop stall while it runs.
  const measure = async (deps: typeof reportDeps, rounds: number) => {
    const times: number[] = [];
    let stall = 0;
    let last: Awaited<ReturnType<typeof buildReport>> | undefined;
    for (let round = 0; round < rounds; round++) {
      const h = monitorEventLoopDelay({ resolution: 1 });
      h.enable();
      const t0 = performance.now();
      last = await buildReport(deps, { from: start, days });
      times.push(performance.now() - t0);
      h.disable();
      stall = Math.max(stall, h.max / 1e6);
    }
    return { times, stall, report: last! };
  };
  // In the process that rolled the days up: they are already parsed in memory.
  const warm = await measure(reportDeps, 7);
  const sorted = [...warm.times].sort((a, b) => a - b);
  // Unchanged by the prune: uptime exactly as from all raw rows, p95 within the sketch's 1 %, the same scorecard.
  let uptimeSame = 0;
  let worstP95 = 0;
  for (const p of warm.report.probes) {
    const want = exact.get(p.id)!;
    if (p.uptime === want.uptime) uptimeSame++;
    worstP95 = Math.max(worstP95, Math.abs(p.p95Ms! - want.p95) / want.p95);
  }
  const sameCard = JSON.stringify(warm.report.scorecard) === JSON.stringify(before.scorecard);
  out(
    `${days}-day report warm: median ${f(sorted[3]!, 1)} ms (target < 20 ms); after the prune: uptime equal to the raw rows' for ` +
      `${uptimeSame} of ${probes} probes, p95 within ${f(worstP95 * 100, 2)} % of the exact raw p95 (sketch bound 1 %), ` +
      `scorecard ${sameCard ? 'identical to' : 'DIFFERENT from'} the one built before the prune (verdict ${warm.report.scorecard.verdict})`,
  );
  const json = JSON.stringify(warm.report);
  t = performance.now();
  const html = renderReportHtml(warm.report).body;
  const htmlMs = performance.now() - t;
  out(
    `report of ${probes} probes over ${days} days (days rolled up in this process): median ${f(sorted[3]!, 1)} ms, max ${f(sorted[6]!, 1)} ms ` +
      `(${f(rawScanMs / sorted[3]!, 0)}x faster than the raw-row baseline); longest event-loop stall while building ${f(warm.stall, 1)} ms; ` +
      `JSON ${f(json.length / 1e6, 2)} MB, HTML ${f(html.length / 1e6, 2)} MB rendered in ${f(htmlMs, 1)} ms; verdict ${warm.report.scorecard.verdict}`,
  );
  // After a restart: the first report reads and parses every day row; vigil warms them at start.
  const restarted = createSqliteStore({ path: file, clock, logger: silent });
  const cold = await measure({ ...reportDeps, store: restarted }, 1);
  await restarted.close();
  const warmed = createSqliteStore({ path: file, clock, logger: silent });
  t = performance.now();
  const warmedDays = await warmed.rollups.warm(start, end);
  const warmMs = performance.now() - t;
  const again = await measure({ ...reportDeps, store: warmed }, 5);
  out(
    `after a restart: first report ${f(cold.times[0]!, 1)} ms (stall ${f(cold.stall, 1)} ms) without warming; warming ${warmedDays} day rows ` +
      `took ${f(warmMs, 0)} ms in steps; then median ${f([...again.times].sort((a, b) => a - b)[2]!, 1)} ms, stall ${f(again.stall, 1)} ms`,
  );
  await warmed.close();
  await store.close();
  await diskUse90Days(DISK_PROBES);
}

/** Raw retention of ok and of failed runs, as config/default.yaml sets them. */
const RAW_DAYS = 3;
const FAILED_DAYS = 30;
/** Hour rows' and day rows' retention (src/store/rollup-core.ts). */
const HOUR_ROW_DAYS = 31;

/**
 * Disk use of `probes` one-minute probes after 90 days under the default retention. Inserting 90
 * days (130 M runs at 1,000 probes) and pruning hourly would take an hour here, so this writes the
 * steady state that housekeeping leaves, exactly: the last 3 days of runs (0.5 % failed), the failed
 * runs of the 27 days before, and the rollup rows of 90 days — hour rows for the last 31 days
 * (today's with value sketches, older ones without, as the roll-up leaves them) and day rows for all
 * 90, each built by the real Aggregate from one probe's real runs. Then the WAL is checkpointed and
 * the .db and -wal files are counted. Also the size formula's terms, measured.
 */
async function diskUse90Days(probes: number) {
  out(`\n### disk use: ${probes} one-minute probes after 90 days, default retention (steady state written directly)`);
  const file = path.join(tmp, 'disk90.db');
  const end = Date.UTC(2026, 9, 1) + 90 * DAY_MS;
  const clock = { ...systemClock, now: () => end };
  const { store, db, keys, ins } = seededStore(file, clock, probes);
  const rand = seededRandom(7);
  /** An http run's values as the http kind reports them. */
  const runOf = (p: number): [number, boolean, string] => {
    const d = (20 + (p % 10) * 5) * Math.exp(0.6 * (rand() + rand() + rand() - 1.5) * 2);
    const ok = rand() >= 0.005;
    const vals = `{"status":${ok ? 200 : 503},"latency_ms":${d.toFixed(1)},"dns_ms":${(d * 0.05).toFixed(2)},"connect_ms":${(d * 0.1).toFixed(2)},"tls_ms":${(d * 0.2).toFixed(2)},"ttfb_ms":${(d * 0.8).toFixed(1)},"body_bytes":36}`;
    return [d, ok, vals];
  };
  const t0 = performance.now();
  let runs = 0;
  const writeMinutes = db.transaction((from: number, to: number, failedOnly: boolean) => {
    for (let m = from; m < to; m++) {
      for (let p = 0; p < probes; p++) {
        const [d, ok, vals] = runOf(p);
        if (failedOnly && ok) continue;
        ins.run(keys[p], m * 60_000 + p * 50, d, ok ? 1 : 0, ok ? null : 'HTTP_STATUS', vals);
        runs++;
      }
    }
  });
  const first = (end - FAILED_DAYS * DAY_MS) / 60_000;
  const rawFrom = (end - RAW_DAYS * DAY_MS) / 60_000;
  for (let m = first; m < end / 60_000; m += 240) writeMinutes(m, Math.min(end / 60_000, m + 240), m < rawFrom);
  const rawBytes = tableBytes(db, ['runs', 'runs_probe_time']) ?? liveBytes(db);
  // One real hour and one real day of runs per probe (10 latency scales: probe % 10), through the
  // Aggregate the roll-up uses, give the rows' content; their starts fill the 90 days.
  const sketched = new Set<string>();
  const hourRow: unknown[][] = [];
  const dayRow: unknown[][] = [];
  for (let scale = 0; scale < 10; scale++) {
    const day = new Aggregate(sketched);
    const hour = new Aggregate(sketched);
    for (let m = 0; m < 1440; m++) {
      const [d, ok, vals] = runOf(scale);
      day.addRun(m * 60_000, d, ok ? 1 : 0, ok ? null : 'HTTP_STATUS', vals);
      if (m < 60) hour.addRun(m * 60_000, d, ok ? 1 : 0, ok ? null : 'HTTP_STATUS', vals);
    }
    hourRow.push(hour.row(0, 'hour', 0));
    dayRow.push(day.row(0, 'day', 0));
  }
  const up = db.prepare(
    'INSERT INTO rollups (probe, period, start, runs, failures, duration, vals, codes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const today = Math.floor(end / DAY_MS) * DAY_MS;
  const writeRollups = db.transaction((p: number) => {
    const [, , , hr, hf, hd, hv, hc] = hourRow[p % 10]!;
    const stripped = withoutValueSketches(hv as string);
    for (let h = end - HOUR_ROW_DAYS * DAY_MS; h < end - 3_600_000; h += 3_600_000)
      up.run(keys[p], 'hour', h, hr, hf, hd, h >= today ? hv : stripped, hc);
    const [, , , dr, df, dd, dv, dc] = dayRow[p % 10]!;
    for (let d = end - 90 * DAY_MS; d < today; d += DAY_MS) up.run(keys[p], 'day', d, dr, df, dd, dv, dc);
  });
  for (let p = 0; p < probes; p++) writeRollups(p);
  db.prepare('INSERT INTO rollup_state (id, last_hour) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET last_hour = excluded.last_hour').run(
    end - 2 * 3_600_000,
  );
  // The store's checkpoint worker may hold the checkpoint a moment: retry until TRUNCATE went through.
  for (let i = 0; i < 100; i++) {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    if (r?.busy === 0) break;
    await sleep(50);
  }
  const genMs = performance.now() - t0;
  const fileSize = (f: string) => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  };
  const disk = fileSize(file) + fileSize(`${file}-wal`);
  const rollupBytes = tableBytes(db, ['rollups']);
  const counts = db.prepare('SELECT period, count(*) AS n FROM rollups GROUP BY period').all() as Array<{ period: string; n: number }>;
  const hours = counts.find((c) => c.period === 'hour')?.n ?? 0;
  const daysN = counts.find((c) => c.period === 'day')?.n ?? 0;
  // Per-row bytes from dbstat where compiled in; hour rows measured apart from day rows by their share of payload.
  const perRun = rawBytes / runs;
  const avg = (sql: string) => (db.prepare(sql).get() as { b: number }).b;
  const hourPayload = avg("SELECT avg(length(duration) + length(vals) + length(codes) + 20) AS b FROM rollups WHERE period = 'hour'");
  const dayPayload = avg("SELECT avg(length(duration) + length(vals) + length(codes) + 20) AS b FROM rollups WHERE period = 'day'");
  const scale = rollupBytes === undefined ? 1 : rollupBytes / (hourPayload * hours + dayPayload * daysN);
  const perHour = hourPayload * scale;
  const perDay = dayPayload * scale;
  await store.close();
  const closed = fileSize(file) + fileSize(`${file}-wal`);
  out(
    `wrote ${f(runs / 1e6, 2)} M runs (${RAW_DAYS} days, and failed runs of ${FAILED_DAYS} days), ${hours} hour rows, ${daysN} day rows in ${f(genMs / 1000, 0)} s`,
  );
  out(
    `disk use after 90 days (.db + -wal, WAL checkpointed): ${f(disk / 1e9, 2)} GB (target <= 2 GB): raw runs ${f(rawBytes / 1e9, 2)} GB ` +
      `(${f(perRun, 0)} bytes a run, indexes included), rollups ${rollupBytes === undefined ? '?' : f(rollupBytes / 1e6, 0)} MB ` +
      `(hour row ~${f(perHour, 0)} bytes, day row ~${f(perDay, 0)}); ${f(closed / 1e9, 2)} GB once closed`,
  );
  const perDayRuns = probes * 1440;
  const formula =
    perRun * perDayRuns * (RAW_DAYS + 0.005 * (FAILED_DAYS - RAW_DAYS)) + perHour * probes * 24 * HOUR_ROW_DAYS + perDay * probes * 90;
  out(
    `formula: ${f(perRun, 0)} B x ${perDayRuns} runs/day x (${RAW_DAYS} + 0.5 % x ${FAILED_DAYS - RAW_DAYS}) days + ${f(perHour, 0)} B x ${probes} x 24 x ${HOUR_ROW_DAYS} + ` +
      `${f(perDay, 0)} B x ${probes} x 90 = ${f(formula / 1e9, 2)} GB; the old default (90 days of raw runs, hour rows with value sketches) ` +
      `would be ~${f((perRun * perDayRuns * 90) / 1e9, 1)} GB of raw runs alone`,
  );
  rmSync(file, { force: true });
}

/**
 * One writer of the cluster bench, in a process of its own (three instances of vigil are three
 * processes): the built store (dist/), SQLite or PostgreSQL, fed realistic runs as fast as it takes
 * them. Prints `ready` once the store is open, starts on a `go` line on stdin (so all writers start
 * together), appends for WRITER_SECONDS keeping at most two batches queued (the store's own
 * backpressure is a bounded queue that drops; a real scheduler never runs that far ahead of it),
 * flushes, and prints what it wrote, how long it took and its CPU time as one JSON line.
 */
const WRITER = `
import { pino } from 'pino';
const { createPostgresStore, createSqliteStore } = await import(new URL('store/index.js', process.env.VIGIL_DIST));
const { systemClock } = await import(new URL('lib/clock.js', process.env.VIGIL_DIST));
const { WRITER_BACKEND: backend, WRITER_TARGET: target, WRITER_LOCATION: location } = process.env;
const seconds = Number(process.env.WRITER_SECONDS);
// Runs per minute to append at, as a scheduler would; 0: as fast as the store takes them.
const rate = Number(process.env.WRITER_RATE ?? 0);
const template = JSON.parse(process.env.WRITER_RUN);
const opts = { clock: systemClock, logger: pino({ level: 'silent' }), batchRows: 5000, batchIntervalMs: 200 };
const store = backend === 'postgres' ? createPostgresStore({ ...opts, url: target }) : createSqliteStore({ ...opts, path: target });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.destroy();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const deadline = t0 + seconds * 1000;
let n = 0;
while (performance.now() < deadline) {
  const now = Date.now();
  const due = rate > 0 ? Math.floor(((performance.now() - t0) * rate) / 60000) - n : 1000;
  if (due <= 0) await sleep(20);
  for (let k = 0; k < due; k++, n++) {
    store.append({
      ...template,
      probeId: 'probe-' + (n % 1000),
      startedAt: now,
      values: { ...template.values },
      ...(location ? { location } : {}),
    });
  }
  while (n - store.stats().written >= 10000) await sleep(1);
}
await store.flush();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const stats = store.stats();
await store.close();
process.stdout.write(JSON.stringify({ appended: n, ...stats, ms, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\\n');
`;

interface WriterResult {
  appended: number;
  written: number;
  writeErrors: number;
  dropped: number;
  /** From `go` until the final flush returned. */
  ms: number;
  cpuMs: number;
}

/** Starts one writer (see WRITER); resolves once its store is open. */
async function startWriter(backend: 'sqlite' | 'postgres', target: string, location: string, seconds: number, perMinute = 0) {
  const root = path.resolve(import.meta.dirname, '..');
  const proc = spawn(process.execPath, ['--input-type=module', '-e', WRITER], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {
      ...process.env,
      VIGIL_DIST: pathToFileURL(path.join(root, 'dist/')).href,
      WRITER_BACKEND: backend,
      WRITER_TARGET: target,
      WRITER_LOCATION: location,
      WRITER_SECONDS: String(seconds),
      WRITER_RATE: String(perMinute),
      WRITER_RUN: JSON.stringify(run(0, 0)),
    },
  });
  const lines: string[] = [];
  let buf = '';
  proc.stdout?.on('data', (d) => {
    buf += String(d);
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  let exited: number | null | undefined;
  proc.once('exit', (code) => {
    exited = code;
  });
  const line = async (k: number) => {
    await until(`writer ${location || backend} line ${k + 1}`, 120_000, () => lines.length > k || exited !== undefined);
    if (lines.length <= k) throw new Error(`bench: writer ${location || backend} exited ${exited}`);
    return lines[k]!;
  };
  await line(0);
  return {
    proc,
    go: () => proc.stdin?.end('go\n'),
    result: async () => JSON.parse(await line(1)) as WriterResult,
  };
}

/** Busy and total CPU time of the whole machine so far (all cores), in ms: PostgreSQL's share and anything else running. */
function machineCpu() {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times.user + c.times.nice + c.times.sys + c.times.irq;
    busy += t;
    total += t + c.times.idle;
  }
  return { busy, total };
}

/** Writers started together; waits for all of them; machine CPU busy over the phase, in cores. */
async function writersPhase(writers: Array<Awaited<ReturnType<typeof startWriter>>>) {
  const m0 = machineCpu();
  const t0 = performance.now();
  for (const w of writers) w.go();
  const results = await Promise.all(writers.map((w) => w.result())).finally(() => {
    // Done (the result is their last line) or failed: none may outlive the phase.
    for (const w of writers) if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
  });
  const wallS = (performance.now() - t0) / 1000;
  const m1 = machineCpu();
  for (const r of results) {
    if (r.dropped > 0 || r.writeErrors > 0) throw new Error(`bench: writer dropped ${r.dropped} rows, ${r.writeErrors} write errors`);
  }
  return { results, cores: (m1.busy - m0.busy) / (wallS * 1000) };
}

/** Rows written in `ms` as runs a minute, and that figure in millions, as the cluster phases print them. */
const perMin = (rows: number, ms: number) => (rows / ms) * 60_000;
const m = (n: number) => `${f(n / 1e6, 2)}M`;

/**
 * Cluster: runs per minute with three vigil instances (three processes) writing to one PostgreSQL,
 * against one instance on SQLite. What bounds runs per minute here is the store's sustained write
 * rate: every run is a row, so an instance (or a cluster) cannot run more probes a minute than its
 * store writes rows — probing itself scales out with instances, the shared database does not. Each
 * writer appends realistic runs as fast as its store takes them, for --seconds (at most 15 s).
 * Also one PostgreSQL instance alone: the cost of the database round trips, the baseline of the
 * 3-vs-1 ratio (target ≥ 1.5×; before per-writer feed cursors one advisory lock per batch made
 * every instance's inserts take turns, 0.76×). Then the leader's run feed while three instances
 * write 120,000 runs/min together (paced, as schedulers would), and the 2-second refresh of the
 * newest run of every probe at 10,000 probes against the per-probe read it replaced.
 */
async function benchCluster() {
  const seconds = Math.min(SECONDS, 15);
  out(`\n## cluster: runs per minute, three instances on one PostgreSQL 15 vs one on SQLite (${seconds} s per phase)`);
  out(
    `caveat: this machine has ${cpus().length} cores for three writer processes plus PostgreSQL: where a phase keeps them busy its ` +
      'figures are CPU-bound (a floor, not what three hosts on one database server would do); "machine CPU busy" counts anything else running too',
  );

  // Baseline: one instance on SQLite.
  const file = path.join(tmp, 'cluster-sqlite.db');
  const lite = await startWriter('sqlite', file, '', seconds);
  const base = await writersPhase([lite]);
  const db = new Database(file, { readonly: true });
  const liteRows = (db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
  db.close();
  const liteRate = perMin(liteRows, base.results[0]!.ms);
  out(
    `1 instance, SQLite (baseline):      ${m(liteRate)} runs/min (${liteRows.toLocaleString('en')} rows in ${f(base.results[0]!.ms / 1000, 1)} s), ` +
      `writer CPU ${f(base.results[0]!.cpuMs / base.results[0]!.ms, 2)} cores, machine CPU busy ${f(base.cores, 2)} cores`,
  );

  const { startPostgres } = await import('../test/helpers/postgres.js');
  const pg = await startPostgres();
  try {
    await pg.query('CREATE DATABASE bench');
    const url = pg.url.replace(/\/postgres$/, '/bench');

    // One PostgreSQL instance alone (it also applies the migrations, before anything is timed).
    const solo = await startWriter('postgres', url, '', seconds);
    const one = await writersPhase([solo]);
    const soloRows = Number(await pg.query('SELECT count(*) FROM runs', 'bench'));
    const soloRate = perMin(soloRows, one.results[0]!.ms);
    out(
      `1 instance, PostgreSQL:             ${m(soloRate)} runs/min (${soloRows.toLocaleString('en')} rows in ${f(one.results[0]!.ms / 1000, 1)} s), ` +
        `${f(soloRate / liteRate)}x SQLite; writer CPU ${f(one.results[0]!.cpuMs / one.results[0]!.ms, 2)} cores, machine CPU busy ${f(one.cores, 2)} cores`,
    );
    await pg.query('TRUNCATE runs', 'bench');

    const locations = ['eu-west', 'us-east', 'ap-south'];
    const writers = await Promise.all(locations.map((l) => startWriter('postgres', url, l, seconds)));
    // Every 200 ms: how many instances wait on a lock, by kind (before issue 21 the ordering lock, an
    // advisory lock, held each batch; now none: what is left is PostgreSQL's own, such as extending the table).
    let sampling = true;
    const waiting = new Map<string, number>();
    let samples = 0;
    const sampler = (async () => {
      for (await sleep(1000); sampling; await sleep(200)) {
        const sql = "SELECT wait_event FROM pg_stat_activity WHERE datname = 'bench' AND wait_event_type = 'Lock'";
        const events = (await pg.query(sql)).split('\n').filter(Boolean);
        samples++;
        for (const e of events) waiting.set(e, (waiting.get(e) ?? 0) + 1);
      }
    })();
    const three = await writersPhase(writers).finally(() => {
      sampling = false;
    });
    await sampler;
    const counts = new Map<string, number>();
    for (const row of (await pg.query('SELECT count(*), location FROM runs GROUP BY location', 'bench')).split('\n')) {
      const [n, location] = row.split('|');
      counts.set(location!, Number(n));
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const wallMs = Math.max(...three.results.map((r) => r.ms));
    const totalRate = perMin(total, wallMs);
    out(
      `3 instances, one PostgreSQL, total: ${m(totalRate)} runs/min (${total.toLocaleString('en')} rows in ${f(wallMs / 1000, 1)} s), ` +
        `${f(totalRate / liteRate)}x SQLite, ${f(totalRate / soloRate)}x one PostgreSQL instance (target ≥ 1.50x); writers' CPU ` +
        `${f(three.results.reduce((a, r) => a + r.cpuMs, 0) / wallMs, 2)} cores, machine CPU busy ${f(three.cores, 2)} cores`,
    );
    locations.forEach((l, k) => {
      const r = three.results[k]!;
      const rows = counts.get(l) ?? 0;
      const rate = perMin(rows, r.ms);
      out(
        `  ${l.padEnd(8)} ${m(rate)} runs/min (${rows.toLocaleString('en')} rows in ${f(r.ms / 1000, 1)} s), ${f(rate / liteRate)}x SQLite, ` +
          `writer CPU ${f(r.cpuMs / r.ms, 2)} cores`,
      );
    });
    const written = three.results.reduce((a, r) => a + r.written, 0);
    if (written !== total) throw new Error(`bench: writers report ${written} rows written, PostgreSQL holds ${total}`);
    const cores = cpus().length;
    out(
      `  instances waiting on a lock (sampled every 200 ms): ${f([...waiting.values()].reduce((a, b) => a + b, 0) / Math.max(1, samples), 2)} of 3 on average ` +
        `(${[...waiting].map(([e, n]) => `${e} ${f(n / Math.max(1, samples), 2)}`).join(', ') || 'none'}; advisory, the old ordering lock: ${f((waiting.get('advisory') ?? 0) / Math.max(1, samples), 2)}); ` +
        (three.cores >= 0.9 * cores
          ? `${f(three.cores, 2)} of ${cores} cores busy: CPU-bound on this machine`
          : `${f(three.cores, 2)} of ${cores} cores busy: not CPU-bound here`) +
        `; CPU-normalised (runs per busy core-minute) ${m(totalRate / Math.max(three.cores, 0.01))} with three vs ` +
        `${m(soloRate / Math.max(one.cores, 0.01))} with one (load average ${f(loadavg()[0] ?? 0, 1)})`,
    );

    await pg.query('TRUNCATE runs', 'bench');
    await benchClusterCapped(url, seconds, pg.query);
    await pg.query('TRUNCATE runs', 'bench');
    await benchClusterFeed(url, seconds, pg.query);
    await benchClusterRefresh(url, pg.query);
  } finally {
    await pg.stop();
  }
}

/**
 * The 3-vs-1 ratio with each instance held to --cluster-cap of a core by a cgroup CPU quota
 * (bench/cgroup.ts), as if each ran on a host of its own: unlimited, three writers and
 * the PostgreSQL server share this machine's cores, so three writers' sum is bound by the cores,
 * whether or not the database makes them take turns. Held to a share each, one instance writes what
 * its share allows; three write three times that if nothing in the database serializes them (the
 * ordering lock before issue 21 did), less by what the server's own CPU and locks take. The output
 * gives each writer's CPU and how often its quota ran out (it should, nearly every period: the
 * writer, not the database, is then what bounds it) and the machine's busy cores (well under all of
 * them, or the server is starved and the figure is a floor again).
 */
async function benchClusterCapped(url: string, seconds: number, sql: (q: string, db?: string) => Promise<string>) {
  const { cpuCap } = await import('./cgroup.js');
  const share = Number(args.get('cluster-cap') ?? 0.25);
  const caps: CpuCap[] = [];
  const capped = async (location: string) => {
    const cap = cpuCap(`vigil-bench-${process.pid}-${location || 'solo'}`, share);
    if ('unavailable' in cap) throw new CapUnavailable(cap.unavailable);
    caps.push(cap);
    const writer = await startWriter('postgres', url, location, seconds);
    cap.add(writer.proc.pid!);
    return { ...writer, cap };
  };
  const quota = (cap: CpuCap) => {
    const t = cap.throttled();
    return `quota used up in ${f((100 * t.throttled) / Math.max(1, t.periods), 0)} % of its periods`;
  };
  try {
    const solo = await capped('');
    const one = await writersPhase([solo]);
    const soloRows = Number(await sql('SELECT count(*) FROM runs', 'bench'));
    const soloRate = perMin(soloRows, one.results[0]!.ms);
    out(
      `each instance held to ${share} of a core (cgroup CPU quota, as if on a host of its own):\n` +
        `  1 instance:  ${m(soloRate)} runs/min (${soloRows.toLocaleString('en')} rows in ${f(one.results[0]!.ms / 1000, 1)} s), writer CPU ` +
        `${f(one.results[0]!.cpuMs / one.results[0]!.ms, 2)} cores, ${quota(solo.cap)}; machine CPU busy ${f(one.cores, 2)} cores`,
    );
    await sql('TRUNCATE runs', 'bench');
    const locations = ['eu-west', 'us-east', 'ap-south'];
    const writers = await Promise.all(locations.map((l) => capped(l)));
    const three = await writersPhase(writers);
    const total = Number(await sql('SELECT count(*) FROM runs', 'bench'));
    const written = three.results.reduce((a, r) => a + r.written, 0);
    if (written !== total) throw new Error(`bench: writers report ${written} rows written, PostgreSQL holds ${total}`);
    const wallMs = Math.max(...three.results.map((r) => r.ms));
    const totalRate = perMin(total, wallMs);
    out(
      `  3 instances: ${m(totalRate)} runs/min (${total.toLocaleString('en')} rows in ${f(wallMs / 1000, 1)} s) = ` +
        `**${f(totalRate / soloRate)}x one instance** (target ≥ 1.50x); machine CPU busy ${f(three.cores, 2)} of ${cpus().length} cores`,
    );
    writers.forEach((w, k) => {
      const r = three.results[k]!;
      out(`    ${locations[k]!.padEnd(8)} writer CPU ${f(r.cpuMs / r.ms, 2)} cores, ${quota(w.cap)}`);
    });
  } catch (err) {
    if (!(err instanceof CapUnavailable)) throw err;
    out(`each instance held to a share of a core: not measured here (${err.message})`);
  } finally {
    for (const cap of caps) {
      try {
        cap.remove();
      } catch {
        // A writer still exiting: the empty group goes with the next boot.
      }
    }
  }
}

class CapUnavailable extends Error {}

/**
 * The leader's run feed (src/cluster/run-feed.ts, on this process) while three writer processes
 * append 40,000 runs/min each: throughput, lag from a run's start to the leader judging it (the
 * writer's batching, 200 ms, and the feed's interval, 500 ms by default, included), and that every
 * run came exactly once.
 */
async function benchClusterFeed(url: string, seconds: number, sql: (q: string, db?: string) => Promise<string>) {
  const { createPostgresStore } = await import('../src/store/index.js');
  const { createRunFeed } = await import('../src/cluster/index.js');
  const logger = pino({ level: 'silent' });
  const target = 120_000;
  const locations = ['eu-west', 'us-east', 'ap-south'];
  const writers = await Promise.all(locations.map((l) => startWriter('postgres', url, l, seconds, target / locations.length)));
  const leader = createPostgresStore({ url, clock: systemClock, logger });
  await leader.ready();
  const seen = new Set<number>();
  let duplicates = 0;
  const lags: number[] = [];
  const feed = createRunFeed({
    store: leader,
    clock: systemClock,
    logger,
    intervalMs: () => 500,
    observe(run) {
      const { id } = run as RunRecord & { id: number };
      if (seen.has(id)) duplicates++;
      seen.add(id);
      lags.push(Date.now() - run.startedAt);
    },
  });
  await feed.start();
  const cpu0 = cpuMs();
  const t0 = performance.now();
  const phase = await writersPhase(writers);
  const writtenAt = performance.now();
  const total = Number(await sql('SELECT count(*) FROM runs', 'bench'));
  const behind = total - seen.size;
  await until('the feed to catch up', 30_000, () => seen.size >= total);
  const caughtUpMs = performance.now() - writtenAt;
  const leaderCpu = cpuMs() - cpu0;
  feed.stop();
  await leader.close();
  lags.sort((a, b) => a - b);
  const rate = (seen.size / (performance.now() - t0)) * 60_000;
  const writeRate = (total / (writtenAt - t0)) * 60_000;
  out(
    `leader's run feed, three instances writing ${(target / 1000).toFixed(0)},000 runs/min together (${seconds} s): wrote ` +
      `${f(writeRate / 1000, 1)}k runs/min, the feed read ${seen.size.toLocaleString('en')} of ${total.toLocaleString('en')} runs, ` +
      `${duplicates} twice; lag from a run's start p50 ${pct(lags, 50)} ms, p99 ${pct(lags, 99)} ms, max ${lags.at(-1)} ms ` +
      `(200 ms batching + 500 ms feed interval included); ${behind} runs unread when the writers stopped, read ${f(caughtUpMs, 0)} ms later ` +
      `(target: keeps up, lag bounded); leader CPU ${f(leaderCpu / (performance.now() - t0), 2)} cores, machine CPU busy ${f(phase.cores, 2)} cores ` +
      `(${f(rate / 1000, 1)}k runs/min read over the phase; load average ${f(loadavg()[0] ?? 0, 1)})`,
  );
  if (duplicates > 0 || seen.size !== total) throw new Error(`bench: the feed read ${seen.size} runs (${duplicates} twice) of ${total}`);
}

/**
 * The 2-second refresh of the newest run of every probe at 10,000 probes: what each instance reads of
 * the others' runs. Before issue 21, one statement with one index probe per probe (LATERAL … LIMIT 1,
 * still the read at start); now one statement over the runs other writers committed since the last
 * refresh (2 s at 120,000 runs/min: 4,000). Index scans from pg_stat_user_indexes; times are the
 * median of 5 after a warm-up.
 */
async function benchClusterRefresh(url: string, sql: (q: string, db?: string) => Promise<string>) {
  const { default: pgLib } = await import('pg');
  const { FRESH_SQL, LATEST_SQL } = await import('../src/store/postgres/store.js');
  const probes = 10_000;
  const perProbe = 20;
  const fresh = 4_000;
  await sql('TRUNCATE runs', 'bench');
  const writers = (await sql('SELECT id FROM run_writers WHERE id > 0 ORDER BY id DESC LIMIT 3', 'bench')).split('\n').map(Number);
  const insert = (count: number, offset: number) =>
    sql(
      `INSERT INTO probes (name, kind) SELECT 'refresh-' || g, 'http' FROM generate_series(0, ${probes - 1}) g ON CONFLICT (name) DO NOTHING;
       INSERT INTO runs (probe, started_at, duration_ms, ok, attempts, trigger, vals, writer)
         SELECT p.id, ${Date.now()} - (${count} - g) * 50, 12.5, true, 1, 'schedule', '{"status":200}', (ARRAY[${writers.join(',')}])[1 + g % ${writers.length}]
           FROM generate_series(0, ${count - 1}) g JOIN probes p ON p.name = 'refresh-' || ((g * 7 + ${offset}) % ${probes});
       UPDATE run_writers w SET last_id = (SELECT coalesce(max(id), 0) FROM runs r WHERE r.writer = w.id);
       ANALYZE runs;`,
      'bench',
    );
  await insert(probes * perProbe, 0);
  const client = new pgLib.Client({ connectionString: url });
  await client.connect();
  try {
    // As the store's own connections (src/store/postgres/db.ts).
    await client.query('SET jit = off');
    const cursorRows = (await client.query<{ id: number; last: string }>('SELECT id, last_id AS last FROM run_writers')).rows;
    const cursor = [cursorRows.map((r) => r.id), cursorRows.map((r) => Number(r.last))];
    await insert(fresh, 3);
    const scans = async () =>
      Number((await client.query<{ n: string }>("SELECT sum(idx_scan) AS n FROM pg_stat_user_indexes WHERE relname = 'runs'")).rows[0]!.n);
    const measure = async (text: string, values: unknown[]) => {
      await client.query({ text, values });
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        const res = await client.query({ text, values });
        times.push(performance.now() - t);
        rows = res.rows.length === 1 && 'newest' in res.rows[0] ? res.rows[0].newest.length : res.rows.length;
      }
      // Statistics reach the view when a backend reports them (at most every 1 s in PostgreSQL 15).
      await client.query('SELECT pg_stat_force_next_flush()');
      await sleep(1_100);
      const before = await scans();
      await client.query({ text, values });
      await client.query('SELECT pg_stat_force_next_flush()');
      await sleep(1_100);
      times.sort((a, b) => a - b);
      return { ms: times[2]!, rows, scans: (await scans()) - before };
    };
    const old = await measure(LATEST_SQL, []);
    const now = await measure(FRESH_SQL, [...cursor, 50_000, -1]);
    out(
      `newest run of every probe at ${probes.toLocaleString('en')} probes (${(probes * perProbe).toLocaleString('en')} runs, ` +
        `${fresh.toLocaleString('en')} new since the last refresh): 1 query per refresh (target: 1), ${f(now.ms, 1)} ms, ` +
        `${now.scans} index scans, ${now.rows.toLocaleString('en')} probes updated; the per-probe read it replaced: ${f(old.ms, 1)} ms, ` +
        `${old.scans.toLocaleString('en')} index scans (one per probe), ${old.rows.toLocaleString('en')} rows every 2 s ` +
        `(${f(old.ms / now.ms, 1)}x the time; load average ${f(loadavg()[0] ?? 0, 1)}). Writers pay nothing for it (no table upserted per batch).`,
    );
  } finally {
    await client.end();
  }
}

/** The built service as a host runs it: `node dist/main.js` in a folder of its own, its log to a file. */
async function startVigil(dir: string, port: number) {
  const log = path.join(dir, 'vigil.log');
  const fd = openSync(log, 'w');
  const proc = spawn(
    process.execPath,
    [
      ...(process.env.FLOOD_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FLOOD_PROF}`] : []),
      path.join(import.meta.dirname, '../dist/main.js'),
    ],
    {
      cwd: dir,
      env: { ...process.env, PORT: String(port), VIGIL_ENV: '', VIGIL_CONFIG: '', FLOOD_TOKEN: 'flood-operator-token-0123456789' },
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  const base = `http://127.0.0.1:${port}`;
  for (const end = Date.now() + 30_000; Date.now() < end; await sleep(100)) {
    const ok = await fetch(`${base}/health`)
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return { proc, base, log };
  }
  proc.kill('SIGKILL');
  throw new Error(`vigil did not answer /health within 30 s; see ${log}`);
}

/** One GET /health on a fresh connection (as a load balancer checks): its time, or undefined past `timeoutMs`. */
function healthOnce(port: number, timeoutMs: number): Promise<{ ms: number; status: number } | { timeout: 'connect' | 'answer' }> {
  const t0 = performance.now();
  let connected = false;
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0 });
      });
    });
    req.on('socket', (socket) => socket.once('connect', () => (connected = true)));
    // A deadline for the whole exchange (a socket idle timeout would restart on every byte).
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ timeout: connected ? 'answer' : 'connect' });
    }, timeoutMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve({ timeout: connected ? 'answer' : 'connect' });
    });
  });
}

/** CPU seconds a process has used (user + system), from /proc (Linux); 0 elsewhere. */
function cpuOf(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Peak RSS of a process, from /proc (Linux); 0 elsewhere. */
function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * `--only flood`: --flood-connections (default 2000) keep-alive connections for --flood-seconds
 * (default 20, at most 60) hammer API routes with a wrong token (own process), at vigil's default
 * limits, while one client polls /health every 100 ms on a fresh connection with a 2 s timeout.
 * vigil runs as `node dist/main.js`. Reports /health p50/p99/max and timeouts, the flood's statuses,
 * vigil's peak RSS, and what the flood left behind: log bytes, audit rows, WAL size.
 */
async function benchFlood() {
  const connections = Number(args.get('flood-connections') ?? 2_000);
  const seconds = Math.min(60, Number(args.get('flood-seconds') ?? 20));
  out(`\n## flood: ${connections} connections × ${seconds} s with a wrong token, /health polled every 100 ms`);
  const dir = path.join(tmp, 'flood');
  mkdirSync(path.join(dir, 'config'), { recursive: true });
  mkdirSync(path.join(dir, 'probes'), { recursive: true });
  writeFileSync(
    path.join(dir, 'config/default.yaml'),
    [
      'service: { host: 127.0.0.1, port: 8080, logLevel: info }',
      'storage: { sqlite: { path: ./data/vigil.db } }',
      'auth: { tokens: [{ name: ops, token: "${FLOOD_TOKEN}", role: operator }] }',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, 'probes/self.yaml'),
    '- id: p0\n  kind: http\n  url: http://127.0.0.1:9/health\n  schedule: { every: 10s }\n  timeout: 2s\n',
  );
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const vigil = await startVigil(dir, port);
  const pid = vigil.proc.pid ?? 0;
  const logBefore = statSync(vigil.log).size;
  const cpuBefore = cpuOf(pid);
  let rss = rssOf(pid);
  let wal = 0;
  const walFile = path.join(dir, 'data/vigil.db-wal');
  const sampler = setInterval(() => {
    rss = Math.max(rss, rssOf(pid));
    try {
      wal = Math.max(wal, statSync(walFile).size);
    } catch {}
  }, 250);
  try {
    const flood = spawn(
      process.execPath,
      [path.join(import.meta.dirname, 'flood-load.mjs'), String(port), String(connections), String(seconds), ADDRESSES.join(',')],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let text = '';
    flood.stdout?.on('data', (d) => {
      text += d;
    });
    const floodDone = new Promise((r) => flood.once('exit', r));
    // Let the connections open before measuring.
    await sleep(1_000);
    const times: number[] = [];
    let timeouts = 0;
    let beforeConnect = 0;
    let not200 = 0;
    const stopAt = Date.now() + (seconds - 2) * 1000;
    const polls: Array<Promise<void>> = [];
    while (Date.now() < stopAt) {
      polls.push(
        healthOnce(port, 2_000).then((r) => {
          if ('timeout' in r) {
            timeouts++;
            if (r.timeout === 'connect') beforeConnect++;
          } else {
            times.push(r.ms);
            if (r.status !== 200) not200++;
          }
        }),
      );
      await sleep(100);
    }
    await Promise.all(polls);
    await floodDone;
    const load = JSON.parse(text) as {
      requests: number;
      statuses: Record<string, number>;
      errors: number;
      errorCodes: Record<string, number>;
    };
    clearInterval(sampler);
    times.sort((a, b) => a - b);
    // vigil's own view of its event loop over the run (prom-client's default metrics).
    const metrics = await fetch(`${vigil.base}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN) * 1000;
    const lag = { p99: metric('nodejs_eventloop_lag_p99_seconds'), max: metric('nodejs_eventloop_lag_max_seconds') };
    const logBytes = statSync(vigil.log).size - logBefore;
    const cpu = cpuOf(pid) - cpuBefore;
    vigil.proc.kill('SIGTERM');
    await new Promise((r) => vigil.proc.once('exit', r));
    const db = new Database(path.join(dir, 'data/vigil.db'), { readonly: true });
    const audit = (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
    db.close();
    out(
      `flood: ${load.requests} requests (${f(load.requests / seconds, 0)}/s) from ${ADDRESSES.length} addresses, ` +
        `statuses ${JSON.stringify(load.statuses)}, ${load.errors} connection errors ${JSON.stringify(load.errorCodes)}`,
    );
    out(
      `/health (fresh connection every 100 ms): ${times.length + timeouts} polls, p50 ${f(pct(times, 50), 1)} ms, ` +
        `p99 ${f(pct(times, 99), 1)} ms, max ${f(times.at(-1) ?? Number.NaN, 1)} ms, ${timeouts} timeouts (2 s; ${beforeConnect} still connecting), ${not200} not 200 ` +
        '(target p99 < 500 ms, no timeout)',
    );
    out(
      `vigil: peak RSS ${f(rss / 1048576, 0)} MB (target < 300 MB), ${f(cpu, 1)} CPU-s (${f((cpu * 1e6) / Math.max(1, load.requests), 0)} µs a request), ` +
        `event-loop lag p99 ${f(lag.p99, 0)} ms max ${f(lag.max, 0)} ms, ` +
        `load average ${f(loadavg()[0] ?? 0, 1)} on ${cpus().length} cores; left behind: ${f(logBytes / 1024, 1)} KB of log, ` +
        `${audit} audit rows, WAL peak ${f(wal / 1048576, 1)} MB`,
    );
  } finally {
    clearInterval(sampler);
    if (vigil.proc.exitCode === null) vigil.proc.kill('SIGKILL');
  }
}

/**
 * `--only object-storage`: one object-storage run of --s3-size (default 100MB) against s3rver in a
 * child process (its memory is its own), after a 20 MiB run that loads the SDK's multipart code. Reports the run's
 * MB/s and round trip, and vigil's RSS growth: the peak during the run over the RSS before it.
 */
async function benchObjectStorage(): Promise<void> {
  const size = args.get('s3-size') ?? '100MB';
  out(`\n## object-storage: a ${size} round trip through s3rver (child process, loopback)`);
  const dir = path.join(tmp, 's3rver');
  mkdirSync(dir, { recursive: true });
  const bin = path.join(import.meta.dirname, '../node_modules/s3rver/bin/s3rver.js');
  const started = performance.now();
  const proc = spawn(process.execPath, [bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--silent', '--configure-bucket', 'bench'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      proc.stdout?.on('data', (d: Buffer) => {
        text += d.toString();
        const m = /listening on [^:]+:(\d+)/.exec(text);
        if (m) resolve(Number(m[1]));
      });
      proc.once('exit', (code) => reject(new Error(`s3rver exited (${code}) before listening`)));
    });
    out(`s3rver up in ${f(performance.now() - started, 0)} ms on port ${port}`);
    const { objectStorage } = await import('../src/probers/object-storage.js');
    const spec = (s: string) =>
      Value.Default(objectStorage.schema, {
        endpoint: `http://127.0.0.1:${port}`,
        bucket: 'bench',
        forcePathStyle: true,
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
        size: s,
      }) as Parameters<typeof objectStorage.probe>[0];
    const ctx = (ms: number) => ({
      signal: AbortSignal.timeout(ms),
      deadline: Date.now() + ms,
      clock: systemClock,
      logger: silent,
      probesDir: tmp,
      state: { get: () => undefined, set: () => {} },
    });
    const warm = await objectStorage.probe(spec('20MiB'), ctx(30_000));
    if (!warm.ok) throw new Error(`warm-up run failed: ${warm.code} ${warm.message}`);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    const r = await objectStorage.probe(spec(size), ctx(120_000));
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    if (!r.ok) throw new Error(`round trip failed: ${r.code} ${r.message}`);
    const growth = (peak - before) / 1048576;
    out(
      `object-storage ${size}: upload ${f(r.values.upload_mbps ?? 0, 1)} MB/s, download ${f(r.values.download_mbps ?? 0, 1)} MB/s, ` +
        `round trip ${f(r.values.round_trip_s ?? 0, 2)} s; vigil RSS ${f(before / 1048576, 0)} MB before, ` +
        `peak ${f(peak / 1048576, 0)} MB: growth ${f(growth, 1)} MB (target < 64 MB: ${growth < 64 ? 'met' : 'MISSED'})`,
    );
  } finally {
    proc.kill('SIGKILL');
  }
}

/** pid → [ppid, rss bytes] of every process, from /proc. */
function processTable(): Map<number, [number, number]> {
  const table = new Map<number, [number, number]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command: state(0) ppid(1) … rss in pages(21).
      table.set(Number(name), [Number(fields[1]), Number(fields[21]) * 4096]);
    } catch {
      // Exited while we looked.
    }
  }
  return table;
}

/**
 * Memory of every descendant of `root`: RSS summed (counts pages Chromium's processes share once
 * per process), and PSS summed (shares them out: the tree's real footprint), in bytes.
 */
function descendantsMemory(root: number): { rss: number; pss: number } {
  const table = processTable();
  const kids = new Map<number, number[]>();
  for (const [pid, [ppid]] of table) kids.set(ppid, [...(kids.get(ppid) ?? []), pid]);
  let rss = 0;
  let pss = 0;
  const stack = [...(kids.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    rss += table.get(pid)?.[1] ?? 0;
    try {
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // Exited while we looked.
    }
    stack.push(...(kids.get(pid) ?? []));
  }
  return { rss, pss };
}

/** CPU seconds of this process's reaped children and theirs (cutime + cstime). */
function childrenCpuS(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // state(0) … utime(11) stime(12) cutime(13) cstime(14), in clock ticks (100 a second on Linux).
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

async function benchBrowser() {
  const { browser } = await import('../src/probers/browser.js');
  const page = (body: string) => `<!doctype html><html><head><title>shop</title></head><body>${body}</body></html>`;
  const site = await listenHttp((req, res) => {
    if (req.url === '/api/orders') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Array.from({ length: 50 }, (_, i) => `order ${i}`)));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(
      page(
        '<h1>Your orders</h1><ul id="items"></ul><script>fetch("/api/orders").then((r) => r.json()).then((xs) => ' +
          '{ for (const x of xs) { const li = document.createElement("li"); li.textContent = x; document.getElementById("items").append(li); } });</script>',
      ),
    );
  });
  const dir = path.join(tmp, 'browser');
  mkdirSync(path.join(dir, 'probes'), { recursive: true });
  writeFileSync(
    path.join(dir, 'probes', 'journey.js'),
    `export default async (page, ctx) => {
  await ctx.step('open', () => page.goto(ctx.env.BASE + '/orders'));
  await ctx.step('orders', () => page.locator('#items li').nth(49).waitFor());
};\n`,
  );
  const spec = {
    id: 'bench-browser',
    kind: 'browser',
    script: 'journey.js',
    env: { BASE: site.url },
    expect: { maxConsoleErrors: 0, maxFailedRequests: 0, steps: {} },
  };
  try {
    const rssBefore = process.memoryUsage().rss;
    for (let i = 1; i <= 3; i++) {
      const peak = { rss: 0, pss: 0 };
      const sampler = setInterval(() => {
        const m = descendantsMemory(process.pid);
        peak.rss = Math.max(peak.rss, m.rss);
        peak.pss = Math.max(peak.pss, m.pss);
      }, 25);
      const cpu0 = childrenCpuS();
      const t0 = performance.now();
      const result = await browser.probe(spec as never, {
        signal: AbortSignal.timeout(60_000),
        deadline: Date.now() + 60_000,
        clock: systemClock,
        logger: silent,
        probesDir: path.join(dir, 'probes'),
        dataDir: path.join(dir, 'data'),
        state: { get: () => undefined, set: () => {} },
      });
      const wall = performance.now() - t0;
      clearInterval(sampler);
      out(
        `browser run ${i}: ${result.ok ? 'ok' : `FAILED ${result.code}: ${result.message}`}, wall ${f(wall / 1000, 2)} s, ` +
          `runner + Chromium ${f(childrenCpuS() - cpu0, 2)} CPU-s, peak PSS ${f(peak.pss / 1048576, 0)} MB (RSS summed per process ${f(peak.rss / 1048576, 0)} MB), ` +
          `LCP ${f(result.values.lcp_ms ?? Number.NaN, 0)} ms`,
      );
    }
    const rssAfter = process.memoryUsage().rss;
    out(`vigil's own RSS: ${f(rssBefore / 1048576, 1)} MB before the first run, ${f(rssAfter / 1048576, 1)} MB after the third`);
  } finally {
    await site.close();
  }
}

/**
 * `--only startup`: --startup-probes N (default 60,000) http probes on "* * * * *" at the loopback
 * target, as one file and then over 600 files. A fast start that schedules nothing is no result, so
 * each round also counts the probes that ran in the first whole minute after /health answered.
 */
async function benchStartup() {
  const n = Number(args.get('startup-probes') ?? 60_000);
  out(`\n## startup: ${n} http probes on "* * * * *" under \`node dist/main.js\`, as one file and as 600 files`);
  const target = await startTarget();
  try {
    for (const files of [1, 600]) await startupRound(n, files, target.port, RUNTIME_ENV);
    // A restart (a deploy) over the first round's database: the newest run of every probe and the
    // alert state are read back before /health answers.
    await startupRound(n, 1, target.port, RUNTIME_ENV, true);
    // What runtime.env is worth: the same one file under node as it comes.
    if (Object.keys(RUNTIME_ENV).length > 0) await startupRound(n, 1, target.port, {});
  } finally {
    target.proc.kill();
  }
}

async function startupRound(n: number, files: number, targetPort: number, runtimeEnv: Record<string, string>, restart = false) {
  // A folder of its own per round: a second round in the same one is a restart over its runs.
  const dir = path.join(tmp, `startup-${files}${Object.keys(runtimeEnv).length === 0 ? '-plain' : ''}`);
  if (!restart) writeStartupProbes(dir, n, files, targetPort);
  const stored = restart ? runsIn(path.join(dir, 'data/vigil.db')) : 0;
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const log = openSync(path.join(dir, 'vigil.log'), 'w');
  const t0 = performance.now();
  const proc = spawn(process.execPath, [path.join(import.meta.dirname, '../dist/main.js')], {
    cwd: dir,
    env: { ...process.env, ...runtimeEnv, PORT: String(port), VIGIL_ENV: '', VIGIL_CONFIG: '' },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const pid = proc.pid ?? 0;
  try {
    let healthMs = Number.NaN;
    while (proc.exitCode === null && performance.now() - t0 < 60_000) {
      const r = await healthOnce(port, 1_000);
      if ('status' in r && r.status === 200) {
        healthMs = performance.now() - t0;
        break;
      }
      await sleep(25);
    }
    if (Number.isNaN(healthMs)) throw new Error(`vigil did not answer /health 200 within 60 s; see ${path.join(dir, 'vigil.log')}`);
    if (restart) {
      proc.kill('SIGTERM');
      await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(20_000)]);
      out(`one file, restarted over its ${stored} runs: /health 200 after ${f(healthMs / 1000, 2)} s (target ≤ 3 s)`);
      return;
    }
    // The first slot after the start dispatches every probe over the minute that follows (spread by id).
    const boundary = Math.ceil(Date.now() / 60_000) * 60_000;
    // Runs started up to 2 s late still count as the minute's (a probe run twice then counts once).
    // The peak covers two whole minutes of runs: the first still fills the newest-run and metrics
    // tables, the second is how it stays (SQLite's page cache, malloc and the heap settled).
    await sleep(boundary + 65_000 - Date.now());
    const firstMinuteHwm = vmKb(pid, 'VmHWM') * 1024;
    let steady = 0;
    while (Date.now() < boundary + 125_000) {
      steady = Math.max(steady, rssOf(pid));
      await sleep(1_000);
    }
    const hwm = vmKb(pid, 'VmHWM') * 1024;
    proc.kill('SIGTERM');
    const exited = await Promise.race([new Promise((r) => proc.once('exit', () => r(true))), sleep(20_000).then(() => false)]);
    if (!exited) proc.kill('SIGKILL');
    const db = new Database(path.join(dir, 'data/vigil.db'), { readonly: true });
    const ran = (
      db
        .prepare('SELECT count(DISTINCT probe) AS n FROM runs WHERE started_at >= ? AND started_at < ?')
        .get(boundary, boundary + 62_000) as {
        n: number;
      }
    ).n;
    db.close();
    const seconds = (performance.now() - t0) / 1000;
    out(
      `${files === 1 ? 'one file' : `${files} files`}${Object.keys(runtimeEnv).length === 0 ? ', node as it comes' : ''}: ` +
        `/health 200 after ${f(healthMs / 1000, 2)} s (target ≤ 3 s); ` +
        `VmHWM ${f(firstMinuteHwm / 1048576, 0)} MB by the end of the first minute of runs, ${f(hwm / 1048576, 0)} MB over ${f(seconds, 0)} s ` +
        `(target ≤ 300 MB), RSS in the second minute up to ${f(steady / 1048576, 0)} MB; ` +
        `${ran} of ${n} probes ran in the minute from ${new Date(boundary).toISOString().slice(11, 19)}`,
    );
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
  }
}

/** The startup phase's folder: a config on SQLite and N http probes at the loopback target over `files` files. */
function writeStartupProbes(dir: string, n: number, files: number, targetPort: number) {
  mkdirSync(path.join(dir, 'config'), { recursive: true });
  mkdirSync(path.join(dir, 'probes'), { recursive: true });
  writeFileSync(
    path.join(dir, 'config/default.yaml'),
    'service:\n  host: 127.0.0.1\n  logLevel: info\nstorage:\n  sqlite:\n    path: ./data/vigil.db\n',
  );
  const per = Math.ceil(n / files);
  for (let file = 0; file * per < n; file++) {
    const items: string[] = [];
    for (let i = file * per; i < Math.min(n, (file + 1) * per); i++) {
      const address = ADDRESSES[i % ADDRESSES.length];
      items.push(`- id: p${i}\n  kind: http\n  url: http://${address}:${targetPort}/health\n  schedule: "* * * * *"\n  timeout: 10s\n`);
    }
    writeFileSync(path.join(dir, 'probes', `bench-${String(file).padStart(4, '0')}.yaml`), items.join(''));
  }
}

/** How many runs a vigil database holds. */
function runsIn(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** A `Vm…` line of /proc/PID/status in kB (Linux); 0 elsewhere. */
function vmKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

out(`vigil bench — node ${process.version}, ${new Date().toISOString()}`);
out(
  `vigil processes run with ${
    RUNTIME_ENV_FILE === 'none'
      ? 'node as it comes (--runtime-env none)'
      : `${RUNTIME_ENV_FILE}: ${Object.entries(RUNTIME_ENV)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
  }`,
);
try {
  if (!ONLY || ONLY === 'writes') await benchWrites();
  if (!ONLY || ONLY === 'scrape') await benchScrape();
  if (!ONLY || ONLY === 'load') await benchLoad();
  if (!ONLY || ONLY === 'throughput') await benchThroughput();
  if (!ONLY || ONLY === 'soak') await benchSoak();
  if (!ONLY || ONLY === 'alerts') await benchAlerts();
  if (!ONLY || ONLY === 'rollups') await benchRollups();
  if (!ONLY || ONLY === 'cluster') await benchCluster();
  if (!ONLY || ONLY === 'flood') await benchFlood();
  if (!ONLY || ONLY === 'object-storage') await benchObjectStorage();
  if (!ONLY || ONLY === 'browser') await benchBrowser();
  if (!ONLY || ONLY === 'startup') await benchStartup();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
