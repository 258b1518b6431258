import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './postgres.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

/** A private MariaDB server started for a test file. */
export interface TestMariadb {
  host: string;
  port: number;
  /** A user with a password (mysql_native_password) and every right: `mysql://vigil:<password>@127.0.0.1:<port>/vigil`. */
  url: string;
  user: string;
  password: string;
  /** Runs SQL as root through the server's socket with the `mariadb` client; returns tab-separated rows. */
  query(sql: string): Promise<string>;
  /** Kills the server and removes its folder. */
  stop(): Promise<void>;
}

/**
 * `mariadb-install-db` into a temp folder, then `mariadbd` on a free loopback port with its socket
 * in that folder. Grant tables are on (no skip-grant-tables): the test user logs in with a real
 * password, so a wrong one is refused as in production. As root the server runs as root
 * (`--user=root`); durability is off, it is a fixture.
 */
export async function startMariadb(): Promise<TestMariadb> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vigil-mariadb-'));
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mariadb.sock');
  const user = process.getuid?.() === 0 ? ['--user=root'] : [];
  let child: ChildProcess | undefined;
  const kill = () => child?.kill('SIGKILL');
  try {
    await run('mariadb-install-db', [
      '--no-defaults',
      `--datadir=${data}`,
      ...user,
      '--skip-test-db',
      '--auth-root-authentication-method=socket',
    ]);
    const port = await freePort();
    child = spawn(
      'mariadbd',
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${path.join(dir, 'mariadb.pid')}`,
        `--log-error=${path.join(dir, 'error.log')}`,
        '--skip-log-bin',
        '--innodb-buffer-pool-size=16M',
        '--innodb-flush-log-at-trx-commit=0',
        '--skip-name-resolve',
        ...user,
      ],
      { stdio: 'ignore' },
    );
    process.once('exit', kill);
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    const query = async (sql: string) =>
      (await run('mariadb', ['--no-defaults', `--socket=${socket}`, '-u', 'root', '-N', '-B', '-e', sql])).stdout.trim();
    let dead: number | null | undefined;
    void exited.then((code) => {
      dead = code;
    });
    const log = path.join(dir, 'error.log');
    await waitFor(
      'mariadbd to accept connections',
      () => {
        // A server that died at start never comes up: say so now, not after the wait.
        if (dead !== undefined) throw new Error(`mariadbd exited ${dead}; see ${log}`);
        return query('SELECT 1').then(() => true);
      },
      30_000,
    );
    const password = 'Maria-Test-Pw-41';
    await query(
      `CREATE USER 'vigil'@'%' IDENTIFIED BY '${password}'; CREATE DATABASE vigil; GRANT ALL ON *.* TO 'vigil'@'%'; FLUSH PRIVILEGES;`,
    );
    return {
      host: '127.0.0.1',
      port,
      url: `mysql://vigil:${password}@127.0.0.1:${port}/vigil`,
      user: 'vigil',
      password,
      query,
      async stop() {
        process.removeListener('exit', kill);
        kill();
        await exited;
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    kill();
    process.removeListener('exit', kill);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
