/**
 * `npm run bench`: how much vigil costs per run, measured against baselines in the same run.
 *
 *   writes   batched result writes through the store vs. a bare better-sqlite3 insert loop
 *   scrape   /metrics rendering at 1,000 and 10,000 probes (each with its named values)
 *   load     a loopback target (own process) probed at N/60 runs/s by
 *              - a bare undici loop, fresh connection per request, batched SQLite writes (baseline)
 *              - prometheus-blackbox-exporter, when installed (its own CPU, from /proc)
 *              - vigil itself: N probes on "* * * * *" for one whole minute
 *
 * Options: --probes N (default 60000), --small N (the RSS run, default 10000), --only writes|scrape|load,
 * --seconds S (baseline phases, default 20).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { Client } from 'undici';
import { systemClock } from '../src/lib/clock.js';
import { createMetrics, FastRegistry } from '../src/metrics/index.js';
import { createSqliteStore, type RunRecord } from '../src/store/index.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const PROBES = Number(args.get('probes') ?? 60_000);
const SMALL = Number(args.get('small') ?? 10_000);
const SECONDS = Number(args.get('seconds') ?? 20);
const ONLY = args.get('only');
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

async function benchScrape() {
  out('\n## scrape: /metrics rendering');
  for (const n of [1_000, 10_000]) {
    const registry = new FastRegistry();
    const metrics = createMetrics({ registry, durationBuckets: [0.05, 0.25, 1, 5, 30], processMetrics: true });
    const names = ['status', 'latency_ms', 'dns_ms', 'connect_ms', 'ttfb_ms', 'body_bytes'];
    metrics.setProbes(Array.from({ length: n }, (_, i) => ({ id: `probe-${i}`, kind: 'http', values: names })));
    for (let i = 0; i < n; i++) metrics.observeRun({ ...run(i, Date.now()), probeId: `probe-${i}` });
    const times: number[] = [];
    let bytes = 0;
    for (let k = 0; k < 7; k++) {
      const t = performance.now();
      bytes = (await registry.metrics()).length;
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const target = n === 1_000 ? 20 : 250;
    out(`${n} probes: median ${f(times[3]!, 1)} ms, ${f(bytes / 1e6, 1)} MB of text (target < ${target} ms)`);
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
async function vigilPhase(port: number, probes: number) {
  const child = spawn(
    process.execPath,
    [path.join(import.meta.dirname, 'vigil-phase.mjs'), String(port), String(probes), ADDRESSES.join(',')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
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

out(`vigil bench — node ${process.version}, ${new Date().toISOString()}`);
try {
  if (!ONLY || ONLY === 'writes') await benchWrites();
  if (!ONLY || ONLY === 'scrape') await benchScrape();
  if (!ONLY || ONLY === 'load') await benchLoad();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
