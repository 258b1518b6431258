import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { type Clock, systemClock } from '../../src/lib/clock.js';
import { slack } from '../../src/notify/channels/slack.js';
import type { Channel, Notification, SendContext } from '../../src/notify/types.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';
import { failure, testNotification } from '../helpers/notification.js';
import { closedPort } from '../helpers/servers.js';
import { channelId, type SlackApiServer, startSlackApi } from '../helpers/slack-api.js';

const TOKEN = 'xoxb-1111-2222-s3cr3tT0kenValue';
const OPENED = Date.UTC(2026, 10, 26, 11, 45, 0);

function notification(overrides: Partial<Notification> = {}): Notification {
  return testNotification(
    {
      openedAt: OPENED,
      links: {
        incident: 'http://vigil.test/api/v1/incidents/7',
        dashboard: 'https://grafana.test/d/vigil?var-probe=api-health&from=now-1h',
      },
    },
    overrides,
    { lastError: { code: 'HTTP_STATUS', message: '503 Service Unavailable: cache <down> & db slow (expected 200)', at: OPENED } },
  );
}

const servers: SlackApiServer[] = [];
const channels: Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(fields: Record<string, unknown> = {}) {
  const api = await startSlackApi({ token: TOKEN });
  servers.push(api);
  const logs = memoryLogger('trace');
  const config = Value.Default(slack.schema, { token: TOKEN, channel: '#ops-alerts', apiUrl: api.apiUrl, ...fields });
  expect([...Value.Errors(slack.schema, config)]).toEqual([]);
  const channel = slack.create('slack-ops', config as Parameters<typeof slack.create>[1], { logger: logs.logger, clock: systemClock });
  channels.push(channel);
  return { api, channel, logs };
}

function ctx(timeoutMs = 5_000, clock: Clock = new ManualClock(OPENED + 20 * 60_000)): SendContext {
  return { signal: AbortSignal.timeout(timeoutMs), clock, logger: memoryLogger().logger };
}

describe('slack channel: config', () => {
  it('defaults apiUrl to Slack and rejects a channel that is neither a name nor an id', () => {
    const config = Value.Default(slack.schema, { token: TOKEN, channel: '#ops-alerts' }) as { apiUrl: string };
    expect(config.apiUrl).toBe('https://slack.com/api/');
    expect(Value.Check(slack.schema, { token: TOKEN, channel: 'C0123456789', apiUrl: 'https://slack.com/api/' })).toBe(true);
    expect(Value.Check(slack.schema, { token: TOKEN, channel: 'ops alerts', apiUrl: 'https://slack.com/api/' })).toBe(false);
    expect(Value.Check(slack.schema, { token: TOKEN, channel: '#ops', apiUrl: 'https://slack.com/api/', extra: 1 })).toBe(false);
    expect((Value.Default(slack.schema, { token: TOKEN, channel: '#ops-alerts' }) as { interactive: boolean }).interactive).toBe(false);
    expect(Value.Check(slack.schema, { token: TOKEN, channel: '#ops', apiUrl: 'https://slack.com/api/', interactive: 'yes' })).toBe(false);
  });
});

