/**
 * blackbox_exporter's prober/tcp_test.go, scenario by scenario: the same situation against a real
 * listener on loopback, the same verdict, in vigil's config and words. Each test is named after its
 * Go test. What does not map (Prometheus registry details, label templates) is said where it falls.
 */
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { definitionSchema } from '../../src/config/schema.js';
import { tcp } from '../../src/probers/tcp.js';
import { createPki, daysFromNow, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { closedPort } from '../helpers/servers.js';

type TcpDefinition = Parameters<typeof tcp.probe>[0];
const schema = definitionSchema(tcp.schema as unknown as TObject);
const HOUR = 3_600_000;

function spec(fields: Record<string, unknown>): TcpDefinition {
  const def = Value.Default(schema, { id: 'bbx', kind: 'tcp', schedule: '* * * * *', host: 'localhost', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  const problems = tcp.check?.(def as never) ?? [];
  if (errors.length + problems.length > 0) throw new Error(`invalid test definition: ${JSON.stringify([...errors, ...problems])}`);
  return def as TcpDefinition;
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

/** A listener (Go's `net.Listen` plus an accept goroutine): `onConnection` is the goroutine's body. */
async function listen(onConnection: (socket: Socket) => void, host = '127.0.0.1', server: net.Server = net.createServer()) {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  server.on(server instanceof tls.Server ? 'secureConnection' : 'connection', onConnection);
  server.listen(0, host);
  await once(server, 'listening');
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** Lines a server received, for the dialogues that check what the prober sent. */
function lines(socket: Socket, onLine: (line: string) => void) {
  let buffer = '';
  socket.on('data', (chunk) => {
    buffer += chunk.toString('latin1');
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      onLine(line);
    }
  });
}

let pki: TestPki;
beforeAll(() => {
  pki = createPki('Vigil BBX TCP');
});
afterAll(() => pki?.dispose());

describe('blackbox_exporter tcp_test.go', () => {
  it('bbx TestTCPConnection: a listener that accepts and closes passes a connect-only probe', async () => {
    let accepted = 0;
    const port = await listen((socket) => {
      accepted++;
      socket.end();
    });
    const result = await tcp.probe(spec({ port }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { ip_protocol: 4 } });
    expect(accepted).toBe(1);
  });

  it('bbx TestTCPConnectionFails: nothing listening fails the run', async () => {
    const port = await closedPort();
    const result = await tcp.probe(spec({ port }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'CONNECT' });
  });

  it('bbx TestTCPConnectionWithTLS: TLS 1.2 to a server whose certificate is the trusted root, with and without servername', async () => {
    // Go's test serves its self-signed root, expiring in a day, and only TLS 1.2; it greets with "Hello World!".
    const root = pki.selfSigned({ cn: 'localhost', notAfter: new Date(Date.now() + 1.5 * 86_400_000) });
    const port = await listen(
      (socket) => socket.end('Hello World!\n'),
      '127.0.0.1',
      tls.createServer({ ...root, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
    );
    for (const servername of [undefined, 'localhost']) {
      const result = await tcp.probe(
        spec({
          port,
          ipProtocol: 'ip4',
          tls: true,
          ca: root.cert,
          ...(servername ? { servername } : {}),
          steps: [{ expect: '^Hello World!$' }],
        }),
        probeContext(),
      );
      // probe_tls_version_info{version="TLS 1.2"} and probe_ssl_earliest_cert_expiry: the version and the days left.
      expect(result, servername).toMatchObject({ ok: true, values: { tls_version: 1.2, tls_days_remaining: 1 } });
    }
  });

  it('bbx TestTCPConnectionWithTLSAndVerifiedCertificateChain: the earliest expiry anywhere in a verified chain is what counts', async () => {
    // Go's chain: a leaf (2 days) from an older root (1 day) cross-signed by a newer one (3 days). The
    // test PKI cannot issue two roots with one key; an intermediate that expires first stands in for the older root.
    const issuing = pki.intermediate('BBX Issuing CA', { notAfter: new Date(Date.now() + 3 * 86_400_000 + HOUR) });
    const leaf = pki.leaf({ cn: 'localhost', notAfter: daysFromNow(5) }, issuing);
    const port = await listen((socket) => socket.end('Hello World!\n'), '127.0.0.1', tls.createServer({ ...leaf, maxVersion: 'TLSv1.2' }));
    const result = await tcp.probe(spec({ port, tls: true, ca: pki.root.cert }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { tls_days_remaining: 3, tls_version: 1.2 } });
  });

  it('bbx TestTCPConnectionQueryResponseStartTLS: the SMTP dialogue, STARTTLS, then EHLO over TLS', async () => {
    const cert = pki.selfSigned({ cn: 'localhost', notAfter: new Date(Date.now() + 1.5 * 86_400_000) });
    const heard: string[] = [];
    const port = await listen((socket) => {
      socket.write('220 ESMTP StartTLS pseudo-server\n');
      const plain = (line: string) => {
        heard.push(line);
        if (line === 'EHLO tls.prober') socket.write('250-pseudo-server.example.net\n250-STARTTLS\n250 DSN\n');
        if (line === 'STARTTLS') {
          socket.removeAllListeners('data');
          socket.write('220 2.0.0 Ready to start TLS\n');
          const secure = new tls.TLSSocket(socket, { isServer: true, ...cert });
          secure.on('error', () => {});
          lines(secure, (l) => {
            heard.push(`tls: ${l}`);
            if (l.startsWith('EHLO')) secure.write('250-AUTH\n250 DSN\n');
          });
        }
      };
      lines(socket, plain);
    });
    const steps = [
      { expect: '^220.*ESMTP.*$' },
      { send: 'EHLO tls.prober' },
      { expect: '^250-STARTTLS' },
      { send: 'STARTTLS' },
      { expect: '^220' },
      { starttls: true },
      { send: 'EHLO tls.prober' },
      { expect: '^250-AUTH' },
      { send: 'QUIT' },
    ];
    const result = await tcp.probe(spec({ port, ca: cert.cert, steps }), probeContext());
    expect(result).toMatchObject({ ok: true, values: { tls_days_remaining: 1 } });
    expect(heard.slice(0, 3)).toEqual(['EHLO tls.prober', 'STARTTLS', 'tls: EHLO tls.prober']);
  });

  it('bbx TestTCPConnectionQueryResponseIRC: a welcome (001) passes, a ban message fails on the regex', async () => {
    const steps = [{ send: 'NICK prober' }, { send: 'USER prober prober prober :prober' }, { expect: '^:[^ ]+ 001' }];
    let answer = (nick: string) => `:ircd.localhost 001 ${nick} :Welcome to IRC!\n`;
    const port = await listen((socket) => {
      socket.write(':ircd.localhost NOTICE AUTH :*** Looking up your hostname...\n');
      let nick = '';
      lines(socket, (line) => {
        if (line.startsWith('NICK ')) nick = line.slice(5);
        if (line.startsWith('USER ')) socket.end(answer(nick));
      });
    });
    expect(await tcp.probe(spec({ port, steps }), probeContext())).toMatchObject({ ok: true });

    answer = () => 'ERROR: Your IP address has been blacklisted.\n';
    const banned = await tcp.probe(spec({ port, steps }), probeContext());
    // probe_failed_due_to_regex 1: vigil's ASSERTION, naming the regex and what was said.
    expect(banned).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `steps[2]: no line from localhost:${port} matched /^:[^ ]+ 001/ before the server closed the connection (last line "ERROR: Your IP address has been blacklisted.")`,
    });
  });

  it('bbx TestTCPConnectionQueryResponseMatching: a group of the expect fills the next send', async () => {
    let confirmed: string | undefined;
    const port = await listen((socket) => {
      socket.write('SSH-2.0-OpenSSH_6.9p1 Debian-2\n');
      lines(socket, (line) => {
        confirmed = /^CONFIRM (\S+)$/.exec(line)?.[1];
        socket.end();
      });
    });
    // Go writes `Send: "CONFIRM ${1}"` and labels from ${1}/${2}; in vigil's YAML ${…} is a secret
    // reference, so groups are $1, and they come back as details.captures instead of labels.
    const result = await tcp.probe(
      spec({ port, steps: [{ expect: '^SSH-2.0-([^ -]+)(?: (.*))?$' }, { send: 'CONFIRM $1' }] }),
      probeContext(),
    );
    expect(result).toMatchObject({ ok: true, details: { captures: ['OpenSSH_6.9p1', 'Debian-2'] } });
    await expect.poll(() => confirmed).toBe('OpenSSH_6.9p1');
  });

  it('bbx TestTCPConnectionQueryResponseByteMode: bytes without a newline, then a close, still match', async () => {
    // expect_bytes has no field of its own: the last unterminated line is matched when the server closes.
    const port = await listen((socket) => socket.end('not-a-line'));
    const result = await tcp.probe(spec({ port, steps: [{ expect: '^not-a-line$' }] }), probeContext());
    expect(result).toMatchObject({ ok: true });
  });

  it('bbx TestTCPConnectionQueryResponseByteModeFail: other bytes fail on the expectation', async () => {
    const port = await listen((socket) => socket.end('something-else'));
    const result = await tcp.probe(spec({ port, steps: [{ expect: '^not-a-line$' }] }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION', message: expect.stringContaining('(last line "something-else")') });
  });

  it('bbx TestTCPConnectionProtocol: ip4 and ip6 to a dual-stack listener, ip_protocol says which', async () => {
    const port = await listen((socket) => socket.end(), '::');
    const v4 = await tcp.probe(spec({ host: 'localhost', port, ipProtocol: 'ip4' }), probeContext());
    expect(v4).toMatchObject({ ok: true, values: { ip_protocol: 4 } });
    // "localhost" has no ::1 in every container (Go skips the test then); the IPv6 loopback by address does.
    const v6 = await tcp.probe(spec({ host: '::1', port, ipProtocol: 'ip6' }), probeContext());
    expect(v6).toMatchObject({ ok: true, values: { ip_protocol: 6 } });
    const auto = await tcp.probe(spec({ host: '::1', port }), probeContext());
    expect(auto).toMatchObject({ ok: true, values: { ip_protocol: 6 } });
  });

  it('bbx TestPrometheusTimeoutTCP: a server that closes before the expected banner fails the run', async () => {
    const port = await listen((socket) => socket.end());
    const result = await tcp.probe(spec({ port, steps: [{ expect: 'SSH-2.0-(OpenSSH_6.9p1) Debian-2' }] }), probeContext(2_000));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION', message: expect.stringContaining('(nothing was received)') });
  });

  it('bbx TestProbeExpectInfo: the groups of a matching line are kept with the run', async () => {
    // probe_expect_info's label templates ("got ${1} here") have no vigil equivalent: values are
    // numbers and labels are static, so the groups are kept as they are in details.captures.
    const port = await listen((socket) => socket.end('SSH-2.0-OpenSSH_6.9p1 Debian-2'));
    const result = await tcp.probe(spec({ port, steps: [{ expect: '^SSH-2.0-(?<version>[^ -]+)(?: (.*))?$' }] }), probeContext());
    expect(result).toMatchObject({ ok: true, details: { captures: ['OpenSSH_6.9p1', 'Debian-2', { version: 'OpenSSH_6.9p1' }] } });
  });
});
