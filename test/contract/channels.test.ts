/**
 * The channel contract, run over EVERY registered channel type: a new entry in
 * src/notify/channels/index.ts fails here until it brings a fixture. Shared cases: a bad config is
 * rejected at load naming its path, a send honours its deadline against a provider that hangs and
 * leaves nothing open, a failure is a DeliveryError that says whether to retry, the channel's secret
 * never reaches the error, and a type that addresses people is wired into every place that pages
 * them (people schema, reachability check, escalation, the recipient handed to the channel).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { resolveTargets } from '../../src/alerting/escalation.js';
import { ConfigError, type LoadedConfig, loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/lib/clock.js';
import {
  type Channel,
  type ChannelType,
  channelKindOf,
  channelKinds,
  createChannels,
  DeliveryError,
  type Notification,
  recipientOf,
} from '../../src/notify/index.js';
import { checkSchedules, PersonSchema } from '../../src/oncall/index.js';
import { memoryLogger } from '../helpers/context.js';
import { testNotification } from '../helpers/notification.js';
import { startHttp, startRaw, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const TIMEOUT_MS = 800;
const SLACK_MS = 1_500;
const SECRET = 'xoxb-Pl4nted-Channel-S3cret-5519';

interface Skip {
  skip: string;
}

/** A provider stand-in and the channel fields that point at it (may reference `${CONTRACT_SECRET}`). */
interface Peer {
  fields: Record<string, unknown>;
  /** Connections it still holds open. */
  open(): number;
  /** Answers it sent that quoted the secret back (an echoing provider). */
  echoed?(): number;
  close(): Promise<void>;
}

interface ChannelFixture {
  /** A provider that accepts connections and never answers. */
  hang(): Promise<Peer>;
  /** A field set wrong, and the path the load error must name. */
  bad: { fields: Record<string, unknown>; path: string };
  /** A provider that refuses the send quoting the request back (so the redaction case can fail), or why none can. */
  echo: (() => Promise<Peer>) | Skip;
}

async function silentTcp(): Promise<TestServer & { live: Set<Socket> }> {
  const live = new Set<Socket>();
  const server = await startRaw((socket) => {
    live.add(socket);
    // Read and drop: a paused socket would never notice the client hanging up.
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => live.delete(socket));
  });
  return Object.assign(server, { live });
}

async function hanging(fields: (port: number) => Record<string, unknown>): Promise<Peer> {
  const server = await silentTcp();
  return { fields: fields(server.port), open: () => server.live.size, close: () => server.close() };
}

/** An HTTP provider answering 400 with everything it was sent: headers and body. */
async function echoing(fields: (url: string) => Record<string, unknown>): Promise<Peer> {
  let echoed = 0;
  const server = await startHttp((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const answer = JSON.stringify({ ok: false, error: 'invalid_auth', headers: req.headers, url: req.url, body });
      if (answer.includes(SECRET)) echoed++;
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(answer);
    });
  });
  return { fields: fields(server.url), open: () => 0, echoed: () => echoed, close: () => server.close() };
}

