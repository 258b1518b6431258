import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { slack } from '../../src/notify/channels/slack.js';
import type { Channel, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { failure, sendContext, testNotification } from '../helpers/notification.js';
import { closedPort, startRaw } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { type Answer, startWebhookPeer, throughOutage, type WebhookPeer } from '../helpers/webhook-peer.js';
import { workspace } from '../helpers/workspace.js';

// Incoming-webhook mode: a plain POST per notification, tested against a local server answering as
// Slack's webhooks do (not the Web API client, which webhook mode does not use).

const HOOK_SECRET = 'Xk9VbQw2Ls8RtZ4mNp7YcH1d';
const PATH = `/services/T0001AAAA/B0002BBBB/${HOOK_SECRET}`;
const OPENED = Date.UTC(2026, 10, 26, 11, 45, 0);

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/providers/${name}`, import.meta.url), 'utf8'));
const answers: Record<string, Answer> = fixture('slack-webhook-answers.json');
const documented: Record<string, unknown> = fixture('slack-webhook-request.json');
const answer = (name: string): Answer => answers[name] as Answer;

function notification(overrides: Partial<Notification> = {}, incident: Partial<Notification['incident']> = {}): Notification {
  return testNotification(
    {
      openedAt: OPENED,
      links: { incident: 'https://vigil.test/api/v1/incidents/7', ack: 'https://vigil.test/act/a', resolve: 'https://vigil.test/act/r' },
    },
    overrides,
    incident,
  );
}

const peers: WebhookPeer[] = [];
const channels: Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

function make(webhookUrl: string): Channel {
  const config = Value.Default(slack.schema, { webhookUrl });
  expect([...Value.Errors(slack.schema, config)]).toEqual([]);
  expect(slack.check?.(config as never)).toEqual([]);
  const channel = slack.create('slack-hook', config as Parameters<typeof slack.create>[1], {
    logger: memoryLogger().logger,
    clock: systemClock,
  });
  channels.push(channel);
  return channel;
}

async function setup(with_: Answer = answer('ok')) {
  const peer = await startWebhookPeer(() => with_);
  peers.push(peer);
  return { peer, channel: make(`${peer.url}${PATH}`) };
}

type Sent = { text: string; blocks: Array<{ type: string; text?: { text: string }; elements?: unknown[] }>; unfurl_links: boolean };
const sent = (peer: WebhookPeer, i = 0) => peer.received[i]?.body as Sent;

describe('slack channel: one mode or the other, checked at load', () => {
  function load(fields: Record<string, unknown>): string[] {
    const ws = workspace({
      'config/default.yaml': JSON.stringify({ service: { port: 8080 }, channels: { s: { type: 'slack', ...fields } } }),
      'probes/none.yaml': '[]\n',
    });
    try {
      loadConfig({ cwd: ws.dir, env: { HOOK: `https://hooks.slack.com${PATH}` } });
      return [];
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return [...err.problems];
    } finally {
      ws.remove();
    }
  }

  it('accepts webhookUrl alone, and token with channel', () => {
    expect(load({ webhookUrl: '${HOOK}' })).toEqual([]);
    expect(load({ token: 'xoxb-1', channel: '#ops' })).toEqual([]);
  });

  it('refuses both modes at once, naming webhookUrl and never printing it', () => {
    expect(load({ webhookUrl: '${HOOK}', channel: '#ops' })[0]).toMatch(/got both \(channel is set too\)$/);
    const problems = load({ webhookUrl: '${HOOK}', token: 'xoxb-1', channel: '#ops' });
    expect(problems).toEqual([
      'config/default.yaml: channels.s.webhookUrl: expected either webhookUrl (incoming-webhook mode) or token and channel (bot mode), got both (token and channel are set too)',
    ]);
    expect(problems.join('\n')).not.toContain(HOOK_SECRET);
  });

  it('refuses neither mode, and half of bot mode, naming what is missing', () => {
    expect(load({})).toEqual([
      'config/default.yaml: channels.s.token: expected a Slack bot token with channel (bot mode), or webhookUrl alone (incoming-webhook mode); it is missing',
      'config/default.yaml: channels.s.channel: expected a channel name or id with token (bot mode), or webhookUrl alone (incoming-webhook mode); it is missing',
    ]);
    expect(load({ token: 'xoxb-1' })).toEqual([
      'config/default.yaml: channels.s.channel: expected a channel name or id with token (bot mode), or webhookUrl alone (incoming-webhook mode); it is missing',
    ]);
    expect(load({ webhookUrl: 'hooks.slack.com/services/x' })[0]).toMatch(
      /^config\/default\.yaml: channels\.s\.webhookUrl: expected a Slack incoming-webhook URL/,
    );
  });
});

