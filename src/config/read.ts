/**
 * Reading the config from disk: the layered config files, each parsed as one YAML document, merged
 * key by key, and the folder of probe definition files. Every file read is bounded and never blocks.
 */
import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { isDocument, parseAllDocuments } from 'yaml';
import { describeValue, unclosedQuote, whyUnreadable, yamlReason } from './explain.js';
import { parsePlainYaml } from './plain-yaml.js';
import { ENVIRONMENT, isMap, type Json, type Run } from './run.js';

/** The config files in merge order, each with what a person should have put there. */
export function configLayers(configDir: string, run: Run): Array<{ file: string; what: string }> {
  const layers = [{ file: path.join(configDir, 'default.yaml'), what: 'the default config file' }];
  const name = run.env.VIGIL_ENV;
  if (name) {
    if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !name.includes('..')) {
      const others = environmentsIn(configDir);
      const known = others.length > 0 ? ` (this folder has: ${others.join(', ')})` : '';
      layers.push({ file: path.join(configDir, `${name}.yaml`), what: `the config file for VIGIL_ENV=${name}${known}` });
    } else {
      run.problems.push(`${ENVIRONMENT}: VIGIL_ENV: expected an environment name such as production, got ${JSON.stringify(name)}`);
    }
  }
  if (run.env.VIGIL_CONFIG) {
    layers.push({ file: path.resolve(run.cwd, run.env.VIGIL_CONFIG), what: 'the config file VIGIL_CONFIG names' });
  }
  return layers;
}

function environmentsIn(configDir: string): string[] {
  try {
    return readdirSync(configDir)
      .filter((n) => n.endsWith('.yaml') && n !== 'default.yaml')
      .map((n) => n.slice(0, -'.yaml'.length))
      .sort();
  } catch {
    return [];
  }
}

export function portFromEnv(run: Run): number | undefined {
  const text = run.env.PORT;
  if (text === undefined || text === '') return undefined;
  const port = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (Number.isInteger(port) && port >= 0 && port <= 65535) return port;
  run.problems.push(`${ENVIRONMENT}: PORT: expected a port number 0-65535, got ${JSON.stringify(text)}`);
  return undefined;
}

/** `HOST` from the environment: the listen address, as `PORT` is the port. */
export function hostFromEnv(run: Run): string | undefined {
  const text = run.env.HOST;
  if (text === undefined || text === '') return undefined;
  if (/^[A-Za-z0-9.:[\]%_-]+$/.test(text)) return text;
  run.problems.push(`${ENVIRONMENT}: HOST: expected a listen address such as 0.0.0.0, 127.0.0.1 or ::, got ${JSON.stringify(text)}`);
  return undefined;
}

/**
 * Config and probe files are read and parsed whole, on the event loop (a reload too): a 50 MB file
 * held the service for 5.7 s. A file past this is not a config; the biggest real ones are kilobytes.
 */
export const MAX_YAML_BYTES = 8 * 1024 * 1024;

/**
 * A regular file's text, up to `limit` bytes. A device (`/dev/zero`), a pipe or a socket is refused
 * before it is read: read whole it never ends, or blocks the process until a writer comes.
 */
export function readTextFile(file: string, limit: number): string {
  // O_NONBLOCK: opening a FIFO for reading otherwise blocks until a writer opens it.
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('a folder'), { code: 'EISDIR' });
    if (!st.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'VIGIL_NOT_A_FILE' });
    if (st.size > limit) throw Object.assign(new Error('too large'), { code: 'VIGIL_TOO_LARGE', limit });
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** The parsed file; undefined (with a problem pushed) when it cannot be used; null when it is empty. */
export function readYaml(file: string, shown: string, what: string, problems: string[]): Json | undefined {
  let text: string;
  try {
    text = readTextFile(file, MAX_YAML_BYTES);
  } catch (err) {
    problems.push(`${shown}: (file): expected ${what}; ${whyUnreadable(err)}`);
    return undefined;
  }
  // Most files are plain YAML, read without building the `yaml` package's Document (seconds and
  // hundreds of MB for 60,000 probes); the rest, and every syntax error, go through the full parser.
  const plain = parsePlainYaml(text);
  if (plain !== undefined) return plain;
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > 1) {
    problems.push(`${shown}: (file): expected one YAML document, got ${list.length} (separated by ---)`);
    return undefined;
  }
  const doc = list[0];
  if (doc === undefined) return null;
  if (!isDocument(doc)) return undefined;
  const [error] = doc.errors;
  if (error !== undefined) {
    // Only the first: after one syntax error the parser's further complaints are mostly about the same mistake.
    const pos = unclosedQuote(text, error.message, error.pos[0]) ?? error.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}` : '(syntax)';
    problems.push(`${shown}: ${where}: expected valid YAML; ${yamlReason(error.message)}`);
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as Json;
  } catch (err) {
    problems.push(`${shown}: (file): expected valid YAML; ${yamlReason((err as Error).message)}`);
    return undefined;
  }
}

/** Objects merge key by key; anything else (lists included) is replaced by the later layer. */
export function merge(base: Json, over: Json): Json {
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const before = out[k];
    out[k] = before === undefined ? v : merge(before, v);
  }
  return out;
}

/** The last layer that set the deepest existing part of a path: where a person has to look to fix it. */
export function originFile(layers: ReadonlyArray<{ file: string; doc: Json }>, p: string[]): string | undefined {
  for (let depth = p.length; depth > 0; depth--) {
    for (let i = layers.length - 1; i >= 0; i--) {
      if (has(layers[i]?.doc, p.slice(0, depth))) return layers[i]?.file;
    }
  }
  return undefined;
}

function has(doc: Json | undefined, p: string[]): boolean {
  let cur: Json | undefined = doc;
  for (const seg of p) {
    if (Array.isArray(cur) && /^\d+$/.test(seg) && Number(seg) < cur.length) cur = cur[Number(seg)];
    else if (isMap(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return false;
  }
  return true;
}

export function rel(cwd: string, file: string): string {
  const r = path.relative(cwd, file);
  return r.startsWith('..') || path.isAbsolute(r) ? file : r;
}

/** The probe definition files of the folder, in name order; undefined (a problem pushed) when it is not a folder. */
export function probeFilesIn(dir: string, dirOrigin: string, run: Run): string[] | undefined {
  const abs = path.resolve(run.cwd, dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    const why = existsSync(abs) ? 'it is not a folder' : 'it does not exist';
    run.problems.push(`${dirOrigin}: probes.dir: expected a folder of probe definitions (*.yaml), got ${JSON.stringify(dir)}; ${why}`);
    return undefined;
  }
  return readdirSync(abs)
    .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(abs, n));
}

/** One probe file's list of definitions, not yet interpolated; undefined when empty or unusable (a problem pushed). */
export function readProbeFile(file: string, shown: string, problems: string[]): Json[] | undefined {
  const doc = readYaml(file, shown, 'a readable YAML file', problems);
  if (doc === undefined || doc === null) return undefined;
  if (!Array.isArray(doc)) {
    problems.push(`${shown}: (root): expected a list of probe definitions (items starting with "- id:"), got ${describeValue(doc)}`);
    return undefined;
  }
  return doc;
}
