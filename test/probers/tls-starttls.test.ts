import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { tlsProber } from '../../src/probers/tls.js';
import { createPki, type TestCert, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';

const NAME = 'mail.vigil.test';
type TlsDefinition = Parameters<typeof tlsProber.probe>[0];

/** The schema's verdict and the prober's check on a definition, as the loader gives them. */
function problemsOf(fields: Record<string, unknown>): string[] {
  const schema = definitionSchema(tlsProber.schema as unknown as TObject);
  const def = Value.Default(schema, { id: 'tls-test', kind: 'tls', schedule: '* * * * *', host: '127.0.0.1', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return errors;
  return (tlsProber.check?.(def as never) ?? []).map((p) => `${p.path}: ${p.message}`);
}

function spec(fields: Record<string, unknown>): TlsDefinition {
  const problems = problemsOf({ servername: NAME, ...fields });
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  const schema = definitionSchema(tlsProber.schema as unknown as TObject);
  return Value.Default(schema, {
    id: 'tls-test',
    kind: 'tls',
    schedule: '* * * * *',
    host: '127.0.0.1',
    servername: NAME,
    ...fields,
  }) as TlsDefinition;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface Loopback {
  port: number;
  /** Server-side sockets not yet closed: a probe must leave none behind. */
  readonly open: number;
}

async function listen(server: net.Server): Promise<Loopback> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    port: (server.address() as AddressInfo).port,
    get open() {
      return sockets.size;
    },
  };
}

/**
 * A line-speaking loopback server: `script` gets each line the client sends and answers; returning
 * 'upgrade' after its answer turns the socket into the server side of a TLS handshake.
 */
function lineServer(greeting: string, script: (line: string) => { say?: string; upgrade?: boolean }, cert: TestCert) {
  return listen(
    net.createServer((socket) => {
      socket.on('error', () => {});
      socket.write(greeting);
      let buffer = '';
      const onData = (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          const answer = script(line);
          if (answer.say !== undefined) socket.write(answer.say);
          if (answer.upgrade) {
            socket.removeListener('data', onData);
            const secure = new tls.TLSSocket(socket, { isServer: true, ...cert });
            secure.on('error', () => {});
            return;
          }
        }
      };
      socket.on('data', onData);
    }),
  );
}

/** A client CA of its own (not the server's) and a certificate it issued for client authentication. */
function clientPki() {
  const ca = createPki('Vigil Client CA');
  const leaf = ca.leaf({ cn: 'vigil-probe', usage: 'client' });
  const other = ca.leaf({ cn: 'other', usage: 'client' });
  const result = { ca: ca.root.cert, cert: leaf.cert, key: leaf.key, otherKey: other.key };
  ca.dispose();
  return result;
}

let pki: TestPki;
let server: TestCert;
let client: ReturnType<typeof clientPki>;
beforeAll(() => {
  pki = createPki('Vigil STARTTLS Test');
  server = pki.leaf({ cn: NAME, san: [`DNS:${NAME}`, 'IP:127.0.0.1'] });
  client = clientPki();
});
afterAll(() => pki?.dispose());

describe('tls prober: maxVersion', () => {
  it('caps the protocol offered: a TLS 1.3 server answers in TLS 1.2', async () => {
    const s = await listen(tls.createServer({ ...server }, () => {}));
    const capped = await tlsProber.probe(spec({ port: s.port, ca: pki.root.cert, maxVersion: 'TLSv1.2' }), probeContext());
    expect(capped).toMatchObject({ ok: true, values: { tls_version: 1.2 }, details: { protocol: 'TLSv1.2' } });
    const open = await tlsProber.probe(spec({ port: s.port, ca: pki.root.cert }), probeContext());
    expect(open).toMatchObject({ ok: true, values: { tls_version: 1.3 } });
  });

  it('fails with TLS_VERSION naming the range when the server speaks only newer protocols', async () => {
    const s = await listen(tls.createServer({ ...server, minVersion: 'TLSv1.3' }, () => {}));
    const result = await tlsProber.probe(spec({ port: s.port, ca: pki.root.cert, maxVersion: 'TLSv1.2' }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS_VERSION' });
    expect(result.message).toMatch(new RegExp(`^127\\.0\\.0\\.1:${s.port} refused TLSv1\\.2 to TLSv1\\.2 \\(`));
  });

  it('refuses at load a maxVersion below minVersion, or one that is not a protocol', () => {
    expect(problemsOf({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' })).toEqual([
      'maxVersion: maxVersion TLSv1.2 is below minVersion TLSv1.3',
    ]);
    expect(problemsOf({ maxVersion: 'TLSv1.4' }).join()).toMatch(/^\/maxVersion: /);
  });
});

describe('tls prober: client certificates', () => {
  /** A TLS 1.2 server that requires a certificate from the client CA, noting whom it let in. */
  async function mutualTls() {
    const peers: string[] = [];
    const s = await listen(
      tls.createServer({ ...server, maxVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: true, ca: client.ca }, (socket) => {
        const who = socket.getPeerCertificate().subject?.CN;
        peers.push(Array.isArray(who) ? who.join() : String(who));
      }),
    );
    return { ...s, peers };
  }

  it('fails without a certificate, saying the server wants one and that vigil sent none', async () => {
    const s = await mutualTls();
    const result = await tlsProber.probe(spec({ port: s.port, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'TLS' });
    expect(result.message).toContain('it may require a client certificate (vigil sends none)');
    expect(s.peers).toEqual([]);
  });

  it('passes with cert and key, and the server saw the client certificate', async () => {
    const s = await mutualTls();
    const result = await tlsProber.probe(spec({ port: s.port, ca: pki.root.cert, cert: client.cert, key: client.key }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1, tls_version: 1.2 } });
    await waitFor('the server to accept the client', () => s.peers.length === 1, 1_000);
    expect(s.peers).toEqual(['vigil-probe']);
    await waitFor('the probe to close its connection', () => s.open === 0, 1_000);
  });

  it('refuses at load half a pair, text that is not PEM, and a key of another certificate', () => {
    expect(problemsOf({ cert: client.cert })).toEqual([
      'key: cert is set without key: give both, the client certificate (PEM) and its key',
    ]);
    expect(problemsOf({ key: client.key })).toEqual(['cert: key is set without cert: give both, the client certificate (PEM) and its key']);
    expect(problemsOf({ cert: 'not a pem', key: client.key })).toEqual([
      'cert: expected PEM text of a certificate (-----BEGIN CERTIFICATE-----…)',
    ]);
    expect(problemsOf({ cert: client.cert, key: 'nope' })).toEqual([
      'key: expected PEM text of an unencrypted private key (-----BEGIN PRIVATE KEY-----…)',
    ]);
    expect(problemsOf({ cert: client.cert, key: client.otherKey })).toEqual(['key: this key does not belong to the certificate in cert']);
  });
});

describe('tls prober: STARTTLS', () => {
  async function smtp(options: Partial<SMTPServerOptions> = {}) {
    const smtpServer = new SMTPServer({ ...server, logger: false, authOptional: true, closeTimeout: 100, ...options });
    smtpServer.on('error', () => {});
    await new Promise<void>((resolve) => smtpServer.listen(0, '127.0.0.1', () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => smtpServer.close(() => resolve())));
    return (smtpServer.server.address() as AddressInfo).port;
  }

  it('smtp: reads the certificate of a real SMTP server (smtp-server) after EHLO and STARTTLS', async () => {
    const port = await smtp();
    const result = await tlsProber.probe(spec({ port, starttls: 'smtp', ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1, days_remaining: 89 }, details: { names: [NAME, '127.0.0.1'] } });
    expect(result.values.connect_ms).toBeGreaterThanOrEqual(0);
  });

  it('smtp: a server that does not offer STARTTLS fails with PROTOCOL, quoting its EHLO answer', async () => {
    const port = await smtp({ disabledCommands: ['STARTTLS'] });
    const result = await tlsProber.probe(spec({ port, starttls: 'smtp', ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'PROTOCOL' });
    expect(result.message).toMatch(
      new RegExp(`^SMTP STARTTLS with 127\\.0\\.0\\.1:${port} failed: the server does not offer STARTTLS \\(its EHLO answer: "250-`),
    );
  });

  it('imap: STARTTLS after the * OK greeting, untagged lines skipped', async () => {
    const seen: string[] = [];
    const s = await lineServer(
      '* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n',
      (line) => {
        seen.push(line);
        const tag = line.split(' ')[0];
        return line.endsWith('STARTTLS')
          ? { say: `* CAPABILITY IMAP4rev1\r\n${tag} OK Begin TLS negotiation now\r\n`, upgrade: true }
          : { say: `${tag} BAD\r\n` };
      },
      server,
    );
    const result = await tlsProber.probe(spec({ port: s.port, starttls: 'imap', ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1 } });
    expect(seen).toEqual(['v1 STARTTLS']);
    await waitFor('the probe to close its connection', () => s.open === 0, 1_000);
  });

  it('imap: a NO to STARTTLS fails with PROTOCOL quoting it', async () => {
    const s = await lineServer('* OK ready\r\n', (line) => ({ say: `${line.split(' ')[0]} NO STARTTLS disabled by policy\r\n` }), server);
    const result = await tlsProber.probe(spec({ port: s.port, starttls: 'imap', ca: pki.root.cert }), probeContext());
    expect(result).toEqual({
      ok: false,
      code: 'PROTOCOL',
      message: `IMAP STARTTLS with 127.0.0.1:${s.port} failed: expected "v1 OK" in answer to STARTTLS, the server said "v1 NO STARTTLS disabled by policy"`,
      values: expect.objectContaining({ connect_ms: expect.any(Number) }),
    });
  });

  it('pop3: STLS after the +OK greeting', async () => {
    const seen: string[] = [];
    const s = await lineServer(
      '+OK POP3 ready\r\n',
      (line) => {
        seen.push(line);
        return line === 'STLS' ? { say: '+OK Begin TLS\r\n', upgrade: true } : { say: '-ERR\r\n' };
      },
      server,
    );
    const result = await tlsProber.probe(spec({ port: s.port, starttls: 'pop3', ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1 } });
    expect(seen).toEqual(['STLS']);
  });

  it('ftp: AUTH TLS after a multi-line 220 greeting', async () => {
    const seen: string[] = [];
    const s = await lineServer(
      '220-Welcome to the vigil test FTP\r\n220-Be nice\r\n220 Ready\r\n',
      (line) => {
        seen.push(line);
        return line === 'AUTH TLS' ? { say: '234 AUTH TLS OK.\r\n', upgrade: true } : { say: '500 ?\r\n' };
      },
      server,
    );
    const result = await tlsProber.probe(spec({ port: s.port, starttls: 'ftp', ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1 } });
    expect(seen).toEqual(['AUTH TLS']);
  });

  it('a server speaking something else fails with PROTOCOL quoting what it said, cut short and with secrets hidden', async () => {
    const secret = 'hunter2-top-secret';
    const s = await lineServer(`HTTP/1.1 400 Bad Request ${secret} ${'x'.repeat(300)}\r\n`, () => ({}), server);
    const ctx = { ...probeContext(), redactor: { size: 1, text: (t: string) => t.replaceAll(secret, '<secret>'), value: <T>(v: T) => v } };
    const result = await tlsProber.probe(spec({ port: s.port, starttls: 'pop3', ca: pki.root.cert }), ctx);
    expect(result).toMatchObject({ ok: false, code: 'PROTOCOL' });
    expect(result.message).toBe(
      `POP3 STARTTLS with 127.0.0.1:${s.port} failed: expected a +OK greeting, the server said "HTTP/1.1 400 Bad Request <secret> ${'x'.repeat(120 - 44)}…"`,
    );
  });

  it('a server that hangs up mid-exchange fails with PROTOCOL; one that stops answering times out naming the exchange', async () => {
    const hangUp = await listen(net.createServer((socket) => socket.end('220 hello\r\n')));
    const closed = await tlsProber.probe(spec({ port: hangUp.port, starttls: 'smtp' }), probeContext());
    expect(closed).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      message: `SMTP STARTTLS with 127.0.0.1:${hangUp.port} failed: the server closed the connection during the SMTP STARTTLS exchange, after saying "220 hello"`,
    });

    const silent = await lineServer('220 hello\r\n', () => ({}), server);
    const stalled = await tlsProber.probe(spec({ port: silent.port, starttls: 'smtp' }), probeContext(300));
    expect(stalled).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(stalled.message).toMatch(
      new RegExp(`^timed out after \\d+ms in the SMTP STARTTLS exchange with 127\\.0\\.0\\.1:${silent.port}: `),
    );
    await waitFor('the probe to close its connection', () => silent.open === 0, 1_000);
  });

  it('refuses an unknown dialect at load', () => {
    expect(problemsOf({ starttls: 'xmpp' }).join()).toMatch(/^\/starttls: /);
  });
});

describe('tls prober: STARTTLS to PostgreSQL', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres({ ssl: server });
  }, 60_000);
  afterAll(() => pg?.stop());

  it('reads the certificate of a real PostgreSQL with ssl = on', async () => {
    const result = await tlsProber.probe(spec({ port: pg.port, starttls: 'postgres', ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { chain_valid: 1, days_remaining: 89 }, details: { names: [NAME, '127.0.0.1'] } });
    // The server got a handshake, not a half-spoken startup packet: it logs nothing worse than a hangup.
    expect(await pg.query('select 1')).toBe('1');
  });

  it('fails with PROTOCOL when the server answers N (ssl = off)', async () => {
    const s = await listen(
      net.createServer((socket) => {
        socket.once('data', () => socket.write('N'));
        socket.on('error', () => {});
      }),
    );
    const result = await tlsProber.probe(spec({ port: s.port, starttls: 'postgres' }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'PROTOCOL',
      message: `PostgreSQL STARTTLS with 127.0.0.1:${s.port} failed: the server refused SSL (answered N to SSLRequest: is ssl = on?)`,
    });
  });
});
