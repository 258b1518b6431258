import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files a run kept as evidence (a browser run's screenshot and trace), under
 * `<data dir>/artifacts/<probe id>/<run key>/<name>`. The run key starts with the run's start in
 * epoch ms, so pruning by age reads names only. The prober writes them, the API serves the names a
 * run lists, housekeeping prunes them with the runs.
 */

/** What a run's `details.artifacts` holds: the folder key and the file names in it. */
export interface RunArtifacts {
  key: string;
  files: string[];
}

const KEY = /^(\d{13})-[a-f0-9]{8}$/;
/** A file name an artifact may have: no separator, no leading dot. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;

/** A new run key for a run started at `startedAt`. */
export function artifactKey(startedAt: number, random: string): string {
  return `${String(Math.trunc(startedAt)).padStart(13, '0')}-${random}`;
}

/** The folder of one run's artifacts. */
export function artifactDir(dataDir: string, probeId: string, key: string): string {
  return path.join(dataDir, 'artifacts', probeId, key);
}

/**
 * The file a run's `details.artifacts` lists under `name`, or undefined when it lists none by that
 * name. Only names the run itself recorded are served, each checked again: no request text picks a path.
 */
export function artifactFile(dataDir: string, probeId: string, details: unknown, name: string): string | undefined {
  const a = runArtifacts(details);
  if (a === undefined || !a.files.includes(name)) return undefined;
  return keptFile(dataDir, probeId, a.key, name);
}

/**
 * The file `name` of the run `key` of probe `probeId`, when all three have the shapes vigil makes
 * (a probe id that is no path step, a run key, a plain file name), else undefined: the path is
 * built only from checked parts, whoever asks.
 */
export function keptFile(dataDir: string, probeId: string, key: string, name: string): string | undefined {
  if (probeId === '.' || probeId === '..' || probeId.includes('/') || probeId.includes(path.sep)) return undefined;
  if (!KEY.test(key) || !NAME.test(name)) return undefined;
  return path.join(artifactDir(dataDir, probeId, key), name);
}

/** A run's `details.artifacts` when it is well formed (a key of ours, a list of names), else undefined. */
export function runArtifacts(details: unknown): RunArtifacts | undefined {
  const a = (details as { artifacts?: unknown } | undefined)?.artifacts as Partial<RunArtifacts> | undefined;
  if (a === undefined || typeof a !== 'object' || a === null) return undefined;
  if (typeof a.key !== 'string' || !KEY.test(a.key) || !Array.isArray(a.files)) return undefined;
  const files = a.files.filter((f): f is string => typeof f === 'string' && NAME.test(f));
  return { key: a.key, files };
}

/** Removes every run's artifacts whose run started before `before` (epoch ms); returns how many folders went. */
export async function pruneArtifacts(dataDir: string, before: number): Promise<number> {
  const root = path.join(dataDir, 'artifacts');
  let removed = 0;
  for (const probe of await names(root)) {
    for (const key of await names(path.join(root, probe))) {
      const started = KEY.exec(key)?.[1];
      if (started === undefined || Number(started) >= before) continue;
      await rm(path.join(root, probe, key), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
