/**
 * `${…}` references in config values: environment variables and files, read as secrets. Runs on the
 * parsed YAML before validation, so a reference may stand for any scalar the schema then checks.
 */
import path from 'node:path';
import { keyText, whyUnreadable } from './explain.js';
import { readTextFile } from './read.js';
import { isMap, type Json, type Run } from './run.js';

/** A `${file:…}` secret is a token, a password or a certificate bundle. */
const MAX_SECRET_BYTES = 1024 * 1024;

const REF = /\$\$\{|\$\{([^}]*)\}/g;

/** Replaces `${NAME}`, `${NAME:-default}` and `${file:PATH}` in every string; `$${` is a literal `${`. */
export function interpolate(node: Json, run: Run, file: string, at: string): Json {
  if (typeof node === 'string') {
    if (!node.includes('${')) return node;
    return node.replace(REF, (whole, ref: string | undefined) => {
      if (ref === undefined) return '${';
      const value = resolveRef(ref.trim(), run);
      if ('problem' in value) {
        run.problems.push(`${file}: ${at || '(root)'}: ${value.problem}`);
        run.unresolved.add(`${file}: ${at || '(root)'}`);
        return whole;
      }
      if (value.secret) run.secrets.add(value.text);
      return value.text;
    });
  }
  if (Array.isArray(node)) return node.map((v, i) => interpolate(v, run, file, `${at}[${i}]`));
  if (isMap(node)) {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(node)) {
      const where = at ? `${at}.${keyText(k)}` : keyText(k);
      // Assigned, `__proto__` would replace the object's prototype and vanish unreported (the schema never sees it).
      if (k === '__proto__') {
        run.problems.push(`${file}: ${where}: expected a config key, got "__proto__" (a reserved name)`);
        continue;
      }
      out[k] = interpolate(v, run, file, where);
    }
    return out;
  }
  return node;
}

/**
 * What a reference stands for. Values read from the environment or a file are secrets (never printed)
 * unless they are plain numbers or booleans such as a port; a `:-default` written in the YAML is not.
 */
function resolveRef(ref: string, run: Run): { text: string; secret: boolean } | { problem: string } {
  const secret = (text: string) => ({ text, secret: text !== '' && !/^(\d+(\.\d+)?|true|false)$/.test(text) });
  if (ref.startsWith('file:')) {
    const file = ref.slice('file:'.length).trim();
    try {
      return secret(readTextFile(path.resolve(run.cwd, file), MAX_SECRET_BYTES).replace(/\r?\n$/, ''));
    } catch (err) {
      return { problem: `expected a readable file for \${file:${file}}; ${whyUnreadable(err)}` };
    }
  }
  const [name = '', fallback] = ref.split(/:-(.*)/s, 2);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { problem: `expected \${NAME}, \${NAME:-default} or \${file:PATH}, got \${${ref}}` };
  const value = run.env[name];
  if (value !== undefined && value !== '') return secret(value);
  if (fallback !== undefined) return { text: fallback, secret: false };
  return { problem: `expected the environment variable ${name} (for \${${name}}); it is not set` };
}
