import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

// A reload never strands a page: vigil in-process on loopback (real clock, real HTTP), probes
// against a local target, pages to local webhook receivers the test can turn on and off.

const ADMIN = 'admin-reload-token-0123456789';

/** What a webhook receiver got: every POST body, and whether it was answered 200. */
interface Receiver {
  url: string;
  got: Array<{ action: string; probe: string; path: string; accepted: boolean }>;
  up: boolean;
  /** Answer this many ms after the request arrived. */
  delayMs: number;
  close(): Promise<void>;
}

async function receiver(): Promise<Receiver> {
  const r: Omit<Receiver, 'url' | 'close'> = { got: [], up: true, delayMs: 0 };
  const server = await target((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const payload = JSON.parse(body) as { action: string; incident: { probeId: string } };
      r.got.push({ action: payload.action, probe: payload.incident.probeId, path: req.url ?? '', accepted: r.up });
      setTimeout(() => {
        res.statusCode = r.up ? 200 : 503;
        res.end();
      }, r.delayMs);
    });
  });
  return Object.assign(r, { url: server.url, close: server.close });
}

/** Pages a receiver accepted for a probe and action: what "delivered once" counts. */
const accepted = (r: Receiver, probe: string, action = 'trigger') =>
  r.got.filter((g) => g.accepted && g.probe === probe && g.action === action).length;

