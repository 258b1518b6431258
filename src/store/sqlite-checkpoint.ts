import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { Logger } from '../lib/logger.js';

/**
 * Checkpoints the WAL from a worker thread with its own connection, so the main thread never does.
 *
 * SQLite checkpoints inside the commit that crosses `wal_autocheckpoint`, and better-sqlite3 commits
 * on the event loop: copying 40 MB of WAL back into the file (and its fsync) held the loop 100–200 ms
 * at the roll-up's and the prune's commits. A PASSIVE checkpoint from another connection blocks
 * neither the writer nor readers (WAL mode), so here it runs every `everyMs` off the loop, and the
 * main connection's autocheckpoint is off. Should the worker stop, autocheckpoint comes back on so
 * the WAL cannot grow without bound.
 */
export interface Checkpointer {
  /** Ends the worker after one last checkpoint; its connection is closed before this resolves. */
  close(): Promise<void>;
}

/** The worker: CommonJS (an eval'd worker), given the driver's resolved path so it loads the same build. */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
const step = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ error: String((err && err.message) || err) });
  }
};
const timer = setInterval(step, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  step();
  db.close();
  parentPort.close();
});
`;

const driver = createRequire(import.meta.url).resolve('better-sqlite3');

/** Default interval: at 2,000 runs/s a few MB of WAL, copied back in a few ms of another thread's time. */
export const CHECKPOINT_EVERY_MS = 2_000;

export function startCheckpointer(db: Database.Database, file: string, log: Logger, everyMs = CHECKPOINT_EVERY_MS): Checkpointer {
  db.pragma('wal_autocheckpoint = 0');
  // A burst of writes (a catch-up roll-up, a large prune) grows the WAL past what a checkpoint
  // every 2 s keeps it at; once checkpointed and restarted it is cut back to this, not left at its peak.
  db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const worker = new Worker(SOURCE, { eval: true, workerData: { driver, path: file, everyMs } });
  // A store nobody closed must not keep the process alive.
  worker.unref();
  let closing = false;
  let warned = false;
  worker.on('message', (m: { error?: string }) => {
    // A busy or failed step is retried at the next one; one line, not one a step.
    if (m.error !== undefined && !warned) {
      warned = true;
      log.warn({ error: m.error }, 'WAL checkpoint failed; retrying');
    }
  });
  const fallBack = (err?: unknown) => {
    if (closing || !db.open) return;
    log.error({ err }, 'WAL checkpoint worker stopped; checkpointing on the main thread again');
    db.pragma('wal_autocheckpoint = 1000');
  };
  worker.on('error', fallBack);
  worker.on('exit', () => fallBack());
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async close() {
      if (closing) return exited;
      closing = true;
      // Held while it closes: an unref'd worker is no reason to stay, and the caller awaits it.
      worker.ref();
      worker.postMessage('close');
      await exited;
    },
  };
}
