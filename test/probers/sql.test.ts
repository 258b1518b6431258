import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { definitionSchema } from '../../src/config/schema.js';
import { sql } from '../../src/probers/sql.js';
import { createPki, type TestPki } from '../helpers/certs.js';
import { probeContext } from '../helpers/context.js';
import { startMariadb, type TestMariadb } from '../helpers/mariadb.js';
import { startPostgres, startReplica, type TestPostgres } from '../helpers/postgres.js';
import { closedPort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { workspace } from '../helpers/workspace.js';

type SqlDefinition = Parameters<typeof sql.probe>[0];

function problems(fields: Record<string, unknown>): string[] {
  const schema = definitionSchema(sql.schema as TObject);
  const def = Value.Default(schema, { id: 'sql-test', kind: 'sql', schedule: '* * * * *', ...structuredClone(fields) }) as SqlDefinition;
  const errors = [...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`);
  if (errors.length > 0) return errors;
  return (sql.check?.(def) ?? []).map((p) => `${p.path}: ${p.message}`);
}

function spec(fields: Record<string, unknown>): SqlDefinition {
  const schema = definitionSchema(sql.schema as TObject);
  const found = problems(fields);
  if (found.length > 0) throw new Error(`invalid test definition: ${found.join('; ')}`);
  return Value.Default(schema, { id: 'sql-test', kind: 'sql', schedule: '* * * * *', ...structuredClone(fields) }) as SqlDefinition;
}

const PASSWORD = 'Pg-Test-Pw-93';
let primary: TestPostgres;
let replica: TestPostgres;
let maria: TestMariadb;
let pki: TestPki;
const started: Record<string, number> = {};

beforeAll(async () => {
  const timed = async <T>(name: string, start: () => Promise<T>) => {
    const t = Date.now();
    const out = await start();
    started[name] = Date.now() - t;
    return out;
  };
  // The two servers start side by side: MariaDB's install-db is most of this file's cost.
  pki = createPki('Vigil SQL Test');
  const ssl = pki.leaf({ cn: 'db.vigil.test', san: ['IP:127.0.0.1'] });
  [primary, maria] = await Promise.all([
    timed('postgres', () => startPostgres({ password: PASSWORD, ssl })),
    timed('mariadb', () => startMariadb()),
  ]);
  replica = await timed('replica', () => startReplica(primary));
  await primary.query(`
    CREATE TABLE customers (id int PRIMARY KEY);
    CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id));
    CREATE TABLE loose_orders (id serial PRIMARY KEY, customer_id int NOT NULL);
    CREATE TABLE schema_migrations (version text PRIMARY KEY);
    INSERT INTO schema_migrations VALUES ('001'), ('002'), ('003');`);
}, 60_000);

afterAll(async () => {
  // Start times, for the report on what this file costs.
  process.stderr.write(`sql.test start times (ms): ${JSON.stringify(started)}\n`);
  await Promise.all([replica?.stop(), primary?.stop(), maria?.stop()]);
  pki?.dispose();
});

describe('sql definitions', () => {
  it('needs exactly one of query and queryFile, unless it only tries the login', () => {
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app' })).toEqual([
      'query: expected one of query or queryFile (or expectError: true)',
    ]);
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app', query: 'select 1', queryFile: 'q.sql' })).toHaveLength(1);
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app', expectError: true })).toEqual([]);
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app', expectError: true, query: 'select 1' })).toEqual([
      'query: expectError only tries to log in: it takes no query, expect or evidence',
    ]);
  });

  it('rejects a URL of the other driver, ?options in it, a file outside probes/, TLS fields without tls', () => {
    expect(problems({ driver: 'mysql', url: 'postgres://a@db/app', query: 'select 1' })).toEqual([
      'url: expected a mysql:// or mariadb:// URL with driver mysql',
    ]);
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app?sslmode=require', query: 'select 1' })).toEqual([
      'url: expected no ?options in the URL: TLS is set with tls, ca and insecure',
    ]);
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app', queryFile: '../etc/passwd' })[0]).toMatch(
      /^queryFile: expected a path inside probes/,
    );
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app', query: 'select 1', insecure: true })).toEqual([
      'insecure: expected tls: true with insecure (the connection is plain)',
    ]);
    expect(problems({ driver: 'postgres', url: 'postgres://a@db/app', query: 'select 1', expect: {} })[0]).toMatch(/^\/expect/);
  });

  it('probes/examples/sql.yaml loads, its passwords from the environment', () => {
    const example = readFileSync(path.resolve(import.meta.dirname, '../../probes/examples/sql.yaml'), 'utf8');
    const ws = workspace({ 'config/default.yaml': 'service: { port: 0 }\n', 'probes/sql.yaml': example });
    try {
      const env = { PG_MONITOR_PASSWORD: 'a', STAGING_DB_PASSWORD: 'b', MYSQL_MONITOR_PASSWORD: 'c' };
      const config = loadConfig({ cwd: ws.dir, env });
      expect(config.probes.map((p) => p.id)).toEqual([
        'db-replica-lag',
        'db-replica-streaming',
        'db-replication-slots-active',
        'shop-migrations-applied',
        'shop-foreign-keys-enforced',
        'prod-db-refuses-staging',
        'shop-orders-last-hour',
      ]);
    } finally {
      ws.remove();
    }
  });
});

describe('sql against PostgreSQL', () => {
  const pg = (fields: Record<string, unknown>) => spec({ driver: 'postgres', url: primary.url, ...fields });

  it('passes when the first value and the row count meet expect, reporting them', async () => {
    const r = await sql.probe(pg({ query: 'SELECT 42::bigint, 1', expect: { eq: 42, lt: 50, gt: 41, rows: 1 } }), probeContext());
    expect(r).toMatchObject({ ok: true, values: { value: 42, rows: 1 } });
    expect(r.values.latency_ms).toBeGreaterThan(0);
    const text = await sql.probe(pg({ query: "SELECT 'streaming'", expect: { eq: 'streaming' } }), probeContext());
    expect(text.ok).toBe(true);
  });

  it('fails a value or a row count that misses, saying which and how', async () => {
    const high = await sql.probe(pg({ query: 'SELECT 42.5', expect: { lt: 30 } }), probeContext());
    expect(high).toMatchObject({ ok: false, code: 'ASSERTION', values: { value: 42.5 } });
    // The URL as shown: never its user and password.
    expect(high.message).toBe(`postgresql://127.0.0.1:${primary.port}/postgres: the first value is 42.5, expected below 30`);
    const rows = await sql.probe(pg({ query: 'SELECT generate_series(1, 3)', expect: { rows: 2 } }), probeContext());
    expect(rows).toMatchObject({ ok: false, code: 'ASSERTION', values: { rows: 3 } });
    expect(rows.message).toMatch(/the query returned 3 rows, expected 2$/);
    const none = await sql.probe(pg({ query: 'SELECT NULL::int', expect: { lt: 30 } }), probeContext());
    expect(none.message).toMatch(/the first value is NULL, not a number \(expected below 30\)$/);
    const text = await sql.probe(pg({ query: "SELECT 'stopped'", expect: { eq: 'streaming' } }), probeContext());
    expect(text.message).toMatch(/the first value is "stopped", expected "streaming"$/);
  });

  it('counts pending migrations from a query file read at each run, relative to the probes folder', async () => {
    const ws = workspace({ 'probes/sql/migrations.sql': 'SELECT count(*) FROM schema_migrations;\n' });
    try {
      const def = pg({ queryFile: 'sql/migrations.sql', expect: { eq: 3 } });
      const ctx = () => probeContext(5_000, { probesDir: `${ws.dir}/probes` });
      expect(await sql.probe(def, ctx())).toMatchObject({ ok: true, values: { value: 3 } });
      await primary.query("INSERT INTO schema_migrations VALUES ('004')");
      expect(await sql.probe(def, ctx())).toMatchObject({ ok: false, code: 'ASSERTION', values: { value: 4 } });
      const missing = await sql.probe(pg({ queryFile: 'sql/nope.sql' }), ctx());
      expect(missing).toMatchObject({ ok: false, code: 'CONFIG' });
      expect(missing.message).toContain('cannot read queryFile');
    } finally {
      await primary.query("DELETE FROM schema_migrations WHERE version = '004'");
      ws.remove();
    }
  });

  it('blocks a write by default (read-only transaction), and rolls back one allowed by readOnly: false', async () => {
    const blocked = await sql.probe(pg({ query: 'INSERT INTO customers VALUES (1)' }), probeContext());
    expect(blocked).toMatchObject({ ok: false, code: 'READ_ONLY' });
    expect(blocked.message).toContain('cannot execute INSERT in a read-only transaction (25006)');
    // A COMMIT inside the query does not escape: the session's default is read-only too.
    const escaped = await sql.probe(pg({ query: 'COMMIT; INSERT INTO customers VALUES (1)' }), probeContext());
    expect(escaped).toMatchObject({ ok: false, code: 'READ_ONLY' });
    const allowed = await sql.probe(pg({ query: 'INSERT INTO customers VALUES (1)', readOnly: false }), probeContext());
    expect(allowed.ok).toBe(true);
    expect(await primary.query('SELECT count(*) FROM customers')).toBe('0');
  });

  it('proves foreign keys enforced with an insert that must fail, inside a DO block', async () => {
    const block = (table: string) => `DO $$ BEGIN
      INSERT INTO ${table} (customer_id) VALUES (-1);
      RAISE EXCEPTION 'foreign key not enforced: the insert into ${table} was accepted';
    EXCEPTION WHEN foreign_key_violation THEN NULL;
    END $$`;
    expect(await sql.probe(pg({ query: block('orders'), readOnly: false }), probeContext())).toMatchObject({ ok: true });
    const loose = await sql.probe(pg({ query: block('loose_orders'), readOnly: false }), probeContext());
    expect(loose).toMatchObject({ ok: false, code: 'QUERY' });
    expect(loose.message).toContain('foreign key not enforced: the insert into loose_orders was accepted (P0001)');
    expect(await primary.query('SELECT count(*) FROM loose_orders')).toBe('0');
  });

  it('expectError passes only on a refused login', async () => {
    const wrong = primary.url.replace(PASSWORD, 'staging-password');
    const refused = await sql.probe(spec({ driver: 'postgres', url: wrong, expectError: true }), probeContext());
    expect(refused).toMatchObject({ ok: true, details: { refused: '28P01' } });
    const right = await sql.probe(spec({ driver: 'postgres', url: primary.url, expectError: true }), probeContext());
    expect(right).toMatchObject({ ok: false, code: 'LOGGED_IN' });
    expect(right.message).toMatch(/logged in to .* as postgres: these credentials reach this database/);
    const port = await closedPort();
    const down = await sql.probe(
      spec({ driver: 'postgres', url: `postgres://postgres:x@127.0.0.1:${port}/postgres`, expectError: true }),
      probeContext(),
    );
    expect(down).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(down.message).toBe(
      `cannot connect to postgres://127.0.0.1:${port}/postgres: connection refused (ECONNREFUSED): nothing was checked (expectError passes only when the server refuses the login)`,
    );
  });

  it('connects over TLS, trusting ca, and names an untrusted certificate', async () => {
    const trusted = await sql.probe(
      pg({ query: 'SELECT ssl::int FROM pg_stat_ssl WHERE pid = pg_backend_pid()', expect: { eq: 1 }, tls: true, ca: pki.root.cert }),
      probeContext(),
    );
    expect(trusted).toMatchObject({ ok: true, values: { value: 1 } });
    const untrusted = await sql.probe(pg({ query: 'SELECT 1', tls: true }), probeContext());
    expect(untrusted).toMatchObject({ ok: false, code: 'TLS' });
    expect(untrusted.message).toMatch(
      /^TLS with postgresql:\/\/127\.0\.0\.1:\d+\/postgres failed: .*\(add its CA with ca:, or set insecure: true\)$/,
    );
    expect(await sql.probe(pg({ query: 'SELECT 1', tls: true, insecure: true }), probeContext())).toMatchObject({ ok: true });
  });

  it('ends a query that runs past the deadline as TIMEOUT, the server cancelling the backend', async () => {
    const t = Date.now();
    const r = await sql.probe(pg({ query: 'SELECT pg_sleep(5)' }), probeContext(1_000));
    expect(Date.now() - t).toBeLessThan(1_500);
    expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(r.message).toMatch(/ran past the run's deadline: the server cancelled it after .* \(57014\)$/);
    expect(await primary.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'")).toBe('0');
  });

  it('an abort mid-query cuts the connection at once', async () => {
    const ctx = probeContext(5_000);
    const ac = new AbortController();
    const t = Date.now();
    const run = sql.probe(pg({ query: 'SELECT pg_sleep(5)' }), { ...ctx, signal: ac.signal });
    await waitFor(
      'the query to run',
      async () => (await primary.query("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)'")) === '1',
    );
    ac.abort();
    const r = await run;
    expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(Date.now() - t).toBeLessThan(3_000);
  });
});

