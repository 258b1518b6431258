// One /metrics measurement in a process of its own, on the production build (dist/, or the build
// VIGIL_DIST names: a baseline). Run with --expose-gc. Usage: node --expose-gc bench/scrape-phase.mjs PROBES
//
// The built app with PROBES probes of the kinds a launch watches (6 in 10 https, 2 plain http, 1 tls,
// 1 dns, each with the value names its kind exports), on a schedule that does not fire during the
// measurement, and one run of each observed, so every series carries a real-looking number.
// Prints one JSON line:
//   render: the exposition made and encoded to UTF-8 in this process, as a reply would (median of 5);
//   http:   GET /metrics through the app's Fastify route from a raw socket here that only counts
//           bytes (median of 3): time to the last byte, the longest event-loop stall meanwhile.
// Memory is "transient": the peak of V8's used heap plus external memory (Buffers) during one
// scrape, over its level right after a gc() before it; sampled at every piece the exposition hands
// out (render) or every 2 ms (http). A build that makes one string (the baseline) is sampled once,
// holding that string: a lower bound for it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { pino } from 'pino';

const dist = process.env.VIGIL_DIST ?? pathToFileURL(path.join(import.meta.dirname, '../dist/')).href;
const { createApp } = await import(new URL('app.js', dist).href);
const { loadConfig } = await import(new URL('config/index.js', dist).href);

const n = Number(process.argv[2]);
if (!(n > 0) || typeof globalThis.gc !== 'function') throw new Error('usage: node --expose-gc bench/scrape-phase.mjs PROBES');
const gc = globalThis.gc;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const used = () => {
  const h = getHeapStatistics();
  return h.used_heap_size + h.external_memory;
};

/** The i-th probe: what kind, as YAML. Never due while measured: 00:00 on 1 January. */
function probe(i) {
  const head = `- id: p${i}\n  schedule: "0 0 1 1 *"\n`;
  const k = i % 10;
  if (k < 6) return `${head}  kind: http\n  url: https://svc-${i % 500}.example.com/health\n`;
  if (k < 8) return `${head}  kind: http\n  url: http://10.0.${(i >> 8) & 255}.${i & 255}:8080/health\n`;
  if (k === 8) return `${head}  kind: tls\n  host: svc-${i % 500}.example.com\n`;
  return `${head}  kind: dns\n  name: svc-${i % 500}.example.com\n  type: A\n  expect: [192.0.2.10]\n  resolvers: ["127.0.0.1:53"]\n`;
}

/** What one run of any of these kinds reports (each probe keeps the names its kind exports). */
function values(i) {
  const latency = 20 + ((i * 7919) % 100_000) / 1000;
  return {
    status: 200,
    latency_ms: latency,
    dns_ms: (i % 37) / 10,
    connect_ms: 0.25 + (i % 13) / 100,
    ttfb_ms: latency * 0.8,
    body_bytes: 1024 + (i % 4096),
    tls_ms: 3.125 + (i % 7) / 8,
    tls_days_remaining: 61 + (i % 300) / 24,
    days_remaining: 61 + (i % 300) / 24,
    not_after: 1_800_000_000 + i,
    chain_valid: 1,
    tls_version: 1.3,
    handshake_ms: 4.5 + (i % 11) / 4,
    propagated_ratio: 1,
    resolvers_ok: 1,
    resolvers_asked: 1,
    max_ttl_s: 300,
    propagation_s: 0,
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'vigil-scrape-'));
try {
  writeFileSync(
    path.join(dir, 'default.yaml'),
    'service:\n  host: 127.0.0.1\n  port: 0\n  logLevel: info\nstorage:\n  sqlite:\n    path: ./vigil.db\n',
  );
  mkdirSync(path.join(dir, 'probes'));
  const lines = [];
  for (let i = 0; i < n; i++) lines.push(probe(i));
  writeFileSync(path.join(dir, 'probes', 'bench.yaml'), lines.join(''));

  const config = loadConfig({ cwd: dir, configDir: '.', env: {} });
  const app = createApp({ config, logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })) });
  const address = await app.start();
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    app.metrics.observeRun({
      probeId: `p${i}`,
      kind: 'http',
      startedAt: now - ((i * 104_729) % 60_000),
      durationMs: 12 + ((i * 31) % 2000) / 10,
      ok: i % 50 !== 0,
      values: values(i),
      attempts: 1,
      trigger: 'schedule',
    });
  }

  const registry = app.registry;
  const renders = [];
  let bytes = 0;
  for (let k = 0; k < 5; k++) {
    gc();
    const before = used();
    let peak = before;
    const t = performance.now();
    let size = 0;
    const pieces = typeof registry.exposition === 'function' ? await registry.exposition() : [await registry.metrics()];
    for (const piece of pieces) {
      size += Buffer.from(piece).length;
      peak = Math.max(peak, used());
    }
    renders.push({ ms: performance.now() - t, mb: (peak - before) / 1e6 });
    bytes = size;
  }

  const { port } = new URL(address);
  const scrapes = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  // The first request warms the route (and its schemas) up; it is not counted.
  for (let k = -1; k < 3; k++) {
    gc();
    const before = used();
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, used());
    }, 2);
    loop.reset();
    loop.enable();
    const t = performance.now();
    const got = await new Promise((resolve, reject) => {
      let size = 0;
      let head = '';
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.write('GET /metrics HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n'),
      );
      socket.on('data', (d) => {
        if (head.length < 12) head += d.subarray(0, 12).toString('latin1');
        size += d.length;
      });
      socket.once('end', () => resolve({ size, status: head.slice(9, 12) }));
      socket.once('error', reject);
    });
    const ms = performance.now() - t;
    loop.disable();
    clearInterval(sampler);
    peak = Math.max(peak, used());
    if (got.status !== '200') throw new Error(`GET /metrics answered ${got.status}`);
    if (k >= 0) scrapes.push({ ms, mb: (peak - before) / 1e6, stallMs: loop.max / 1e6, bytes: got.size });
  }
  await app.stop();
  process.stdout.write(
    `${JSON.stringify({
      probes: n,
      bytes,
      renderMs: median(renders.map((r) => r.ms)),
      renderMb: Math.max(...renders.map((r) => r.mb)),
      httpMs: median(scrapes.map((s) => s.ms)),
      httpMb: Math.max(...scrapes.map((s) => s.mb)),
      httpStallMs: Math.max(...scrapes.map((s) => s.stallMs)),
      httpBytes: scrapes[0].bytes,
    })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
