import type { AddressInfo } from 'node:net';
import { Value } from '@sinclair/typebox/value';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { type EmailConfig, email } from '../../src/notify/channels/email.js';
import type { Channel, IncidentView, Notification } from '../../src/notify/types.js';
import { memoryLogger } from '../helpers/context.js';
import { sendContext as context, failure, testNotification } from '../helpers/notification.js';
import { closedPort, startRaw } from '../helpers/servers.js';

const OPENED = Date.UTC(2026, 10, 26, 12, 0, 0);
const PASSWORD = 'S3cr3t-P@ss:w0rd';

function notification(over: Partial<Omit<Notification, 'incident'>> = {}, incident: Partial<IncidentView> = {}): Notification {
  const links = { incident: 'https://vigil.example.com/api/v1/incidents/7', dashboard: 'https://grafana.example.com/d/vigil' };
  return testNotification({ openedAt: OPENED, createdAt: OPENED + 1_000, links }, over, incident);
}

/** A mail as the SMTP server received it, decoded enough to assert on. */
interface Received {
  from: string | undefined;
  rcpt: string[];
  headers: Map<string, string>;
  subject: string;
  text: string;
  html: string;
}

interface SmtpPeer {
  port: number;
  mails: Received[];
  /** TCP connections the server accepted. */
  connections: number;
  close(): Promise<void>;
}

/** A real smtp-server on 127.0.0.1:0 that keeps what it receives; `options` override its handlers. */
async function startSmtp(options: Partial<SMTPServerOptions> = {}): Promise<SmtpPeer> {
  const peer: SmtpPeer = { port: 0, mails: [], connections: 0, close: async () => {} };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 200,
    onConnect(_session, cb) {
      peer.connections++;
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        peer.mails.push({
          ...parseMime(Buffer.concat(chunks).toString('utf8')),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
          rcpt: session.envelope.rcptTo.map((r) => r.address),
        });
        cb();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  peer.port = (server.server.address() as AddressInfo).port;
  peer.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return peer;
}

function channelFor(port: number, over: Partial<EmailConfig> = {}): Channel {
  const config: EmailConfig = {
    smtp: `smtp://127.0.0.1:${port}`,
    from: 'Vigil <vigil@example.com>',
    to: ['eng@example.com'],
    pool: true,
    maxConnections: 2,
    ...over,
  };
  return email.create('email-eng', config, { logger: memoryLogger().logger, clock: systemClock });
}

// Just enough MIME to read back what nodemailer wrote: unfolded headers, encoded words,
// multipart/alternative, quoted-printable and base64 parts.
function parseMime(raw: string): Omit<Received, 'from' | 'rcpt'> {
  const { headers, body } = splitPart(raw);
  const parts: Record<string, string> = {};
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  const leaves = boundary ? body.split(`--${boundary}`).slice(1, -1) : [raw];
  for (const leaf of leaves) {
    const part = boundary ? splitPart(leaf.replace(/^\r\n/, '')) : { headers, body };
    const mime = (part.headers.get('content-type') ?? 'text/plain').split(';')[0]?.trim() ?? '';
    parts[mime] = decodeBody(part.body, part.headers.get('content-transfer-encoding') ?? '7bit');
  }
  return { headers, subject: decodeWords(headers.get('subject') ?? ''), text: parts['text/plain'] ?? '', html: parts['text/html'] ?? '' };
}

function splitPart(raw: string): { headers: Map<string, string>; body: string } {
  const at = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, at).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body: raw.slice(at + 4) };
}

function decodeBody(body: string, encoding: string): string {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return qp(body.replace(/=\r\n/g, '')).replace(/\r\n$/, '');
    default:
      return body.replace(/\r\n$/, '');
  }
}

function qp(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '=' && /^[0-9A-F]{2}$/i.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i] as string, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([BQ])\?([^?]*)\?=/gi, (_m, _charset: string, enc: string, data: string) =>
      enc.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : qp(data.replace(/_/g, ' ')),
    );
}

