import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { VigilError } from './errors.js';

/** A pid file: one vigil per file, written once it listens, removed when it stopped cleanly. */
export interface PidFile {
  readonly path: string;
  /** Writes this process's pid (through a temporary file, so a reader never sees half of it). */
  write(): void;
  /** Removes the file if it still names this process. */
  remove(): void;
}

const readPid = (file: string): number | undefined => {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Claims `file` for the process `pid`: refuses (VIGIL_ERR_CONFLICT) when it names another process
 * that is alive, so a second vigil on the same data stops before it opens the database. A file left
 * by a vigil that was killed (its pid gone) is taken over. Startup and shutdown only: synchronous.
 */
export function claimPidFile(file: string, pid: number, alive: (pid: number) => boolean): PidFile {
  const holder = readPid(file);
  if (holder !== undefined && holder !== pid && alive(holder))
    throw new VigilError('VIGIL_ERR_CONFLICT', `${file}: another vigil is running as pid ${holder}; stop it first (kill ${holder})`);
  return {
    path: file,
    write() {
      const partial = `${file}.${pid}.partial`;
      writeFileSync(partial, `${pid}\n`);
      renameSync(partial, file);
    },
    remove() {
      if (readPid(file) === pid) rmSync(file, { force: true });
    },
  };
}
