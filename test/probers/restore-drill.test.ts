import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, open, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Value } from '@sinclair/typebox/value';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { definitionSchema } from '../../src/config/schema.js';
import { connection, scratchName } from '../../src/probers/restore-drill/postgres.js';
import { globToRegExp, restoreDrill } from '../../src/probers/restore-drill.js';
import { probeContext } from '../helpers/context.js';
import { PG_BIN, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const run = promisify(execFile);
type Spec = Parameters<typeof restoreDrill.probe>[0];

const PASSWORD = 'drill pa55:w@rd';
let pg: TestPostgres;
let work: string;

/** A definition as config would hand it over: schema defaults applied, validated, checked. */
function definition(fields: Record<string, unknown>): Spec {
  const schema = definitionSchema(restoreDrill.schema);
  const def = Value.Default(
    schema,
    structuredClone({ id: 'db-restore', kind: 'restore-drill', schedule: '30 3 * * *', timeout: '30s', ...fields }),
  );
  expect([...Value.Errors(schema, def)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  expect(restoreDrill.check?.(def as Spec)).toEqual([]);
  return def as Spec;
}

/** A folder holding copies of the given backups, with their mtimes `ageS` seconds in the past. */
async function backupDir(files: Array<{ from: string; name: string; ageS?: number }>): Promise<string> {
  const dir = await mkdtemp(path.join(work, 'src-'));
  for (const f of files) {
    const to = path.join(dir, f.name);
    await copyFile(f.from, to);
    const t = new Date(Date.now() - (f.ageS ?? 60) * 1000);
    await utimes(to, t, t);
  }
  return dir;
}

const pgChecks = [
  { table: 'users', minRows: 1 },
  { table: 'public.orders', minRows: 5 },
  { sql: 'select count(*) from orders where total < 0', expect: 0 },
];

function pgDefinition(dir: string, extra: Record<string, unknown> = {}): Spec {
  return definition({
    source: { type: 'postgres', dir, glob: '*.dump' },
    // The server's own binaries: faster than Debian's wrappers on PATH, which the first test uses.
    target: { url: pg.url, binDir: PG_BIN },
    maxAge: '1h',
    rto: '4h',
    checks: pgChecks,
    ...extra,
  });
}

async function scratchDatabases(): Promise<string[]> {
  const out = await pg.query(`select datname from pg_database where datname like 'vigil\\_drill\\_%' order by 1`);
  return out === '' ? [] : out.split('\n');
}

const dumps = { custom: '', plain: '', plainGz: '', create: '', truncated: '', sleepy: '' };

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'vigil-drill-test-'));
  pg = await startPostgres({ password: PASSWORD });
  await pg.query('create database shop');
  await pg.query(
    `create table users (id int primary key, email text not null unique);
     create table orders (id int primary key, user_id int not null references users, total numeric(10,2) not null);
     create index orders_user on orders (user_id);
     insert into users select g, 'u' || g || '@example.com' from generate_series(1, 3) g;
     insert into orders select g, 1 + g % 3, g * 10.5 from generate_series(1, 5) g;`,
    'shop',
  );
  const dump = (args: string[]) => run(path.join(PG_BIN, 'pg_dump'), [...args, 'shop'], { env: { ...process.env, ...pg.env } });
  dumps.custom = path.join(work, 'shop.dump');
  dumps.plain = path.join(work, 'shop.sql');
  dumps.create = path.join(work, 'shop-create.sql');
  await dump(['-Fc', '-f', dumps.custom]);
  await dump(['-Fp', '--no-owner', '-f', dumps.plain]);
  await dump(['-Fp', '--create', '-f', dumps.create]);
  dumps.plainGz = path.join(work, 'shop.sql.gz');
  await writeFile(dumps.plainGz, gzipSync(await readFile(dumps.plain)));
  // Cut inside the table data, past the TOC: `pg_restore -l` still reads it (CONTRACTS.md).
  dumps.truncated = path.join(work, 'shop-truncated.dump');
  await copyFile(dumps.custom, dumps.truncated);
  await truncate(dumps.truncated, Math.floor((await stat(dumps.custom)).size * 0.8));
  // A valid plain dump that takes 30 s to restore: for the deadline.
  dumps.sleepy = path.join(work, 'sleepy.sql');
  await writeFile(dumps.sleepy, 'select pg_sleep(30);\n--\n-- PostgreSQL database dump complete\n--\n');
});

