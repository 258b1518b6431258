// One vigil measurement in a process of its own (so its RSS and CPU are vigil's alone), on the
// production build (dist/). Usage: node bench/vigil-phase.mjs PORT PROBES ADDRESSES [PERIOD]
// PERIOD is `minute` (each probe on "* * * * *", the default) or `second` (each on `every: 1s`).
// Prints one JSON line: runs in one whole minute, lag percentiles, CPU per run, peak RSS.
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config/index.js';
import { stableHash } from '../dist/lib/hash.js';
import { loadUnderHeapLimit } from '../dist/lib/heap.js';
import { bytes } from '../dist/lib/size.js';
import { probeDir } from './probe-dir.mjs';

const [port, probes, addressList, period = 'minute'] = process.argv.slice(2);
const periodMs = period === 'second' ? 1000 : 60_000;
const schedule = period === 'second' ? '{ every: 1s }' : '"* * * * *"';
const addresses = addressList.split(',');
const n = Number(probes);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;

const dir = probeDir('vigil-phase-', n, port, addresses, schedule);

const t0 = performance.now();
// As `node dist/main.js` does: a fixed heap growth for the config load, then the configured headroom.
const config = loadUnderHeapLimit(
  () => loadConfig({ cwd: dir, configDir: '.', env: {} }),
  (loaded) => bytes(loaded.service.service.heapHeadroom),
);
const loadMs = performance.now() - t0;
const app = createApp({ config, logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })) });
await app.start();

// Measure one whole minute, from the next minute boundary; a run belongs to the slot it was planned for.
const boundary = Math.ceil(Date.now() / 60_000) * 60_000;
await sleep(boundary - Date.now());
let rss = 0;
const sampler = setInterval(() => {
  rss = Math.max(rss, process.memoryUsage().rss);
}, 250);
const c0 = process.cpuUsage();
await sleep(60_000);
const c = process.cpuUsage(c0);
clearInterval(sampler);
const s0 = performance.now();
const text = await app.registry.metrics();
const scrapeMs = performance.now() - s0;
// Why a slot did not run: skipped (overlap, a full run table, a kind at its limit) or missed (the loop was blocked past it).
const notRun = Object.fromEntries(
  [...text.matchAll(/^vigil_scheduler_(skipped|missed)_total(?:\{reason="([^"]+)"\})? (\S+)$/gm)]
    .filter((m) => Number(m[3]) > 0)
    .map((m) => [m[2] ?? m[1], Number(m[3])]),
);
await sleep(5_000);
await app.stop();

const offsetOf = (id) => Math.floor((stableHash(id) / 0x1_0000_0000) * periodMs);
const db = new Database(path.join(dir, 'vigil.db'), { readonly: true });
const rows = db
  .prepare(
    'SELECT p.name AS id, r.started_at AS at, r.ok FROM runs r JOIN probes p ON p.id = r.probe WHERE r.started_at >= ? AND r.started_at < ?',
  )
  .all(boundary - 5_000, boundary + 65_000)
  .map((r) => ({ ...r, slot: boundary + Math.round((r.at - offsetOf(r.id) - boundary) / periodMs) * periodMs }))
  .filter((r) => r.slot >= boundary && r.slot < boundary + 60_000);
db.close();
rmSync(dir, { recursive: true, force: true });
const lags = rows.map((r) => r.at - (r.slot + offsetOf(r.id))).sort((a, b) => a - b);
// A run counted twice for one (probe, slot) means a slot assignment went wrong, not a run lost.
const twice = rows.length - new Set(rows.map((r) => `${r.id}@${r.slot}`)).size;
process.stdout.write(
  `${JSON.stringify({
    runs: rows.length,
    failed: rows.filter((r) => r.ok !== 1).length,
    lagP50: pct(lags, 50),
    lagP99: pct(lags, 99),
    cpuPerRun: (c.user + c.system) / 1000 / rows.length,
    rss,
    loadMs,
    scrapeMs,
    notRun,
    twice,
  })}\n`,
);
