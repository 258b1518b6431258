import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { type DiscordApi, startDiscordApi } from '../helpers/discord-api.js';
import { startTelegramApi, type TelegramApi } from '../helpers/telegram-api.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

const OPS = 'ops-token-7d2e1f0a9b8c';
const DISCORD_TOKEN = 'dIsc0rdW3bh00kT0ken-abcdef0123456789';
const TG_TOKEN = '7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const CHAT = '-1001234567890';

describe('the test-page route for discord and telegram channels', () => {
  let app: App;
  let ws: ReturnType<typeof workspace>;
  let discord: DiscordApi;
  let telegram: TelegramApi;
  const logs = memoryLogger();

  beforeAll(async () => {
    discord = await startDiscordApi({ token: DISCORD_TOKEN });
    telegram = await startTelegramApi({ token: TG_TOKEN, chats: [CHAT] });
    ws = workspace({
      'config/default.yaml': `
service: { port: 0, host: 127.0.0.1 }
auth: { tokens: [{ name: ops, token: "\${OPS}", role: operator }] }
channels:
  discord-ops: { type: discord, webhookUrl: "\${DISCORD_WEBHOOK_URL}" }
  telegram-ops: { type: telegram, botToken: "\${TELEGRAM_BOT_TOKEN}", chatId: ${CHAT}, apiUrl: "${telegram.url}" }
`,
      'probes/none.yaml': '[]\n',
    });
    app = createApp({
      config: loadConfig({
        cwd: ws.dir,
        env: { OPS, DISCORD_WEBHOOK_URL: discord.webhookUrl, TELEGRAM_BOT_TOKEN: TG_TOKEN },
      }),
      logger: logs.logger,
      clock: new ManualClock(),
      cron: () => ({ stop: () => {} }),
    });
    await app.start();
  });

  afterAll(async () => {
    await app.stop();
    await discord.close();
    await telegram.close();
    ws.remove();
  });

  const test = async (channel: string) => {
    const res = await app.server.inject({
      method: 'POST',
      url: `/api/v1/channels/${channel}/test`,
      headers: { authorization: `Bearer ${OPS}` },
    });
    expect(res.statusCode).toBe(202);
    const id = res.json().notification.id as number;
    await waitFor(`the ${channel} test page to settle`, async () => {
      const state = (await app.store.alerts.outboxItem(id))?.state;
      return state === 'delivered' || state === 'dead';
    });
    return (await app.server.inject({ method: 'GET', url: `/api/v1/channels/${channel}/tests/${id}` })).json();
  };

  it('delivers a test page to each and reports its delivery time', async () => {
    for (const channel of ['discord-ops', 'telegram-ops']) {
      const result = await test(channel);
      expect(result.notification.state, channel).toBe('delivered');
      expect(result.deliveryMs).toBeGreaterThanOrEqual(0);
    }
    const posted = [...discord.messages.values()][0] as { embeds: Array<{ title: string }> };
    expect(posted.embeds[0]?.title).toMatch(/^\[TEST\] vigil test page/);
    expect([...telegram.messages.values()][0]?.text).toMatch(/^<b>\[TEST\] vigil test page/);
  });

  it('reports a refused test page with the reason and without the secret', async () => {
    discord.queue = ['invalid-token'];
    telegram.blocked.add(CHAT);
    const results = [await test('discord-ops'), await test('telegram-ops')];
    expect(results.map((r) => r.notification.state)).toEqual(['dead', 'dead']);
    expect(results[0].notification.lastError).toContain('401: Invalid Webhook Token');
    expect(results[1].notification.lastError).toContain('bot was blocked by the user');
    const shown = JSON.stringify(results) + JSON.stringify(logs.lines);
    expect(shown).not.toContain(DISCORD_TOKEN.slice(0, 10));
    expect(shown).not.toContain(TG_TOKEN.split(':')[1]?.slice(0, 10));
  });
});