afterAll(async () => {
  await pg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('restore-drill: postgres', () => {
  afterEach(async () => {
    // The promise of the kind: whatever happened, no scratch database survives a run.
    expect(await scratchDatabases()).toEqual([]);
  });

  it('restores a good custom-format dump, verifies it and reports its numbers', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop-0300.dump', ageS: 120 }]);
    const res = await restoreDrill.probe(pgDefinition(dir, { target: { url: pg.url } }), probeContext(20_000));
    expect(res.message).toBeUndefined();
    expect(res.ok).toBe(true);
    expect(res.values.rows_checked).toBe(3 + 5);
    expect(res.values.backup_bytes).toBe((await stat(dumps.custom)).size);
    expect(res.values.backup_age_s).toBeGreaterThanOrEqual(119);
    expect(res.values.backup_age_s).toBeLessThan(130);
    expect(res.values.restore_s).toBeGreaterThan(0);
    expect(res.values.verify_s).toBeGreaterThan(0);
    expect(res.details).toMatchObject({ file: path.join(dir, 'shop-0300.dump'), format: 'custom' });
    expect(res.details?.scratchDatabase).toMatch(/^vigil_drill_db_restore_\d{14}_[0-9a-f]{6}$/);
    expect(res.details?.checks).toEqual([
      { name: 'table users', ok: true, expected: 'at least 1 row', got: '3 rows' },
      { name: 'table public.orders', ok: true, expected: 'at least 5 rows', got: '5 rows' },
      { name: '"select count(*) from orders where total < 0"', ok: true, expected: '0', got: '0' },
    ]);
    expect(restoreDrill.values(pgDefinition(dir))).toEqual(expect.arrayContaining(Object.keys(res.values)));
  });

  it('picks the newest backup by modification time, and checks a matching .sha256', async () => {
    const dir = await backupDir([
      { from: dumps.truncated, name: 'shop-0100.dump', ageS: 7200 },
      { from: dumps.custom, name: 'shop-0300.dump', ageS: 60 },
      { from: dumps.truncated, name: 'notes.txt', ageS: 1 },
    ]);
    await run('sha256sum', ['shop-0300.dump'], { cwd: dir }).then(({ stdout }) =>
      writeFile(path.join(dir, 'shop-0300.dump.sha256'), stdout),
    );
    const res = await restoreDrill.probe(
      pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.dump', checksum: 'required' } }),
      probeContext(20_000),
    );
    expect(res.ok).toBe(true);
    expect(res.details?.file).toBe(path.join(dir, 'shop-0300.dump'));
  });

  it('fails a truncated dump at the restore step, naming the file and pg_restore stderr', async () => {
    const dir = await backupDir([{ from: dumps.truncated, name: 'shop.dump' }]);
    const res = await restoreDrill.probe(pgDefinition(dir), probeContext(20_000));
    expect(res.ok).toBe(false);
    expect(res.code).toBe('RESTORE_FAILED');
    expect(res.message).toContain(`restore: pg_restore could not restore ${path.join(dir, 'shop.dump')} into vigil_drill_db_restore_`);
    expect(res.message).toMatch(/pg_restore exited 1: .*pg_restore: error: /);
    expect(res.values.restore_s).toBeUndefined();
    expect(res.values.backup_age_s).toBeGreaterThan(0);
  });

  it('fails a stale backup on freshness, before restoring anything', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump', ageS: 3 * 3600 }]);
    const res = await restoreDrill.probe(pgDefinition(dir), probeContext(20_000));
    expect(res.code).toBe('BACKUP_STALE');
    expect(res.message).toMatch(
      new RegExp(`^freshness: newest backup ${path.join(dir, 'shop.dump')} is 3h old \\(written \\d{4}-.*Z\\); limit 1h \\+ 10% grace$`),
    );
    expect(res.values.backup_age_s).toBeGreaterThanOrEqual(3 * 3600);
    expect(res.values.restore_s).toBeUndefined();
  });

  it('fails when the .sha256 beside the backup does not match', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    await writeFile(path.join(dir, 'shop.dump.sha256'), `${'ab'.repeat(32)}  shop.dump\n`);
    const res = await restoreDrill.probe(pgDefinition(dir), probeContext(20_000));
    expect(res.code).toBe('CHECKSUM_MISMATCH');
    expect(res.message).toContain(`checksum: ${path.join(dir, 'shop.dump')} has sha256 `);
    expect(res.message).toContain('shop.dump.sha256 says abababababababab…');
  });

  it('fails verification naming each failing check with expected and got', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    const checks = [
      { table: 'users', minRows: 10 },
      { sql: 'select count(*) from orders', expect: 999, name: 'order count' },
      { sql: 'select email from users where id = 2', expect: 'u2@example.com' },
      { table: 'invoices' },
    ];
    const res = await restoreDrill.probe(pgDefinition(dir, { checks }), probeContext(20_000));
    expect(res.code).toBe('VERIFY_FAILED');
    expect(res.message).toContain(`verify: 3 of 4 checks failed on ${path.join(dir, 'shop.dump')}: `);
    expect(res.message).toContain('table users: expected at least 10 rows, got 3 rows');
    expect(res.message).toContain('order count: expected 999, got 5');
    expect(res.message).toContain('table invoices: expected at least 1 row, got ERROR:  relation "invoices" does not exist');
    expect(res.values.restore_s).toBeGreaterThan(0);
  });

  it('runs SQL checks kept in a file under the probes folder', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    const probesDir = path.resolve('probes');
    const res = await restoreDrill.probe(
      pgDefinition(dir, { checks: [{ file: 'restore/orders-consistency.sql', expect: 0 }] }),
      probeContext(20_000, { probesDir }),
    );
    expect(res.details?.checks).toEqual([{ name: 'restore/orders-consistency.sql', ok: true, expected: '0', got: '0' }]);
    expect(res.ok).toBe(true);
  });

  it('restores plain SQL dumps with psql, gzipped or not', async () => {
    for (const [from, name] of [
      [dumps.plain, 'shop.sql'],
      [dumps.plainGz, 'shop.sql.gz'],
    ] as const) {
      const dir = await backupDir([{ from, name }]);
      const res = await restoreDrill.probe(pgDefinition(dir, { source: { type: 'postgres', dir } }), probeContext(20_000));
      expect(res.message).toBeUndefined();
      expect(res.details?.format).toBe(name.endsWith('.gz') ? 'plain-gzip' : 'plain');
      expect(res.values.rows_checked).toBe(8);
    }
  });

  it('fails truncated plain dumps: a cut SQL file by its missing trailer, a cut gzip by gunzip', async () => {
    const text = await readFile(dumps.plain);
    const cut = text.subarray(0, Math.floor(text.length * 0.7));
    const dir = await mkdtemp(path.join(work, 'src-'));
    await writeFile(path.join(dir, 'shop.sql'), cut);
    let res = await restoreDrill.probe(pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.sql' } }), probeContext(20_000));
    expect(res.code).toBe('RESTORE_FAILED');
    expect(res.message).toMatch(
      /^restore: psql could not restore .*shop\.sql into vigil_drill_.*: psql exited 3: psql:<stdin>:\d+: ERROR: /,
    );

    // Cut between two statements: psql applies what is there and exits 0; only the trailer tells.
    await writeFile(path.join(dir, 'shop.sql'), text.subarray(0, text.lastIndexOf('--\n-- PostgreSQL database dump complete')));
    res = await restoreDrill.probe(pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.sql' } }), probeContext(20_000));
    expect(res.code).toBe('RESTORE_FAILED');
    expect(res.message).toBe(
      `restore: ${path.join(dir, 'shop.sql')} does not end with pg_dump's "-- PostgreSQL database dump complete" line: the dump is truncated or was not written by pg_dump (psql applied what was there)`,
    );

    await rm(path.join(dir, 'shop.sql'));
    const gz = gzipSync(text);
    await writeFile(path.join(dir, 'shop.sql.gz'), gz.subarray(0, gz.length - 40));
    res = await restoreDrill.probe(pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.gz' } }), probeContext(20_000));
    expect(res.code).toBe('RESTORE_FAILED');
    expect(res.message).toContain('reading the backup failed: unexpected end of file');
  });

  it('refuses a plain dump made with --create: it would restore over the real database', async () => {
    const dir = await backupDir([{ from: dumps.create, name: 'shop.sql' }]);
    const res = await restoreDrill.probe(pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.sql' } }), probeContext(20_000));
    expect(res.code).toBe('RESTORE_FAILED');
    expect(res.message).toContain('refusing a plain dump that creates or switches databases');
  });

  it('fails when the restore takes longer than the RTO', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    const res = await restoreDrill.probe(pgDefinition(dir, { rto: '1ms' }), probeContext(20_000));
    expect(res.code).toBe('RTO_EXCEEDED');
    expect(res.message).toMatch(/^rto: restoring .*shop\.dump took \d+(\.\d+)?m?s, over the 1ms RTO$/);
  });

  it('passes pg_amcheck on a sound restore, with the password given as target.password', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    const url = `postgresql://postgres@127.0.0.1:${pg.port}/postgres`;
    const target = { url, password: PASSWORD, binDir: PG_BIN };
    const res = await restoreDrill.probe(pgDefinition(dir, { target, amcheck: true }), probeContext(20_000));
    expect(res.message).toBeUndefined();
    expect(res.details?.checks).toContainEqual({ name: 'pg_amcheck', ok: true, expected: 'no corruption', got: 'no corruption' });
    // The tools get it in their environment, never as an argument.
    expect(connection(target).env).toMatchObject({
      PGHOST: '127.0.0.1',
      PGPORT: String(pg.port),
      PGUSER: 'postgres',
      PGPASSWORD: PASSWORD,
    });
  });

  it('kills the restore at the deadline and still drops the scratch database', async () => {
    const dir = await backupDir([{ from: dumps.sleepy, name: 'sleepy.sql' }]);
    const started = Date.now();
    const res = await restoreDrill.probe(
      pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.sql' }, timeout: '1500ms' }),
      probeContext(1_500),
    );
    expect(res.code).toBe('TIMEOUT');
    expect(res.message).toMatch(
      /^restore: timed out after 1\.\d+s at .*sleepy\.sql \(the run's timeout 1500ms is shorter than the 4h RTO: raise timeout\)$/,
    );
    expect(Date.now() - started).toBeLessThan(8_000);
    // No backend left running the restore's pg_sleep.
    expect(await pg.query(`select count(*) from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()`)).toBe('0');
  });

  it('drops scratch databases a crashed vigil left behind, but not a recent one', async () => {
    const old = 'vigil_drill_db_restore_20200101000000_abcdef';
    const recent = scratchName('db-restore', Date.now());
    await pg.query(`create database ${old}`);
    await pg.query(`create database ${recent}`);
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    const res = await restoreDrill.probe(pgDefinition(dir), probeContext(20_000));
    expect(res.ok).toBe(true);
    expect(res.details?.leftoversDropped).toEqual([old]);
    expect(await scratchDatabases()).toEqual([recent]);
    await pg.query(`drop database ${recent}`);
  });

  it('fails with CONNECT on a bad password, without printing it', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump' }]);
    const wrong = 'n0t-the-Pa55word';
    const url = `postgresql://postgres:${wrong}@127.0.0.1:${pg.port}/postgres`;
    const res = await restoreDrill.probe(pgDefinition(dir, { target: { url, binDir: PG_BIN } }), probeContext(20_000));
    expect(res.code).toBe('CONNECT');
    expect(res.message).toContain('password authentication failed for user "postgres"');
    expect(JSON.stringify(res)).not.toContain(wrong);
  });

  it('skips a backup still being written (settle) and says so', async () => {
    const dir = await backupDir([{ from: dumps.custom, name: 'shop.dump', ageS: 10 }]);
    const res = await restoreDrill.probe(
      pgDefinition(dir, { source: { type: 'postgres', dir, glob: '*.dump', settle: '1m' } }),
      probeContext(5_000),
    );
    expect(res.code).toBe('BACKUP_MISSING');
    expect(res.message).toBe(`find: no backup matching "*.dump" in ${dir} (1 still being written: modified within the last 1m)`);
  });

  it('fails with BACKUP_MISSING when nothing matches or the folder does not exist', async () => {
    const dir = await backupDir([{ from: dumps.plain, name: 'shop.sql' }]);
    let res = await restoreDrill.probe(pgDefinition(dir), probeContext(5_000));
    expect(res).toMatchObject({ ok: false, code: 'BACKUP_MISSING', message: `find: no backup matching "*.dump" in ${dir}` });
    res = await restoreDrill.probe(pgDefinition(path.join(dir, 'nope')), probeContext(5_000));
    expect(res.code).toBe('BACKUP_MISSING');
    expect(res.message).toBe(`find: cannot read backup folder ${path.join(dir, 'nope')}: it does not exist`);
  });
});

