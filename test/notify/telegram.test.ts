import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { telegram } from '../../src/notify/channels/telegram.js';
import type { Channel, IncidentView, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { sendContext as context, failure, testNotification } from '../helpers/notification.js';
import { outboxOver } from '../helpers/outbox.js';
import { closedPort, startHttp } from '../helpers/servers.js';
import { startTelegramApi, type TelegramApi } from '../helpers/telegram-api.js';

const TOKEN = '7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const CHAT = '-1001234567890';
const ALICE = '123456789';
const OPENED = Date.UTC(2026, 10, 26, 12, 0, 0);
const REQUEST = JSON.parse(
  readFileSync(new URL('../fixtures/providers/telegram-sendMessage-request.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

function notification(over: Partial<Omit<Notification, 'incident'>> = {}, incident: Partial<IncidentView> = {}): Notification {
  const links = {
    incident: 'https://vigil.example.com/api/v1/incidents/7',
    runbook: 'https://wiki.example.com/rb/api',
    ack: 'https://vigil.example.com/act/ack-7',
    resolve: 'https://vigil.example.com/act/resolve-7',
  };
  return testNotification({ openedAt: OPENED, createdAt: OPENED + 1_000, links }, over, incident);
}

type Keyboard = { inline_keyboard: Array<Array<{ text: string; url: string }>> };

describe('telegram channel', () => {
  let api: TelegramApi;
  let channel: Channel;
  const logged = memoryLogger();

  beforeAll(async () => {
    api = await startTelegramApi({ token: TOKEN, chats: [CHAT, ALICE] });
    channel = telegram.create(
      'telegram',
      { botToken: TOKEN, chatId: CHAT, apiUrl: api.url },
      { logger: logged.logger, clock: systemClock },
    );
  });
  afterAll(async () => {
    await channel.close();
    await api.close();
  });
  afterEach(() => {
    api.queue = [];
    api.requests.length = 0;
    api.messages.clear();
    api.blocked.clear();
  });

  it('sends an HTML message with incident, acknowledge and resolve buttons, and keeps chat and message id', async () => {
    const result = await channel.send(notification(), context());
    expect(api.requests.map((r) => [r.method, r.status])).toEqual([['sendMessage', 200]]);
    const body = api.requests[0]?.body as Record<string, unknown>;
    // The shape of the documented request, key for key.
    expect(Object.keys(body).sort()).toEqual(Object.keys(REQUEST).sort());
    expect(body).toMatchObject({ chat_id: CHAT, parse_mode: 'HTML', disable_web_page_preview: true });
    expect(body.text).toMatch(/^<b>\[CRITICAL\] api-health: 503 Service Unavailable: cache down<\/b>\n/);
    expect(body.text).toContain('<b>Last error:</b> HTTP_STATUS: 503 Service Unavailable: cache down (expected 200)');
    expect(body.text).toContain('<a href="https://wiki.example.com/rb/api">Runbook</a>');
    expect((body.reply_markup as Keyboard).inline_keyboard).toEqual([
      [{ text: 'Incident', url: 'https://vigil.example.com/api/v1/incidents/7' }],
      [
        { text: 'Acknowledge', url: 'https://vigil.example.com/act/ack-7' },
        { text: 'Resolve', url: 'https://vigil.example.com/act/resolve-7' },
      ],
    ]);
    expect(result).toEqual({ ref: { chat_id: CHAT, message_id: '4242' } });
  });

  it('escapes probe text, so markup in an error shows as written and Telegram takes the message', async () => {
    const err = { code: 'HTTP_BODY', message: 'got <script>alert("x")</script> & <b>not bold', at: OPENED };
    await channel.send(notification({}, { summary: 'api: <html> & "quotes"', lastError: err }), context());
    expect(api.requests[0]?.status).toBe(200);
    expect(api.requests[0]?.body.text).toContain('got &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;not bold');
  });

  it('keeps a huge error within the 4,096 characters Telegram allows', async () => {
    await channel.send(notification({}, { lastError: { code: 'HTTP_BODY', message: '<&>'.repeat(3_000), at: OPENED } }), context());
    expect(api.requests[0]?.status).toBe(200);
  });

  it('leaves out buttons Telegram would refuse (a relative incident link, no signed links)', async () => {
    await channel.send(notification({ links: { incident: '/api/v1/incidents/7' } }), context());
    expect(api.requests[0]?.status).toBe(200);
    expect(api.requests[0]?.body.reply_markup).toBeUndefined();
  });

  it('edits the page on acknowledge and resolve, leaving only the incident button', async () => {
    const { ref } = await channel.send(notification(), context());
    const ack = await channel.send(
      notification({ id: 42, action: 'acknowledge', ref }, { state: 'acknowledged', ackedBy: 'ana' }),
      context(),
    );
    const done = await channel.send(
      notification({ id: 43, action: 'resolve', ref: ack.ref }, { state: 'resolved', resolvedAt: OPENED + 300_000 }),
      context(),
    );
    expect(api.requests.map((r) => [r.method, r.status])).toEqual([
      ['sendMessage', 200],
      ['editMessageText', 200],
      ['editMessageText', 200],
    ]);
    expect(api.requests[1]?.body).toMatchObject({ chat_id: CHAT, message_id: Number(ref?.message_id) });
    expect(api.messages.size).toBe(1);
    const page = api.messages.get(`${CHAT}/${ref?.message_id}`);
    expect(page?.text).toMatch(/^<b>\[RESOLVED\] api-health recovered after 5m<\/b>/);
    expect((page?.reply_markup as Keyboard | undefined)?.inline_keyboard).toEqual([
      [{ text: 'Incident', url: 'https://vigil.example.com/api/v1/incidents/7' }],
    ]);
    expect(done.ref).toEqual(ref);
  });

  it('counts "message is not modified" as delivered (a retried edit that had landed)', async () => {
    const { ref } = await channel.send(notification(), context());
    const resolve = notification({ id: 43, action: 'resolve', ref }, { state: 'resolved' });
    await channel.send(resolve, context());
    const again = await channel.send(resolve, context());
    expect(api.requests.map((r) => r.status)).toEqual([200, 200, 400]);
    expect(again.ref).toEqual(ref);
  });

  it('sends a new message when the one to edit is gone', async () => {
    const result = await channel.send(
      notification({ id: 43, action: 'resolve', ref: { chat_id: CHAT, message_id: '77' } }),
      context(5_000, logged.logger),
    );
    expect(api.requests.map((r) => [r.method, r.status])).toEqual([
      ['editMessageText', 400],
      ['sendMessage', 200],
    ]);
    expect(result.ref?.message_id).not.toBe('77');
    expect(logged.lines.map((l) => l.msg)).toContain('telegram message to edit is gone; sending a new one');
  });

  it('replies to the page with a reminder, and keeps the page as the one to edit', async () => {
    const { ref } = await channel.send(notification(), context());
    const reminded = await channel.send(notification({ id: 42, action: 'remind', ref }), context());
    expect(api.requests[1]?.body).toMatchObject({
      reply_parameters: { message_id: Number(ref?.message_id), allow_sending_without_reply: true },
    });
    expect(reminded.ref).toEqual(ref);
  });

  it("pages a person in their own chat when escalation names them, and edits that chat's message later", async () => {
    const n = notification({ recipient: { id: 'alice', name: 'Alice', telegram: ALICE } });
    const { ref } = await channel.send(n, context());
    expect(api.requests[0]?.body.chat_id).toBe(ALICE);
    expect(ref).toEqual({ chat_id: ALICE, message_id: expect.stringMatching(/^\d+$/) });
    await channel.send(
      notification({ id: 43, action: 'resolve', ref, recipient: { id: 'alice', name: 'Alice', telegram: ALICE } }),
      context(),
    );
    expect(api.requests[1]?.body).toMatchObject({ chat_id: ALICE, message_id: Number(ref?.message_id) });
    expect(api.requests[1]?.status).toBe(200);
  });

  it('reports "bot was blocked by the user" (403) as permanent, saying why', async () => {
    api.blocked.add(CHAT);
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('403: Forbidden: bot was blocked by the user');
    expect(err.message).toContain('the bot cannot write to this chat');
  });

  it('reports a 400 as permanent with what Telegram said, and a migrated group with its new chat id', async () => {
    const other = telegram.create(
      't-other',
      { botToken: TOKEN, chatId: '-42', apiUrl: api.url },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(other.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('400: Bad Request: chat not found');
    } finally {
      await other.close();
    }
    api.queue = ['migrated'];
    const moved = await failure(channel.send(notification(), context()));
    expect(moved.retryable).toBe(false);
    expect(moved.message).toContain('set chatId to -1001987654321');
  });

  it('reports a wrong token (401) as permanent', async () => {
    const wrong = telegram.create(
      't-wrong',
      { botToken: `${TOKEN.slice(0, -4)}zzzz`, chatId: CHAT, apiUrl: api.url },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(wrong.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('401: Unauthorized');
      expect(err.message).toContain('`botToken`');
    } finally {
      await wrong.close();
    }
  });

  it('honours a 429 with parameters.retry_after', async () => {
    api.queue = ['rate-limited'];
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(35_000);
    expect(err.message).toContain('Too Many Requests');
  });

  it('reports a 5xx, an unreachable API and a hanging one as retryable', async () => {
    api.queue = ['server-error'];
    expect((await failure(channel.send(notification(), context()))).retryable).toBe(true);
    const port = await closedPort();
    const down = telegram.create(
      't-down',
      { botToken: TOKEN, chatId: CHAT, apiUrl: `http://127.0.0.1:${port}` },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(down.send(notification(), context()));
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('ECONNREFUSED');
    } finally {
      await down.close();
    }
    api.queue = ['hang'];
    const hung = await failure(channel.send(notification(), context(300)));
    expect(hung.retryable).toBe(true);
    expect(hung.message).toContain('timed out');
  });

  it('never shows the bot token (it is in the URL path) in an error or a log line', async () => {
    const messages: string[] = [];
    for (const q of ['chat-not-found', 'rate-limited', 'server-error', 'unauthorized', 'blocked', 'hang'] as const) {
      api.queue = [q];
      messages.push((await failure(channel.send(notification(), context(300, logged.logger)))).message);
    }
    const port = await closedPort();
    const down = telegram.create(
      't-down',
      { botToken: TOKEN, chatId: CHAT, apiUrl: `http://127.0.0.1:${port}` },
      { logger: logged.logger, clock: systemClock },
    );
    messages.push((await failure(down.send(notification(), context(5_000, logged.logger)))).message);
    await down.close();
    const secret = TOKEN.split(':')[1] as string;
    for (const m of messages) expect(m).not.toContain(secret.slice(0, 10));
    expect(JSON.stringify(logged.lines)).not.toContain(secret.slice(0, 10));
  });

  it('hides the token where a proxy quotes the request path back', async () => {
    // Express-style 404 from a misrouted proxy: the path, token and all, comes back in the body.
    const proxy = await startHttp((req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end(`<pre>Cannot POST ${req.url}</pre>`);
    });
    const behind = telegram.create(
      't-proxy',
      { botToken: TOKEN, chatId: CHAT, apiUrl: proxy.url },
      { logger: logged.logger, clock: systemClock },
    );
    try {
      const err = await failure(behind.send(notification(), context()));
      expect(err.retryable).toBe(false);
      expect(err.message).toContain('Cannot POST /bot<secret>/sendMessage');
      expect(err.message).not.toContain(TOKEN.split(':')[1]?.slice(0, 10));
    } finally {
      await behind.close();
      await proxy.close();
    }
  });

  it('validates its config: a bot token and chat id of the documented shapes, apiUrl defaulted, nothing else', () => {
    const ok = Value.Default(telegram.schema, { botToken: TOKEN, chatId: CHAT }) as Record<string, unknown>;
    expect(ok).toEqual({ botToken: TOKEN, chatId: CHAT, apiUrl: 'https://api.telegram.org' });
    expect(Value.Check(telegram.schema, ok)).toBe(true);
    expect(Value.Check(telegram.schema, { ...ok, chatId: '@ops_alerts' })).toBe(true);
    expect(Value.Check(telegram.schema, { ...ok, chatId: 'ops alerts' })).toBe(false);
    expect(Value.Check(telegram.schema, { ...ok, botToken: 'AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' })).toBe(false);
    expect(Value.Check(telegram.schema, { ...ok, parseMode: 'MarkdownV2' })).toBe(false);
    // A chat id written as a YAML number is read as the string the Bot API takes.
    expect(Value.Convert(telegram.schema, { ...ok, chatId: -1001234567890 })).toMatchObject({ chatId: CHAT });
  });
});

describe('telegram through the outbox across an outage', () => {
  it('delivers the page exactly once after the Bot API answered 5xx and 429 for minutes, then edits it on resolve', async () => {
    const api = await startTelegramApi({ token: TOKEN, chats: [CHAT] });
    const channel = telegram.create(
      'telegram',
      { botToken: TOKEN, chatId: CHAT, apiUrl: api.url },
      { logger: memoryLogger().logger, clock: systemClock },
    );
    const t = outboxOver({ telegram: channel });
    try {
      api.queue = ['server-error', 'server-error', 'rate-limited', 'server-error', 'server-error', 'server-error'];
      const id = await t.open('telegram', ['trigger', 'resolve']);
      t.worker.start();
      await t.pass(3 * 60_000);
      expect(api.queue).toEqual([]);
      const notes = await t.store.alerts.notifications(id);
      expect(notes.map((n) => `${n.action}:${n.state}`)).toEqual(['trigger:delivered', 'resolve:delivered']);
      expect(notes[0]?.attempts).toBe(7);
      // Rate-limited for 35 s: no attempt in between.
      expect(api.messages.size).toBe(1);
      expect(api.requests.filter((r) => r.status === 200).map((r) => r.method)).toEqual(['sendMessage', 'editMessageText']);
      expect([...api.messages.values()][0]?.text).toMatch(/^<b>\[RESOLVED\]/);
      expect(t.outcomes.filter((o) => o === 'telegram:delivered')).toHaveLength(2);
    } finally {
      await t.worker.stop(0);
      await channel.close();
      await api.close();
    }
  });
});
