import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The layer rules between folders are dependency-cruiser's (.dependency-cruiser.cjs, `npm run
// lint:deps`); this checks what an import graph cannot see: who touches the process itself.

const SRC = path.resolve(import.meta.dirname, '../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

/** What a module other than an entry point may use of `process`: its children's environment and their process groups. */
const ALLOWED = [/^process\.kill\(-/, /^process\.execPath\b/, /^process\.env\b/];
/** Entry points: they own the process (signals, exit codes, argv, stdout). The browser runner is its child process's. */
const ENTRY = new Set(['main.ts', path.join('cli', 'check-config.ts'), path.join('probers', 'browser', 'runner.ts')]);

describe('architecture', () => {
  it('leaves the process (pid, signals, exit, argv, cwd, stdio) to the entry points', () => {
    const offences: string[] = [];
    for (const file of sources(SRC)) {
      const rel = path.relative(SRC, file);
      if (ENTRY.has(rel)) continue;
      const source = readFileSync(file, 'utf8');
      // Strings (a child's script) and comments are not this process: blanked, lines kept.
      const text = source.replace(/`[^`]*`|'[^'\n]*'|"[^"\n]*"|\/\/[^\n]*|\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '));
      for (const m of text.matchAll(/\bprocess\.[\w.]+\(?-?/g)) {
        const line = source.slice(source.lastIndexOf('\n', m.index) + 1, source.indexOf('\n', m.index));
        if (!ALLOWED.some((a) => a.test(m[0]))) offences.push(`${rel}: ${line.trim()}`);
      }
    }
    expect(offences).toEqual([]);
  });
});
