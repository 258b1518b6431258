import { stat } from 'node:fs/promises';
import path from 'node:path';

// Scripts a probe runs (k6's load script, a browser journey) live in the probes folder: a
// definition names one by a path relative to it, never one outside it.

/** True when a script path would leave the probes folder. */
export function scriptEscapes(script: string): boolean {
  const normal = path.normalize(script);
  return path.isAbsolute(script) || normal === '..' || normal.startsWith(`..${path.sep}`);
}

/** The load problem of a `script` field naming a path outside the probes folder, if it does. */
export function scriptPathProblem(script: string): { path: 'script'; message: string } | undefined {
  if (!scriptEscapes(script)) return undefined;
  return { path: 'script', message: `expected a path inside probes/ (no absolute path, no ".."), got ${JSON.stringify(script)}` };
}

/** True when `file` exists and is a regular file (not a folder, not missing). */
export async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