const fixtures: Record<ChannelType, ChannelFixture> = {
  alertmanager: {
    hang: () => hanging((port) => ({ urls: [`http://127.0.0.1:${port}`], bearerToken: '${CONTRACT_SECRET}' })),
    bad: { fields: { urls: ['http://127.0.0.1:9093'], labels: { 'team-name': 'core' } }, path: 'labels.team-name' },
    echo: () => echoing((url) => ({ urls: [url], bearerToken: '${CONTRACT_SECRET}' })),
  },
  discord: {
    hang: () => hanging((port) => ({ webhookUrl: `http://127.0.0.1:${port}/api/webhooks/123456/\${CONTRACT_SECRET}` })),
    bad: { fields: { webhookUrl: 'https://discord.com/api/webhooks/not-an-id' }, path: 'webhookUrl' },
    echo: () => echoing((url) => ({ webhookUrl: `${url}/api/webhooks/123456/\${CONTRACT_SECRET}` })),
  },
  email: {
    hang: () =>
      hanging((port) => ({
        smtp: `smtp://vigil:\${CONTRACT_SECRET}@127.0.0.1:${port}`,
        from: 'vigil@example.com',
        to: ['ops@example.com'],
      })),
    bad: { fields: { smtp: 'http://mail.example.com', from: 'vigil@example.com', to: ['ops@example.com'] }, path: 'smtp' },
    echo: { skip: 'an SMTP server answers with reply codes of its own words; it cannot be made to quote the password back' },
  },
  opsgenie: {
    hang: () => hanging((port) => ({ apiKey: '${CONTRACT_SECRET}', apiUrl: `http://127.0.0.1:${port}` })),
    bad: { fields: { apiKey: 'k', region: 'asia' }, path: 'region' },
    echo: () => echoing((url) => ({ apiKey: '${CONTRACT_SECRET}', apiUrl: url })),
  },
  pagerduty: {
    hang: () => hanging((port) => ({ routingKey: '${CONTRACT_SECRET}', url: `http://127.0.0.1:${port}` })),
    bad: { fields: { routingKey: '', url: 'http://127.0.0.1:1' }, path: 'routingKey' },
    echo: () => echoing((url) => ({ routingKey: '${CONTRACT_SECRET}', url })),
  },
  slack: {
    hang: () => hanging((port) => ({ token: '${CONTRACT_SECRET}', channel: '#ops', apiUrl: `http://127.0.0.1:${port}/api/` })),
    bad: { fields: { token: 'x', channel: 'not a channel!' }, path: 'channel' },
    echo: () => echoing((url) => ({ token: '${CONTRACT_SECRET}', channel: '#ops', apiUrl: `${url}/api/` })),
  },
  teams: {
    hang: () => hanging((port) => ({ url: `http://127.0.0.1:${port}/workflows/w1/triggers/manual/paths/invoke?sig=\${CONTRACT_SECRET}` })),
    bad: { fields: { url: 'ftp://teams.example.com/hook' }, path: 'url' },
    echo: () => echoing((url) => ({ url: `${url}/workflows/w1/triggers/manual/paths/invoke?api-version=1&sig=\${CONTRACT_SECRET}` })),
  },
  telegram: {
    hang: () =>
      hanging((port) => ({ botToken: '123456:${CONTRACT_SECRET}', chatId: '-1001234567890', apiUrl: `http://127.0.0.1:${port}` })),
    bad: { fields: { botToken: '123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', chatId: 'ops alerts' }, path: 'chatId' },
    echo: () => echoing((url) => ({ botToken: '123456:${CONTRACT_SECRET}', chatId: '-1001234567890', apiUrl: url })),
  },
  webhook: {
    hang: () =>
      hanging((port) => ({
        url: `http://127.0.0.1:${port}/hook`,
        secret: '${CONTRACT_SECRET}',
        headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
      })),
    bad: { fields: { url: 'ftp://hooks.example.com' }, path: 'url' },
    echo: () => echoing((url) => ({ url: `${url}/hook`, headers: { authorization: 'Bearer ${CONTRACT_SECRET}' } })),
  },
};

/** Loads one channel named `c` through the real config path and makes it as vigil does. */
function loadChannel(dir: string, type: string, fields: Record<string, unknown>): LoadedConfig {
  writeFileSync(path.join(dir, 'config', 'default.yaml'), stringify({ service: { port: 8080 }, channels: { c: { type, ...fields } } }));
  return loadConfig({ cwd: dir, env: { CONTRACT_SECRET: SECRET } });
}

function make(loaded: LoadedConfig): Channel {
  const channels = createChannels(loaded.service.channels as Record<string, { type: string }>, {
    logger: memoryLogger().logger,
    clock: systemClock,
  });
  return channels.get('c') as Channel;
}

function page(): Notification {
  return testNotification({ openedAt: Date.now(), links: { incident: 'http://127.0.0.1:1/api/v1/incidents/7' } });
}

async function failed(p: Promise<unknown>): Promise<DeliveryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the send should fail with a DeliveryError').toBeInstanceOf(DeliveryError);
  return err as DeliveryError;
}

function handles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (/TCPSocketWrap|Timeout|Immediate/i.test(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

function leftOver(before: Map<string, number>): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [type, n] of handles()) if (n > (before.get(type) ?? 0)) extra[type] = n - (before.get(type) ?? 0);
  return extra;
}

function leaks(text: string): string[] {
  return [SECRET, encodeURIComponent(SECRET), Buffer.from(SECRET).toString('base64'), SECRET.slice(0, 12)].filter((f) => text.includes(f));
}

it('every registered channel type has a fixture here', () => {
  expect(Object.keys(fixtures).sort()).toEqual(Object.keys(channelKinds).sort());
});

