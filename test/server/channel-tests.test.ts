import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import type { TickHandlers } from '../../src/scheduler/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor as waitUntil } from '../helpers/wait.js';
import { target, workspace } from '../helpers/workspace.js';

const OPS = 'ops-token-7d2e1f0a9b8c';

describe('channel test pages', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let hook: Awaited<ReturnType<typeof target>>;
  const clock = new ManualClock();
  const ticks = new Map<string, TickHandlers>();

  beforeAll(async () => {
    hook = await target((_req, res) => {
      res.statusCode = 204;
      res.end();
    });
    ws = workspace({
      'config/default.yaml': `
service: { port: 0, host: 127.0.0.1 }
auth: { tokens: [{ name: ops, token: "\${OPS}", role: operator }] }
channels:
  hook: { type: webhook, url: "${hook.url}/vigil", testSchedule: "0 9 * * 1" }
`,
      'probes/none.yaml': '[]\n',
    });
    app = createApp({
      config: loadConfig({ cwd: ws.dir, env: { OPS } }),
      logger: memoryLogger().logger,
      clock,
      // Cron slots fire when the test says so.
      cron: (expr, handlers) => {
        ticks.set(expr, handlers);
        return { stop: () => ticks.delete(expr) };
      },
    });
    await app.start();
  });

  afterAll(async () => {
    await app.stop();
    await hook.close();
    ws.remove();
  });

  const waitFor = (ok: () => boolean | Promise<boolean>) => waitUntil('the test notification', ok, 2_000);

  it('sends one on demand and reports its delivery time', async () => {
    const res = await app.server.inject({ method: 'POST', url: '/api/v1/channels/hook/test', headers: { authorization: `Bearer ${OPS}` } });
    expect(res.statusCode).toBe(202);
    const id = res.json().notification.id;
    await waitFor(async () => (await app.store.alerts.outboxItem(id))?.state === 'delivered');
    const after = (await app.server.inject({ method: 'GET', url: `/api/v1/channels/hook/tests/${id}` })).json();
    expect(after.notification.state).toBe('delivered');
    expect(after.deliveryMs).toBeGreaterThanOrEqual(0);
    expect(
      (await app.server.inject({ method: 'POST', url: '/api/v1/channels/nope/test', headers: { authorization: `Bearer ${OPS}` } }))
        .statusCode,
    ).toBe(404);
  });

  it('sends one on its schedule and records the delivery as a run, failing like a probe when it does not arrive', async () => {
    const before = hook.hits;
    ticks.get('0 9 * * 1')?.onTick(clock.now(), clock.now() + 7 * 86_400_000);
    await waitFor(() => hook.hits > before);
    await clock.advance(60_000);
    await app.store.flush();
    const [ok] = await app.store.runs({ probeId: 'channel:hook' });
    expect(ok).toMatchObject({ ok: true, kind: 'channel-test', trigger: 'schedule' });
    expect(ok?.values.delivery_ms).toBeGreaterThanOrEqual(0);
    expect((await app.server.inject({ method: 'GET', url: '/metrics' })).body).toContain(
      'vigil_probe_success{probe="channel:hook",kind="channel-test"} 1',
    );

    hook.answer((_req, res) => {
      res.statusCode = 500;
      res.end('down');
    });
    ticks.get('0 9 * * 1')?.onTick(clock.now(), clock.now() + 7 * 86_400_000);
    await waitFor(() => hook.hits > before + 1);
    await clock.advance(60_000);
    await app.store.flush();
    const [failed] = await app.store.runs({ probeId: 'channel:hook' });
    expect(failed).toMatchObject({
      ok: false,
      code: 'NOT_DELIVERED',
      message: expect.stringMatching(/^test page through hook not delivered within 60s: /),
    });
  });
});