describe('sql replication checks on a streaming replica', () => {
  const onReplica = (fields: Record<string, unknown>) => spec({ driver: 'postgres', url: replica.url, evidence: 'replication', ...fields });
  const LAG = 'SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())';
  const STREAMING = "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'";

  it('the replay lag is small and the WAL receiver streams while the primary is up', async () => {
    await primary.query('CREATE TABLE heartbeat (at timestamptz); INSERT INTO heartbeat VALUES (now())');
    await waitFor('the replica to replay the heartbeat', async () => (await replica.query('SELECT count(*) FROM heartbeat')) === '1');
    const lag = await sql.probe(onReplica({ query: LAG, expect: { lt: 30 } }), probeContext());
    expect(lag).toMatchObject({ ok: true });
    expect(lag.values.value).toBeGreaterThanOrEqual(0);
    expect(lag.values.value).toBeLessThan(30);
    expect(await sql.probe(onReplica({ query: STREAMING, expect: { eq: 1 } }), probeContext())).toMatchObject({
      ok: true,
      values: { value: 1 },
    });
  });

  it('with the primary stopped, the streaming check fails and the lag keeps growing', async () => {
    const before = await sql.probe(onReplica({ query: LAG }), probeContext());
    await primary.stop();
    await waitFor('the WAL receiver to stop', async () => (await replica.query(STREAMING)) === '0');
    const streaming = await sql.probe(onReplica({ query: STREAMING, expect: { eq: 1 } }), probeContext());
    expect(streaming).toMatchObject({ ok: false, code: 'ASSERTION', values: { value: 0 } });
    expect(streaming.message).toMatch(/the first value is 0, expected 1$/);
    const after = await sql.probe(onReplica({ query: LAG }), probeContext());
    expect(after.values.value).toBeGreaterThan(before.values.value ?? Number.POSITIVE_INFINITY);
  });
});

