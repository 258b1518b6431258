import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/build.js';
import { freePort, target } from '../helpers/workspace.js';

// The README's quick start, run line by line in bash in a copy of the checkout (its config/,
// probes/ and the build). Changed, and only these: the first line (npm ci, the build: done
// already), the example URLs (a loopback API and a loopback Slack webhook), the port (a free one,
// by PORT), `open` (fetches the page instead of opening a browser), and curl retries while vigil
// starts. Everything else runs as written, then the test waits for the test page's delivery.

const ROOT = path.resolve(import.meta.dirname, '../..');

function quickStart(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Quick start\n'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block.trimEnd().split('\n');
}

describe('the README quick start', () => {
  let ws: string;
  let api: Awaited<ReturnType<typeof target>>;
  let slack: Awaited<ReturnType<typeof target>>;
  const posts: string[] = [];

  beforeAll(async () => {
    ensureBuilt();
    ws = mkdtempSync(path.join(tmpdir(), 'vigil-quick-'));
    cpSync(path.join(ROOT, 'config'), path.join(ws, 'config'), { recursive: true });
    cpSync(path.join(ROOT, 'probes'), path.join(ws, 'probes'), { recursive: true });
    for (const name of ['dist', 'node_modules', 'package.json']) symlinkSync(path.join(ROOT, name), path.join(ws, name));
    api = await target((_req, res) => res.end('{"status":"ok"}'));
    slack = await target((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        posts.push(body);
        res.end('ok');
      });
    });
  });
  afterAll(async () => {
    await api?.close();
    await slack?.close();
    if (ws) rmSync(ws, { recursive: true, force: true });
  });

  it('is ten lines', () => {
    const lines = quickStart();
    expect(lines).toHaveLength(10);
    expect(lines[0]).toBe('npm ci && npm run build');
  });

  it('watches the API, pages Slack, and shows the probe on /', async () => {
    const port = await freePort();
    const lines = quickStart()
      .slice(1)
      .map((line) =>
        line
          .replace('https://hooks.slack.com/services/T000/B000/XXXX', `${slack.url}/services/T000/B000/XXXX`)
          .replace('https://api.example.com/health', `${api.url}/health`)
          .replaceAll('http://localhost:8080', `http://127.0.0.1:${port}`),
      );
    const script = [
      'set -euo pipefail',
      `export PORT=${port}`,
      // vigil takes a moment to listen: curl retries until it does.
      'curl() { command curl --retry 40 --retry-connrefused --retry-delay 0 --retry-max-time 20 "$@"; }',
      'open() { curl -fsS "$1" > status.html; }',
      ...lines,
      // The test page is sent by the outbox worker, shortly after the 202: waited for before stopping.
      `for _ in $(seq 100); do curl -fsS http://127.0.0.1:${port}/api/v1/channels/slack/tests/1 | grep -q '"state":"delivered"' && break; sleep 0.1; done`,
      'kill %1 && wait',
      'echo "token:$VIGIL_TOKEN"',
    ].join('\n');
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile('bash', ['-c', script], { cwd: ws, timeout: 40_000, env: { PATH: process.env.PATH } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^config ok: \d+ probes from 4 files\n/);
    expect(run.stdout).toMatch(/\nmy-api \(http\): ok in \d+ms\n/);
    // The test page reached Slack.
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatch(/test/i);
    const page = readFileSync(path.join(ws, 'status.html'), 'utf8');
    expect(page).toContain('my-api');
    // The token the quick start made is nowhere in what vigil logged.
    const token = /token:(\S{43})\n$/.exec(run.stdout)?.[1];
    expect(token).toBeDefined();
    const log = readFileSync(path.join(ws, 'vigil.log'), 'utf8');
    expect(log).toContain('"msg":"vigil started"');
    expect(log).not.toContain(token);
  });
});