describe('slack channel: delivery through the real client', () => {
  it('posts a trigger with blocks and fallback text, bearer token in the header, and returns channel id + ts', async () => {
    const { api, channel } = await setup();
    const result = await channel.send(notification(), ctx());

    expect(api.calls).toHaveLength(1);
    const call = api.calls[0]!;
    expect(call.method).toBe('chat.postMessage');
    expect(call.contentType).toContain('application/x-www-form-urlencoded');
    expect(call.authorization).toBe(`Bearer ${TOKEN}`);
    expect(call.raw).not.toContain(TOKEN);
    expect(call.body.channel).toBe('#ops-alerts');
    expect(call.body.unfurl_links).toBe('false');

    const text = call.body.text as string;
    expect(text.split('\n')[0]).toBe('[CRITICAL] api-health: 503 Service Unavailable: cache down');
    expect(text).toContain('cache &lt;down&gt; &amp; db slow');
    expect(text).toContain('Incident: http://vigil.test/api/v1/incidents/7');

    const blocks = call.body.blocks as Array<{
      type: string;
      text?: { text: string };
      fields?: Array<{ text: string }>;
      elements?: Array<{ text: string }>;
    }>;
    expect(blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    expect(blocks[0]!.text!.text).toBe(':red_circle: [CRITICAL] api-health: 503 Service Unavailable: cache down');
    expect(blocks[1]!.fields!.map((f) => f.text)).toEqual(
      expect.arrayContaining(['*Probe*\napi-health (http)', '*Severity*\ncritical', '*State*\nopen', '*Labels*\nteam=core']),
    );
    expect(blocks[2]!.text!.text).toBe(
      '*Last error*\nHTTP_STATUS: 503 Service Unavailable: cache &lt;down&gt; &amp; db slow (expected 200)',
    );
    expect(blocks[3]!.elements![0]!.text).toContain('<http://vigil.test/api/v1/incidents/7|Incident>');
    expect(blocks[3]!.elements![0]!.text).toContain('<https://grafana.test/d/vigil?var-probe=api-health&amp;from=now-1h|Dashboard>');

    const posted = [...api.messages.values()][0]!;
    expect(result).toEqual({ ref: { channel: channelId('#ops-alerts'), ts: posted.ts } });
    expect(result.ref!.channel).not.toBe('#ops-alerts');
  });

  it('sends a page addressed to a person (escalation) as a direct message to their user id', async () => {
    const { api, channel } = await setup();
    const result = await channel.send(notification({ recipient: { id: 'alice', name: 'Alice Ng', slack: 'U024BE7LH' } }), ctx());
    expect(api.calls[0]!.body.channel).toBe('U024BE7LH');
    expect(result.ref!.channel).toBe(channelId('U024BE7LH'));
  });

  const ACK = 'http://vigil.test/act/djE6NzphY2s6MTc2NDI0NDgwMDAwMA.sig-ack';
  const RESOLVE = 'http://vigil.test/act/djE6NzpyZXNvbHZlOjE3NjQyNDQ4MDAwMDA.sig-resolve';
  const withLinks = (over: Partial<Notification> = {}) =>
    notification({ ...over, links: { ...notification().links, ack: ACK, resolve: RESOLVE } });
  type Block = { type: string; elements?: Array<Record<string, unknown>> };

  it('adds Acknowledge and Resolve link buttons to a trigger and a reminder that carry signed links', async () => {
    const { api, channel } = await setup();
    const { ref } = await channel.send(withLinks(), ctx());
    await channel.send(withLinks({ action: 'remind', ref }), ctx());
    for (const call of api.calls) {
      const blocks = call.body.blocks as Block[];
      expect(blocks.map((b) => b.type)).toEqual(['header', 'section', 'section', 'actions', 'context']);
      expect(blocks[3]!.elements).toEqual([
        {
          type: 'button',
          action_id: 'vigil_ack_link',
          text: { type: 'plain_text', text: 'Acknowledge', emoji: false },
          url: ACK,
          style: 'primary',
        },
        { type: 'button', action_id: 'vigil_resolve_link', text: { type: 'plain_text', text: 'Resolve', emoji: false }, url: RESOLVE },
      ]);
    }
  });

  it('makes the buttons interactive, without urls, when the channel is interactive', async () => {
    const { api, channel } = await setup({ interactive: true });
    await channel.send(withLinks(), ctx());
    const blocks = api.calls[0]!.body.blocks as Block[];
    const actions = blocks.find((b) => b.type === 'actions')!;
    expect(actions.elements).toEqual([
      {
        type: 'button',
        action_id: 'vigil_ack',
        text: { type: 'plain_text', text: 'Acknowledge', emoji: false },
        value: '7',
        style: 'primary',
      },
      { type: 'button', action_id: 'vigil_resolve', text: { type: 'plain_text', text: 'Resolve', emoji: false }, value: '7' },
    ]);
    expect(JSON.stringify(actions)).not.toContain('http');
  });

  it('shows no buttons without signed links, and none once the incident is acknowledged or resolved', async () => {
    const { api, channel } = await setup({ interactive: true });
    const { ref } = await channel.send(notification(), ctx());
    await channel.send(
      withLinks({ action: 'acknowledge', ref, incident: { ...notification().incident, state: 'acknowledged', ackedBy: 'slack:alice' } }),
      ctx(),
    );
    await channel.send(
      withLinks({ action: 'resolve', ref, incident: { ...notification().incident, state: 'resolved', resolvedAt: OPENED + 60_000 } }),
      ctx(),
    );
    expect(api.calls.map((c) => c.method)).toEqual(['chat.postMessage', 'chat.update', 'chat.update']);
    for (const call of api.calls) expect((call.body.blocks as Block[]).some((b) => b.type === 'actions')).toBe(false);
    expect(api.messages.get(ref!.ts!)!.history.every((h) => !JSON.stringify(h.blocks).includes('vigil_ack'))).toBe(true);
  });

  it('updates the same message in place on acknowledge and on resolve', async () => {
    const { api, channel } = await setup();
    const { ref } = await channel.send(notification(), ctx());

    const acked = await channel.send(
      notification({
        action: 'acknowledge',
        ref,
        incident: { ...notification().incident, state: 'acknowledged', ackedAt: OPENED + 60_000, ackedBy: 'alice' },
      }),
      ctx(),
    );
    const resolved = await channel.send(
      notification({
        action: 'resolve',
        ref,
        incident: { ...notification().incident, state: 'resolved', resolvedAt: OPENED + 5 * 60_000 },
      }),
      ctx(),
    );

    expect(api.calls.map((c) => c.method)).toEqual(['chat.postMessage', 'chat.update', 'chat.update']);
    for (const c of api.calls.slice(1)) {
      expect(c.body.ts).toBe(ref!.ts);
      expect(c.body.channel).toBe(ref!.channel);
    }
    expect(acked.ref).toEqual(ref);
    expect(resolved.ref).toEqual(ref);

    expect(api.messages.size).toBe(1);
    const message = api.messages.get(ref!.ts!)!;
    expect(message.history).toHaveLength(2);
    expect(message.history[1]!.text).toContain('[ACK] api-health acknowledged by alice');
    expect(message.text.split('\n')[0]).toBe('[RESOLVED] api-health recovered after 5m');
    expect(JSON.stringify(message.blocks)).toContain(':large_green_circle:');
  });

  it('posts a reminder as a reply in the thread and keeps the parent as the ref', async () => {
    const { api, channel } = await setup();
    const { ref } = await channel.send(notification(), ctx());
    const reminded = await channel.send(notification({ action: 'remind', ref }), ctx());

    const reply = api.calls[1]!;
    expect(reply.method).toBe('chat.postMessage');
    expect(reply.body.thread_ts).toBe(ref!.ts);
    expect(reply.body.channel).toBe(ref!.channel);
    expect(reply.body.text as string).toMatch(/^\[CRITICAL\] still failing after 20m/);
    const replies = [...api.messages.values()].filter((m) => m.threadTs === ref!.ts);
    expect(replies).toHaveLength(1);
    expect(reminded.ref).toEqual(ref);
  });

  it('posts a new message when there is no ref to update or thread under, and when the original was deleted', async () => {
    const { api, channel } = await setup();
    const noRef = await channel.send(notification({ action: 'resolve' }), ctx());
    const remind = await channel.send(notification({ action: 'remind' }), ctx());
    const gone = await channel.send(
      notification({ action: 'acknowledge', ref: { channel: 'COPSALERTS', ts: '1700000000.000001' } }),
      ctx(),
    );
    const test = await channel.send(notification({ action: 'test' }), ctx());

    expect(api.calls.map((c) => c.method)).toEqual([
      'chat.postMessage',
      'chat.postMessage',
      'chat.update',
      'chat.postMessage',
      'chat.postMessage',
    ]);
    expect(api.calls.every((c) => c.body.thread_ts === undefined)).toBe(true);
    const refs = [noRef, remind, gone, test].map((r) => r.ref!.ts);
    expect(new Set(refs).size).toBe(4);
    for (const ts of refs) expect(api.messages.has(ts!)).toBe(true);
    expect(api.messages.get(test.ref!.ts!)!.text).toMatch(/^\[TEST\] vigil test page/);
  });
});

describe('slack channel: failures', () => {
  it('makes ok:false permanent and names the Slack error code with what to do', async () => {
    const { api, channel } = await setup();
    api.mode = 'platform-error';
    api.error = 'channel_not_found';
    const err = await failure(channel.send(notification(), ctx()));
    expect(err.retryable).toBe(false);
    expect(err.retryAfterMs).toBeUndefined();
    expect(err.message).toBe(
      'Slack chat.postMessage to #ops-alerts failed: channel_not_found: check `channel`, and invite the app to a private channel',
    );
  });

  it('retries the ok:false codes that mean Slack is having trouble', async () => {
    const { api, channel } = await setup();
    api.mode = 'platform-error';
    for (const code of ['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable']) {
      api.error = code;
      const err = await failure(channel.send(notification(), ctx()));
      expect(err.retryable, code).toBe(true);
      expect(err.message).toContain(code);
    }
    api.error = 'invalid_blocks';
    expect((await failure(channel.send(notification(), ctx()))).retryable).toBe(false);
  });

  it('turns HTTP 429 into a retryable error carrying Retry-After, without retrying itself', async () => {
    const { api, channel } = await setup();
    api.mode = 'rate-limited';
    const started = Date.now();
    const err = await failure(channel.send(notification(), ctx()));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(7_000);
    expect(err.message).toContain('rate-limited (HTTP 429); Slack asks to retry after 7s');
    expect(api.calls).toHaveLength(1);
  });

  it('turns HTTP 500 into a retryable error, after exactly one request', async () => {
    const { api, channel } = await setup();
    api.mode = 'server-error';
    const err = await failure(channel.send(notification(), ctx()));
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('Slack chat.postMessage to #ops-alerts answered HTTP 500');
    expect(api.calls).toHaveLength(1);
  });

  it('turns an unreachable API into a retryable error', async () => {
    const port = await closedPort();
    const { channel } = await setup({ apiUrl: `http://127.0.0.1:${port}/api/` });
    const err = await failure(channel.send(notification(), ctx()));
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('Slack chat.postMessage to #ops-alerts could not reach Slack: ECONNREFUSED');
  });

  it('gives up at the send deadline when Slack hangs, and closes the connection', async () => {
    const { api, channel } = await setup();
    api.mode = 'hang';
    const started = Date.now();
    const err = await failure(channel.send(notification(), ctx(300, systemClock)));
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(1_500);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^Slack chat\.postMessage to #ops-alerts timed out after \d+ms$/);
    // The request itself was cancelled, not merely abandoned while it kept a socket busy.
    await expect.poll(() => api.calls[0]?.clientGone, { timeout: 1_000 }).toBe(true);
  });

  it('never puts the token in an error message or a log line', async () => {
    const { api, channel, logs } = await setup();
    const messages: string[] = [];
    for (const mode of ['platform-error', 'rate-limited', 'server-error'] as const) {
      api.mode = mode;
      api.error = `invalid_auth ${TOKEN}`;
      const err = await failure(channel.send(notification(), ctx()));
      messages.push(err.message, String(err.stack));
    }
    api.mode = 'hang';
    messages.push((await failure(channel.send(notification(), ctx(200)))).message);
    expect(messages.join('\n')).toContain('invalid_auth');
    expect(messages.join('\n')).not.toContain(TOKEN);
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(JSON.stringify(logs.lines)).not.toContain(TOKEN);
  });
});
