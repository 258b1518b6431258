import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { redis } from '../../src/probers/redis.js';
import { createPki, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { freePort } from '../helpers/postgres.js';
import { startRedis, type TestRedis } from '../helpers/redis-server.js';
import { closedPort, startRaw } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type RedisDefinition = Parameters<typeof redis.probe>[0];

const schema = definitionSchema(redis.schema as TObject);

/** The loader's verdict on a definition: schema errors, else the prober's own check. */
function problemsOf(fields: Record<string, unknown>): string[] {
  const def = Value.Default(schema, { id: 'redis-test', kind: 'redis', schedule: '* * * * *', ...structuredClone(fields) });
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return errors;
  return (redis.check?.(def as never) ?? []).map((p) => `${p.path}: ${p.message}`);
}

function spec(fields: Record<string, unknown>): RedisDefinition {
  const problems = problemsOf(fields);
  if (problems.length > 0) throw new Error(`invalid test definition: ${problems.join('; ')}`);
  return Value.Default(schema, { id: 'redis-test', kind: 'redis', schedule: '* * * * *', ...structuredClone(fields) }) as RedisDefinition;
}

/** One INFO field as the server reports it, read with the helper's own client. */
async function infoField(server: TestRedis, field: string): Promise<string | undefined> {
  const text = await server.command('INFO');
  return new RegExp(`^${field}:(.*)\\r$`, 'm').exec(text)?.[1];
}

const PASSWORD = 'c4che-s3cret';
const servers: TestRedis[] = [];
async function start(opts: Parameters<typeof startRedis>[0]): Promise<TestRedis> {
  const server = await startRedis(opts);
  servers.push(server);
  return server;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

describe('definitions', () => {
  it('takes redis:// and rediss:// URLs and rejects TLS fields on a plain URL', () => {
    expect(problemsOf({ url: 'redis://127.0.0.1:6379' })).toEqual([]);
    expect(problemsOf({ url: 'rediss://:pw@cache.internal:6380/2', insecure: true, serverName: 'cache' })).toEqual([]);
    expect(problemsOf({ url: 'http://127.0.0.1:6379' })[0]).toMatch(/^\/url: /);
    expect(problemsOf({ url: 'redis://127.0.0.1', insecure: true })).toEqual([
      'insecure: expected a rediss:// url with insecure (redis:// has no TLS)',
    ]);
  });

  it('ties maxSaveAge to RDB, maxReplicationLag to a replica, and a replica to canary: false', () => {
    expect(problemsOf({ url: 'redis://h', persistence: 'aof', maxSaveAge: '1h' })).toEqual([
      'maxSaveAge: expected persistence: rdb or any with maxSaveAge (it judges RDB snapshots)',
    ]);
    expect(problemsOf({ url: 'redis://h', maxReplicationLag: '10s' })[0]).toMatch(/^maxReplicationLag: expected role: replica/);
    expect(problemsOf({ url: 'redis://h', role: 'replica' })).toEqual([
      'canary: a replica refuses writes: set canary: false with role: replica',
    ]);
    expect(problemsOf({ url: 'redis://h', persistence: 'both' })[0]).toMatch(/^\/persistence: /);
  });

  it('lands in cachePersistence with persistence set, in replication for a replica with a lag bound, in both with both', () => {
    const w = { runs: 2, failures: 0, values: {}, last: { ok: true }, lastSuccess: null };
    const item = { probeId: 'redis-test', target: 'redis://h:6379', runs: 2, failures: 0, ok: true };
    const both = spec({ url: 'redis://:pw@h:6379', canary: false, persistence: 'rdb', role: 'replica', maxReplicationLag: '15s' });
    expect(redis.report.evidence?.(both, w, {} as never)).toEqual([
      { section: 'cachePersistence', item },
      { section: 'replication', item },
    ]);
    const replica = spec({ url: 'redis://h:6379', canary: false, role: 'replica', maxReplicationLag: '15s' });
    expect(redis.report.evidence?.(replica, w, {} as never)).toEqual([{ section: 'replication', item }]);
    expect(redis.report.evidence?.(spec({ url: 'redis://h:6379' }), w, {} as never)).toEqual([]);
  });

  it('ships examples that validate', () => {
    const defs = parse(readFileSync('probes/examples/redis.yaml', 'utf8')) as Array<Record<string, unknown>>;
    expect(defs.length).toBeGreaterThan(0);
    // `${file:…}` is read at load time; stand a real CA in for it.
    const pki = createPki();
    try {
      for (const raw of defs) expect(problemsOf(typeof raw.ca === 'string' ? { ...raw, ca: pki.root.cert } : raw)).toEqual([]);
    } finally {
      pki.dispose();
    }
  });
});

describe('against redis-server', () => {
  let plain: TestRedis;
  beforeAll(async () => {
    plain = await start({ password: PASSWORD });
  });

  it('writes, reads back and deletes a canary key, and reports latency and memory', async () => {
    const url = `redis://:${PASSWORD}@127.0.0.1:${plain.port}`;
    const result = await redis.probe(spec({ url }), probeContext(5_000));
    expect(result).toMatchObject({ ok: true });
    expect(result.values.latency_ms).toBeGreaterThanOrEqual(0);
    expect(result.values.used_memory_bytes).toBeGreaterThan(100_000);
    // The canary went through the server and left nothing behind.
    expect(await plain.command('KEYS', 'vigil:canary:*')).toBe('*0\r\n');
    const stats = await plain.command('INFO', 'commandstats');
    expect(stats).toMatch(/cmdstat_set:calls=1,/);
    expect(stats).toMatch(/cmdstat_del:calls=1,/);
  });

  it('fails a wrong password as AUTH, and a missing one as NOAUTH, never showing the password', async () => {
    const wrong = await redis.probe(spec({ url: `redis://:not-${PASSWORD}@127.0.0.1:${plain.port}` }), probeContext(5_000));
    expect(wrong).toMatchObject({ ok: false, code: 'AUTH' });
    expect(wrong.message).toMatch(/WRONGPASS/);
    expect(wrong.message).not.toContain(PASSWORD);
    const none = await redis.probe(spec({ url: `redis://127.0.0.1:${plain.port}` }), probeContext(5_000));
    expect(none).toMatchObject({ ok: false, code: 'AUTH' });
    expect(none.message).toMatch(/NOAUTH/);
  });

  it('fails persistence off for any persistence, naming both', async () => {
    const url = `redis://:${PASSWORD}@127.0.0.1:${plain.port}`;
    const result = await redis.probe(spec({ url, persistence: 'any' }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(result.message).toContain('persistence off: neither RDB save points nor AOF are enabled');
    const rdb = await redis.probe(spec({ url, persistence: 'rdb' }), probeContext(5_000));
    expect(rdb.message).toMatch(/RDB snapshots off: no RDB save points/);
  });

  it('fails CONNECT on a closed port', async () => {
    const result = await redis.probe(spec({ url: `redis://127.0.0.1:${await closedPort()}` }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(result.message).toMatch(/connection refused \(ECONNREFUSED\)/);
  });
});

describe('persistence', () => {
  it('passes aof and any on a server with AOF on; fails rdb there', async () => {
    const server = await start({ aof: true });
    const url = `redis://127.0.0.1:${server.port}`;
    expect(await redis.probe(spec({ url, persistence: 'aof' }), probeContext(5_000))).toMatchObject({ ok: true });
    expect(await redis.probe(spec({ url, persistence: 'any' }), probeContext(5_000))).toMatchObject({ ok: true });
    const rdb = await redis.probe(spec({ url, persistence: 'rdb' }), probeContext(5_000));
    expect(rdb).toMatchObject({ ok: false, code: 'ASSERTION' });
  });

  it('passes rdb after a save that succeeded, with its age; fails maxSaveAge once writes wait on an old save', async () => {
    const server = await start({ save: '3600 1' });
    await server.command('BGSAVE');
    await waitFor('the bgsave', async () => (await infoField(server, 'rdb_bgsave_in_progress')) === '0');
    expect(await infoField(server, 'rdb_last_bgsave_status')).toBe('ok');
    const url = `redis://127.0.0.1:${server.port}`;
    const result = await redis.probe(spec({ url, canary: false, persistence: 'rdb', maxSaveAge: '1h' }), probeContext(5_000));
    expect(result).toMatchObject({ ok: true });
    expect(result.values.save_age_s).toBeGreaterThanOrEqual(0);
    expect(result.values.save_age_s).toBeLessThan(5);
    // A write not yet saved, against a bound the save is already older than.
    await server.command('SET', 'pending', '1');
    await waitFor('the save to be over a second old', async () => {
      const now = Number(await infoField(server, 'server_time_usec')) / 1e6;
      return now - Number(await infoField(server, 'rdb_last_save_time')) > 1;
    });
    const stale = await redis.probe(spec({ url, canary: false, persistence: 'rdb', maxSaveAge: '500ms' }), probeContext(5_000));
    expect(stale).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(stale.message).toMatch(/last successful save .* ago, over maxSaveAge 500ms, with 1 changes unsaved/);
  });

  it('fails a server whose last bgsave failed, naming it', async () => {
    const server = await start({ save: '3600 1' });
    // A directory where the snapshot must land: the rename of the finished save fails, even for root.
    await mkdir(path.join(server.dir, 'dump.rdb'));
    await writeFile(path.join(server.dir, 'dump.rdb', 'keep'), '');
    await server.command('BGSAVE');
    await waitFor('the bgsave to fail', async () => (await infoField(server, 'rdb_last_bgsave_status')) === 'err');
    const url = `redis://127.0.0.1:${server.port}`;
    const result = await redis.probe(spec({ url, canary: false, persistence: 'any' }), probeContext(5_000));
    expect(result).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(result.message).toContain('last bgsave failed (rdb_last_bgsave_status:err)');
    // With the canary on, the write is refused first (stop-writes-on-bgsave-error): said the same way.
    const written = await redis.probe(spec({ url, persistence: 'any' }), probeContext(5_000));
    expect(written).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(written.message).toMatch(/last bgsave failed \(rdb_last_bgsave_status:err\), so the server refuses writes \(MISCONF/);
  });
});

describe('replication', () => {
  it('passes a replica of a running primary with its lag; fails with the link down once the primary stops', async () => {
    // No diskless-sync delay: the replica's first sync would otherwise wait 5 s.
    const primary = await start({ extra: ['--repl-diskless-sync-delay', '0'] });
    const replica = await start({ replicaOf: primary.port });
    await waitFor('the replica link', async () => (await infoField(replica, 'master_link_status')) === 'up');
    const url = `redis://127.0.0.1:${replica.port}`;
    const def = spec({ url, canary: false, role: 'replica', maxReplicationLag: '30s' });
    const result = await redis.probe(def, probeContext(5_000));
    expect(result).toMatchObject({ ok: true });
    expect(result.values.replication_lag_s).toBeGreaterThanOrEqual(0);
    expect(result.values.replication_lag_s).toBeLessThanOrEqual(30);
    const asMaster = await redis.probe(spec({ url, canary: false, role: 'master' }), probeContext(5_000));
    expect(asMaster.message).toContain(`expected role master, the server is a replica of 127.0.0.1:${primary.port}`);
    // The canary on a replica: refused as read-only, with the fix.
    const written = await redis.probe(spec({ url }), probeContext(5_000));
    expect(written).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(written.message).toMatch(/read-only .* set canary: false/);

    await primary.stop();
    await waitFor('the link to drop', async () => (await infoField(replica, 'master_link_status')) === 'down');
    const down = await redis.probe(def, probeContext(5_000));
    expect(down).toMatchObject({ ok: false, code: 'ASSERTION' });
    expect(down.message).toContain(`replica link down (master_link_status:down, primary 127.0.0.1:${primary.port}`);
  });
});

describe('deadline', () => {
  it('ends at the deadline against a peer that accepts and never answers, with TIMEOUT and no socket left', async () => {
    const live = new Set<Socket>();
    const peer = await startRaw((socket) => {
      live.add(socket);
      socket.resume();
      socket.on('error', () => {});
      socket.on('close', () => live.delete(socket));
    });
    try {
      const started = performance.now();
      const result = await redis.probe(spec({ url: `redis://:pw@127.0.0.1:${peer.port}` }), probeContext(1_000));
      const took = performance.now() - started;
      expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
      expect(result.message).toMatch(
        /^timed out after (9\d\dms|1\.\d\ds) waiting for redis:\/\/127\.0\.0\.1:\d+ to answer the login \(HELLO\)$/,
      );
      expect(took).toBeGreaterThanOrEqual(950);
      expect(took).toBeLessThan(1_500);
      expect(peer.connections).toBe(1);
      await waitFor('the probe to hang up', () => live.size === 0, 1_000);
    } finally {
      await peer.close();
    }
  });
});

describe('rediss://', () => {
  let pki: TestPki;
  let server: TestRedis;
  let tlsPort: number;
  let certs: string;
  beforeAll(async () => {
    pki = createPki();
    const leaf = pki.leaf({ cn: 'cache.vigil.test' });
    certs = await mkdtemp(path.join(os.tmpdir(), 'vigil-redis-tls-'));
    await writeFile(path.join(certs, 'cert.pem'), leaf.cert);
    await writeFile(path.join(certs, 'key.pem'), leaf.key);
    await writeFile(path.join(certs, 'ca.pem'), pki.root.cert);
    tlsPort = await freePort();
    // The plain port stays for the helper's own PING; the probe talks to the TLS one.
    server = await start({
      extra: [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        path.join(certs, 'cert.pem'),
        '--tls-key-file',
        path.join(certs, 'key.pem'),
        // redis-server wants a CA file even when it asks clients for no certificate.
        '--tls-ca-cert-file',
        path.join(certs, 'ca.pem'),
        '--tls-auth-clients',
        'no',
      ],
      password: PASSWORD,
    });
  });
  afterAll(async () => {
    pki?.dispose();
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  it('passes with the CA and the name the certificate covers', async () => {
    const url = `rediss://:${PASSWORD}@127.0.0.1:${tlsPort}`;
    const result = await redis.probe(spec({ url, ca: pki.root.cert, serverName: 'cache.vigil.test' }), probeContext(5_000));
    expect(result).toMatchObject({ ok: true });
  });

  it('fails TLS for an untrusted certificate or another name, and points at the fix', async () => {
    const url = `rediss://:${PASSWORD}@127.0.0.1:${tlsPort}`;
    const untrusted = await redis.probe(spec({ url, serverName: 'cache.vigil.test' }), probeContext(5_000));
    expect(untrusted).toMatchObject({ ok: false, code: 'TLS' });
    expect(untrusted.message).toMatch(/the certificate is not trusted \(\w+\): add the issuing CA with ca:/);
    const other = await redis.probe(spec({ url, ca: pki.root.cert }), probeContext(5_000));
    expect(other).toMatchObject({ ok: false, code: 'TLS' });
    expect(other.message).toMatch(/does not cover 127\.0\.0\.1: .*set serverName:/);
    expect(await redis.probe(spec({ url, insecure: true }), probeContext(5_000))).toMatchObject({ ok: true });
  });

  it('says when TLS meets a plain port', async () => {
    // A plain Redis port reads the TLS hello as the start of an inline command and waits for its end.
    const result = await redis.probe(spec({ url: `rediss://127.0.0.1:${server.port}`, insecure: true }), probeContext(1_000));
    expect(result).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(result.message).toMatch(
      /^timed out after (9\d\dms|1\.\d\ds) connecting to rediss:\/\/127\.0\.0\.1:\d+ \(TCP or the TLS handshake never completed; is this port serving TLS\?\)$/,
    );
    await waitFor('the probe to hang up', async () => (await infoField(server, 'connected_clients')) === '1', 1_000);
    // Shutdown aborts a run before its deadline: the socket still in its TLS handshake goes at once.
    const early = { ...probeContext(5_000), signal: AbortSignal.timeout(300) };
    const started = performance.now();
    const ended = await redis.probe(spec({ url: `rediss://127.0.0.1:${server.port}`, insecure: true }), early);
    expect(ended).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(performance.now() - started).toBeLessThan(1_000);
    await waitFor('the probe to hang up', async () => (await infoField(server, 'connected_clients')) === '1', 1_000);
    // And the other way round: plain text to the TLS port.
    const plain = await redis.probe(spec({ url: `redis://:${PASSWORD}@127.0.0.1:${tlsPort}` }), probeContext(1_000));
    expect(plain).toMatchObject({ ok: false });
    expect(plain.message).toMatch(/rediss:\/\//);
  });
});
