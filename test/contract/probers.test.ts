/**
 * The prober contract, run over EVERY registered kind: a new entry in src/probers/index.ts fails
 * here until it brings a fixture, so no kind joins without proving the shared promises: a bad spec is
 * rejected at load naming its path, the deadline is honoured against a target that hangs, nothing is
 * left open after the abort, the record has the shape the store expects, and the spec's secret never
 * reaches it. A case that cannot apply to a kind is skipped with the fixture's reason, never passed.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { stringify } from 'yaml';
import { ConfigError, createSecretBook, type LoadedConfig, loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { noRedaction, type Redactor } from '../../src/lib/redactor.js';
import { channelKinds } from '../../src/notify/index.js';
import {
  type AnyProber,
  emptyChecklist,
  type ProbeDefinition,
  type ProbeKind,
  type ProbeResult,
  probers,
} from '../../src/probers/index.js';
import { CHECKLIST } from '../../src/report/index.js';
import { runProbe, Shutdown } from '../../src/scheduler/index.js';
import type { RunRecord } from '../../src/store/index.js';
import { memoryLogger, memoryState } from '../helpers/context.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startHealthServer } from '../helpers/grpc-health.js';
import { SAMPLE_TARGETS } from '../helpers/report-sample.js';
import { startHttp, startRaw, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE_K6 = path.resolve(here, '../helpers/fake-k6.mjs');

/** Every run gets this timeout: long enough to connect on loopback, short enough to keep the suite fast. */
const TIMEOUT_MS = 800;
/** What a loaded machine may add on top of the timeout and the kind's abort grace. */
const SLACK_MS = 1_500;
/** The secret planted in each fixture's spec, through `${CONTRACT_SECRET}` as a user would. */
const SECRET = 'Pl4nted-Contract-S3cret-7731';

/** A case that does not apply to a kind, and why. */
interface Skip {
  skip: string;
}

/** A target that accepts and never answers, and the definition fields that point a probe at it. */
interface HangingPeer {
  /** Kind-specific definition fields (may reference `${CONTRACT_SECRET}`). */
  fields: Record<string, unknown>;
  /** Connections the peer still holds open (what it sees of the probe's cleanup); null when it cannot tell (UDP). */
  open(): number | null;
  close(): Promise<void>;
}

interface KindFixture {
  /** Starts the hanging peer. `dir` is the workspace (probes/ inside it) for kinds that need files. */
  hang(dir: string): Promise<HangingPeer>;
  /**
   * A peer that fails a run at once, for the cases any failed run serves (shape, redaction) when a
   * hung run takes long to wind down (a drill drops its scratch database for up to 30 s).
   */
  fastFail?(dir: string): Promise<HangingPeer>;
  /** A definition field set wrong, and the path the load error must name. */
  bad: { fields: Record<string, unknown>; path: string };
  /**
   * A peer whose answer carries the spec's secret back (an error page echoing the request), so the
   * redaction case can fail; `true` when the hanging peer's run already does. Else why it cannot.
   */
  echoesSecret: true | ((dir: string) => Promise<HangingPeer>) | Skip;
}

/** A TCP peer that accepts and never says a word; counts the connections it still holds. */
async function silentTcp(): Promise<TestServer & { live: Set<Socket> }> {
  const live = new Set<Socket>();
  const server = await startRaw((socket) => {
    live.add(socket);
    // Read and drop what the probe sends: a paused socket would never notice the probe hanging up.
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => live.delete(socket));
  });
  return Object.assign(server, { live });
}

async function tcpPeer(fields: (port: number) => Record<string, unknown>): Promise<HangingPeer> {
  const server = await silentTcp();
  return { fields: fields(server.port), open: () => server.live.size, close: () => server.close() };
}

