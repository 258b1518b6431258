import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitFor as waitUntil } from '../helpers/wait.js';
import { freePort, target, workspace } from '../helpers/workspace.js';

const waitFor = <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 20_000) => waitUntil(what, fn, ms);

// Three built vigil processes, three locations, one private PostgreSQL. One of them leads (by
// lease): it judges every location's runs and delivers the pages. A probe failing in one location
// of three does not page under a quorum of two; failing in two, it pages once. The leader killed
// (-9) while a page is in flight: another takes over within the lease and the page is delivered
// once (the receiver never answered the dead leader's request).

const ROOT = path.resolve(import.meta.dirname, '../..');
const LOCATIONS = ['eu-west', 'us-east', 'ap-south'] as const;
const LEASE_MS = 2_000;

interface Delivery {
  deliveryId: number;
  action: string;
  answered: boolean;
}

describe('three instances on one PostgreSQL', () => {
  let pg: TestPostgres;
  let ws: ReturnType<typeof workspace>;
  let upstream: Awaited<ReturnType<typeof target>>;
  let hook: ReturnType<typeof createServer>;
  const failing = new Set<string>();
  const deliveries: Delivery[] = [];
  /** While set, the receiver takes requests and never answers them. */
  let hold = false;
  const instances = new Map<string, { child: ChildProcess; port: number; log: string }>();

  const base = (loc: string) => `http://127.0.0.1:${instances.get(loc)!.port}`;
  const health = async (loc: string) =>
    (await (await fetch(`${base(loc)}/health`)).json()) as { checks: { leader: { leader: boolean; holder: string | null } } };
  const leaderNow = async () => {
    for (const loc of instances.keys()) if ((await health(loc).catch(() => undefined))?.checks.leader.leader) return loc;
    return undefined;
  };
  const incidents = async (loc: string) =>
    ((await (await fetch(`${base(loc)}/api/v1/incidents`)).json()) as { incidents: Array<{ id: number; state: string }> }).incidents;

  beforeAll(async () => {
    pg = await startPostgres();
    await pg.query('CREATE DATABASE vigil');
    upstream = await target((req, res) => {
      const from = new URL(req.url ?? '/', 'http://x').searchParams.get('from') ?? '';
      res.statusCode = failing.has(from) ? 503 : 200;
      res.end(failing.has(from) ? 'down' : 'ok');
    });
    hook = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const d = JSON.parse(body) as { deliveryId: number; action: string };
        const entry: Delivery = { deliveryId: d.deliveryId, action: d.action, answered: false };
        deliveries.push(entry);
        if (hold) return;
        entry.answered = true;
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const hookPort = (hook.address() as AddressInfo).port;
    ws = workspace({
      'config/default.yaml': `
service: { host: 127.0.0.1, shutdownTimeout: 2s }
storage: { postgres: { url: "\${VIGIL_PG_URL}" }, batch: { interval: 50ms } }
cluster: { leaseTtl: ${LEASE_MS}ms, feedInterval: 200ms }
alerting: { sweepInterval: 500ms, delivery: { timeout: 2s, minBackoff: 200ms, maxBackoff: 1s, pollInterval: 200ms } }
channels: { hook: { type: webhook, url: "http://127.0.0.1:${hookPort}/hook" } }
`,
      'probes/api.yaml': `
- id: api
  kind: http
  url: "${upstream.url}/health?from=\${VIGIL_LOCATION}"
  schedule: { every: 1s }
  timeout: 1s
  alert: { failures: 2, recoveries: 2, quorum: 2, channels: [hook] }
`,
    });
    for (const loc of LOCATIONS) {
      const port = await freePort();
      const child = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], {
        cwd: ws.dir,
        env: {
          ...process.env,
          VIGIL_ENV: '',
          PORT: String(port),
          VIGIL_LOCATION: loc,
          VIGIL_PG_URL: pg.url.replace(/\/postgres$/, '/vigil'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const entry = { child, port, log: '' };
      child.stdout?.on('data', (d) => {
        entry.log += d;
      });
      child.stderr?.on('data', (d) => {
        entry.log += d;
      });
      instances.set(loc, entry);
    }
    for (const loc of LOCATIONS)
      await waitFor(`${loc} to answer`, async () => ((await fetch(`${base(loc)}/health`)).ok ? true : undefined));
  }, 120_000);

  afterAll(async () => {
    for (const { child } of instances.values()) if (child.exitCode === null) child.kill('SIGKILL');
    await new Promise<void>((r) => hook?.close(() => r()));
    await upstream?.close();
    await pg?.stop();
    ws?.remove();
  });

  it('elects one leader; one failing location of three does not page under quorum 2, two do, once', async () => {
    const leader = await waitFor('a leader', leaderNow);
    const views = await Promise.all(LOCATIONS.map((l) => health(l)));
    expect(views.filter((v) => v.checks.leader.leader)).toHaveLength(1);
    expect(new Set(views.map((v) => v.checks.leader.holder)).size).toBe(1);
    expect(LOCATIONS).toContain(leader);

    failing.add('us-east');
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await incidents(leader)).toEqual([]);
    expect(deliveries).toEqual([]);

    failing.add('eu-west');
    const [open] = await waitFor('the incident', async () => {
      const list = await incidents(leader);
      return list.length > 0 ? list : undefined;
    });
    expect(open?.state).toBe('open');
    await waitFor('the page', () => (deliveries.some((d) => d.action === 'trigger') ? true : undefined));

    failing.clear();
    await waitFor('the resolve page', () => (deliveries.some((d) => d.action === 'resolve') ? true : undefined));
    expect(deliveries.map((d) => d.action)).toEqual(['trigger', 'resolve']);
    // Every instance reads the same incident from the one database.
    for (const loc of LOCATIONS) expect((await incidents(loc)).map((i) => i.state)).toEqual(['resolved']);
  }, 60_000);

  it('replaces a leader killed mid-delivery within the lease and delivers the page once', async () => {
    const leader = (await waitFor('a leader', leaderNow)) as string;
    hold = true;
    const before = deliveries.length;
    failing.add('eu-west');
    failing.add('ap-south');
    const held = await waitFor('the page in flight to the leader', () => deliveries.slice(before).find((d) => d.action === 'trigger'));
    expect(held.answered).toBe(false);

    const dead = instances.get(leader)!.child;
    const exited = new Promise((r) => dead.once('exit', r));
    dead.kill('SIGKILL');
    const killedAt = Date.now();
    // Answer again only once it is gone: a reply it could still read would be a delivery it made.
    await exited;
    hold = false;
    const next = (await waitFor('a new leader', async () => {
      const l = await leaderNow();
      return l !== undefined && l !== leader ? l : undefined;
    })) as string;
    // Within the lease (plus the new leader's renewal interval and the health call).
    expect(Date.now() - killedAt).toBeLessThan(LEASE_MS + LEASE_MS / 3 + 1_500);
    expect(next).not.toBe(leader);

    await waitFor(
      'the page answered',
      () => (deliveries.some((d) => d.deliveryId === held.deliveryId && d.answered) ? true : undefined),
      30_000,
    );
    failing.clear();
    await waitFor(
      'the resolve page',
      () => (deliveries.slice(before).some((d) => d.action === 'resolve' && d.answered) ? true : undefined),
      30_000,
    );
    // Answered once each: the dead leader's request was never answered, the new leader's was.
    const answered = deliveries.slice(before).filter((d) => d.answered);
    expect(
      answered.map((d) => d.action),
      JSON.stringify(deliveries.slice(before)),
    ).toEqual(['trigger', 'resolve']);
    expect(new Set(answered.map((d) => d.deliveryId)).size).toBe(2);
  }, 90_000);
});