describe('restore-drill: sqlite', () => {
  let good: string;
  let scratch: string;

  beforeAll(async () => {
    good = path.join(work, 'store.db');
    const db = new Database(good);
    db.exec(`create table users (id integer primary key, email text not null);
             create table orders (id integer primary key, user_id integer not null, total real not null);
             create index orders_user on orders (user_id);`);
    const addUser = db.prepare('insert into users (email) values (?)');
    const addOrder = db.prepare('insert into orders (user_id, total) values (?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= 2000; i++) addUser.run(`user-${i}-${'x'.repeat(40)}@example.com`);
      for (let i = 1; i <= 50; i++) addOrder.run(1 + (i % 2000), i * 1.5);
    })();
    db.close();
    scratch = await mkdtemp(path.join(work, 'scratch-'));
  });

  afterEach(async () => {
    // The working copy is deleted after every run.
    expect(await readdir(scratch)).toEqual([]);
  });

  const sqliteDefinition = (dir: string, checks: unknown[], extra: Record<string, unknown> = {}) =>
    definition({ source: { type: 'sqlite', dir }, target: { dir: scratch }, checks, ...extra });

  it('passes a good backup: integrity_check and the checks, with row counts', async () => {
    // 65 minutes old: inside 1h plus the 10 % grace.
    const dir = await backupDir([{ from: good, name: 'store-0300.db', ageS: 65 * 60 }]);
    const checks = [
      { table: 'users', minRows: 2000 },
      { table: 'orders' },
      { sql: 'select count(*) from orders where total < 0', expect: 0 },
    ];
    const res = await restoreDrill.probe(sqliteDefinition(dir, checks), probeContext(20_000));
    expect(res.message).toBeUndefined();
    expect(res.values.rows_checked).toBe(2050);
    expect(res.values.backup_age_s).toBeGreaterThanOrEqual(65 * 60);
    expect(res.values.restore_s).toBeGreaterThanOrEqual(0);
    expect(res.details?.checks).toContainEqual({ name: 'integrity_check', ok: true, expected: 'ok', got: 'ok' });
  });

  it('fails a corrupt backup on integrity_check', async () => {
    const dir = await backupDir([{ from: good, name: 'store.db' }]);
    const fh = await open(path.join(dir, 'store.db'), 'r+');
    // Scribble over the middle of the users table's pages (page 1 is the schema, keep it).
    await fh.write(Buffer.alloc(8192, 0x5a), 0, 8192, 4096 * 4);
    await fh.close();
    const res = await restoreDrill.probe(sqliteDefinition(dir, [{ table: 'users' }]), probeContext(20_000));
    expect(res.code).toBe('VERIFY_FAILED');
    expect(res.message).toMatch(/^verify: integrity_check failed on .*store\.db: expected ok, got .+/);
  });

  it('fails a file that is not a SQLite database at the restore step', async () => {
    const dir = await backupDir([{ from: dumps.plain, name: 'store.db' }]);
    const res = await restoreDrill.probe(sqliteDefinition(dir, []), probeContext(20_000));
    expect(res.code).toBe('RESTORE_FAILED');
    expect(res.message).toMatch(/^restore: .*store\.db does not open as a SQLite database: file is not a database/);
  });

  it('fails a check mismatch with expected and got', async () => {
    const dir = await backupDir([{ from: good, name: 'store.sqlite' }]);
    const checks = [
      { sql: 'select count(*) from orders', expect: 51 },
      { sql: 'select count(*) > 0 from users', expect: true },
    ];
    const res = await restoreDrill.probe(sqliteDefinition(dir, checks), probeContext(20_000));
    expect(res.code).toBe('VERIFY_FAILED');
    expect(res.message).toBe(
      `verify: 1 of 3 checks failed on ${path.join(dir, 'store.sqlite')}: "select count(*) from orders": expected 51, got 50`,
    );
  });

  it('fails a stale or wrongly-summed sqlite backup before copying it', async () => {
    let dir = await backupDir([{ from: good, name: 'store.db', ageS: 2 * 3600 }]);
    expect((await restoreDrill.probe(sqliteDefinition(dir, []), probeContext(5_000))).code).toBe('BACKUP_STALE');
    dir = await backupDir([{ from: good, name: 'store.db' }]);
    await writeFile(path.join(dir, 'store.db.sha256'), `${'0'.repeat(64)} *store.db\n`);
    expect((await restoreDrill.probe(sqliteDefinition(dir, []), probeContext(5_000))).code).toBe('CHECKSUM_MISMATCH');
  });
});

