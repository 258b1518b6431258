import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

// GET /metrics streams the exposition: the same bytes as the registry's text, valid for promtool,
// sent on as a slow reader takes it while the server goes on answering.

const PROBES = 4_000;

/** The families promtool lints clean: prom-client's Node metrics fail its lint (a gauge named _total). */
const lintable = (text: string) =>
  text
    .split('\n\n')
    .filter((block) => !block.startsWith('# HELP nodejs_'))
    .join('\n\n');

describe('GET /metrics', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let base: string;

  beforeAll(async () => {
    const probes = Array.from(
      { length: PROBES },
      (_, i) => `- id: p${i}\n  kind: http\n  url: https://svc-${i}.example.com/health\n  schedule: "0 0 1 1 *"\n`,
    );
    ws = workspace({
      'config/default.yaml': 'service:\n  port: 0\n  host: 127.0.0.1\nstorage:\n  sqlite:\n    path: ./data/vigil.db\n',
      'probes/many.yaml': probes.join(''),
    });
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger: memoryLogger('info').logger });
    base = await app.start();
    for (let i = 0; i < PROBES; i++) {
      app.metrics.observeRun({
        probeId: `p${i}`,
        kind: 'http',
        startedAt: 1_790_000_000_000 + i,
        durationMs: 12.5 + i,
        ok: i % 3 !== 0,
        values: { status: 200, latency_ms: 12.345, tls_days_remaining: 61.5 },
        attempts: 1,
        trigger: 'schedule',
      });
    }
  });

  afterAll(async () => {
    await app.stop();
    ws.remove();
  });

  it('streams the exposition in chunks, byte for byte the registry text, valid for promtool', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const body = await res.text();
    expect(body.length).toBeGreaterThan(5_000_000);
    expect(body).toContain('vigil_probe_value{probe="p1",kind="http",name="tls_days_remaining"} 61.5');
    // Nothing ran between the two: the process metrics aside, the same bytes.
    const text = await app.registry.metrics();
    const probeLines = (t: string) => t.split('\n').filter((l) => l.startsWith('vigil_probe_'));
    expect(probeLines(body)).toEqual(probeLines(text));
    const heads = (t: string) => t.split('\n').filter((l) => l.startsWith('# '));
    expect(heads(body)).toEqual(heads(text));
    expect(body.endsWith('\n') && !body.endsWith('\n\n')).toBe(true);
    execFileSync('promtool', ['check', 'metrics'], { input: lintable(body) });
  });

  it('answers HEAD without a body', async () => {
    const res = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('keeps answering while a scraper stops reading, and sends it the rest when it reads again', async () => {
    const { port } = new URL(base);
    let received = 0;
    const socket: Socket = connect(Number(port), '127.0.0.1');
    const ended = new Promise<void>((resolve) => socket.once('end', resolve));
    socket.on('data', (d: Buffer) => {
      received += d.length;
      // Stop at the first bytes: the rest waits (in the kernel's buffers, then unmade in the server) until it reads again.
      socket.pause();
    });
    socket.write('GET /metrics HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n\r\n');
    await waitFor('the first bytes of the scrape', () => received > 0);

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    // Another scrape goes through whole meanwhile.
    const other = await (await fetch(`${base}/metrics`)).text();
    expect(other).toContain('vigil_probe_success{probe="p3999",kind="http"} 0');

    socket.removeAllListeners('data');
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    socket.resume();
    await ended;
    // Headers and chunk sizes on top of the whole text.
    expect(received).toBeGreaterThan(other.length);
  });
});
