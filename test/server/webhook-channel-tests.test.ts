import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { waitFor } from '../helpers/wait.js';
import { startWebhookPeer, type WebhookPeer } from '../helpers/webhook-peer.js';
import { workspace } from '../helpers/workspace.js';

// The test-page route through the two webhook channels, wired by the real app: a Slack incoming
// webhook that accepts, and a Teams workflow that refuses quoting its URL back. Neither URL's
// secret part may show in the API's answers or the logs.

const OPS = 'ops-token-5b1e0c9d8a7f';
const SLACK_SECRET = 'Hk4Wb9Qz2Lx7Rt5Vn8Mc3Pd6';
const TEAMS_SIG = 'S1gTeamsWorkflow-x7Qb2Rz9Lm4';

describe('test pages through slack (incoming webhook) and teams', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let slackHook: WebhookPeer;
  let teamsFlow: WebhookPeer;
  const logs = memoryLogger();

  beforeAll(async () => {
    slackHook = await startWebhookPeer(() => ({ status: 200, body: 'ok' }));
    teamsFlow = await startWebhookPeer((r) => ({
      status: 400,
      body: JSON.stringify({ error: { code: 'TriggerInputSchemaMismatch', message: `bad body for ${r.path}` } }),
    }));
    ws = workspace({
      'config/default.yaml': `
service: { port: 0, host: 127.0.0.1 }
auth: { tokens: [{ name: ops, token: "\${OPS}", role: operator }] }
channels:
  slack-hook: { type: slack, webhookUrl: "\${SLACK_WEBHOOK_URL}" }
  teams-ops: { type: teams, url: "\${TEAMS_WEBHOOK_URL}" }
`,
      'probes/none.yaml': '[]\n',
    });
    const env = {
      OPS,
      SLACK_WEBHOOK_URL: `${slackHook.url}/services/T01/B02/${SLACK_SECRET}`,
      TEAMS_WEBHOOK_URL: `${teamsFlow.url}/workflows/w1/triggers/manual/paths/invoke?api-version=1&sig=${TEAMS_SIG}`,
    };
    app = createApp({ config: loadConfig({ cwd: ws.dir, env }), logger: logs.logger, clock: new ManualClock() });
    await app.start();
  });

  afterAll(async () => {
    await app?.stop();
    await slackHook?.close();
    await teamsFlow?.close();
    ws?.remove();
  });

  async function testPage(channel: string) {
    const res = await app.server.inject({
      method: 'POST',
      url: `/api/v1/channels/${channel}/test`,
      headers: { authorization: `Bearer ${OPS}` },
    });
    expect(res.statusCode).toBe(202);
    const id = res.json().notification.id as number;
    await waitFor(`${channel}: the test page settled`, async () => (await app.store.alerts.outboxItem(id))?.state !== 'pending', 5_000);
    return app.server.inject({
      method: 'GET',
      url: `/api/v1/channels/${channel}/tests/${id}`,
      headers: { authorization: `Bearer ${OPS}` },
    });
  }

  it('a slack webhook-mode channel delivers a [TEST] message to its webhook', async () => {
    const res = await testPage('slack-hook');
    expect(res.json().notification.state).toBe('delivered');
    expect(slackHook.received).toHaveLength(1);
    expect((slackHook.received[0]?.body as { text?: string } | undefined)?.text).toMatch(/^\[TEST\] vigil test page/);
    expect(res.body).not.toContain(SLACK_SECRET);
  });

  it('a teams channel refused with a 400 fails the test page at once, its reason shown without the signature', async () => {
    const res = await testPage('teams-ops');
    const { notification } = res.json();
    expect(notification.state).toBe('dead');
    expect(notification.lastError).toMatch(
      /answered 400: TriggerInputSchemaMismatch: bad body for \/workflows\/w1\/.*\(the workflow refused the card\)/,
    );
    // The workflow did see the signature, and quoted it back: the case can fail.
    expect(teamsFlow.received[0]?.path).toContain(TEAMS_SIG);
    expect(res.body).not.toContain(TEAMS_SIG);
    expect(res.body).not.toContain(TEAMS_SIG.slice(0, 10));
  });

  it('no log line holds either secret', () => {
    const text = JSON.stringify(logs.lines);
    expect(text).toContain('teams-ops');
    expect(text).not.toContain(SLACK_SECRET);
    expect(text).not.toContain(TEAMS_SIG);
  });
});
