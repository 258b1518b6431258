import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { freePort, target, workspace } from '../helpers/workspace.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('the built service as a process', () => {
  let upstream: Awaited<ReturnType<typeof target>>;
  let ws: ReturnType<typeof workspace>;
  let child: ChildProcess;
  let port: number;
  let stdout = '';
  let stderr = '';

  beforeAll(async () => {
    upstream = await target((req, res) => {
      res.statusCode = req.url === '/down' ? 503 : 200;
      res.end(req.url === '/down' ? '{"status":"fail","checks":{"db":"down"}}' : 'ok');
    });
    port = await freePort();
    ws = workspace({
      'config/default.yaml': `service:\n  host: 127.0.0.1\n  port: ${port}\n  shutdownTimeout: 5s\n  logLevel: debug\nstorage:\n  batch:\n    interval: 100ms\n`,
      'probes/targets.yaml': ['a', 'b', 'c']
        .map((n) => `- id: up-${n}\n  kind: http\n  url: ${upstream.url}/${n}\n  schedule: { every: 1s }\n  timeout: 2s\n`)
        .concat(`- id: down\n  kind: http\n  url: ${upstream.url}/down\n  schedule: { every: 1s }\n  timeout: 2s\n`)
        .join(''),
    });
    child = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], {
      cwd: ws.dir,
      env: { ...process.env, VIGIL_ENV: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
  });

  afterAll(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await upstream.close();
    ws.remove();
  });

  it('records runs, exposes them, and exits 0 on SIGTERM with every run written', async () => {
    const base = `http://127.0.0.1:${port}`;
    const probes = await waitFor('every probe to have run', async () => {
      const body = (await (await fetch(`${base}/api/v1/probes`)).json()) as { probes: Array<{ id: string; state: string }> };
      return body.probes.every((p) => p.state !== 'unknown') ? body.probes : undefined;
    });
    expect(Object.fromEntries(probes.map((p) => [p.id, p.state]))).toEqual({ 'up-a': 'up', 'up-b': 'up', 'up-c': 'up', down: 'down' });

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/vigil_probe_success\{probe="up-a",kind="http"\} 1/);
    expect(metrics).toMatch(/vigil_probe_success\{probe="down",kind="http"\} 0/);
    expect(metrics).toMatch(/vigil_probe_runs_total\{probe="down",kind="http",outcome="failure"\} [1-9]/);

    // SIGHUP reloads: a new probe file is picked up, a broken one is refused and the old config stays.
    writeFileSync(
      path.join(ws.dir, 'probes/extra.yaml'),
      `- id: extra\n  kind: http\n  url: ${upstream.url}/extra\n  schedule: { every: 1s }\n  timeout: 2s\n`,
    );
    child.kill('SIGHUP');
    await waitFor('the reloaded probe to run', async () => {
      const body = (await (await fetch(`${base}/api/v1/probes/extra`)).json()) as { state: string };
      return body.state === 'up' ? true : undefined;
    });
    writeFileSync(path.join(ws.dir, 'probes/extra.yaml'), '- id: extra\n  kind: htp\n');
    child.kill('SIGHUP');
    await waitFor('the refused reload to be logged', async () => (stdout.includes('config reload refused') ? true : undefined));
    expect((await fetch(`${base}/api/v1/probes/extra`)).status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('vigil_config_last_reload_success 0');
    rmSync(path.join(ws.dir, 'probes/extra.yaml'));

    // A reload that changes what only a restart applies is refused whole, logged with the reason.
    const configFile = path.join(ws.dir, 'config/default.yaml');
    const config = readFileSync(configFile, 'utf8');
    writeFileSync(configFile, config.replace(`port: ${port}`, `port: ${port + 1}`));
    child.kill('SIGHUP');
    const refusal = await waitFor(
      'the restart-only change to be refused',
      async () =>
        stdout
          .split('\n')
          .filter((l) => l.includes('"code":"VIGIL_ERR_RESTART_REQUIRED"'))
          .map((l) => JSON.parse(l) as { msg: string; problems: string[] })[0],
    );
    expect(refusal).toMatchObject({
      msg: 'config reload refused; the running config stays',
      problems: [`service.port: changed from ${port} to ${port + 1}; takes a restart`],
    });
    expect((await fetch(`${base}/health`)).status).toBe(200);
    writeFileSync(configFile, config);

    // Let a few more runs happen, some of them in flight at the signal.
    await new Promise((r) => setTimeout(r, 1500));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const t0 = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(6_000);
    expect(stderr).toBe('');

    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const l of lines) {
      expect(typeof l.time).toBe('string');
      expect(typeof l.level).toBe('string');
    }
    const logged = lines.filter((l) => l.msg === 'probe run');
    expect(lines.at(-1)?.msg).toBe('vigil stopped');

    const db = new Database(path.join(ws.dir, 'data/vigil.db'), { readonly: true });
    const rows = db
      .prepare('SELECT p.name AS probe_id, r.ok, r.code, r.message FROM runs r JOIN probes p ON p.id = r.probe')
      .all() as Array<{
      probe_id: string;
      ok: number;
      code: string | null;
      message: string | null;
    }>;
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    // Every run that was logged is in the database: nothing lost at shutdown.
    expect(rows.length).toBe(logged.length);
    expect(rows.length).toBeGreaterThanOrEqual(8);
    const down = rows.find((r) => r.probe_id === 'down');
    expect(down).toMatchObject({ ok: 0, code: 'HTTP_STATUS', message: '503 Service Unavailable: db down (expected 2xx)' });
    // Request lines carry the request id.
    expect(lines.some((l) => l.msg === 'request completed' && typeof l.requestId === 'string')).toBe(true);
  });

  it('refuses to start on a bad config, naming file and path, with a non-zero exit', () => {
    const bad = workspace({ 'config/default.yaml': 'service:\n  port: eighty\n  colour: blue\n', 'probes/x.yaml': '[]\n' });
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'dist/main.js')], { cwd: bad.dir, stdio: 'pipe' });
      expect.unreachable('vigil started on a bad config');
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      expect(e.status).toBe(2);
      const text = e.stderr.toString();
      expect(text).toContain('config/default.yaml: service.port: expected');
      expect(text).toContain('config/default.yaml: service.colour: expected one of the keys');
    } finally {
      bad.remove();
    }
  });
});