describe('sql against MariaDB', () => {
  const my = (fields: Record<string, unknown>) => spec({ driver: 'mysql', url: maria.url, ...fields });

  it('passes a query whose first value meets expect', async () => {
    const r = await sql.probe(my({ query: 'SELECT 7, 1', expect: { eq: 7, rows: 1 } }), probeContext());
    expect(r).toMatchObject({ ok: true, values: { value: 7, rows: 1 } });
    const multi = await sql.probe(my({ query: 'SET @x = 5; SELECT @x + 1', expect: { eq: 6 } }), probeContext());
    expect(multi).toMatchObject({ ok: true, values: { value: 6 } });
  });

  it('expectError passes on a wrong password and fails when the login works', async () => {
    const wrong = maria.url.replace(maria.password, 'staging-password');
    const refused = await sql.probe(spec({ driver: 'mysql', url: wrong, expectError: true }), probeContext());
    expect(refused).toMatchObject({ ok: true, details: { refused: 'ER_ACCESS_DENIED_ERROR' } });
    const right = await sql.probe(spec({ driver: 'mysql', url: maria.url, expectError: true }), probeContext());
    expect(right).toMatchObject({ ok: false, code: 'LOGGED_IN' });
  });

  it('blocks a write in the read-only transaction', async () => {
    await maria.query('CREATE TABLE vigil.t (i int)');
    const r = await sql.probe(my({ query: 'INSERT INTO t VALUES (1)' }), probeContext());
    expect(r).toMatchObject({ ok: false, code: 'READ_ONLY' });
    expect(r.message).toContain('ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION');
  });

  it('an abort mid-query cuts the connection at once', async () => {
    const ac = new AbortController();
    const t = Date.now();
    const run = sql.probe(my({ query: 'SELECT SLEEP(4)' }), { ...probeContext(5_000), signal: ac.signal });
    const asleep = "SELECT count(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(4)'";
    await waitFor('the query to run', async () => (await maria.query(asleep)) === '1');
    ac.abort();
    expect(await run).toMatchObject({ ok: false, code: 'TIMEOUT' });
    expect(Date.now() - t).toBeLessThan(3_000);
    // The server does not notice a client gone mid-SLEEP: its max_statement_time (the run's deadline) ends the query.
  });

  it('ends a query that runs past the deadline as TIMEOUT, the server stopping it', async () => {
    const t = Date.now();
    const r = await sql.probe(my({ query: 'SELECT SLEEP(5) FROM DUAL WHERE 1 = (SELECT 1)' }), probeContext(1_000));
    expect(Date.now() - t).toBeLessThan(1_500);
    expect(r).toMatchObject({ ok: false, code: 'TIMEOUT' });
    const sleeping = await maria.query("SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(5) FROM DUAL%'");
    expect(sleeping).toBe('0');
  });
});