describe.each(Object.keys(channelKinds) as ChannelType[])('channel contract: %s', { timeout: 20_000 }, (type) => {
  const fixture: ChannelFixture = fixtures[type];
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vigil-channel-contract-'));
    mkdirSync(path.join(dir, 'config'));
    mkdirSync(path.join(dir, 'probes'));
    writeFileSync(path.join(dir, 'probes', 'none.yaml'), '[]\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects a bad config at load with an error naming the file and path', () => {
    let problems: readonly string[] = [];
    try {
      loadChannel(dir, type, fixture.bad.fields);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems.length, 'the bad config loaded').toBeGreaterThan(0);
    const line = problems.find((p) => p.startsWith(`config/default.yaml: channels.c.${fixture.bad.path}: expected`));
    expect(line, `no problem names channels.c.${fixture.bad.path}: ${problems.join(' | ')}`).toBeDefined();
  });

  it('honours the deadline against a provider that hangs: a retryable DeliveryError, nothing left open', async () => {
    const peer = await fixture.hang();
    const channel = make(loadChannel(dir, type, peer.fields));
    try {
      const before = handles();
      const started = performance.now();
      const err = await failed(
        channel.send(page(), { signal: AbortSignal.timeout(TIMEOUT_MS), clock: systemClock, logger: memoryLogger().logger }),
      );
      const took = performance.now() - started;
      expect(took, `${type} took ${Math.round(took)} ms`).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      // The result the outbox worker acts on: whether to retry, and a reason a person can read.
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/\S/);
      if (err.retryAfterMs !== undefined) expect(Number.isFinite(err.retryAfterMs)).toBe(true);
      await waitFor(`${type}: the provider to see the abandoned connection closed`, () => peer.open() === 0, 2_000);
      await waitFor(
        `${type}: handles opened by the send to be released`,
        () => Object.keys(leftOver(before)).length === 0,
        2_000,
        () => JSON.stringify(leftOver(before)),
      );
    } finally {
      await channel.close();
      await peer.close();
    }
  });

  it('never lets its secret reach the delivery error', async (t) => {
    const echo = fixture.echo;
    if (typeof echo === 'object') {
      t.skip(`the case cannot fail for ${type}: ${echo.skip}`);
      return;
    }
    const peer = await echo();
    const channel = make(loadChannel(dir, type, peer.fields));
    try {
      const err = await failed(
        channel.send(page(), { signal: AbortSignal.timeout(5_000), clock: systemClock, logger: memoryLogger().logger }),
      );
      expect(typeof err.retryable).toBe('boolean');
      const text = JSON.stringify({ message: err.message, cause: String(err.cause ?? '') });
      expect(leaks(text), `${type}: ${text}`).toEqual([]);
      // The case can fail: the provider did quote the secret back to the channel.
      expect(peer.echoed?.(), `${type}: the echoing provider never saw the secret`).toBeGreaterThan(0);
    } finally {
      await channel.close();
      await peer.close();
    }
  });

  it('is wired into paging people as its type declares', () => {
    const reach = channelKindOf(type).person;
    const channels = { [`${type}-1`]: type, [`${type}-2`]: type };
    const onCall = () => undefined;
    if (reach === 'own-target') {
      // Never picked for a person by default; named in `via:` it carries their page.
      const who = { alice: { email: 'alice@example.com' } };
      expect(resolveTargets(['person:alice'], undefined, { channels, people: who, onCall }, 0).pages).toEqual([]);
      expect(resolveTargets(['person:alice'], [`${type}-1`], { channels, people: who, onCall }, 0).pages).toEqual([
        { channel: `${type}-1`, recipient: 'alice' },
      ]);
      return;
    }
    const { field } = reach;
    // The people schema has the field, so a person can be given it.
    expect(Object.hasOwn(PersonSchema.properties, field), `people.<id>.${field} is missing from PersonSchema`).toBe(true);
    const value = (PersonSchema.properties as Record<string, { type?: string }>)[field]?.type === 'boolean' ? true : sample(field);
    const person = { name: 'Alice', pagerduty: false, [field]: value };
    // Someone reachable only this way passes the config check …
    expect(checkSchedules({ alice: person } as never, {})).toEqual([]);
    // … escalation pages them through the first channel of this type, without a `via:` …
    expect(resolveTargets(['person:alice'], undefined, { channels, people: { alice: person }, onCall }, 0).pages).toEqual([
      { channel: `${type}-1`, recipient: 'alice' },
    ]);
    // … and not someone without the field.
    const other = { name: 'Bob', pagerduty: false };
    expect(resolveTargets(['person:bob'], undefined, { channels, people: { bob: other }, onCall }, 0).pages).toEqual([]);
    // The recipient handed to the channel carries the field it sends to.
    expect(recipientOf('alice', person as never)[field]).toBe(value);
  });
});

/** A value the people schema accepts for a field. */
function sample(field: string): string {
  if (field === 'email') return 'alice@example.com';
  if (field === 'slack') return 'U024BE7LH';
  if (field === 'opsgenie') return 'alice@example.com';
  if (field === 'telegram') return '123456789';
  throw new Error(`add a sample ${field} value for people.<id>.${field} here`);
}
