import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { definitionSchema } from '../../src/config/schema.js';
import { type Clock, systemClock } from '../../src/lib/clock.js';
import type { ProbeState } from '../../src/probers/index.js';
import { compareVersions, secretRotation } from '../../src/probers/secret-rotation.js';
import { memoryState, probeContext } from '../helpers/context.js';
import { closedPort, startHttp, type TestServer } from '../helpers/servers.js';
import { workspace } from '../helpers/workspace.js';

type Spec = Parameters<typeof secretRotation.probe>[0];

/** Vault's documented KV v2 read-metadata answer (test/fixtures/README.md says where it comes from). */
const FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/vault-kv2-metadata.json', import.meta.url), 'utf8'));
const TOKEN = 'hvs.Rotation-Test-Token-4471';
const METADATA_PATH = '/v1/secret/metadata/db/password';

const servers: TestServer[] = [];
afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A Vault stand-in: the fixture at the KV v2 metadata path, `current_version` as the test sets it. */
async function startVault(initial: number) {
  let version = initial;
  const requests: IncomingMessage[] = [];
  const server = await startHttp((req, res) => {
    requests.push(req);
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.headers['x-vault-token'] !== TOKEN) return reply(403, { errors: ['permission denied'] });
    if (req.method !== 'GET' || req.url !== METADATA_PATH) return reply(404, { errors: [] });
    const doc = structuredClone(FIXTURE);
    doc.data.current_version = version;
    // Each version Vault holds has an entry in `versions`, as the fixture shows for 1-3.
    for (let v = 1; v <= version; v++)
      doc.data.versions[String(v)] ??= { created_time: new Date().toISOString(), deletion_time: '', destroyed: false };
    reply(200, doc);
  });
  servers.push(server);
  return {
    url: `${server.url}${METADATA_PATH}`,
    requests,
    set: (v: number) => {
      version = v;
    },
  };
}

/** A service reporting the secret version it uses at `/version` as `{ secret: { version } }`. */
async function startService(initial: number | string) {
  let version = initial;
  let status = 200;
  const server = await startHttp((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status === 200 ? { service: 'x', secret: { version } } : { error: 'unavailable' }));
  });
  servers.push(server);
  return {
    url: `${server.url}/version`,
    server,
    set: (v: number | string) => {
      version = v;
    },
    failWith: (s: number) => {
      status = s;
    },
  };
}

/** A definition as config would hand it over: defaults applied, schema and check passed. */
function definition(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(secretRotation.schema);
  const def = Value.Default(schema, structuredClone({ id: 'db-rotation', kind: 'secret-rotation', schedule: '* * * * *', ...fields }));
  const error = Value.Errors(schema, def).First();
  if (error) throw new Error(`invalid test definition: ${error.path} ${error.message}`);
  const problems = secretRotation.check?.(def as Spec) ?? [];
  if (problems.length > 0) throw new Error(`invalid test definition: ${JSON.stringify(problems)}`);
  return def as Spec;
}

/** A clock that stands still until the test moves it; its timers are real, so deadlines still work. */
function steppedClock(start = Date.parse('2026-12-01T12:00:00Z')) {
  let now = start;
  const clock: Clock = { ...systemClock, now: () => now };
  return { clock, advance: (ms: number) => (now += ms) };
}

/** Vault and three services (billing, api, worker), all on `version`, and a run that keeps state. */
async function rotationSetup(version: number, fields: Record<string, unknown> = {}) {
  const vault = await startVault(version);
  const billing = await startService(version);
  const api = await startService(version);
  const worker = await startService(version);
  const spec = definition({
    source: { url: vault.url, headers: { 'X-Vault-Token': TOKEN }, path: 'data.current_version' },
    services: [
      { name: 'billing', url: billing.url, path: 'secret.version' },
      { name: 'api', url: api.url, path: 'secret.version' },
      { name: 'worker', url: worker.url, path: 'secret.version' },
    ],
    ...fields,
  });
  const time = steppedClock();
  const state: ProbeState = memoryState();
  const run = () => secretRotation.probe(spec, probeContext(5_000, { clock: time.clock, state }));
  return { vault, billing, api, worker, spec, time, state, run };
}

