// The soak of issue 21: vigil on the production build (dist/) probing at 1/s for MINUTES minutes,
// the heap measured after full collections at the end of each minute. Run with --expose-gc.
// Usage: node --expose-gc bench/vigil-soak.mjs PORT PROBES ADDRESSES MINUTES
// Prints one JSON line: { minutes: [{ minute, heapMB, rssMB, runs }], cpuPerRun }.
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { createApp } from '../dist/app.js';
import { loadConfig } from '../dist/config/index.js';
import { loadUnderHeapLimit } from '../dist/lib/heap.js';
import { bytes } from '../dist/lib/size.js';
import { probeDir } from './probe-dir.mjs';

const [port, probes, addressList, minutesArg] = process.argv.slice(2);
const addresses = addressList.split(',');
const n = Number(probes);
const minutes = Number(minutesArg);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

const dir = probeDir('vigil-soak-', n, port, addresses, '{ every: 1s }');

// As `node dist/main.js` does: a fixed heap growth for the config load, then the configured headroom.
const config = loadUnderHeapLimit(
  () => loadConfig({ cwd: dir, configDir: '.', env: {} }),
  (loaded) => bytes(loaded.service.service.heapHeadroom),
);
const app = createApp({ config, logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })) });
await app.start();
const db = new Database(path.join(dir, 'vigil.db'), { readonly: true });
const count = db.prepare('SELECT count(*) AS n FROM runs');
const c0 = process.cpuUsage();
const runs0 = count.get().n;
const samples = [];
// What a minute retains is the floor of five collections in its last ten seconds: one collection
// alone also counts whatever runs, batches and responses happen to be in flight at that instant.
const started = Date.now();
for (let m = 1; m <= minutes; m++) {
  let heap = Number.POSITIVE_INFINITY;
  let rss = 0;
  for (let k = 4; k >= 0; k--) {
    await sleep(started + m * 60_000 - k * 2_000 - Date.now());
    globalThis.gc();
    const mem = process.memoryUsage();
    heap = Math.min(heap, mem.heapUsed);
    rss = Math.max(rss, mem.rss);
  }
  samples.push({ minute: m, heapMB: heap / 1048576, rssMB: rss / 1048576, runs: count.get().n - runs0 });
}
const c = process.cpuUsage(c0);
const total = count.get().n - runs0;
db.close();
await app.stop();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify({ minutes: samples, cpuPerRun: (c.user + c.system) / 1000 / total })}\n`);
