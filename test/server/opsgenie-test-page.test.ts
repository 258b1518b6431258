import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { OPSGENIE_KEY, type OpsgenieApi, startOpsgenieApi } from '../helpers/opsgenie-api.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

const OPS = 'ops-token-5c1e9a7b3d2f';

describe('opsgenie test page through the API', () => {
  let app: App;
  let og: OpsgenieApi;
  let ws: ReturnType<typeof workspace>;
  const logs = memoryLogger();

  beforeAll(async () => {
    og = await startOpsgenieApi();
    ws = workspace({
      'config/default.yaml': `
service: { port: 0, host: 127.0.0.1 }
auth: { tokens: [{ name: ops, token: "\${OPS}", role: operator }] }
alerting: { delivery: { maxAge: 1m } }
channels:
  og: { type: opsgenie, apiKey: "\${OG_KEY}", region: eu, apiUrl: "${og.url}" }
`,
      'probes/none.yaml': '[]\n',
    });
    app = createApp({
      config: loadConfig({ cwd: ws.dir, env: { OPS, OG_KEY: OPSGENIE_KEY } }),
      logger: logs.logger,
      clock: new ManualClock(),
    });
    await app.start();
  });
  afterAll(async () => {
    await app.stop();
    await og.close();
    ws.remove();
  });

  const test = async () => {
    const res = await app.server.inject({ method: 'POST', url: '/api/v1/channels/og/test', headers: { authorization: `Bearer ${OPS}` } });
    expect(res.statusCode).toBe(202);
    return res.json().notification.id as number;
  };
  const settled = async (id: number) => {
    await waitFor(
      'the test page to settle',
      async () => ['delivered', 'dead'].includes((await app.store.alerts.outboxItem(id))?.state ?? ''),
      5_000,
    );
    return app.server.inject({ method: 'GET', url: `/api/v1/channels/og/tests/${id}` });
  };

  it('creates a P5 alert, closes it once Opsgenie processed it, and reports the delivery', async () => {
    const res = await settled(await test());
    expect(res.json().notification.state).toBe('delivered');
    expect(
      og.requests.map((r) => [r.method, r.path.replace(/\/[^/]+\/close$/, '/<alias>/close').replace(/[0-9a-f-]{36}$/, '<id>'), r.status]),
    ).toEqual([
      ['POST', '/v2/alerts', 202],
      ['GET', '/v2/alerts/requests/<id>', 200],
      ['POST', '/v2/alerts/<alias>/close', 202],
    ]);
    expect(og.requests[0]?.body).toMatchObject({ priority: 'P5', message: expect.stringMatching(/^\[TEST\] /) });
  });

  it('fails a test page refused for its key as permanent, the key nowhere in the answer or the logs', async () => {
    og.reset();
    og.mode = 'unauthorized';
    const res = await settled(await test());
    expect(res.json().notification.state).toBe('dead');
    expect(res.body).toContain('Opsgenie refused the API key (401');
    expect(og.requests).toHaveLength(1);
    expect(res.body).not.toContain(OPSGENIE_KEY);
    expect(JSON.stringify(logs.lines)).not.toContain(OPSGENIE_KEY);
  });
});
