import { execFileSync, spawn } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Where Debian puts the PostgreSQL 15 server and client binaries. */
export const PG_BIN = process.env.VIGIL_TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A private PostgreSQL cluster started for a test file. */
export interface TestPostgres {
  /** `postgresql://postgres[:password]@127.0.0.1:<port>/postgres`. */
  url: string;
  host: string;
  port: number;
  /** The superuser's password over TCP, when the cluster was started with one. */
  password?: string;
  /** The unix socket directory: connections through it are trusted (no password). */
  socketDir: string;
  /** Folder of the server and client binaries the cluster was made with. */
  bin: string;
  /** libpq environment (PGHOST=socket dir, PGPORT, PGUSER) for client tools run by the test. */
  env: Record<string, string>;
  /** Runs SQL through psql over the socket; returns unaligned, tuples-only output (`a|b` per row). */
  query(sql: string, database?: string): Promise<string>;
  /** Stops the server at once (`pg_ctl stop -m immediate`) and removes its folder. */
  stop(): Promise<void>;
}

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Require this password on TCP connections (scram-sha-256); the socket stays trusted. */
  password?: string;
  bin?: string;
  /** Serve TLS (`ssl = on`) with this certificate and key (PEM); plain connections stay allowed. */
  ssl?: { cert: string; key: string };
}

/**
 * Starts a throwaway cluster in a temp folder, on a free port, listening on 127.0.0.1 and on a
 * socket in that folder. PostgreSQL refuses to run as root, so when the tests run as root the
 * server-side tools run as the `postgres` user. Durability is off: it is a test fixture.
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<TestPostgres> {
  const bin = opts.bin ?? PG_BIN;
  const asServer = serverUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-pg-'));
  const data = path.join(dir, 'data');
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    if (asServer) await chown(dir, asServer.uid, asServer.gid);
    const initArgs = ['-D', data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--auth-local=trust'];
    if (opts.password !== undefined) {
      const pwfile = path.join(dir, 'pwfile');
      await writeFile(pwfile, `${opts.password}\n`, { mode: 0o600 });
      if (asServer) await chown(pwfile, asServer.uid, asServer.gid);
      initArgs.push('--auth-host=scram-sha-256', `--pwfile=${pwfile}`);
    } else {
      initArgs.push('--auth-host=trust');
    }
    await exec(asServer, path.join(bin, 'initdb'), initArgs);
    const port = await freePort();
    let serverOpts = `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
    if (opts.ssl !== undefined) {
      // The server refuses a key file others can read, and reads both as its own user.
      const certFile = path.join(dir, 'server.crt');
      const keyFile = path.join(dir, 'server.key');
      await writeFile(certFile, opts.ssl.cert, { mode: 0o644 });
      await writeFile(keyFile, opts.ssl.key, { mode: 0o600 });
      if (asServer) {
        await chown(certFile, asServer.uid, asServer.gid);
        await chown(keyFile, asServer.uid, asServer.gid);
      }
      serverOpts += ` -c ssl=on -c ssl_cert_file=${certFile} -c ssl_key_file=${keyFile}`;
    }
    await exec(asServer, path.join(bin, 'pg_ctl'), [
      'start',
      '-D',
      data,
      '-l',
      path.join(dir, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      serverOpts,
    ]);
    const stopNow = () => {
      try {
        const [cmd, args] = command(asServer, path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate']);
        execFileSync(cmd, args, { stdio: 'ignore' });
      } catch {
        // already stopped
      }
    };
    // A crashed test run must not leave a postmaster behind.
    process.once('exit', stopNow);
    const env = { PGHOST: dir, PGPORT: String(port), PGUSER: 'postgres' };
    const auth = opts.password === undefined ? 'postgres' : `postgres:${encodeURIComponent(opts.password)}`;
    return {
      url: `postgresql://${auth}@127.0.0.1:${port}/postgres`,
      host: '127.0.0.1',
      port,
      password: opts.password,
      socketDir: dir,
      bin,
      env,
      query: (sql, database = 'postgres') =>
        exec(undefined, path.join(bin, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql], env).then(
          (out) => out.trim(),
        ),
      async stop() {
        process.removeListener('exit', stopNow);
        await exec(asServer, path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate']).catch(() => {});
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The `postgres` account to run server tools as, when we are root (PostgreSQL refuses root). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function command(asServer: { uid: number } | undefined, cmd: string, args: string[]): [string, string[]] {
  return asServer ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function exec(asServer: { uid: number } | undefined, cmd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const [file, argv] = command(asServer, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${path.basename(cmd)} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/** A port that was free a moment ago: bind port 0, read what the kernel gave, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A streaming replica of `primary`: `pg_basebackup -R` into its own temp folder (which writes the
 * primary's address into postgresql.auto.conf and a standby.signal), started on another free port.
 * Its `stop()` leaves the primary running; stopping the primary leaves the replica up, its WAL
 * receiver retrying.
 */
export async function startReplica(primary: TestPostgres): Promise<TestPostgres> {
  const asServer = serverUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-pg-replica-'));
  const data = path.join(dir, 'data');
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    if (asServer) await chown(dir, asServer.uid, asServer.gid);
    // Over the primary's socket, which is trusted for replication as for everything else.
    await exec(asServer, path.join(primary.bin, 'pg_basebackup'), [
      '-h',
      primary.socketDir,
      '-p',
      String(primary.port),
      '-U',
      'postgres',
      '-D',
      data,
      '-R',
      '-X',
      'stream',
      '--no-sync',
    ]);
    const port = await freePort();
    const serverOpts = `-k ${dir} -p ${port} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on -c wal_receiver_status_interval=1s -c wal_retrieve_retry_interval=500ms`;
    await exec(asServer, path.join(primary.bin, 'pg_ctl'), [
      'start',
      '-D',
      data,
      '-l',
      path.join(dir, 'server.log'),
      '-w',
      '-t',
      '30',
      '-o',
      serverOpts,
    ]);
    const stopNow = () => {
      try {
        const [cmd, args] = command(asServer, path.join(primary.bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate']);
        execFileSync(cmd, args, { stdio: 'ignore' });
      } catch {
        // already stopped
      }
    };
    process.once('exit', stopNow);
    const env = { PGHOST: dir, PGPORT: String(port), PGUSER: 'postgres' };
    return {
      url: primary.url.replace(`:${primary.port}/`, `:${port}/`),
      host: '127.0.0.1',
      port,
      password: primary.password,
      socketDir: dir,
      bin: primary.bin,
      env,
      query: (sql, database = 'postgres') =>
        exec(
          undefined,
          path.join(primary.bin, 'psql'),
          ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql],
          env,
        ).then((out) => out.trim()),
      async stop() {
        process.removeListener('exit', stopNow);
        await exec(asServer, path.join(primary.bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate']).catch(() => {});
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
