import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { tcp } from '../../src/probers/tcp.js';
import { createPki, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type TcpDefinition = Parameters<typeof tcp.probe>[0];
const schema = definitionSchema(tcp.schema as unknown as TObject);

/** The loader's verdict on a definition: schema errors, else the prober's own check. */
function problemsOf(fields: Record<string, unknown>): string[] {
  const def = Value.Default(schema, { id: 'tcp-test', kind: 'tcp', schedule: '* * * * *', host: '127.0.0.1', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return errors;
  return (tcp.check?.(def as never) ?? []).map((p) => `${p.path}: ${p.message}`);
}

function spec(fields: Record<string, unknown>): TcpDefinition {
  const problems = problemsOf(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return Value.Default(schema, {
    id: 'tcp-test',
    kind: 'tcp',
    schedule: '* * * * *',
    host: '127.0.0.1',
    ...structuredClone(fields),
  }) as TcpDefinition;
}

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A loopback server; `received` is everything clients sent, `open` the sockets it still holds. */
async function serve(onConnection: (socket: Socket) => void, server: net.Server = net.createServer()) {
  const sockets = new Set<Socket>();
  let received = '';
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => onConnection(s));
  if (!(server instanceof tls.Server)) server.on('connection', (s: Socket) => onConnection(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const handle = {
    port: (server.address() as AddressInfo).port,
    get open() {
      return sockets.size;
    },
    get received() {
      return received;
    },
    note(text: string) {
      received += text;
    },
  };
  return handle;
}

/** A Redis stand-in that speaks the inline protocol: PING → +PONG, anything else an error echoing it. */
async function redis(needsAuth = false) {
  const server = await serve((socket) => {
    socket.on('data', (chunk) => {
      server.note(chunk.toString('latin1'));
      for (const line of chunk.toString('latin1').split('\r\n').filter(Boolean)) {
        if (needsAuth) socket.write('-NOAUTH Authentication required.\r\n');
        else socket.write(line === 'PING' ? '+PONG\r\n' : `-ERR unknown command '${line}'\r\n`);
      }
    });
  });
  return server;
}

let pki: TestPki;
beforeAll(() => {
  pki = createPki('Vigil TCP Test');
});
afterAll(() => pki?.dispose());

describe('tcp prober: conversations', () => {
  it('Redis: PING answered +PONG passes, with connect and total times, sending exactly PING\\r\\n', async () => {
    const server = await redis();
    const s = spec({ port: server.port, steps: [{ send: 'PING' }, { expect: '^\\+PONG$' }] });
    const result = await tcp.probe(s, probeContext());
    expect(result).toMatchObject({ ok: true, values: { ip_protocol: 4 } });
    expect(Object.keys(result.values).sort()).toEqual([...tcp.values(s)].sort());
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(result.values.connect_ms ?? Number.NaN);
    expect(server.received).toBe('PING\r\n');
    await waitFor('the probe to close its connection', () => server.open === 0, 1_000);
  });

  it('fails ASSERTION naming the regex and the last line when no line matches before the server hangs up', async () => {
    const server = await serve((socket) => {
      socket.once('data', () => socket.end('-NOAUTH Authentication required.\r\n'));
    });
    const result = await tcp.probe(spec({ port: server.port, steps: [{ send: 'PING' }, { expect: '^\\+PONG$' }] }), probeContext());
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `steps[1]: no line from 127.0.0.1:${server.port} matched /^\\+PONG$/ before the server closed the connection (last line "-NOAUTH Authentication required.")`,
    });
  });

  it('fails ASSERTION at the deadline against a server that never answers, and closes the socket', async () => {
    const server = await serve(() => {});
    const started = Date.now();
    const result = await tcp.probe(spec({ port: server.port, steps: [{ expect: '^220' }] }), probeContext(400));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(result).toMatchObject({
      ok: false,
      code: 'ASSERTION',
      message: `steps[0]: no line from 127.0.0.1:${server.port} matched /^220/ before the run ended (nothing was received)`,
    });
    await waitFor('the probe to close its connection', () => server.open === 0, 1_000);
  });

  it('cuts long lines and stops reading a server that floods after 1000 lines, quoting the last one cut short', async () => {
    const server = await serve((socket) => {
      const chunk = 'x'.repeat(65_536);
      const flood = () => {
        while (!socket.destroyed && socket.write(chunk));
        if (!socket.destroyed) socket.once('drain', flood);
      };
      flood();
    });
    const result = await tcp.probe(spec({ port: server.port, steps: [{ expect: '^never$' }] }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(result.message).toMatch(/^steps\[0\]: none of 1000 lines from 127\.0\.0\.1:\d+ matched \/\^never\$\/ \(last line "x{120}…"\)$/);
    await waitFor('the probe to close its connection', () => server.open === 0, 1_000);
  });

  it('reads the banner of a real SMTP server, upgrades with STARTTLS mid-conversation and reports the certificate', async () => {
    const leaf = pki.leaf({ cn: 'mail.vigil.test', san: ['DNS:mail.vigil.test'] });
    const smtp = new SMTPServer({ ...leaf, logger: false, authOptional: true, closeTimeout: 100 });
    smtp.on('error', () => {});
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    cleanup.push(() => new Promise<void>((resolve) => smtp.close(() => resolve())));
    const port = (smtp.server.address() as AddressInfo).port;
    const steps = [
      { expect: '^220 ' },
      { send: 'EHLO vigil.test' },
      // smtp-server lists STARTTLS last: the line that ends the EHLO answer.
      { expect: '^250[- ]STARTTLS' },
      { send: 'STARTTLS' },
      { expect: '^220' },
      { starttls: true },
      { send: 'EHLO vigil.test' },
      { expect: '^250 ' },
      { send: 'QUIT' },
    ];
    const result = await tcp.probe(spec({ port, servername: 'mail.vigil.test', ca: pki.root.cert, steps }), probeContext());
    expect(result, result.message).toMatchObject({ ok: true, values: { tls_days_remaining: 89, tls_version: 1.3 } });
  });

  it('tls: true checks trust unless insecure, reporting the days left either way', async () => {
    const leaf = pki.selfSigned({ cn: 'redis.vigil.test' });
    const server = await serve(
      (socket) => socket.on('data', (c) => socket.write(c.toString() === 'PING\r\n' ? '+PONG\r\n' : '-ERR\r\n')),
      tls.createServer({ ...leaf }),
    );
    const steps = [{ send: 'PING' }, { expect: '^\\+PONG' }];
    const untrusted = await tcp.probe(spec({ port: server.port, tls: true, servername: 'redis.vigil.test', steps }), probeContext());
    expect(untrusted).toMatchObject({ ok: false, code: 'TLS', values: { tls_days_remaining: 89 } });
    expect(untrusted.message).toBe(
      `the certificate of 127.0.0.1:${server.port} is not trusted for redis.vigil.test: DEPTH_ZERO_SELF_SIGNED_CERT (add its CA with ca:, set servername:, or insecure: true)`,
    );
    const insecure = await tcp.probe(spec({ port: server.port, tls: true, insecure: true, steps }), probeContext());
    expect(insecure).toMatchObject({ ok: true, values: { tls_days_remaining: 89 } });
    const trusted = await tcp.probe(
      spec({ port: server.port, tls: true, servername: 'redis.vigil.test', ca: leaf.cert, steps }),
      probeContext(),
    );
    expect(trusted).toMatchObject({ ok: true });
    const wrongName = await tcp.probe(
      spec({ port: server.port, tls: true, servername: 'cache.vigil.test', ca: leaf.cert, steps }),
      probeContext(),
    );
    expect(wrongName).toMatchObject({
      ok: false,
      code: 'TLS',
      message: expect.stringContaining('is not trusted for cache.vigil.test: ERR_TLS_CERT_ALTNAME_INVALID'),
    });
  });

  it('tls: true fails TLS, not TIMEOUT, against a port that hangs up or answers in plain text', async () => {
    const hangsUp = await serve((socket) => socket.destroy());
    const closed = await tcp.probe(spec({ port: hangsUp.port, tls: true }), probeContext(2_000));
    expect(closed).toMatchObject({
      ok: false,
      code: 'TLS',
      message: expect.stringMatching(new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${hangsUp.port} failed: `)),
    });
    const plain = await serve((socket) => socket.end('+OK plain text here\r\n'));
    const garbled = await tcp.probe(spec({ port: plain.port, tls: true }), probeContext(2_000));
    expect(garbled).toMatchObject({ ok: false, code: 'TLS' });
  });

  it('fails CONNECT on a closed port, and DNS naming ipProtocol when the name has no address of that family', async () => {
    const port = await closedPort();
    const refused = await tcp.probe(spec({ port }), probeContext());
    expect(refused).toMatchObject({
      ok: false,
      code: 'CONNECT',
      message: `cannot connect to 127.0.0.1:${port}: connection refused (ECONNREFUSED)`,
    });
    const noV6 = await tcp.probe(spec({ host: 'localhost', port, ipProtocol: 'ip6' }), probeContext());
    expect(noV6).toMatchObject({ ok: false, code: 'DNS' });
    expect(noV6.message).toMatch(/^DNS lookup of localhost failed: \w+ \(looked for IPv6 addresses only: ipProtocol ip6\)$/);
  });
});

describe('tcp prober: refused (the firewall check)', () => {
  it('passes a refused connection', async () => {
    const port = await closedPort();
    const result = await tcp.probe(spec({ port, refused: true }), probeContext());
    expect(result).toMatchObject({ ok: true, details: { outcome: 'refused', error: 'ECONNREFUSED' } });
    expect(Object.keys(result.values)).toEqual(['latency_ms']);
  });

  it('fails REACHABLE when the port is open, and leaves no connection behind', async () => {
    const server = await serve(() => {});
    const result = await tcp.probe(spec({ port: server.port, refused: true }), probeContext());
    expect(result).toMatchObject({ ok: false, code: 'REACHABLE' });
    expect(result.message).toMatch(
      new RegExp(`^connected to 127\\.0\\.0\\.1:${server.port} in \\d+ms: port open: the firewall lets it through`),
    );
    await waitFor('the probe to close its connection', () => server.open === 0, 1_000);
  });

  describe('a port whose SYNs go unanswered', () => {
    // A listener that never accepts, its one-slot queue filled: Linux then drops further SYNs, as a
    // filtering firewall does. Node always accepts, so the listener is a small Python process.
    let child: ChildProcess;
    let port: number;
    const fillers: Socket[] = [];
    beforeAll(async () => {
      child = spawn('python3', [
        '-c',
        'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)',
      ]);
      const [line] = (await once(child.stdout!, 'data')) as [Buffer];
      port = Number(line.toString().trim());
      // Fill the one-slot accept queue: the next connection's SYNs are dropped and it waits in vain.
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      fillers.push(s);
      await once(s, 'connect');
    });
    afterAll(() => {
      for (const s of fillers) s.destroy();
      child?.kill();
    });

    it('passes when the connect times out, before the run does', async () => {
      // A 3 s run gives the connect 2.4 s: the 0.6 s between them is what keeps a loaded machine from
      // turning the pass into the run's own TIMEOUT.
      const started = Date.now();
      const result = await tcp.probe(spec({ port, refused: true }), probeContext(3_000));
      const took = Date.now() - started;
      expect(result).toMatchObject({ ok: true, details: { outcome: 'timeout' } });
      expect(took).toBeGreaterThanOrEqual(2_300);
      expect(took).toBeLessThan(3_000);
    });

    it('the same port fails TIMEOUT in an ordinary connect', async () => {
      const result = await tcp.probe(spec({ port }), probeContext(500));
      expect(result).toMatchObject({
        ok: false,
        code: 'TIMEOUT',
        message: expect.stringMatching(/^timed out after \d+ms connecting to 127\.0\.0\.1:/),
      });
    });
  });
});

describe('tcp prober: definitions', () => {
  it('refuses at load what cannot work, naming the step', () => {
    expect(problemsOf({ port: 6379, steps: [{ expect: '(' }] })).toEqual([
      'steps[0].expect: expected a regular expression; Invalid regular expression: /(/: Unterminated group',
    ]);
    expect(problemsOf({ port: 22, refused: true, steps: [{ send: 'x' }] })).toEqual([
      'refused: a refused check only connects: it takes no tls or steps',
    ]);
    expect(problemsOf({ port: 25, tls: true, steps: [{ starttls: true }] })).toEqual([
      'steps[0].starttls: the connection is already TLS (tls: true): drop one of them',
    ]);
    expect(problemsOf({ port: 25, steps: [{ starttls: true }, { starttls: true }] })).toEqual([
      'steps[1].starttls: the connection can switch to TLS once',
    ]);
    expect(problemsOf({ port: 25, steps: [{ send: 'HELO $1' }] })).toEqual([
      'steps[0].send: refers to a group ($1, $<name>) before any expect step matched one (write $$ for a literal $)',
    ]);
    expect(problemsOf({ port: 25, steps: [{ send: 'costs $$1' }] })).toEqual([]);
    expect(problemsOf({ port: 25, steps: [{ sned: 'x' }] }).length).toBeGreaterThan(0);
    expect(problemsOf({ port: 25, ipProtocol: 'ipx' }).length).toBeGreaterThan(0);
    expect(problemsOf({ port: 25, cert: pki.root.cert })).toEqual([
      'key: cert is set without key: give both, the client certificate (PEM) and its key',
    ]);
  });

  it('ships example definitions that validate offline (SMTP banner, Redis PING, STARTTLS, a firewall check)', () => {
    const defs = parse(readFileSync('probes/examples/tcp.yaml', 'utf8')) as Array<Record<string, unknown>>;
    for (const raw of defs) expect(problemsOf(raw), String(raw.id)).toEqual([]);
    expect(defs.map((d) => d.id)).toEqual(['smtp-banner', 'cache-ping', 'smtp-submission-starttls', 'db-ssh-closed']);
    expect(defs).toContainEqual(expect.objectContaining({ id: 'db-ssh-closed', refused: true, port: 22 }));
  });
});