describe('email channel', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(options: Partial<SMTPServerOptions> = {}, over: Partial<EmailConfig> = {}) {
    const peer = await startSmtp(options);
    cleanup.push(() => peer.close());
    const channel = channelFor(peer.port, over);
    cleanup.push(() => channel.close());
    return { peer, channel };
  }

  it('sends one email with the severity subject, text and HTML bodies and a stable Message-ID', async () => {
    const { peer, channel } = await setup();
    const result = await channel.send(notification(), context());
    expect(peer.mails).toHaveLength(1);
    const mail = peer.mails[0] as Received;
    expect(mail.from).toBe('vigil@example.com');
    expect(mail.rcpt).toEqual(['eng@example.com']);
    expect(mail.subject).toBe('[CRITICAL] api-health: 503 Service Unavailable: cache down');
    expect(mail.headers.get('from')).toBe('Vigil <vigil@example.com>');
    expect(mail.headers.get('to')).toBe('eng@example.com');
    expect(mail.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail.headers.get('x-priority')).toMatch(/^1/);
    expect(mail.headers.get('message-id')).toMatch(/^<vigil\.api-health\.failures\.7\.[0-9a-f]{12}@vigil\.example\.com>$/);
    expect(mail.headers.get('in-reply-to')).toBeUndefined();
    expect(result.ref).toEqual({ threadId: mail.headers.get('message-id') });

    expect(mail.text).toContain('Probe: api-health (http)');
    expect(mail.text).toContain('Last error: HTTP_STATUS: 503 Service Unavailable: cache down (expected 200)');
    expect(mail.text).toContain('Incident: https://vigil.example.com/api/v1/incidents/7');
    expect(mail.html).toContain(
      '<h2 style="font-size:16px;margin:4px 0 12px">[CRITICAL] api-health: 503 Service Unavailable: cache down</h2>',
    );
    expect(mail.html).toContain('<a href="https://vigil.example.com/api/v1/incidents/7">Open the incident</a>');
    expect(mail.html).toContain('<a href="https://grafana.example.com/d/vigil">Dashboard</a>');

    // A retry of the same notification is the same email to a mail client.
    await channel.send(notification(), context());
    expect(peer.mails[1]?.headers.get('message-id')).toBe(mail.headers.get('message-id'));
  });

  it('writes a page addressed to a person (escalation) to them, not to the channel list', async () => {
    const { peer, channel } = await setup();
    await channel.send(notification({ recipient: { id: 'alice', name: 'Alice Ng', email: 'alice@example.com' } }), context());
    expect((peer.mails[0] as Received).rcpt).toEqual(['alice@example.com']);
  });

  it('carries the signed Acknowledge and Resolve links in both bodies of a page that asks to act', async () => {
    const ack = 'https://vigil.example.com/act/djE6NzphY2s6MTc2NDI0NDgwMDAwMA.sig-ack';
    const resolve = 'https://vigil.example.com/act/djE6NzpyZXNvbHZlOjE3NjQyNDQ4MDAwMDA.sig-resolve';
    const links = { ...notification().links, ack, resolve };
    const { peer, channel } = await setup();
    await channel.send(notification({ links }), context());
    await channel.send(notification({ id: 43, action: 'remind', links }), context());
    await channel.send(notification({ id: 44, action: 'resolve', links }, { state: 'resolved', resolvedAt: OPENED + 300_000 }), context());
    const [trigger, remind, resolved] = peer.mails as [Received, Received, Received];
    for (const mail of [trigger, remind]) {
      // SMTP turns line ends into CRLF.
      expect(mail.text.replace(/\r\n/g, '\n')).toContain(`Acknowledge: ${ack}\nResolve: ${resolve}`);
      expect(mail.html).toMatch(new RegExp(`<a href="${ack}"[^>]*>Acknowledge</a>`));
      expect(mail.html).toMatch(new RegExp(`<a href="${resolve}"[^>]*>Resolve</a>`));
    }
    // A settled incident has nothing left to act on.
    expect(resolved.text).not.toContain('Acknowledge:');
    expect(resolved.html).not.toContain('/act/');
    // Without a link secret there are no links at all.
    await channel.send(notification({ id: 45 }), context());
    expect(peer.mails[3]!.text).not.toContain('Acknowledge:');
    expect(peer.mails[3]!.html).not.toContain('>Acknowledge</a>');
  });

  it('threads acknowledge, remind and resolve under the first email', async () => {
    const { peer, channel } = await setup();
    await channel.send(notification(), context());
    await channel.send(notification({ id: 42, action: 'acknowledge' }, { state: 'acknowledged', ackedBy: 'ana' }), context());
    await channel.send(notification({ id: 43, action: 'remind' }), context());
    await channel.send(notification({ id: 44, action: 'resolve' }, { state: 'resolved', resolvedAt: OPENED + 300_000 }), context());
    const [trigger, ack, remind, resolve] = peer.mails as [Received, Received, Received, Received];
    const root = trigger.headers.get('message-id') as string;
    for (const [mail, action, id] of [
      [ack, 'acknowledge', 42],
      [remind, 'remind', 43],
      [resolve, 'resolve', 44],
    ] as const) {
      expect(mail.headers.get('message-id')).toBe(root.replace('@', `.${action}.${id}@`));
      expect(mail.headers.get('in-reply-to')).toBe(root);
      expect(mail.headers.get('references')).toBe(root);
    }
    expect(ack.subject).toBe('[CRITICAL] [ACK] api-health acknowledged by ana: api-health: 503 Service Unavailable: cache down');
    expect(remind.subject).toMatch(/^\[CRITICAL\] still failing after /);
    expect(resolve.subject).toBe('[CRITICAL] [RESOLVED] api-health recovered after 5m');
    expect(resolve.headers.get('x-priority')).toBeUndefined();
  });

  it('threads under the id the server gave the first email, when it replaced ours', async () => {
    const outlookId = '<DB9PR01MB1234.abc@DB9PR01MB1234.eurprd01.prod.outlook.com>';
    const { peer, channel } = await setup({
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          peer.mails.push({ ...parseMime(Buffer.concat(chunks).toString('utf8')), from: undefined, rcpt: [] });
          // Microsoft 365's final reply, naming the Message-ID it put on the message instead of ours.
          cb(null, `2.0.0 OK ${outlookId} [Hostname=DB9PR01MB1234.eurprd01.prod.outlook.com]`);
          void session;
        });
      },
    });
    const first = await channel.send(notification(), context());
    expect(first.ref).toEqual({ threadId: outlookId });
    const ours = peer.mails[0]?.headers.get('message-id') as string;

    const resolved = await channel.send(notification({ id: 44, action: 'resolve', ref: first.ref }), context());
    const resolve = peer.mails[1] as Received;
    expect(resolve.headers.get('in-reply-to')).toBe(outlookId);
    expect(resolve.headers.get('references')).toBe(`${ours} ${outlookId}`);
    // Handed back unchanged, whichever ref the outbox keeps for the incident.
    expect(resolved.ref).toEqual({ threadId: outlookId });
  });

  it('keeps incidents apart: another key or instance gets another thread', async () => {
    const { peer, channel } = await setup();
    await channel.send(notification(), context());
    await channel.send(notification({ dedupKey: 'api-health/failures/8' }), context());
    await channel.send(notification({ links: { incident: 'https://vigil-staging.example.com/api/v1/incidents/7' } }), context());
    const ids = peer.mails.map((m) => m.headers.get('message-id'));
    expect(new Set(ids).size).toBe(3);
    expect(ids[2]).toMatch(/@vigil-staging\.example\.com>$/);
  });

  it('sends a test page as a message of its own', async () => {
    const { peer, channel } = await setup();
    const result = await channel.send(notification({ id: 60, action: 'test' }, { severity: 'info' }), context());
    expect(result.ref).toBeUndefined();
    const mail = peer.mails[0] as Received;
    expect(mail.subject).toMatch(/^\[TEST\] vigil test page for api-health/);
    expect(mail.headers.get('message-id')).toMatch(/\.test\.60@vigil\.example\.com>$/);
    expect(mail.headers.get('in-reply-to')).toBeUndefined();
  });

  it('escapes incident text in the HTML body and keeps it verbatim in the text body', async () => {
    const { peer, channel } = await setup();
    const summary = `api-health: 500 <script>alert("x")</script> & 'more'`;
    await channel.send(notification({}, { summary, lastError: { code: 'HTTP_STATUS', message: '<b>bold</b>', at: OPENED } }), context());
    const mail = peer.mails[0] as Received;
    expect(mail.html).not.toContain('<script>');
    expect(mail.html).not.toContain('<b>bold</b>');
    expect(mail.html).toContain('500 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;more&#39;');
    expect(mail.html).toContain('HTTP_STATUS: &lt;b&gt;bold&lt;/b&gt;');
    expect(mail.text).toContain(summary);
    expect(mail.subject).toBe(`[CRITICAL] ${summary}`);
  });

  it('reports a 550 from the server as permanent', async () => {
    const { peer, channel } = await setup({
      onRcptTo(address, _session, cb) {
        cb(Object.assign(new Error(`<${address.address}>: mailbox unavailable`), { responseCode: 550 }));
      },
    });
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('550');
    expect(err.message).toContain('mailbox unavailable');
    expect(err.message).toContain(`127.0.0.1:${peer.port}`);
    expect(peer.mails).toHaveLength(0);
  });

  it('reports a 451 from the server as retryable', async () => {
    const { channel } = await setup({
      onRcptTo(_address, _session, cb) {
        cb(Object.assign(new Error('greylisted, try again later'), { responseCode: 451 }));
      },
    });
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('451');
  });

  it('sends when some recipients are refused, logging the refused ones instead of paging the others twice', async () => {
    const { lines, logger } = memoryLogger();
    const { peer, channel } = await setup(
      {
        onRcptTo(address, _session, cb) {
          cb(address.address === 'gone@example.com' ? Object.assign(new Error('no such user'), { responseCode: 550 }) : null);
        },
      },
      { to: ['eng@example.com', 'gone@example.com'] },
    );
    await channel.send(notification(), context(5_000, logger));
    expect(peer.mails[0]?.rcpt).toEqual(['eng@example.com']);
    expect(lines.find((l) => l.msg === 'email recipients rejected')).toMatchObject({ level: 'warn', rejected: ['g***@example.com'] });
  });

  it('reports a server that is down as retryable', async () => {
    const port = await closedPort();
    const channel = channelFor(port);
    cleanup.push(() => channel.close());
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('leaves retries to the outbox: a connection dropped before the greeting fails the send after one attempt', async () => {
    const dropper = await startRaw((socket) => socket.destroy());
    cleanup.push(() => dropper.close());
    const channel = channelFor(dropper.port);
    cleanup.push(() => channel.close());
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`127.0.0.1:${dropper.port}`);
    // nodemailer's pool would otherwise requeue the message and reconnect on its own.
    await new Promise((r) => setTimeout(r, 300));
    expect(dropper.connections).toBe(1);
  });

  it('stops at the send deadline when the server stalls, as retryable, and the pool keeps working', async () => {
    let stall = true;
    const { peer, channel } = await setup({
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (stall) return; // never answers the DATA
          peer.mails.push({ ...parseMime(Buffer.concat(chunks).toString('utf8')), from: undefined, rcpt: [] });
          cb();
          void session;
        });
      },
    });
    const started = Date.now();
    const err = await failure(channel.send(notification(), context(300)));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('deadline');

    stall = false;
    await channel.send(notification({ id: 45, action: 'resolve' }), context());
    expect(peer.mails).toHaveLength(1);
  });

  it('fails at once, as retryable, when the signal has already aborted', async () => {
    const { peer, channel } = await setup();
    const ctx = { ...context(), signal: AbortSignal.abort() };
    const err = await failure(channel.send(notification(), ctx));
    expect(err.retryable).toBe(true);
    expect(peer.mails).toHaveLength(0);
  });

  it('never shows the SMTP password, in any encoding, in an error or a log line', async () => {
    const { lines, logger } = memoryLogger();
    const forms = [
      PASSWORD,
      encodeURIComponent(PASSWORD),
      Buffer.from(PASSWORD).toString('base64'),
      Buffer.from(`\0vigil\0${PASSWORD}`).toString('base64'),
    ];
    const peer = await startSmtp({
      authOptional: false,
      allowInsecureAuth: true,
      // A careless server that quotes the credentials back in its refusal.
      onAuth(auth, _session, cb) {
        const plain = Buffer.from(`\0${auth.username}\0${auth.password}`).toString('base64');
        cb(Object.assign(new Error(`bad login ${auth.username}:${auth.password} (${plain})`), { responseCode: 535 }));
      },
    });
    cleanup.push(() => peer.close());
    const smtp = `smtp://vigil:${encodeURIComponent(PASSWORD)}@127.0.0.1:${peer.port}`;
    const channel = channelFor(peer.port, { smtp });
    cleanup.push(() => channel.close());

    const err = await failure(channel.send(notification(), context(5_000, logger)));
    expect(err.message).toContain('535');
    expect(err.message).toContain('bad login vigil:<secret>');
    expect(err.message).toContain('check the user and password');
    expect(err.retryable).toBe(false);

    const downPort = await closedPort();
    const down = channelFor(downPort, { smtp: `smtp://vigil:${encodeURIComponent(PASSWORD)}@127.0.0.1:${downPort}` });
    cleanup.push(() => down.close());
    const downErr = await failure(down.send(notification(), context(5_000, logger)));

    // And a login that works, refusing one recipient: the lines a delivery logs.
    const good = await startSmtp({
      authOptional: false,
      allowInsecureAuth: true,
      onAuth: (auth, _session, cb) => cb(auth.password === PASSWORD ? null : new Error('wrong password'), { user: auth.username }),
      onRcptTo: (address, _session, cb) =>
        cb(address.address === 'gone@example.com' ? Object.assign(new Error(`no such user (${PASSWORD})`), { responseCode: 550 }) : null),
    });
    cleanup.push(() => good.close());
    const ok = channelFor(good.port, {
      smtp: `smtp://vigil:${encodeURIComponent(PASSWORD)}@127.0.0.1:${good.port}`,
      to: ['eng@example.com', 'gone@example.com'],
    });
    cleanup.push(() => ok.close());
    await ok.send(notification(), context(5_000, logger));
    expect(good.mails).toHaveLength(1);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['email sent', 'email recipients rejected']));

    const everything = [err.message, downErr.message, JSON.stringify(lines)].join('\n');
    for (const f of forms) expect(everything).not.toContain(f);
  });

  it('reports a login that cannot be made from the smtp URL as permanent', async () => {
    const peer = await startSmtp({
      authOptional: false,
      allowInsecureAuth: true,
      onAuth: (_auth, _session, cb) => cb(null, { user: 'x' }),
    });
    cleanup.push(() => peer.close());
    const channel = channelFor(peer.port, { smtp: `smtp://vigil@127.0.0.1:${peer.port}` });
    cleanup.push(() => channel.close());
    const err = await failure(channel.send(notification(), context()));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain("fix the channel's smtp URL");
    expect(peer.mails).toHaveLength(0);
  });

  it('reuses one pooled connection for successive emails, and one per email without the pool', async () => {
    const pooled = await setup();
    for (const id of [1, 2, 3]) await pooled.channel.send(notification({ id, action: 'remind' }), context());
    expect(pooled.peer.mails).toHaveLength(3);
    expect(pooled.peer.connections).toBe(1);

    const single = await setup({}, { pool: false });
    for (const id of [1, 2]) await single.channel.send(notification({ id, action: 'remind' }), context());
    expect(single.peer.connections).toBe(2);
  });

  it('validates its config with defaults and readable refusals', () => {
    const withDefaults = Value.Default(email.schema, {
      smtp: 'smtps://u:p@mail.example.com',
      from: 'vigil@example.com',
      to: ['a@example.com'],
    });
    expect(withDefaults).toMatchObject({ pool: true, maxConnections: 5 });
    expect(Value.Check(email.schema, withDefaults)).toBe(true);
    const ok = withDefaults as Record<string, unknown>;
    expect(Value.Check(email.schema, { ...ok, smtp: 'http://mail.example.com' })).toBe(false);
    expect(Value.Check(email.schema, { ...ok, to: [] })).toBe(false);
    expect(Value.Check(email.schema, { ...ok, to: ['not-an-address'] })).toBe(false);
    expect(Value.Check(email.schema, { ...ok, cc: ['a@example.com'] })).toBe(false);
  });
});