/** One fixture per registered kind: the type makes a kind without one fail to compile. */
const fixtures: Record<ProbeKind, KindFixture> = {
  http: {
    hang: () =>
      tcpPeer((port) => ({
        url: `http://probe:\${CONTRACT_SECRET}@127.0.0.1:${port}/health?token=\${CONTRACT_SECRET}`,
        headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
      })),
    bad: { fields: { url: 'ftp://127.0.0.1/health' }, path: 'url' },
    async echoesSecret() {
      // An answer that echoes the request's credentials, failing the body check, which quotes the body.
      const server = await startHttp((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`you sent ${req.headers.authorization} for ${req.url}`);
      });
      return {
        fields: {
          url: `${server.url}/health?token=\${CONTRACT_SECRET}`,
          headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
          expect: { bodyContains: 'welcome' },
        },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  tls: {
    hang: () => tcpPeer((port) => ({ host: '127.0.0.1', port })),
    bad: { fields: { host: '127.0.0.1', port: 70_000 }, path: 'port' },
    echoesSecret: {
      skip: 'its one credential, a client key, proves itself by signature and never crosses the wire: no peer can echo it back',
    },
  },
  tcp: {
    hang: () => tcpPeer((port) => ({ host: '127.0.0.1', port, steps: [{ send: 'AUTH ${CONTRACT_SECRET}' }, { expect: '^\\+OK' }] })),
    bad: { fields: { host: '127.0.0.1', port: 6379, steps: [{ expect: '(' }] }, path: 'steps[0].expect' },
    async echoesSecret() {
      // A server that repeats the command it refuses: the failed expect quotes its last line.
      const server = await startRaw((socket) => {
        socket.on('error', () => {});
        socket.on('data', (chunk) => socket.write(`-ERR unknown command '${chunk.toString().trim()}'\r\n`));
      });
      return {
        fields: { host: '127.0.0.1', port: server.port, steps: [{ send: 'AUTH ${CONTRACT_SECRET}' }, { expect: '^\\+OK' }] },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  dns: {
    async hang() {
      const server = await startDnsServer();
      server.mode = 'silent';
      return {
        fields: {
          name: 'api.example.test',
          type: 'A',
          expect: ['${CONTRACT_SECRET_IP}'],
          resolvers: [`127.0.0.1:${server.port}`],
          resolverTimeout: '600ms',
        },
        // UDP has no connection for the peer to see closed; the resource check below covers the socket.
        open: () => null,
        close: () => server.close(),
      };
    },
    bad: { fields: { name: 'api.example.test', type: 'SPF', expect: ['10.0.0.1'] }, path: 'type' },
    async echoesSecret() {
      // A resolver with another answer: the failure names what was expected, the secret address.
      const server = await startDnsServer({ zone: { 'api.example.test': [{ type: 'A', value: '10.0.0.1' }] } });
      return {
        fields: {
          name: 'api.example.test',
          type: 'A',
          expect: ['${CONTRACT_SECRET_IP}'],
          resolvers: [server.address],
          resolverTimeout: '600ms',
        },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  'log-ingestion': {
    hang: () =>
      tcpPeer((port) => ({
        backend: 'loki',
        url: `http://127.0.0.1:${port}`,
        headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
        maxLatency: '1s',
        grace: '0s',
      })),
    bad: { fields: { backend: 'splunk', url: 'http://127.0.0.1:1' }, path: 'backend' },
    echoesSecret: { skip: 'a write that never gets an answer leaves nothing of the request in the result to redact' },
  },
  'log-query': {
    hang: () =>
      tcpPeer((port) => ({
        backend: 'loki',
        url: `http://127.0.0.1:${port}`,
        headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
        query: '{app="api"} |= "password="',
        window: '15m',
        expect: { max: 0 },
      })),
    bad: {
      fields: { backend: 'loki', url: 'http://127.0.0.1:1', query: '{app="api"}', window: '15m', expect: { most: 0 } },
      path: 'expect.most',
    },
    async echoesSecret() {
      // A store that rejects the search quoting the credentials it got: the failure quotes the answer.
      const server = await startHttp((req, res) => {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`bad key ${req.headers.authorization}`);
      });
      return {
        fields: {
          backend: 'http',
          headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
          search: { url: `${server.url}/count?from={{from}}`, count: 'total' },
          window: '15m',
          expect: { max: 0 },
        },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  'restore-drill': {
    async hang(dir) {
      // A plain dump restored into a "server" that accepts and never answers: psql/createdb hang on it.
      const backups = path.join(dir, 'backups');
      mkdirSync(backups, { recursive: true });
      await writeFile(path.join(backups, 'db.sql'), 'select 1;\n-- PostgreSQL database dump complete\n');
      return tcpPeer((port) => ({
        source: { type: 'postgres', dir: backups, checksum: 'off' },
        target: { url: `postgres://drill:\${CONTRACT_SECRET}@127.0.0.1:${port}/postgres?connect_timeout=30` },
      }));
    },
    async fastFail(dir) {
      // Connections cut at once: every tool fails fast, and so does the drop afterwards.
      const server = await startRaw((socket) => socket.destroy());
      return {
        fields: {
          source: { type: 'postgres', dir: path.join(dir, 'backups'), checksum: 'off' },
          target: { url: `postgres://drill:\${CONTRACT_SECRET}@127.0.0.1:${server.port}/postgres` },
        },
        open: () => null,
        close: () => server.close(),
      };
    },
    bad: { fields: { source: { type: 'mysql', dir: '/tmp' } }, path: 'source.type' },
    echoesSecret: {
      skip: 'the drill hands the password to its tools in PGPASSWORD and reports only their errors, which never quote it',
    },
  },
  icmp: {
    // A TEST-NET-2 address: routed nowhere, so the request goes unanswered (192.0.2.1 is a gateway on some CI hosts).
    hang: async () => ({
      fields: { host: '198.51.100.1', count: 1, replyTimeout: '700ms' },
      open: () => null,
      close: async () => {},
    }),
    bad: { fields: { host: '198.51.100.1', count: 0 }, path: 'count' },
    echoesSecret: { skip: 'an icmp definition has no field that holds a credential: nothing secret to plant' },
  },
  push: {
    // Nothing to reach: a run only reads vigil's inbox, and without one (as here) it fails at once, saying so.
    hang: async () => ({ fields: { token: '${CONTRACT_SECRET}', period: '1h' }, open: () => null, close: async () => {} }),
    bad: { fields: { token: '${CONTRACT_SECRET}', period: 'daily' }, path: 'period' },
    echoesSecret: {
      skip: 'a push run is made from the pings in its inbox; the token is only ever compared against, never put in a result',
    },
  },
  k6: {
    async hang(dir) {
      await chmod(FAKE_K6, 0o755);
      await writeFile(path.join(dir, 'probes', 'hang.js'), '// FAKE_K6_MODE=hang\nexport default function () {}\n');
      return {
        fields: { script: 'hang.js', binary: FAKE_K6, stopGrace: '1s', env: { TOKEN: '${CONTRACT_SECRET}' } },
        open: () => null,
        close: async () => {},
      };
    },
    bad: { fields: { script: 'hang.js', stopGrace: 'soon' }, path: 'stopGrace' },
    echoesSecret: { skip: 'k6 receives the secret in its environment and a hung run prints nothing back' },
  },
  browser: {
    async hang(dir) {
      // The browser navigates to a peer that accepts and never answers; the deadline kills its group.
      const server = await silentTcp();
      await writeFile(
        path.join(dir, 'probes', 'hang.mjs'),
        'export default async (page, ctx) => { await page.goto(ctx.env.URL, { timeout: 0 }); };\n',
      );
      return {
        fields: { script: 'hang.mjs', env: { URL: `http://127.0.0.1:${server.port}/`, TOKEN: '${CONTRACT_SECRET}' } },
        open: () => server.live.size,
        close: () => server.close(),
      };
    },
    async fastFail(dir) {
      // No default export: refused before a browser starts.
      await writeFile(path.join(dir, 'probes', 'empty.mjs'), 'export const nothing = 1;\n');
      return { fields: { script: 'empty.mjs', env: { TOKEN: '${CONTRACT_SECRET}' } }, open: () => null, close: async () => {} };
    },
    bad: { fields: { script: 'hang.mjs', expect: { maxConsoleErrors: -1 } }, path: 'expect.maxConsoleErrors' },
    echoesSecret: {
      skip: "a script sees the secret only once Chromium is up (about a second, past this suite's 800 ms timeout); test/probers/browser.test.ts types a planted secret into a page and finds it in no record, log or trace",
    },
  },
  grpc: {
    hang: () => tcpPeer((port) => ({ target: `127.0.0.1:${port}`, metadata: { authorization: 'Bearer ${CONTRACT_SECRET}' } })),
    bad: { fields: { target: '127.0.0.1:1', expect: { status: 'UP' } }, path: 'expect.status' },
    async echoesSecret() {
      // A server that refuses the call quoting the credentials it got: the failure quotes its details.
      const server = await startHealthServer({
        fail: (_service, md) => ({ code: 7, details: `token ${String(md.get('authorization')[0])} is not allowed` }),
      });
      return {
        fields: { target: server.target, metadata: { authorization: 'Bearer ${CONTRACT_SECRET}' } },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  sql: {
    // A "database" that accepts and never answers the startup message: the login hangs until the deadline.
    hang: () =>
      tcpPeer((port) => ({ driver: 'postgres', url: `postgres://vigil:\${CONTRACT_SECRET}@127.0.0.1:${port}/app`, query: 'select 1' })),
    bad: { fields: { driver: 'oracle', url: 'postgres://vigil@127.0.0.1/app', query: 'select 1' }, path: 'driver' },
    async echoesSecret() {
      // A server that asks for the password in clear (PostgreSQL's oldest method) and refuses it quoting it.
      const server = await startRaw((socket) => {
        socket.on('error', () => {});
        let startup = true;
        socket.on('data', (chunk) => {
          if (startup) {
            startup = false;
            const ask = Buffer.alloc(9);
            ask.write('R', 0);
            ask.writeInt32BE(8, 1);
            ask.writeInt32BE(3, 5); // AuthenticationCleartextPassword
            socket.write(ask);
            return;
          }
          const password = chunk.subarray(5, chunk.length - 1).toString();
          const fields = Buffer.from(`SFATAL\0C28P01\0Mpassword ${password} is wrong\0\0`);
          const head = Buffer.alloc(5);
          head.write('E', 0);
          head.writeInt32BE(fields.length + 4, 1);
          socket.end(Buffer.concat([head, fields]));
        });
      });
      return {
        fields: { driver: 'postgres', url: `postgres://vigil:\${CONTRACT_SECRET}@127.0.0.1:${server.port}/app`, query: 'select 1' },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  redis: {
    hang: () => tcpPeer((port) => ({ url: `redis://:\${CONTRACT_SECRET}@127.0.0.1:${port}` })),
    bad: { fields: { persistence: 'both' }, path: 'persistence' },
    async echoesSecret() {
      // A server that refuses the login quoting what it was sent: the failure quotes its reply.
      const server = await startRaw((socket) => {
        socket.on('error', () => {});
        socket.once('data', (d) => socket.end(`-ERR no such login: ${d.toString('latin1').replace(/\r\n/g, ' ')}\r\n`));
      });
      return { fields: { url: `redis://:\${CONTRACT_SECRET}@127.0.0.1:${server.port}` }, open: () => null, close: () => server.close() };
    },
  },
  queue: {
    hang: () =>
      tcpPeer((port) => ({ broker: 'amqp', url: `amqp://vigil:\${CONTRACT_SECRET}@127.0.0.1:${port}/`, queue: 'tasks', minConsumers: 1 })),
    bad: { fields: { broker: 'amqp', url: 'amqp://127.0.0.1:1', queue: 'tasks', minConsumers: -1 }, path: 'minConsumers' },
    async echoesSecret() {
      // A "Redis" that answers the login by quoting it back as an error: the failure quotes the reply.
      const server = await startRaw((socket) => {
        socket.on('error', () => {});
        socket.once('data', (d) => socket.end(`-ERR you sent ${d.toString('utf8').replace(/\r\n/g, ' ')}\r\n`));
      });
      return {
        fields: { broker: 'redis', url: `redis://vigil:\${CONTRACT_SECRET}@127.0.0.1:${server.port}` },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  websocket: {
    hang: () => tcpPeer((port) => ({ url: `ws://127.0.0.1:${port}/live`, headers: { authorization: 'Bearer ${CONTRACT_SECRET}' } })),
    bad: { fields: { url: 'ws://127.0.0.1:1/live', expect: '([unclosed' }, path: 'expect' },
    async echoesSecret() {
      // A greeting that quotes the request's credentials and matches nothing: the failure quotes it.
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await new Promise((resolve) => wss.once('listening', resolve));
      wss.on('connection', (ws, req) => {
        ws.send(`hello ${req.headers.authorization}`);
        ws.close(1000, 'bye');
      });
      const { port } = wss.address() as import('node:net').AddressInfo;
      return {
        fields: { url: `ws://127.0.0.1:${port}/live`, headers: { authorization: 'Bearer ${CONTRACT_SECRET}' }, expect: '^welcome' },
        open: () => null,
        close: () =>
          new Promise<void>((resolve) => {
            for (const c of wss.clients) c.terminate();
            wss.close(() => resolve());
          }),
      };
    },
  },
  'secret-rotation': {
    hang: () =>
      tcpPeer((port) => ({
        source: {
          url: `http://127.0.0.1:${port}/v1/secret/metadata/db`,
          headers: { 'x-vault-token': '${CONTRACT_SECRET}' },
          path: 'data.current_version',
        },
        services: [{ name: 'billing', url: `http://vigil:\${CONTRACT_SECRET}@127.0.0.1:${port}/version`, path: 'version' }],
      })),
    bad: {
      fields: { source: { url: 'http://127.0.0.1:1/v1/secret/metadata/db', path: 'data.current_version' }, services: [] },
      path: 'services',
    },
    async echoesSecret() {
      // A source whose URL carries its token in the query: the failure names the URL it could not read.
      const server = await startHttp((_req, res) => {
        res.writeHead(503);
        res.end();
      });
      return {
        fields: {
          source: { url: `${server.url}/version?token=\${CONTRACT_SECRET}`, path: 'version' },
          services: [{ name: 'billing', url: `${server.url}/billing`, path: 'version' }],
        },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  'load-balancer': {
    // The balancer and its one instance are the same silent peer: both waits must end at the deadline.
    hang: () =>
      tcpPeer((port) => ({
        url: `http://probe:\${CONTRACT_SECRET}@127.0.0.1:${port}/`,
        instances: [`http://127.0.0.1:${port}/health`],
        headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
        requests: 3,
      })),
    bad: { fields: { url: 'http://127.0.0.1/', instances: [] }, path: 'instances' },
    async echoesSecret() {
      // An instance that echoes the request's credentials, failing the body check, which quotes the body.
      const server = await startHttp((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`you sent ${req.headers.authorization}`);
      });
      return {
        fields: {
          url: `${server.url}/`,
          instances: [`${server.url}/health`],
          headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
          expect: { bodyContains: 'welcome' },
          requests: 2,
        },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
  'object-storage': {
    hang: () =>
      tcpPeer((port) => ({
        endpoint: `http://127.0.0.1:${port}`,
        bucket: 'canary',
        forcePathStyle: true,
        accessKeyId: 'vigil-contract',
        secretAccessKey: '${CONTRACT_SECRET}',
      })),
    bad: { fields: { bucket: 'canary', accessKeyId: 'k', secretAccessKey: 's', size: '1 gigabyte' }, path: 'size' },
    echoesSecret: {
      skip: 'the secret key only signs requests (SigV4) and never crosses the wire; the SDK errors carry signatures, which the kind never quotes',
    },
  },
  multistep: {
    // A login that answers at once, then an API call to the silent peer: the journey's deadline ends the wait.
    async hang() {
      const peer = await silentTcp();
      const login = await startHttp((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"token":"contract-token-1234567890"}');
      });
      return {
        fields: {
          steps: [
            {
              name: 'login',
              url: `http://probe:\${CONTRACT_SECRET}@127.0.0.1:${login.port}/login`,
              method: 'POST',
              body: '{"password":"${CONTRACT_SECRET}"}',
              extract: { token: { json: 'token' } },
            },
            {
              name: 'orders',
              url: `http://127.0.0.1:${peer.port}/api/orders`,
              headers: { authorization: 'Bearer {{steps.login.token}}' },
            },
          ],
        },
        open: () => peer.live.size,
        close: async () => {
          await Promise.all([peer.close(), login.close()]);
        },
      };
    },
    bad: {
      fields: { steps: [{ name: 'orders', url: 'http://127.0.0.1/', headers: { authorization: 'Bearer {{steps.login.token}}' } }] },
      path: 'steps.0.headers.authorization',
    },
    async echoesSecret() {
      // A login that echoes what it was sent, failing the body check, which quotes the body.
      const server = await startHttp((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => {
          body += c.toString('utf8');
        });
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(`you sent ${body} with ${req.headers.authorization}`);
        });
      });
      return {
        fields: {
          steps: [
            {
              name: 'login',
              url: `${server.url}/login`,
              method: 'POST',
              headers: { authorization: 'Bearer ${CONTRACT_SECRET}' },
              body: '{"password":"${CONTRACT_SECRET}"}',
              expect: { bodyContains: 'welcome' },
            },
          ],
        },
        open: () => null,
        close: () => server.close(),
      };
    },
  },
};

const SECRET_IP = '10.73.31.7';
const ENV = { CONTRACT_SECRET: SECRET, CONTRACT_SECRET_IP: SECRET_IP };

/** Loads one definition of `kind` through the real config path, as vigil would at start. */
function load(dir: string, kind: string, fields: Record<string, unknown>): LoadedConfig {
  const def = { id: `contract-${kind}`, kind, schedule: '* * * * *', timeout: `${TIMEOUT_MS}ms`, ...fields };
  return loadAt(dir, [def]);
}

function loadAt(dir: string, defs: unknown[]): LoadedConfig {
  return withFiles(dir, defs, () => loadConfig({ cwd: dir, env: ENV }));
}

function withFiles<T>(dir: string, defs: unknown[], fn: () => T): T {
  writeFileSync(path.join(dir, 'config', 'default.yaml'), 'service:\n  port: 8080\n');
  writeFileSync(path.join(dir, 'probes', 'contract.yaml'), stringify(defs));
  return fn();
}

/** Counts of the handles that outlive a careless probe: sockets, child processes, timers. */
function handles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) {
    if (/TCPSocketWrap|UDPWrap|ProcessWrap|Pipe|Timeout|Immediate/i.test(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}

/** The handles above `before`, by type; empty when everything the run opened is gone. */
function leftOver(before: Map<string, number>): Record<string, number> {
  const extra: Record<string, number> = {};
  for (const [type, n] of handles()) if (n > (before.get(type) ?? 0)) extra[type] = n - (before.get(type) ?? 0);
  return extra;
}

async function probeOnce(def: ProbeDefinition, dir: string, redactor?: Redactor): Promise<ProbeResult> {
  return (probers[def.kind] as AnyProber).probe(def, {
    signal: AbortSignal.timeout(TIMEOUT_MS),
    deadline: Date.now() + TIMEOUT_MS,
    clock: systemClock,
    logger: memoryLogger().logger,
    probesDir: path.join(dir, 'probes'),
    state: memoryState(),
    ...(redactor ? { redactor } : {}),
  });
}

function runRecord(def: ProbeDefinition, dir: string, redactor: Redactor): Promise<RunRecord> {
  return runProbe(def, 'manual', {
    clock: systemClock,
    logger: memoryLogger().logger,
    probesDir: path.join(dir, 'probes'),
    state: memoryState(),
    shutdown: new Shutdown(),
    redactor,
  });
}

/** Every form a secret may leak in: as is, percent-encoded, base64, and its first 12 characters. */
function leaks(text: string, secret: string): string[] {
  const forms = [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), secret.slice(0, 12)];
  return forms.filter((f) => text.includes(f));
}

it('every registered kind has a fixture here', () => {
  expect(Object.keys(fixtures).sort()).toEqual(Object.keys(probers).sort());
});

describe.each(Object.keys(probers) as ProbeKind[])('prober contract: %s', { timeout: 60_000 }, (kind) => {
  const fixture = fixtures[kind];
  let ws: ReturnType<typeof workspace>;
  let peer: HangingPeer;
  let def: ProbeDefinition;
  let loaded: LoadedConfig;

  beforeAll(async () => {
    ws = workspace({});
    peer = await fixture.hang(ws.dir);
    loaded = load(ws.dir, kind, peer.fields);
    def = loaded.probes[0] as ProbeDefinition;
  });
  afterAll(async () => {
    await peer?.close();
    ws?.remove();
  });

  it('loads its fixture, and rejects a bad spec at load with an error naming the file and path', () => {
    expect(def.kind).toBe(kind);
    let problems: readonly string[] = [];
    try {
      load(ws.dir, kind, { ...peer.fields, ...fixture.bad.fields });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems = err.problems;
    }
    expect(problems.length, 'the bad spec loaded').toBeGreaterThan(0);
    const line = problems.find((p) => p.startsWith(`probes/contract.yaml: [0].${fixture.bad.path}: expected`));
    expect(line, `no problem names [0].${fixture.bad.path}: ${problems.join(' | ')}`).toBeDefined();
  });

  it('tells the report what it needs: its target without credentials, its checklist evidence in a known section', () => {
    const report = (probers[kind] as AnyProber).report;
    const target = report.target(def);
    expect(target).toMatch(/\S/);
    // Never a URL's `user:password@` (a `${…}` value elsewhere is hidden on every way out, by value).
    for (const url of target.match(/[a-z][a-z0-9+.-]*:\/\/\S+/gi) ?? []) {
      const u = new URL(url);
      expect(`${u.username}${u.password}`, `${kind} target: ${target}`).toBe('');
    }
    const window = { runs: 0, failures: 0, values: {}, last: null, lastSuccess: null };
    for (const entry of [report.evidence?.(def, window, SAMPLE_TARGETS) ?? []].flat()) {
      expect(Object.keys(emptyChecklist())).toContain(entry.section);
      expect(entry.item.probeId).toBe(def.id);
      // No runs is no evidence either way: never a pass.
      expect('ok' in entry.item ? entry.item.ok : null).not.toBe(true);
    }
  });

  it('honours the deadline against a target that hangs, and leaves nothing open after the abort', async () => {
    const before = handles();
    const grace = (probers[kind] as AnyProber).abortGraceMs?.(def) ?? 250;
    const started = performance.now();
    const result = await probeOnce(def, ws.dir);
    const took = performance.now() - started;
    expect(result.ok).toBe(false);
    expect(result.code).toMatch(/^[A-Z][A-Z_]+$/);
    expect(result.message, 'a failed run says why').toMatch(/\S/);
    expect(took, `${kind} took ${Math.round(took)} ms`).toBeLessThan(TIMEOUT_MS + grace + SLACK_MS);
    // The peer sees the connection closed; the process holds no extra socket, child or timer.
    if (peer.open() !== null) await waitFor(`${kind}: the peer to see its connections closed`, () => peer.open() === 0, 2_000);
    await waitFor(
      `${kind}: handles opened by the run to be released`,
      () => Object.keys(leftOver(before)).length === 0,
      2_000,
      () => JSON.stringify(leftOver(before)),
    );
  });

  /** A definition against a peer that fails fast, when the fixture has one; else the hanging one. */
  async function quick<T>(fn: (def: ProbeDefinition, loaded: LoadedConfig) => Promise<T>): Promise<T> {
    if (fixture.fastFail === undefined) return fn(def, loaded);
    const fast = await fixture.fastFail(ws.dir);
    try {
      const l = load(ws.dir, kind, fast.fields);
      return await fn(l.probes[0] as ProbeDefinition, l);
    } finally {
      await fast.close();
    }
  }

  it('makes a record of the shape the store expects', async () => {
    const r = await quick((d) => runRecord(d, ws.dir, noRedaction));
    expect(typeof r.ok).toBe('boolean');
    expect(r.probeId).toBe(def.id);
    expect(r.kind).toBe(kind);
    expect(Number.isFinite(r.durationMs) && r.durationMs >= 0).toBe(true);
    for (const [name, v] of Object.entries(r.values)) expect(Number.isFinite(v), `value ${name} = ${v}`).toBe(true);
    expect(r.ok).toBe(false);
    expect(r.code).toMatch(/^[A-Z][A-Z_]+$/);
    expect(typeof r.message).toBe('string');
    // It survives the store's JSON round trip unchanged.
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('never lets the secret in its spec reach the record', async (t) => {
    const secrets = [SECRET, SECRET_IP];
    const echo = fixture.echoesSecret;
    if (typeof echo === 'object') {
      // Still checked against the hanging peer, but this alone could not fail: say so.
      const record = await quick(async (d, l) => JSON.stringify(await runRecord(d, ws.dir, createSecretBook(l).forProbe(d))));
      for (const s of secrets) expect(leaks(record, s), `${kind} record: ${record}`).toEqual([]);
      t.skip(`the case cannot fail for ${kind}: ${echo.skip}`);
      return;
    }
    const runBoth = async (d: ProbeDefinition, l: LoadedConfig) => ({
      record: JSON.stringify(await runRecord(d, ws.dir, createSecretBook(l).forProbe(d))),
      // The case can fail: without redaction the same run does carry the secret.
      raw: JSON.stringify(await runRecord(d, ws.dir, noRedaction)),
    });
    let record: string;
    let raw: string;
    if (echo === true) ({ record, raw } = await quick(runBoth));
    else {
      const echoPeer = await echo(ws.dir);
      try {
        const l = load(ws.dir, kind, echoPeer.fields);
        ({ record, raw } = await runBoth(l.probes[0] as ProbeDefinition, l));
      } finally {
        await echoPeer.close();
      }
    }
    for (const s of secrets) expect(leaks(record, s), `${kind} record: ${record}`).toEqual([]);
    expect(
      secrets.flatMap((s) => leaks(raw, s)).length,
      `${kind}: the fixture's run should echo its secret before redaction: ${raw}`,
    ).toBeGreaterThan(0);
  });
});

describe('no code outside a kind names it', () => {
  // A kind string in the report, alerting or config is a silent second place to touch when a kind is added.
  const folders = ['alerting', 'config', 'metrics', 'notify', 'oncall', 'report', 'scheduler'];
  const src = path.resolve(here, '../../src');

  const itemIds = new Set<string>(CHECKLIST.map((item) => item.id));
  const ITEM_ID = /\b(?:id|item): '([a-z0-9-]+)'/g;

  it.each(folders)('src/%s names no probe kind or channel type', (folder) => {
    const names = [...Object.keys(probers), ...Object.keys(channelKinds)];
    const found: string[] = [];
    for (const file of readdirSync(path.join(src, folder), { recursive: true, encoding: 'utf8' })) {
      if (!file.endsWith('.ts') || file.startsWith('channels')) continue;
      // A checklist item may share its id with the kind that proves it (secret-rotation): the report's
      // `id: '…'` / `item: '…'` of an item is the checklist's word, not the kind's.
      const text = readFileSync(path.join(src, folder, file), 'utf8').replace(ITEM_ID, (whole, id: string) =>
        itemIds.has(id) ? '' : whole,
      );
      for (const name of names) if (text.includes(`'${name}'`)) found.push(`src/${folder}/${file}: '${name}'`);
    }
    expect(found).toEqual([]);
  });
});
