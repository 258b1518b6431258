import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createSqliteStore, type RunRecord } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { startHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

// The database stops taking writes while vigil runs: made read-only (PRAGMA query_only, what a
// read-only remount or a revoked permission does to SQLite: SQLITE_READONLY) or full (PRAGMA
// max_page_count at the current size: SQLITE_FULL, what a full disk does). vigil must say so on
// /health, keep probing and answering reads, hold the runs in memory (bounded) and write them when
// the database takes writes again, and lose no notification already in the outbox.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fault {
  name: string;
  /** Makes the store's connection refuse writes; returns how many runs it queued itself. */
  inflict(db: Database.Database, app: App): number;
  heal(db: Database.Database): void;
  /** What /health must say the reason is. */
  says: RegExp;
  /** Whether an update of an outbox row in place is refused too (a full disk still takes writes that need no new page). */
  refusesUpdates: boolean;
}

const FAULTS: Fault[] = [
  {
    name: 'read-only (SQLITE_READONLY)',
    inflict: (db) => {
      db.pragma('query_only = ON');
      return 0;
    },
    heal: (db) => db.pragma('query_only = OFF'),
    says: /attempt to write a readonly database/,
    refusesUpdates: true,
  },
  {
    name: 'disk full (SQLITE_FULL)',
    inflict: (db, app) => {
      // Not one page more than it has now: a write that needs a page fails as on a full disk. Rows
      // still fit in the room left in pages already there (as on a real full disk); a burst of large
      // runs uses that room up at once, rather than the probes taking seconds to.
      db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
      const filler = 60;
      for (let i = 0; i < filler; i++) {
        app.store.append({
          probeId: 'filler',
          kind: 'http',
          startedAt: Date.now(),
          durationMs: 1,
          ok: false,
          code: 'FILLER',
          message: 'x'.repeat(2_000),
          values: {},
          attempts: 1,
          trigger: 'manual',
        });
      }
      return filler;
    },
    heal: (db) => db.pragma('max_page_count = 1073741823'),
    says: /database or disk is full/,
    refusesUpdates: false,
  },
];

