import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';
import { freePort, target, workspace } from '../helpers/workspace.js';

// A monitor must not go dark when its database does. The built service runs 20 probes at 1/s
// (one of them failing, with an alert rule that pages a local webhook); its database is frozen for
// 10 s — PostgreSQL stopped with SIGSTOP (postmaster and backends), or the SQLite file's write lock
// held by another process. Meanwhile /health is polled every 250 ms: each poll must be answered
// within 500 ms, and it must say the store is not answering. After the thaw every run made during
// the freeze is stored, once; the scheduler's lag p99 stayed under 100 ms; the failing probe's
// incident is paged exactly once.

const ROOT = path.resolve(import.meta.dirname, '../..');
const PROBES = Array.from({ length: 20 }, (_, i) => `p-${String(i).padStart(2, '0')}`);
const FAILING = 'p-00';
const FREEZE_MS = 10_000;
const require = createRequire(import.meta.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Backend {
  name: string;
  /** Lines under `storage:` that choose the backend. */
  storageYaml(): Promise<string[]>;
  /** Freezes the database; resolves to the thaw. */
  freeze(dir: string): Promise<() => Promise<void>>;
  /** Start instants of each probe's stored runs in [from, to), read after the service stopped. */
  runs(dir: string, from: number, to: number): Promise<Map<string, number[]>>;
  close(): Promise<void>;
}

/** SQLite: another process takes the write lock (BEGIN IMMEDIATE) and holds it until told to let go. */
function sqlite(): Backend {
  const file = (dir: string) => path.join(dir, 'data/vigil.db');
  return {
    name: 'SQLite',
    storageYaml: async () => [],
    async freeze(dir) {
      const holder = spawn(
        process.execPath,
        [
          '-e',
          `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))});
           const db = new D(${JSON.stringify(file(dir))});
           db.exec('BEGIN IMMEDIATE');
           process.stdout.write('locked\\n');
           process.stdin.on('data', () => { db.exec('COMMIT'); db.close(); process.exit(0); });`,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        holder.stdout?.once('data', () => resolve());
        holder.once('exit', (code) => reject(new Error(`the lock holder exited ${code}`)));
      });
      return async () => {
        const gone = new Promise((r) => holder.once('exit', r));
        holder.stdin?.write('go\n');
        await gone;
      };
    },
    async runs(dir, from, to) {
      const db = new Database(file(dir), { readonly: true });
      try {
        const rows = db
          .prepare(
            'SELECT p.name AS probe, r.started_at AS at FROM runs r JOIN probes p ON p.id = r.probe WHERE r.started_at >= ? AND r.started_at < ?',
          )
          .all(from, to) as Array<{ probe: string; at: number }>;
        return group(rows);
      } finally {
        db.close();
      }
    },
    close: async () => {},
  };
}

/** PostgreSQL: every process of the private cluster stopped with SIGSTOP, then SIGCONT. */
function postgres(): Backend {
  let pg: TestPostgres | undefined;
  const processes = () => {
    const postmaster = Number(readFileSync(path.join((pg as TestPostgres).socketDir, 'data/postmaster.pid'), 'utf8').split('\n')[0]);
    const children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
    return [postmaster, ...children];
  };
  return {
    name: 'PostgreSQL',
    async storageYaml() {
      pg = await startPostgres();
      return [`  postgres: { url: "${pg.url}", timeout: 2s }`];
    },
    async freeze() {
      const pids = processes();
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      return async () => {
        for (const pid of pids) process.kill(pid, 'SIGCONT');
      };
    },
    async runs(_dir, from, to) {
      const out = await (pg as TestPostgres).query(
        `SELECT p.name, r.started_at FROM runs r JOIN probes p ON p.id = r.probe WHERE r.started_at >= ${from} AND r.started_at < ${to}`,
      );
      return group(
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [probe, at] = l.split('|');
            return { probe: probe as string, at: Number(at) };
          }),
      );
    },
    async close() {
      await pg?.stop();
    },
  };
}

function group(rows: Array<{ probe: string; at: number }>): Map<string, number[]> {
  const by = new Map<string, number[]>();
  for (const r of rows) by.set(r.probe, [...(by.get(r.probe) ?? []), r.at]);
  return by;
}