describe('slack channel: incoming-webhook delivery', () => {
  it('posts the same blocks and text as bot mode, as JSON shaped like the documented example, and keeps no ref', async () => {
    const { peer, channel } = await setup();
    expect(await channel.send(notification(), sendContext())).toEqual({});
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0]?.path).toBe(PATH);
    expect(peer.received[0]?.contentType).toBe('application/json');
    const body = sent(peer);
    // The documented fields, plus link-unfurling off; no `channel`, `token` or `thread_ts`: a webhook has its own channel.
    expect(Object.keys(body).sort()).toEqual([...Object.keys(documented), 'unfurl_links', 'unfurl_media'].sort());
    expect(body.unfurl_links).toBe(false);
    expect(body.text.split('\n')[0]).toBe('[CRITICAL] api-health: 503 Service Unavailable: cache down');
    expect(body.blocks[0]).toMatchObject({
      type: 'header',
      text: { text: ':red_circle: [CRITICAL] api-health: 503 Service Unavailable: cache down' },
    });
    expect(body.blocks.find((b) => b.type === 'actions')?.elements).toHaveLength(2);
  });

  it('announces acknowledge, resolve and reminders as new messages, even given an earlier ref', async () => {
    const { peer, channel } = await setup();
    const ref = { channel: 'C0123456789', ts: '1700000000.000100' };
    await channel.send(notification({ action: 'acknowledge', ref }, { state: 'acknowledged', ackedBy: 'alice' }), sendContext());
    await channel.send(notification({ action: 'remind', ref }), sendContext());
    await channel.send(notification({ action: 'resolve', ref }, { state: 'resolved', resolvedAt: OPENED + 5 * 60_000 }), sendContext());
    expect(peer.received.map((r) => r.path)).toEqual([PATH, PATH, PATH]);
    expect(peer.received.map((r) => (r.body as Sent).text.split('\n')[0])).toEqual([
      '[ACK] api-health acknowledged by alice: api-health: 503 Service Unavailable: cache down',
      expect.stringMatching(/^\[CRITICAL\] still failing after \S+: api-health: 503 Service Unavailable: cache down$/),
      '[RESOLVED] api-health recovered after 5m',
    ]);
    // A webhook cannot edit or thread: nothing in the body points at the earlier message.
    for (const r of peer.received) expect(r.raw).not.toContain(ref.ts);
  });

  it('mentions a paged person in the webhook’s channel instead of a direct message', async () => {
    const { peer, channel } = await setup();
    await channel.send(notification({ recipient: { id: 'alice', name: 'Alice', slack: 'U024BE7LH' } }), sendContext());
    await channel.send(notification({ recipient: { id: 'bob', name: 'Bob', email: 'bob@example.com' } }), sendContext());
    await channel.send(notification({ recipient: { id: 'eve', name: 'Eve', slack: 'U1> <!channel' } }), sendContext());
    const [alice, bob, eve] = [sent(peer, 0), sent(peer, 1), sent(peer, 2)];
    expect(alice.text.startsWith('<@U024BE7LH> [CRITICAL]')).toBe(true);
    expect(alice.blocks[1]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: '<@U024BE7LH> you are paged' } });
    expect(bob.text.startsWith('[CRITICAL]')).toBe(true);
    // Not a member id: never placed inside a mention, where it could become `<!channel>`.
    expect(peer.received[2]?.raw).not.toContain('!channel');
    expect(eve.text.startsWith('[CRITICAL]')).toBe(true);
  });
});