describe('reload: channels swap with probes, refused when only a restart applies, held pages go out', () => {
  let upstream: Awaited<ReturnType<typeof target>>;
  let hook: Receiver;
  let hook2: Receiver;
  let ws: ReturnType<typeof workspace>;
  let app: App;
  let base: string;
  const log = memoryLogger();

  const config = (extra: string) => `
service: { host: 127.0.0.1, port: 0 }
storage: { sqlite: { path: ./vigil.db } }
backup: { enabled: false }
auth: { tokens: [{ name: root, token: "\${ADMIN}", role: admin }] }
alerting: { delivery: { pollInterval: 100ms, minBackoff: 100ms, maxBackoff: 200ms, maxAge: 1s } }
${extra}`;
  const probe = (id: string, channels: string[]) => `
- id: ${id}
  kind: http
  url: ${upstream.url}/${id}
  schedule: { every: 1s }
  timeout: 2s
  alert: { failures: 1, channels: [${channels.join(', ')}] }
`;
  const write = (cfg: string, probes: string) => {
    writeFileSync(path.join(ws.dir, 'config/default.yaml'), cfg);
    writeFileSync(path.join(ws.dir, 'probes/app.yaml'), probes || '[]\n');
  };
  const make = () =>
    createApp({
      config: loadConfig({ cwd: ws.dir, env: { ADMIN } }),
      logger: log.logger,
      reloadConfig: () => loadConfig({ cwd: ws.dir, env: { ADMIN } }),
    });
  const reload = async () => {
    const res = await fetch(`${base}/api/v1/admin/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const get = async (p: string) => {
    const res = await fetch(`${base}${p}`);
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    upstream = await target((_req, res) => {
      res.statusCode = 503;
      res.end('down');
    });
    hook = await receiver();
    hook2 = await receiver();
    ws = workspace({});
    write(config(''), '');
    app = make();
    base = await app.start();
  });

  afterAll(async () => {
    await app.stop();
    await Promise.all([upstream.close(), hook.close(), hook2.close()]);
    ws.remove();
  });

  it('applies a new channel and the probe that pages it in one reload: the first incident is delivered once', async () => {
    write(config(`channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n`), probe('api', ['hook']));
    const res = await reload();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      ok: true,
      probes: { added: ['api'] },
      channels: { added: ['hook'], removed: [], changed: [] },
      restartRequired: [],
    });
    await waitFor('the page to reach the receiver', () => accepted(hook, 'api') === 1);
    // A few more polls and runs: nothing is sent twice, nothing is dead-lettered.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(accepted(hook, 'api')).toBe(1);
    const [incident] = await app.store.alerts.incidents({ probeId: 'api' });
    expect((await app.store.alerts.notifications(incident!.id)).map((n) => [n.channel, n.action, n.state])).toEqual([
      ['hook', 'trigger', 'delivered'],
    ]);
    expect((await get('/metrics')).text).toContain('vigil_notifications_total{channel="hook",outcome="delivered"} 1');

    // A changed channel config applies to the next send; a test schedule added by reload is declared at once.
    write(
      config(`channels:\n  hook: { type: webhook, url: "${hook.url}/v2", testSchedule: "0 9 * * 1" }\n`),
      probe('api', ['hook']) + probe('api2', ['hook']),
    );
    expect((await reload()).body).toMatchObject({ ok: true, probes: { added: ['api2'] }, channels: { changed: ['hook'] } });
    await waitFor('the api2 page', () => accepted(hook, 'api2') === 1);
    expect(hook.got.filter((g) => g.probe === 'api2').map((g) => g.path)).toEqual(['/v2']);
    expect((await get('/metrics')).text).toContain('vigil_probe_success{probe="channel:hook",kind="channel-test"}');
  });

  it('holds a page whose channel a reload removed, shows it held, and sends it once the channel is back', async () => {
    const withHook2 = config(
      `channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n  hook2: { type: webhook, url: "${hook2.url}/vigil" }\n`,
    );
    // hook2's receiver is down: the page waits in the outbox, retrying.
    hook2.up = false;
    write(withHook2, probe('api', ['hook']) + probe('web', ['hook2']));
    expect((await reload()).body).toMatchObject({ ok: true, channels: { added: ['hook2'] } });
    await waitFor('a refused attempt at hook2', () => hook2.got.some((g) => g.probe === 'web' && !g.accepted));

    // hook2 is removed (and web no longer pages it): the pending page is held, not dead-lettered,
    // even though it is older than maxAge (1 s) by the time it is looked at again.
    write(config(`channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n`), probe('api', ['hook']) + probe('web', []));
    expect((await reload()).body).toMatchObject({ ok: true, channels: { removed: ['hook2'] } });
    await waitFor('the page to be held', async () => (await app.store.alerts.held()).length > 0);
    await new Promise((r) => setTimeout(r, 1_500));
    const [web] = await app.store.alerts.incidents({ probeId: 'web' });
    expect((await app.store.alerts.notifications(web!.id)).map((n) => [n.channel, n.state, n.lastError])).toEqual([
      ['hook2', 'pending', 'channel hook2 is not configured'],
    ]);

    const health = await get('/health');
    expect(health.status).toBe(503);
    expect(JSON.parse(health.text).checks.outbox).toMatchObject({
      ok: false,
      held: 1,
      heldChannels: ['hook2'],
      error: '1 notification(s) held: channel(s) hook2 not configured; add them back and reload',
    });
    const metrics = (await get('/metrics')).text;
    expect(metrics).toContain('vigil_outbox_held{channel="hook2"} 1');
    expect(metrics).toContain('vigil_outbox_held{channel="hook"} 0');
    expect(metrics).not.toMatch(/vigil_notifications_total\{channel="hook2",outcome="dead"\} [1-9]/);
    const page = (await get('/')).text;
    expect(page).toContain('<h2 class="down-t">1 page held: channel not configured</h2>');
    expect(page).toMatch(/<li><b>hook2<\/b>: 1 page since /);

    // Back, and its receiver up: sent once, nothing held any more.
    hook2.up = true;
    write(withHook2, probe('api', ['hook']) + probe('web', ['hook2']));
    expect((await reload()).body).toMatchObject({ ok: true, channels: { added: ['hook2'] } });
    await waitFor('the held page to be delivered', () => accepted(hook2, 'web') === 1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(accepted(hook2, 'web')).toBe(1);
    expect(await app.store.alerts.held()).toEqual([]);
    expect(JSON.parse((await get('/health')).text).checks.outbox).toMatchObject({ ok: true, held: 0, heldChannels: [] });
    expect((await get('/metrics')).text).toContain('vigil_outbox_held{channel="hook2"} 0');
  });

  it('refuses a reload that changes what only a restart applies, lists why, and keeps everything running', async () => {
    const ids = async () => (JSON.parse((await get('/api/v1/probes')).text) as { probes: Array<{ id: string }> }).probes.map((p) => p.id);
    const before = await ids();
    write(
      config(`channels:\n  hook: { type: webhook, url: "${hook.url}/other" }\n`)
        .replace('port: 0', 'port: 9090')
        .replace('pollInterval: 100ms', 'pollInterval: 200ms'),
      probe('api', ['hook']) + probe('extra', ['hook']),
    );
    const res = await reload();
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      ok: false,
      code: 'VIGIL_ERR_RESTART_REQUIRED',
      problems: ['service.port: changed from 0 to 9090; takes a restart', 'alerting.delivery: changed; takes a restart'],
    });
    // Nothing of it applied: not the new probe, not the channel's new URL.
    expect(await ids()).toEqual(before);
    expect(before).not.toContain('extra');
    expect((await get('/health')).status).toBe(200);
    expect((await get('/metrics')).text).toContain('vigil_config_last_reload_success 0');
    expect(
      log.lines.some((l) => l.msg === 'config reload refused; the running config stays' && l.code === 'VIGIL_ERR_RESTART_REQUIRED'),
    ).toBe(true);
  });

  it('keeps a held page across a restart and sends it once its channel is configured', async () => {
    // A page for hook2, queued and then stranded: hook2 is removed while its receiver is down.
    hook2.up = false;
    const withHook2 = config(
      `channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n  hook2: { type: webhook, url: "${hook2.url}/vigil" }\n`,
    );
    write(withHook2, probe('api', ['hook']) + probe('web', ['hook2']) + probe('db', ['hook2']));
    expect((await reload()).body).toMatchObject({ ok: true });
    await waitFor('a refused attempt at hook2 for db', () => hook2.got.some((g) => g.probe === 'db' && !g.accepted));
    write(
      config(`channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n`),
      probe('api', ['hook']) + probe('web', []) + probe('db', []),
    );
    expect((await reload()).body).toMatchObject({ ok: true });
    await waitFor('the db page to be held', async () => (await app.store.alerts.held()).some((h) => h.channel === 'hook2'));
    await app.stop();

    // Restarted on the same database, still without hook2: still held.
    app = make();
    base = await app.start();
    await new Promise((r) => setTimeout(r, 500));
    expect(await app.store.alerts.held()).toMatchObject([{ channel: 'hook2', count: 1 }]);
    await app.stop();

    // Restarted with hook2 configured (and up): sent once.
    hook2.up = true;
    write(withHook2, probe('api', ['hook']) + probe('web', ['hook2']) + probe('db', ['hook2']));
    app = make();
    base = await app.start();
    await waitFor('the held db page to be delivered after the restart', () => accepted(hook2, 'db') === 1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(accepted(hook2, 'db')).toBe(1);
    expect(await app.store.alerts.held()).toEqual([]);
  });

  it('lets a send in flight finish when a reload removes its channel', async () => {
    hook2.delayMs = 1_000;
    const withHook2 = config(
      `channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n  hook2: { type: webhook, url: "${hook2.url}/vigil" }\n`,
    );
    write(withHook2, probe('api', ['hook']) + probe('web', ['hook2']) + probe('db', ['hook2']) + probe('slow', ['hook2']));
    expect((await reload()).body).toMatchObject({ ok: true, probes: { added: ['slow'] } });
    await waitFor('the slow page to reach hook2', () => hook2.got.some((g) => g.probe === 'slow'));
    // Removed while its receiver still holds the request open.
    write(
      config(`channels:\n  hook: { type: webhook, url: "${hook.url}/vigil" }\n`),
      probe('api', ['hook']) + probe('web', []) + probe('slow', []),
    );
    expect((await reload()).body).toMatchObject({ ok: true, channels: { removed: ['hook2'] } });
    const [slow] = await app.store.alerts.incidents({ probeId: 'slow' });
    await waitFor(
      'the send in flight to be recorded',
      async () => (await app.store.alerts.notifications(slow!.id))[0]?.state === 'delivered',
      5_000,
    );
    expect(await app.store.alerts.notifications(slow!.id)).toMatchObject([{ channel: 'hook2', state: 'delivered', attempts: 1 }]);
    expect(accepted(hook2, 'slow')).toBe(1);
    expect(await app.store.alerts.held()).toEqual([]);
    hook2.delayMs = 0;
  });
});
