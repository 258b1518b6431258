import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

/** What a self-backup needs: a way to copy the live database to a file, page by page. */
export interface BackupSource {
  backup(file: string): Promise<unknown>;
}

export interface SelfBackupOptions {
  source: BackupSource;
  dir: string;
  intervalMs: number;
  /** Newest backups kept; older ones (and their .sha256) are deleted after each success. */
  keep: number;
  /** The first backup runs this long after start (default 1 min), then every interval. */
  firstAfterMs?: number;
  clock: Clock;
  logger: Logger;
  onResult?(r: { ok: boolean; bytes?: number; at: number }): void;
}

export interface SelfBackup {
  start(): void;
  stop(): void;
  /** Takes a backup now; resolves to its path. */
  runNow(): Promise<string>;
}

const NAME = /^vigil-\d{8}T\d{6}Z\.db$/;

/**
 * vigil's own database, backed up online (SQLite's backup API copies pages in steps between other
 * work, so runs and pages go on) to `vigil-<UTC time>.db` with a sha256sum-format `.sha256` beside
 * it, written under a temporary name and renamed, so a restore drill never picks up half a file.
 */
export function createSelfBackup(opts: SelfBackupOptions): SelfBackup {
  const log = opts.logger.child({ module: 'self-backup' });
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  let running: Promise<string> | undefined;
  let stopped = true;

  async function once(): Promise<string> {
    const at = opts.clock.now();
    const stamp = new Date(at)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const name = `vigil-${stamp}.db`;
    const final = path.join(opts.dir, name);
    const partial = path.join(opts.dir, `.${name}.partial`);
    try {
      await mkdir(opts.dir, { recursive: true });
      await opts.source.backup(partial);
      const digest = await sha256(partial);
      await writeFile(`${final}.sha256`, `${digest}  ${name}\n`);
      await rename(partial, final);
      const { size } = await stat(final);
      const removed = await prune(opts.dir, opts.keep);
      log.info({ file: final, bytes: size, removed }, 'self-backup written');
      opts.onResult?.({ ok: true, bytes: size, at });
      return final;
    } catch (err) {
      await rm(partial, { force: true }).catch(() => {});
      log.error({ err, dir: opts.dir }, 'self-backup failed');
      opts.onResult?.({ ok: false, at });
      throw err;
    }
  }

  const schedule = (delay: number) => {
    if (stopped) return;
    timer = opts.clock.setTimeout(() => {
      runNow()
        .catch(() => {})
        .finally(() => schedule(opts.intervalMs));
    }, delay);
  };

  function runNow(): Promise<string> {
    // One at a time: a manual backup during the hourly one waits for it and takes its own.
    const next = (running ?? Promise.resolve('')).catch(() => '').then(once);
    running = next;
    return next;
  }

  return {
    start() {
      stopped = false;
      schedule(opts.firstAfterMs ?? 60_000);
    },
    stop() {
      stopped = true;
      if (timer !== undefined) opts.clock.clearTimeout(timer);
    },
    runNow,
  };
}

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** What SQLite leaves beside a file it opened: opening a backup to check it (as the restore runbook does) leaves these. */
const SIDECAR = /^(vigil-\d{8}T\d{6}Z\.db)-(wal|shm|journal)$/;

/**
 * Deletes all but the newest `keep` backups (names sort by time) and their checksums; returns how
 * many went. Also the -wal, -shm and -journal files beside any backup of ours: a backup is a
 * finished file that nothing writes to, so these are leftovers of something that opened it, and
 * they would travel with the folder (a move's tarball) and be applied to the backup if restored.
 */
async function prune(dir: string, keep: number): Promise<number> {
  const all = await readdir(dir);
  const names = all.filter((n) => NAME.test(n)).sort();
  const old = names.slice(0, Math.max(0, names.length - keep));
  for (const n of old) {
    await rm(path.join(dir, n), { force: true });
    await rm(path.join(dir, `${n}.sha256`), { force: true });
  }
  for (const n of all) if (SIDECAR.test(n)) await rm(path.join(dir, n), { force: true });
  return old.length;
}