describe('slack channel: incoming-webhook answers', () => {
  it.each([
    ['invalid_payload', 400, 'permanent, not retried'],
    ['action_prohibited', 403, 'a workspace admin restricted posting'],
    ['invalid_token', 403, 'update `webhookUrl`'],
    ['no_service', 404, 'update `webhookUrl`'],
    ['channel_not_found', 404, "the webhook's channel is gone"],
    ['channel_is_archived', 410, "the webhook's channel is archived"],
  ])('%s (%i) is permanent and says what to do', async (name, status, hint) => {
    const { channel } = await setup(answer(name));
    const err = await failure(channel.send(notification(), sendContext()));
    expect(err.retryable).toBe(false);
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toMatch(new RegExp(`^Slack incoming webhook POST to 127\\.0\\.0\\.1:\\d+ answered ${status}: ${name} \\(`));
    expect(err.message).toContain(hint);
  });

  it('a 429 is retried after its Retry-After, a 5xx is retried', async () => {
    const limited = await setup(answer('rate_limited'));
    const err = await failure(limited.channel.send(notification(), sendContext()));
    expect(err).toMatchObject({ retryable: true, retryAfterMs: 30_000 });
    expect(err.message).toContain('Slack asks to retry after 30s');
    const down = await setup(answer('rollup_error'));
    expect(await failure(down.channel.send(notification(), sendContext()))).toMatchObject({ retryable: true });
  });

  it('never shows the webhook URL’s secret: not from an echoing answer, nor a connection error', async () => {
    const { peer, channel } = await setup();
    peer.answer = (r) => ({ status: 404, body: `no_service for ${r.path}` });
    const echoed = await failure(channel.send(notification(), sendContext()));
    expect(echoed.message).toMatch(/answered 404: no_service for \/services\/.*<secret>/);
    expect(echoed.message).not.toContain(HOOK_SECRET.slice(0, 8));

    const refused = make(`http://127.0.0.1:${await closedPort()}${PATH}`);
    const err = await failure(refused.send(notification(), sendContext()));
    expect(err.retryable).toBe(true);
    expect(`${err.message} ${String(err.cause ?? '')}`).not.toContain(HOOK_SECRET);
  });
});

describe('slack channel: incoming webhook that hangs', () => {
  it('gives up at the send deadline with a retryable error, and closes the connection', async () => {
    const live = new Set<Socket>();
    const silent = await startRaw((socket) => {
      live.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => live.delete(socket));
    });
    try {
      const channel = make(`${silent.url}${PATH}`);
      const started = performance.now();
      const err = await failure(channel.send(notification(), sendContext(300)));
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/^Slack incoming webhook POST to 127\.0\.0\.1:\d+ timed out after /);
      await waitFor('the abandoned connection to close', () => live.size === 0, 2_000);
    } finally {
      await silent.close();
    }
  });
});

describe('slack channel: incoming webhook through the outbox', () => {
  it('delivers trigger and resolve exactly once each, in order, across an outage (500s, then 429)', async () => {
    const peer = await startWebhookPeer(() => answer('rollup_error'));
    peers.push(peer);
    let down = 0;
    peer.answer = () => (++down % 2 === 0 ? answer('rate_limited') : answer('rollup_error'));
    const rows = await throughOutage(make(`${peer.url}${PATH}`), {
      downMinutes: 3,
      up: () => {
        peer.answer = () => answer('ok');
      },
    });
    expect(rows.map((r) => [r.action, r.state])).toEqual([
      ['trigger', 'delivered'],
      ['resolve', 'delivered'],
    ]);
    expect(down).toBeGreaterThanOrEqual(3);
    expect(rows[0]?.attempts).toBe(down + 1);
    expect(peer.received.slice(down).map((r) => (r.body as Sent).text.split('\n')[0])).toEqual([
      '[CRITICAL] api-health: 503 Service Unavailable',
      '[RESOLVED] api-health recovered after 4m',
    ]);
  });
});