describe.concurrent('secret-rotation', () => {
  it('passes when every service reports the source’s current version, read from Vault’s KV v2 metadata', async () => {
    const { vault, run } = await rotationSetup(3);
    const result = await run();
    expect(result.ok, result.message).toBe(true);
    expect(result.values).toEqual({ skew_s: 0, services_current: 3, services_total: 3 });
    expect(result.details).toMatchObject({ source_version: '3', services: [{ status: 'current', version: '3' }, {}, {}] });
    expect(vault.requests).toHaveLength(1);
    expect(vault.requests[0]?.headers['x-vault-token']).toBe(TOKEN);
  });

  it('gives a lagging service maxSkew after the change, fails it past that, and passes once it catches up', async () => {
    const { vault, billing, api, worker, time, run } = await rotationSetup(3);
    expect((await run()).ok).toBe(true);

    // Rotated: Vault is at 4, two services follow, the worker keeps 3.
    time.advance(60_000);
    vault.set(4);
    billing.set(4);
    api.set(4);
    const justChanged = await run();
    expect(justChanged.ok, justChanged.message).toBe(true);
    expect(justChanged.values).toEqual({ skew_s: 0, services_current: 2, services_total: 3 });

    time.advance(4 * 60_000);
    const within = await run();
    expect(within.ok, within.message).toBe(true);
    expect(within.values).toEqual({ skew_s: 240, services_current: 2, services_total: 3 });
    expect(within.details).toMatchObject({ services: [{}, {}, { name: 'worker', status: 'behind', version: '3', lag_s: 240 }] });

    time.advance(2 * 60_000 + 10_000);
    const late = await run();
    expect(late.ok).toBe(false);
    expect(late.code).toBe('ROTATION_LAGGING');
    expect(late.message).toBe('worker still on version 3 of 4, 6m10s after the change (max 5m)');
    expect(late.values).toEqual({ skew_s: 370, services_current: 2, services_total: 3 });

    worker.set(4);
    time.advance(30_000);
    const caughtUp = await run();
    expect(caughtUp.ok, caughtUp.message).toBe(true);
    expect(caughtUp.values).toEqual({ skew_s: 0, services_current: 3, services_total: 3 });
  });

  it('times a service that goes back to an older version from when it went back', async () => {
    const { vault, billing, api, worker, time, run } = await rotationSetup(4, { maxSkew: '1m' });
    expect((await run()).ok).toBe(true);
    time.advance(10 * 60_000);
    for (const s of [billing, api, worker]) s.set(4);
    vault.set(4);
    api.set(3); // redeployed with the old secret baked in, long after the rotation
    const regressed = await run();
    expect(regressed.ok, regressed.message).toBe(true);
    expect(regressed.values.skew_s).toBe(0);
    time.advance(61_000);
    const late = await run();
    expect(late.code).toBe('ROTATION_LAGGING');
    expect(late.message).toBe('api still on version 3 of 4, 1m1s after the change (max 1m)');
  });

  it('keeps its state as plain JSON across a restart, and drops state it did not write', async () => {
    const { vault, billing, api, spec, time } = await rotationSetup(8, { maxSkew: '1m' });
    const saved: { json?: string } = {};
    // What the scheduler does: persist the state as JSON, hand it back parsed after a restart.
    const persisted: ProbeState = {
      get: <T>() => (saved.json === undefined ? undefined : (JSON.parse(saved.json) as T)),
      set: (v) => {
        saved.json = JSON.stringify(v);
      },
    };
    const run = () => secretRotation.probe(spec, probeContext(5_000, { clock: time.clock, state: persisted }));
    expect((await run()).ok).toBe(true);
    vault.set(9);
    billing.set(9);
    api.set(9);
    expect((await run()).ok).toBe(true);
    expect(JSON.parse(saved.json ?? '{}')).toMatchObject({ source: { version: '9', since: time.clock.now() } });
    time.advance(90_000);
    expect((await run()).message).toBe('worker still on version 8 of 9, 1m30s after the change (max 1m)');

    // Garbage where the state should be (another version wrote it, or a person): the clock starts anew.
    saved.json = JSON.stringify({ source: { version: 9 }, services: 'all' });
    const fresh = await run();
    expect(fresh.ok, fresh.message).toBe(true);
    expect(fresh.values.skew_s).toBe(0);
  });

  it('fails a service that cannot be read, naming it, and never counts it as current', async () => {
    const { api, worker, run } = await rotationSetup(7);
    api.failWith(503);
    await worker.server.close();
    const result = await run();
    expect(result.ok).toBe(false);
    expect(result.code).toBe('SERVICE_FAILED');
    const apiUrl = api.url;
    const workerHost = new URL(worker.url).host;
    expect(result.message).toBe(
      `api: ${apiUrl} answered 503 Service Unavailable; worker: ${worker.url} could not be read: cannot connect to ${workerHost} (ECONNREFUSED)`,
    );
    expect(result.values).toEqual({ skew_s: 0, services_current: 1, services_total: 3 });
  });

  it('keeps counting a laggard’s lag while it cannot be read, and names both problems', async () => {
    const { vault, billing, api, worker, time, run } = await rotationSetup(1, { maxSkew: '1s' });
    expect((await run()).ok).toBe(true);
    vault.set(2);
    billing.set(2);
    api.set(2);
    expect((await run()).ok).toBe(true);
    time.advance(800);
    worker.failWith(500);
    const down = await run();
    expect(down.code).toBe('SERVICE_FAILED');
    worker.failWith(200);
    api.failWith(502);
    time.advance(800);
    const late = await run();
    expect(late.code).toBe('ROTATION_LAGGING');
    expect(late.message).toBe(`worker still on version 1 of 2, 1.60s after the change (max 1s); api: ${api.url} answered 502 Bad Gateway`);
  });

  it('fails with a clear error when the source answers without the path, and never shows the token', async () => {
    const vault = await startVault(3);
    const billing = await startService(3);
    const spec = definition({
      source: { url: vault.url, headers: { 'X-Vault-Token': TOKEN }, path: 'data.currentVersion' },
      services: [{ name: 'billing', url: billing.url, path: 'secret.version' }],
    });
    const state = memoryState();
    const result = await secretRotation.probe(spec, probeContext(5_000, { state }));
    expect(result.ok).toBe(false);
    expect(result.code).toBe('SOURCE_FAILED');
    expect(result.message).toBe(`the source ${vault.url} answered without data.currentVersion (its top-level keys: data)`);
    expect(result.values).toEqual({ services_total: 1 });
    expect(state.get()).toBeUndefined();

    const denied = definition({
      source: { url: vault.url, headers: { 'X-Vault-Token': 'hvs.Wrong-Token-0000' }, path: 'data.current_version' },
      services: [{ name: 'billing', url: billing.url, path: 'secret.version' }],
    });
    const refused = await secretRotation.probe(denied, probeContext());
    expect(refused.code).toBe('SOURCE_FAILED');
    expect(refused.message).toBe(`the source ${vault.url} answered 403 Forbidden`);
    expect(refused.message).not.toContain('hvs.');
  });

  it('fails when the source cannot be reached, and shows its URL without the password', async () => {
    const port = await closedPort();
    const billing = await startService(3);
    const spec = definition({
      source: { url: `http://vigil:S3cret-Pass@127.0.0.1:${port}/current`, path: 'version' },
      services: [{ name: 'billing', url: billing.url, path: 'secret.version' }],
    });
    const result = await secretRotation.probe(spec, probeContext());
    expect(result.code).toBe('SOURCE_FAILED');
    expect(result.message).toBe(
      `the source http://127.0.0.1:${port}/current could not be read: cannot connect to 127.0.0.1:${port} (ECONNREFUSED)`,
    );
    expect(secretRotation.report.target(spec)).toBe(`http://127.0.0.1:${port}/current`);
  });

  it('sends URL credentials as Basic auth, and ends at the deadline when a service never answers', async () => {
    let authorization: string | undefined;
    const source = await startHttp((req, res) => {
      authorization = req.headers.authorization;
      res.end('{"version":"2026-12-a"}');
    });
    // Accepts and never answers.
    const silent = await startHttp(() => {});
    servers.push(source, silent);
    const spec = definition({
      source: { url: `http://ops:p%40ss@127.0.0.1:${source.port}/`, path: 'version' },
      services: [{ name: 'mailer', url: `${silent.url}/v`, path: 'version' }],
    });
    const started = Date.now();
    const result = await secretRotation.probe(spec, probeContext(600));
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(authorization).toBe(`Basic ${Buffer.from('ops:p@ss').toString('base64')}`);
    expect(result.code).toBe('SERVICE_FAILED');
    expect(result.message).toMatch(new RegExp(`^mailer: ${silent.url}/v could not be read: no answer within \\d+\\.\\ds$`));
  });

  it('compares integers as numbers and anything else as equal or not', async () => {
    expect(compareVersions('10', '9')).toBe(1);
    expect(compareVersions('9', '10')).toBe(-1);
    expect(compareVersions('12', '12')).toBe(0);
    expect(compareVersions('v2', 'v10')).toBe(-1);
    expect(compareVersions('v10', 'v2')).toBe(-1);
    expect(compareVersions('abc123', 'abc123')).toBe(0);

    // A service ahead of the source (read before the source's replica caught up) is not a laggard.
    const { billing, run } = await rotationSetup(5);
    billing.set(6);
    const ahead = await run();
    expect(ahead.ok, ahead.message).toBe(true);
    expect(ahead.values).toEqual({ skew_s: 0, services_current: 2, services_total: 3 });
    expect(ahead.details).toMatchObject({ services: [{ name: 'billing', status: 'ahead', version: '6' }, {}, {}] });
  });

  it('rejects a definition naming a service twice or with a badly escaped URL password', () => {
    const schema = definitionSchema(secretRotation.schema);
    const def = Value.Default(schema, {
      id: 'r',
      kind: 'secret-rotation',
      schedule: '* * * * *',
      source: { url: 'http://u:100%@vault:8200/v1/secret/metadata/db', path: 'data.current_version' },
      services: [
        { name: 'api', url: 'http://api/version', path: 'v' },
        { name: 'api', url: 'http://api2/version', path: 'v' },
      ],
    }) as Spec;
    expect([...Value.Errors(schema, def)]).toEqual([]);
    expect(def.maxSkew).toBe('5m');
    expect(secretRotation.check?.(def)).toEqual([
      { path: 'source.url', message: 'expected the user and password in the URL to be percent-encoded (write % as %25)' },
      { path: 'services[1].name', message: 'expected each service name once; api is listed twice' },
    ]);
  });

  it('probes/examples/secret-rotation.yaml loads through the config loader', () => {
    const example = readFileSync(path.resolve(import.meta.dirname, '../../probes/examples/secret-rotation.yaml'), 'utf8');
    const ws = workspace({ 'config/default.yaml': 'service: { port: 0 }\n', 'probes/rotation.yaml': example });
    try {
      const env = { VAULT_TOKEN: 'hvs.example-token', WORKER_STATUS_TOKEN: 'status-token-1', CONFIG_API_PASSWORD: 'config-pass-1' };
      const probes = loadConfig({ cwd: ws.dir, env }).probes;
      expect(probes.map((p) => `${p.kind}:${p.id}`)).toEqual([
        'secret-rotation:db-password-rotation',
        'secret-rotation:stripe-key-rotation',
      ]);
      expect(probes.map((p) => secretRotation.report.target(p as Spec))).toEqual([
        'http://vault:8200/v1/secret/metadata/db/password',
        'https://config.internal/api/keys/stripe',
      ]);
    } finally {
      ws.remove();
    }
  });
});
