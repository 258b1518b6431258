import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { type TeamsMessage, teams } from '../../src/notify/channels/teams.js';
import type { Channel, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { failure, sendContext, testNotification } from '../helpers/notification.js';
import { closedPort } from '../helpers/servers.js';
import { type Answer, startWebhookPeer, throughOutage, type WebhookPeer } from '../helpers/webhook-peer.js';

const SIG = 'Zq3xS1gnatureV4lue-9f8e7d6c5b4a';
const PATH = `/workflows/5f1c/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${SIG}`;
const OPENED = Date.UTC(2026, 10, 26, 11, 45, 0);

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/providers/${name}`, import.meta.url), 'utf8'));
const answers: Record<string, Answer> = fixture('teams-workflow-answers.json');
const documented: TeamsMessage = fixture('teams-workflow-request.json');

function notification(overrides: Partial<Notification> = {}, incident: Partial<Notification['incident']> = {}): Notification {
  return testNotification(
    {
      openedAt: OPENED,
      links: {
        incident: 'https://vigil.test/api/v1/incidents/7',
        runbook: 'https://wiki.test/runbooks/api',
        ack: 'https://vigil.test/act/ack-token',
        resolve: 'https://vigil.test/act/resolve-token',
      },
    },
    overrides,
    { lastError: { code: 'HTTP_STATUS', message: '503 [click](https://evil.test) *now* <b>', at: OPENED }, ...incident },
  );
}

const peers: WebhookPeer[] = [];
const channels: Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await Promise.all(peers.splice(0).map((p) => p.close()));
});

async function setup(answer: Answer = answers.accepted as Answer) {
  const peer = await startWebhookPeer(() => answer);
  peers.push(peer);
  const channel = make(`${peer.url}${PATH}`);
  return { peer, channel };
}

function make(url: string): Channel {
  expect([...Value.Errors(teams.schema, { url })]).toEqual([]);
  const channel = teams.create('teams-ops', { url }, { logger: memoryLogger().logger, clock: systemClock });
  channels.push(channel);
  return channel;
}

function cardOf(peer: WebhookPeer, i = 0): TeamsMessage {
  return peer.received[i]?.body as TeamsMessage;
}

describe('teams channel: config', () => {
  it('takes an http(s) url and nothing else', () => {
    expect(Value.Check(teams.schema, { url: `https://prod-01.westus.logic.azure.com${PATH}` })).toBe(true);
    expect(Value.Check(teams.schema, { url: 'ftp://teams.example.com/x' })).toBe(false);
    expect(Value.Check(teams.schema, {})).toBe(false);
    expect(Value.Check(teams.schema, { url: 'https://x.test/', token: 'x' })).toBe(false);
  });
});

describe('teams channel: delivery', () => {
  it('posts a message with one Adaptive Card, shaped as the documented example, and takes 202 as delivered', async () => {
    const { peer, channel } = await setup();
    expect(await channel.send(notification(), sendContext())).toEqual({});
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0]?.path).toBe(PATH);
    expect(peer.received[0]?.contentType).toBe('application/json');

    const sent = cardOf(peer);
    const [attachment] = sent.attachments;
    const [example] = documented.attachments;
    // The envelope is the documented one, field for field; only the card's content is vigil's.
    expect(Object.keys(sent).sort()).toEqual(Object.keys(documented).sort());
    expect(sent.type).toBe(documented.type);
    expect(sent.attachments).toHaveLength(1);
    expect(attachment?.contentType).toBe(example?.contentType);
    expect(attachment?.contentUrl).toBeNull();
    expect(attachment?.content.type).toBe('AdaptiveCard');
    expect(attachment?.content.$schema).toBe(example?.content.$schema);
    expect(attachment?.content.version).toBe('1.4');

    const content = attachment?.content;
    expect(content?.body[0]).toMatchObject({
      type: 'TextBlock',
      weight: 'Bolder',
      color: 'Attention',
      text: '\\[CRITICAL\\] api-health: 503 Service Unavailable: cache down',
    });
    const facts = content?.body.find((e) => e.type === 'FactSet');
    expect(facts?.type === 'FactSet' ? facts.facts.map((f) => f.title) : []).toEqual([
      'Probe',
      'Severity',
      'State',
      'Since',
      'Rule',
      'Labels',
    ]);
    // A target's error text cannot turn into a link or bold in the card.
    const error = content?.body.find((e) => e.type === 'TextBlock' && e.text.startsWith('**Last error:**'));
    expect(error).toMatchObject({ text: '**Last error:** HTTP\\_STATUS: 503 \\[click\\](https://evil.test) \\*now\\* \\<b>' });
    expect(content?.actions).toEqual([
      { type: 'Action.OpenUrl', title: 'Incident', url: 'https://vigil.test/api/v1/incidents/7' },
      { type: 'Action.OpenUrl', title: 'Runbook', url: 'https://wiki.test/runbooks/api' },
      { type: 'Action.OpenUrl', title: 'Acknowledge', url: 'https://vigil.test/act/ack-token' },
      { type: 'Action.OpenUrl', title: 'Resolve', url: 'https://vigil.test/act/resolve-token' },
    ]);
  });

  it('takes a 200 as delivered too', async () => {
    const { peer, channel } = await setup(answers.ok);
    expect(await channel.send(notification(), sendContext())).toEqual({});
    expect(peer.received).toHaveLength(1);
  });

  it('announces acknowledge and resolve in new cards of their own, without the action buttons', async () => {
    const { peer, channel } = await setup();
    await channel.send(notification({ action: 'acknowledge' }, { state: 'acknowledged', ackedBy: 'alice' }), sendContext());
    await channel.send(notification({ action: 'resolve' }, { state: 'resolved', resolvedAt: OPENED + 12 * 60_000 }), sendContext());
    const [ack, resolve] = [cardOf(peer, 0).attachments[0]?.content, cardOf(peer, 1).attachments[0]?.content];
    expect(ack?.body[0]).toMatchObject({ text: expect.stringMatching(/^\\\[ACK\\\] api-health acknowledged by alice/), color: 'Default' });
    expect(resolve?.body[0]).toMatchObject({ text: '\\[RESOLVED\\] api-health recovered after 12m', color: 'Good' });
    for (const c of [ack, resolve]) expect(c?.actions.map((a) => a.title)).toEqual(['Incident', 'Runbook']);
  });

  it("names the person a page is for when escalation sends it through this channel's via:", async () => {
    const { peer, channel } = await setup();
    await channel.send(notification({ recipient: { id: 'alice', name: 'Alice *Ng*' } }), sendContext());
    expect(cardOf(peer).attachments[0]?.content.body[1]).toEqual({
      type: 'TextBlock',
      text: 'Paging Alice \\*Ng\\*',
      wrap: true,
      weight: 'Bolder',
    });
  });
});