describe('the database refuses writes while vigil runs', () => {
  let app: App | undefined;
  let upstream: Awaited<ReturnType<typeof target>> | undefined;
  let hook: TestServer | undefined;
  let ws: ReturnType<typeof workspace> | undefined;

  afterEach(async () => {
    await app?.stop().catch(() => {});
    await upstream?.close();
    await hook?.close();
    ws?.remove();
    app = upstream = hook = ws = undefined;
  });

  it.each(FAULTS)('$name: /health says why, probing and reads go on, runs and pages are kept and written after', async (fault) => {
    upstream = await target((req, res) => {
      res.statusCode = req.url === '/down' ? 503 : 200;
      res.end(req.url === '/down' ? 'down' : 'ok');
    });
    // The webhook receiver fails until the fault is in place, then takes the page: its delivery must be
    // recorded once the database is back, and never sent twice.
    let hookUp = false;
    const received: Array<{ deliveryId: number; action: string; dedupKey: string }> = [];
    hook = await startHttp((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (!hookUp) {
          res.statusCode = 503;
          res.end('down');
          return;
        }
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.end('ok');
      });
    });
    ws = workspace({
      'config/default.yaml': [
        'service: { host: 127.0.0.1, port: 0, shutdownTimeout: 2s }',
        'storage: { sqlite: { path: ./data/vigil.db }, batch: { interval: 100ms } }',
        'alerting:',
        '  delivery: { minBackoff: 100ms, maxBackoff: 300ms, pollInterval: 100ms, timeout: 2s }',
        'channels:',
        `  hook: { type: webhook, url: "${hook.url}/hook" }`,
        '',
      ].join('\n'),
      'probes/p.yaml': [
        ...['a', 'b', 'c'].map(
          (n) => `- id: up-${n}\n  kind: http\n  url: ${upstream?.url}/${n}\n  schedule: { every: 1s }\n  timeout: 1s\n`,
        ),
        `- id: down\n  kind: http\n  url: ${upstream.url}/down\n  schedule: { every: 1s }\n  timeout: 1s\n  alert: { failures: 1, channels: [hook] }\n`,
      ].join(''),
    });
    // Passing runs are debug lines.
    const logs = memoryLogger('debug');
    app = createApp({ config: loadConfig({ cwd: ws.dir, env: {} }), logger: logs.logger });
    await app.start();
    const db = (app.store as unknown as { db: Database.Database }).db;
    const get = async (url: string) => {
      const res = await (app as App).server.inject({ url });
      const json = String(res.headers['content-type']).startsWith('application/json');
      return {
        status: res.statusCode,
        body: (json ? res.json() : {}) as Record<string, unknown> & { checks?: Record<string, Record<string, unknown>> },
      };
    };
    const runsLogged = () => logs.lines.filter((l) => l.msg === 'probe run').length;

    // The page is queued and failing before the fault: the outbox holds it.
    const [incident] = await waitFor('the incident for `down`', async () => {
      const list = (await app?.store.alerts.incidents({ probeId: 'down' })) ?? [];
      return list.length > 0 && list;
    });
    const trigger = await waitFor('a failed attempt of the trigger', async () => {
      const n = (await app?.store.alerts.notifications(incident!.id))?.[0];
      return n !== undefined && n.attempts > 0 && n;
    });
    expect(trigger).toMatchObject({ state: 'pending', action: 'trigger', channel: 'hook' });
    expect((await get('/health')).status).toBe(200);

    const queuedByFault = fault.inflict(db, app);
    const faultAt = runsLogged();
    hookUp = true;
    const health = await waitFor('/health to report the database', async () => {
      const h = await get('/health');
      return h.status === 503 && h.body.checks?.database?.ok === false && h;
    });
    expect(health.body.status).toBe('fail');
    expect(String(health.body.checks?.database?.error)).toMatch(fault.says);
    // The rest of vigil is fine, and says so.
    expect(health.body.checks?.scheduler?.ok).toBe(true);

    // A few seconds of the fault: the scheduler keeps probing, the API keeps answering reads.
    await sleep(2_500);
    expect(runsLogged() - faultAt).toBeGreaterThanOrEqual(8);
    const during = await get('/health');
    expect(during.status).toBe(503);
    expect(during.body.checks?.database?.queued as number).toBeGreaterThan(0);
    const probes = await get('/api/v1/probes');
    expect(probes.status).toBe(200);
    const upA = (probes.body.probes as Array<{ id: string; state: string; lastRun: { at: string } }>).find((p) => p.id === 'up-a');
    // Its last run is one held in memory, taken during the fault.
    expect(upA?.state).toBe('up');
    expect(Date.now() - Date.parse(upA?.lastRun.at as string)).toBeLessThan(2_000);
    expect((await get('/api/v1/probes/up-a/runs?limit=5')).status).toBe(200);
    expect((await get(`/api/v1/incidents/${incident?.id}`)).status).toBe(200);
    expect((await get('/metrics')).status).toBe(200);
    // The page went out once the receiver was up (or waits its turn): in either case it is still in the outbox.
    expect(await app.store.alerts.outboxItem(trigger.id)).toMatchObject({ id: trigger.id, action: 'trigger' });
    const sentDuringFault = received.filter((r) => r.deliveryId === trigger.id).length;
    expect(sentDuringFault).toBeLessThanOrEqual(1);
    if (fault.refusesUpdates) {
      // Sent, but the store would not record it: the outcome is held, the row stays pending, and the page is not sent again.
      expect(sentDuringFault).toBe(1);
      expect((await app.store.alerts.outboxItem(trigger.id))?.state).toBe('pending');
      expect(logs.lines.some((l) => l.msg === 'outbox write failed; the outcome is kept and written when the store takes it')).toBe(true);
    }

    // Writes work again: the runs held are written, the delivery recorded, /health is green.
    fault.heal(db);
    await waitFor('/health to be ok again', async () => {
      const h = await get('/health');
      return h.status === 200 && h.body.checks?.database?.queued === 0 && h;
    });
    const delivered = await waitFor('the page recorded as delivered', async () => {
      const n = await app?.store.alerts.outboxItem(trigger.id);
      return n?.state === 'delivered' && n;
    });
    expect(delivered.attempts).toBeGreaterThanOrEqual(2);
    await app.stop();
    app = undefined;

    // Every run that was logged is in the database, those of the fault included; the page reached the
    // receiver exactly once, however long the database refused to record it.
    const check = new Database(path.join(ws.dir, 'data/vigil.db'), { readonly: true });
    const stored = (check.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
    expect(stored).toBe(runsLogged() + queuedByFault);
    expect(received.filter((r) => r.deliveryId === trigger.id)).toHaveLength(1);
    expect(received.find((r) => r.deliveryId === trigger.id)).toMatchObject({
      action: 'trigger',
      dedupKey: `down/failures/${incident?.id}`,
    });
    const storeErrors = logs.lines.filter((l) => l.msg === 'run write failed; rows kept for retry');
    expect(storeErrors.length).toBeGreaterThan(0);
  });

  it('holds at most maxQueued runs while the database refuses writes, dropping the oldest, and writes the rest after', async () => {
    const clock = new ManualClock();
    const dir = workspace({});
    const file = path.join(dir.dir, 'vigil.db');
    const logs = memoryLogger();
    const store = createSqliteStore({ path: file, clock, logger: logs.logger, batchIntervalMs: 100, maxQueued: 100 });
    try {
      const run = (i: number): RunRecord => ({
        probeId: `p${i % 5}`,
        kind: 'http',
        startedAt: clock.now() + i,
        durationMs: 5,
        ok: i % 7 !== 0,
        values: { i },
        attempts: 1,
        trigger: 'schedule',
      });
      store.db.pragma('query_only = ON');
      for (let i = 0; i < 250; i++) store.append(run(i));
      await clock.advance(100);
      expect(store.health()).toMatchObject({ writable: false, queued: 100 });
      expect(store.stats()).toMatchObject({ written: 0, dropped: 150 });
      expect(store.stats().writeErrors).toBeGreaterThanOrEqual(1);
      // More arrive while it is still refused: still no more than the bound.
      for (let i = 250; i < 300; i++) store.append(run(i));
      await clock.advance(100);
      expect(store.health().queued).toBe(100);
      expect(store.stats().dropped).toBe(200);
      // The newest run of a probe is known even though it is not written.
      expect(store.latest('p4')?.values).toEqual({ i: 299 });

      store.db.pragma('query_only = OFF');
      await clock.advance(100);
      expect(store.health()).toEqual({ writable: true, queued: 0 });
      expect(store.stats()).toMatchObject({ written: 100, dropped: 200 });
      // The newest 100 were kept: runs 200 to 299.
      const kept = (store.db.prepare("SELECT json_extract(vals, '$.i') AS i FROM runs ORDER BY i").all() as Array<{ i: number }>).map(
        (r) => r.i,
      );
      expect(kept).toEqual(Array.from({ length: 100 }, (_, k) => 200 + k));
    } finally {
      await store.close();
      dir.remove();
    }
  });
});