describe('restore-drill: definitions', () => {
  it('accepts the shipped examples', async () => {
    const text = await readFile('probes/examples/restore-drill.yaml', 'utf8');
    const items = parse(
      text.replaceAll(/\$\{DRILL_PG_URL\}/g, 'postgresql://drill@db:5432/postgres').replaceAll(/\$\{file:[^}]+\}/g, 'x'),
    ) as unknown[];
    expect(items.length).toBeGreaterThanOrEqual(2);
    for (const item of items) definition(item as Record<string, unknown>);
  });

  it('reports a missing or bad target URL without echoing it', () => {
    const schema = definitionSchema(restoreDrill.schema);
    const base = { id: 'x', kind: 'restore-drill', schedule: '* * * * *', source: { type: 'postgres', dir: '/b' } };
    const noUrl = Value.Default(schema, structuredClone(base)) as Spec;
    expect(restoreDrill.check?.(noUrl)).toEqual([
      { path: 'target.url', message: 'expected a postgres:// URL of a server where scratch databases may be created' },
    ]);
    const bad = Value.Default(schema, { ...structuredClone(base), target: { url: 'mysql://root:hunter2@db/x' } }) as Spec;
    const problems = restoreDrill.check?.(bad) ?? [];
    expect(problems).toEqual([{ path: 'target.url', message: 'expected a postgres:// or postgresql:// URL, got a mysql: URL' }]);
    const sqlite = Value.Default(schema, { ...structuredClone(base), source: { type: 'sqlite', dir: '/b' }, amcheck: true }) as Spec;
    expect(restoreDrill.check?.(sqlite)).toEqual([{ path: 'amcheck', message: expect.stringContaining('postgres source') }]);
  });

  it('matches file-name globs like a shell', () => {
    expect(globToRegExp('*.dump').test('shop.dump')).toBe(true);
    expect(globToRegExp('*.dump').test('shop.dump.sha256')).toBe(false);
    expect(globToRegExp('*.dump').test('.shop.dump')).toBe(false);
    expect(globToRegExp('shop-??.{sql,sql.gz}').test('shop-03.sql.gz')).toBe(true);
    expect(globToRegExp('shop-[0-9]*.dump').test('shop-x.dump')).toBe(false);
  });
});