describe('teams channel: failures', () => {
  it('a refused card (400) is permanent and quotes the workflow’s error code', async () => {
    const { channel } = await setup(answers.bad_request);
    const err = await failure(channel.send(notification(), sendContext()));
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(
      /^Teams workflow POST to 127\.0\.0\.1:\d+ answered 400: TriggerInputSchemaMismatch: .*\(the workflow refused the card\)$/,
    );
  });

  it('a bad signature (401) or a deleted flow (404) is permanent and says to check url', async () => {
    for (const name of ['bad_signature', 'not_found']) {
      const { channel } = await setup(answers[name]);
      const err = await failure(channel.send(notification(), sendContext()));
      expect(err.retryable, name).toBe(false);
      expect(err.message, name).toContain('check `url`');
    }
  });

  it('a 429 is retried after its Retry-After', async () => {
    const { channel } = await setup(answers.throttled);
    const err = await failure(channel.send(notification(), sendContext()));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBe(17_000);
    expect(err.message).toContain('429: WorkflowRequestsThrottled');
  });

  it('a 5xx is retried', async () => {
    const { channel } = await setup(answers.unavailable);
    const err = await failure(channel.send(notification(), sendContext()));
    expect(err.retryable).toBe(true);
    expect(err.retryAfterMs).toBeUndefined();
  });

  it('never shows the URL’s signature: not in an answer that echoes the request, nor in a connection error', async () => {
    const { channel, peer } = await setup();
    peer.answer = (r) => ({ status: 400, body: JSON.stringify({ error: { code: 'BadRequest', message: `no route for ${r.path}` } }) });
    const echoed = await failure(channel.send(notification(), sendContext()));
    expect(echoed.message).toContain('no route for /workflows/5f1c');
    expect(echoed.message).not.toContain(SIG);
    expect(echoed.message).not.toContain(SIG.slice(0, 10));

    const refused = make(`http://127.0.0.1:${await closedPort()}${PATH}`);
    const err = await failure(refused.send(notification(), sendContext()));
    expect(err.retryable).toBe(true);
    expect(`${err.message} ${String(err.cause ?? '')}`).not.toContain(SIG);
  });
});

describe('teams channel: through the outbox', () => {
  it('delivers trigger and resolve exactly once each, in order, across a workflow outage (503, then 429)', async () => {
    const peer = await startWebhookPeer(() => answers.unavailable as Answer);
    peers.push(peer);
    let down = 0;
    peer.answer = () => (++down % 3 === 0 ? (answers.throttled as Answer) : (answers.unavailable as Answer));
    const rows = await throughOutage(make(`${peer.url}${PATH}`), {
      downMinutes: 3,
      up: () => {
        peer.answer = () => answers.accepted as Answer;
      },
    });
    expect(rows.map((r) => [r.action, r.state])).toEqual([
      ['trigger', 'delivered'],
      ['resolve', 'delivered'],
    ]);
    const accepted = peer.received.slice(down);
    expect(down).toBeGreaterThanOrEqual(3);
    expect(accepted.map((r) => (r.body as TeamsMessage).attachments[0]?.content.body[0])).toMatchObject([
      { text: expect.stringContaining('\\[CRITICAL\\]') },
      { text: expect.stringContaining('\\[RESOLVED\\]') },
    ]);
    expect(rows[0]?.attempts).toBe(down + 1);
  });
});