/** A Prometheus histogram's cumulative bucket counts, by bound, from the text exposition. */
function buckets(metrics: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\d+)`, 'gm')))
    out.set(m[1] as string, Number(m[2]));
  return out;
}

/** Of the observations between two scrapes, the share at or under `le`, and how many there were. */
function shareUnder(before: Map<string, number>, after: Map<string, number>, le: string): { share: number; count: number } {
  const count = (after.get('+Inf') ?? 0) - (before.get('+Inf') ?? 0);
  return { share: ((after.get(le) ?? 0) - (before.get(le) ?? 0)) / count, count };
}

describe.each([sqlite(), postgres()])('with its database frozen ($name)', (backend) => {
  let service: ChildProcess | undefined;
  let hook: Server | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    if (service && service.exitCode === null) service.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c();
    await backend.close();
  });

  it('keeps probing and answering /health at once, then stores every run of the freeze once and pages once', async () => {
    const upstream = await target((req, res) => {
      res.statusCode = req.url === `/${FAILING}` ? 503 : 200;
      res.end('x');
    });
    cleanups.push(() => upstream.close());
    const pages: Array<{ action: string; key: string }> = [];
    const hookPort = await freePort();
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const j = JSON.parse(body) as { action: string; dedupKey?: string; incident?: { key?: string } };
        pages.push({ action: j.action, key: j.dedupKey ?? j.incident?.key ?? '' });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook?.listen(hookPort, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => hook?.close(() => r())));
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const ws = workspace({});
    cleanups.push(() => ws.remove());
    const write = (name: string, text: string) => writeFileSync(path.join(ws.dir, name), text);
    write(
      'config/default.yaml',
      [
        'service:',
        '  host: 127.0.0.1',
        `  port: ${port}`,
        '  shutdownTimeout: 5s',
        'storage:',
        ...(await backend.storageYaml()),
        '  batch: { interval: 100ms }',
        'alerting:',
        `  baseUrl: ${base}`,
        '  sweepInterval: 1s',
        '  delivery: { minBackoff: 100ms, maxBackoff: 1s, pollInterval: 200ms, timeout: 2s, maxAge: 24h }',
        'channels:',
        `  hook: { type: webhook, url: "http://127.0.0.1:${hookPort}/hook" }`,
        '',
      ].join('\n'),
    );
    write(
      'probes/freeze.yaml',
      PROBES.map(
        (id) =>
          `- id: ${id}\n  kind: http\n  url: ${upstream.url}/${id}\n  schedule: { every: 1s }\n  timeout: 1s\n${id === FAILING ? '  alert: { failures: 3, channels: [hook] }\n' : ''}`,
      ).join(''),
    );
    const logs: string[] = [];
    service = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], {
      cwd: ws.dir,
      env: { ...process.env, VIGIL_ENV: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    service.stdout?.on('data', (d) => logs.push(String(d)));
    service.stderr?.on('data', (d) => logs.push(String(d)));
    const tail = () => logs.join('').split('\n').slice(-15).join('\n');
    const health = async () => {
      const t0 = performance.now();
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(500) });
      return {
        status: res.status,
        body: (await res.json()) as { checks?: Record<string, { ok: boolean; error?: string }> },
        ms: performance.now() - t0,
      };
    };
    await waitFor('vigil up and healthy', async () => (await health().catch(() => undefined))?.status === 200, 30_000, tail);
    // Runs made and stored before the freeze: the store has written at least once.
    await sleep(3_000);

    const lagBefore = buckets(await (await fetch(`${base}/metrics`)).text(), 'vigil_scheduler_lag_seconds');
    const from = Date.now();
    const thaw = await backend.freeze(ws.dir);
    const polls: Array<{ status: number; ms: number; error?: string }> = [];
    const failures: string[] = [];
    try {
      while (Date.now() - from < FREEZE_MS) {
        const next = sleep(250);
        try {
          const h = await health();
          polls.push({ status: h.status, ms: h.ms, ...(h.body.checks?.database?.error ? { error: h.body.checks.database.error } : {}) });
        } catch (err) {
          failures.push(`${Date.now() - from} ms into the freeze: ${(err as Error).message}`);
        }
        await next;
      }
    } finally {
      await thaw();
    }
    const to = Date.now();

    expect(failures, `every /health poll answered within 500 ms:\n${tail()}`).toEqual([]);
    expect(polls.length).toBeGreaterThanOrEqual(30);
    expect(Math.max(...polls.map((p) => p.ms))).toBeLessThan(500);
    // It says which part is down, and names the database.
    const named = polls.filter((p) => p.status === 503 && p.error?.includes(backend.name));
    expect(named.length, JSON.stringify(polls.slice(-5))).toBeGreaterThan(0);

    // After the thaw: healthy again, the queue drained.
    await waitFor(
      'the queue written after the thaw',
      async () => {
        const h = await health().catch(() => undefined);
        return h?.status === 200 && (h.body.checks?.database as { queued?: number } | undefined)?.queued === 0;
      },
      30_000,
      tail,
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    // The runs scheduled during the freeze and the catch-up after it: p97 of their lag under 100 ms (a
    // scheduler waiting on the database would miss every slot of the freeze; a busy machine misses a few).
    const lag = shareUnder(lagBefore, buckets(metrics, 'vigil_scheduler_lag_seconds'), '0.1');
    expect(lag.count).toBeGreaterThanOrEqual(PROBES.length * 8);
    expect(lag.share, `share of ${lag.count} runs started within 100 ms of their slot`).toBeGreaterThanOrEqual(0.97);
    expect(Number(/^vigil_store_dropped_total (\d+)/m.exec(metrics)?.[1])).toBe(0);
    // The failing probe's incident: paged once, whatever the freeze did to its writes.
    await waitFor('the page of the failing probe', () => pages.some((p) => p.action === 'trigger'), 20_000, tail);
    await sleep(1_500);

    service.kill('SIGTERM');
    await new Promise((r) => service?.once('exit', r));
    const triggers = pages.filter((p) => p.action === 'trigger');
    expect(new Set(triggers.map((p) => p.key)).size).toBe(1);
    expect(triggers).toHaveLength(1);

    // Every run of the freeze stored, once: a run a second per probe (a slot at each edge may fall outside).
    const stored = await backend.runs(ws.dir, from, to);
    const seconds = Math.floor((to - from) / 1000);
    for (const id of PROBES) {
      const at = stored.get(id) ?? [];
      expect(new Set(at).size, `${id}: no run stored twice`).toBe(at.length);
      expect(at.length, `${id}: runs stored from the freeze`).toBeGreaterThanOrEqual(seconds - 1);
    }
  }, 90_000);
});
