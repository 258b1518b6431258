import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/**
 * Builds dist/ unless it is newer than every file in src/: `npm test` has just built it, and a
 * second tsc run on a busy machine costs most of a minute. Run on its own, a test still gets fresh code.
 */
export function ensureBuilt(): void {
  let built = 0;
  try {
    built = statSync(path.join(ROOT, 'dist/main.js')).mtimeMs;
  } catch {
    // No build yet.
  }
  if (built > newest(path.join(ROOT, 'src'))) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
}
