import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { validateDetailed } from 'node-cron';
import { isDocument, parseAllDocuments } from 'yaml';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import { isProbeKind, type ProbeDefinition, proberFor, probers } from '../probers/index.js';
import { ConfigSchema, definitionSchema, type ServiceConfig } from './schema.js';

/** Everything vigil runs on, validated and frozen. */
export interface LoadedConfig {
  readonly service: ServiceConfig;
  readonly probes: readonly ProbeDefinition[];
  /** The files it was read from, in merge order (probe files last). */
  readonly files: readonly string[];
  /** Values that came from `${…}` references: never printed. */
  readonly secrets: ReadonlySet<string>;
}

/** Config problems, all of them, each as `file: path: what was expected`. */
export class ConfigError extends VigilError {
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super('VIGIL_ERR_CONFIG', `invalid configuration:\n${problems.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface LoadOptions {
  /** Folder of `default.yaml` and the per-environment files. */
  configDir?: string;
  /** Environment variables: VIGIL_ENV, VIGIL_CONFIG, PORT and the `${NAME}` references. */
  env?: Record<string, string | undefined>;
  /** Where relative paths (the probes folder) resolve; the working directory by default. */
  cwd?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Problems = string[];

/** Reads, interpolates, merges and validates the config and the probe definitions. Throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? {};
  const cwd = opts.cwd ?? process.cwd();
  const configDir = path.resolve(cwd, opts.configDir ?? 'config');
  const problems: Problems = [];
  const secrets = new Set<string>();

  const layers: Array<{ file: string; required: boolean }> = [{ file: path.join(configDir, 'default.yaml'), required: true }];
  if (env.VIGIL_ENV) layers.push({ file: path.join(configDir, `${env.VIGIL_ENV}.yaml`), required: true });
  if (env.VIGIL_CONFIG) layers.push({ file: path.resolve(cwd, env.VIGIL_CONFIG), required: true });

  const read: Array<{ file: string; doc: Json }> = [];
  for (const layer of layers) {
    const doc = readYaml(layer.file, problems, layer.file.endsWith('default.yaml') ? 'the embedded default' : undefined);
    if (doc === undefined) continue;
    if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc))) {
      problems.push(`${rel(cwd, layer.file)}: (root): expected a mapping of config sections`);
      continue;
    }
    read.push({ file: layer.file, doc: interpolate(doc ?? {}, env, secrets, rel(cwd, layer.file), '', problems) });
  }

  let merged: Json = {};
  for (const { doc } of read) merged = merge(merged, doc);
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      problems.push(`PORT: (environment): expected a port number 0-65535, got ${JSON.stringify(env.PORT)}`);
    else merged = merge(merged, { service: { port } });
  }

  const originOf = (p: string[]) => {
    for (let i = read.length - 1; i >= 0; i--) if (has(read[i]?.doc, p)) return rel(cwd, read[i]?.file ?? '');
    return rel(cwd, read[read.length - 1]?.file ?? layers[0]?.file ?? 'config');
  };
  const service = validate(ConfigSchema, merged, problems, (p) => originOf(p)) as ServiceConfig;

  const probesDir = path.resolve(cwd, service?.probes?.dir ?? 'probes');
  const probeFiles: string[] = [];
  const probes = problems.length === 0 || service ? loadProbes(probesDir, env, secrets, cwd, problems, probeFiles) : [];

  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze({ service, probes, files: [...read.map((r) => r.file), ...probeFiles], secrets });
}

function loadProbes(dir: string, env: LoadOptions['env'], secrets: Set<string>, cwd: string, problems: Problems, files: string[]) {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    problems.push(`${rel(cwd, dir)}: (folder): expected a folder of probe definitions (*.yaml); it does not exist`);
    return [];
  }
  const probes: ProbeDefinition[] = [];
  const seen = new Map<string, string>();
  const names = readdirSync(dir)
    .filter((n) => /\.ya?ml$/.test(n))
    .sort();
  for (const name of names) {
    const file = path.join(dir, name);
    const shown = rel(cwd, file);
    files.push(file);
    const doc = readYaml(file, problems);
    if (doc === undefined || doc === null) continue;
    if (!Array.isArray(doc)) {
      problems.push(`${shown}: (root): expected a list of probe definitions (items starting with "- id:")`);
      continue;
    }
    const items = interpolate(doc, env ?? {}, secrets, shown, '', problems) as Json[];
    items.forEach((item, i) => {
      const at = `[${i}]`;
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        problems.push(`${shown}: ${at}: expected a probe definition (a mapping with id, kind, schedule)`);
        return;
      }
      const kind = item.kind;
      if (!isProbeKind(kind)) {
        const known = Object.keys(probers).join(', ');
        problems.push(
          kind === undefined
            ? `${shown}: ${at}.kind: expected one of ${known}; it is missing`
            : `${shown}: ${at}.kind: expected one of ${known}, got ${JSON.stringify(kind)}`,
        );
        return;
      }
      const prober = proberFor(kind);
      const before = problems.length;
      const def = validate(definitionSchema(prober.schema), item, problems, () => shown, at) as ProbeDefinition;
      if (problems.length > before) return;
      checkSchedule(def, problems, `${shown}: ${at}`);
      for (const p of prober.check?.(def as never) ?? []) problems.push(`${shown}: ${at}.${p.path}: ${p.message}`);
      const dup = seen.get(def.id);
      if (dup !== undefined) {
        problems.push(`${shown}: ${at}.id: expected a unique id; "${def.id}" is also defined in ${dup}`);
        return;
      }
      seen.set(def.id, shown);
      probes.push(def);
    });
  }
  return probes;
}

function checkSchedule(def: ProbeDefinition, problems: Problems, where: string) {
  if (typeof def.schedule === 'string') {
    const fields = def.schedule.trim().split(/\s+/).length;
    const result = validateDetailed(def.schedule);
    if (fields < 5 || fields > 6 || !result.valid) {
      const why = result.errors.map((e) => e.message).join('; ');
      problems.push(
        `${where}.schedule: expected a cron expression with 5 or 6 fields, got ${JSON.stringify(def.schedule)}${why ? ` (${why})` : ''}`,
      );
    }
  } else if (ms(def.schedule.every) < 1000) {
    problems.push(`${where}.schedule.every: expected an interval of at least 1s, got ${def.schedule.every}`);
  }
}

/** Validates against a schema with defaults applied; pushes one line per problem. */
function validate(schema: TSchema, input: Json, problems: Problems, fileOf: (p: string[]) => string, prefix = ''): unknown {
  const value = Value.Convert(schema, Value.Default(schema, structuredClone(input)));
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const segments = error.path.split('/').slice(1).map(unescapePointer);
    const line = `${fileOf(segments)}: ${formatPath(prefix, segments)}: ${describe(error)}`;
    // A union failing reports once per branch; one line per path is what a person wants.
    const key = `${error.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(line);
  }
  return value;
}

function describe(error: ValueError): string {
  const schema = error.schema as { expected?: string; anyOf?: Array<{ const?: unknown }> };
  const got = error.value === undefined ? 'it is missing' : `got ${JSON.stringify(error.value)}`;
  if (error.type === ValueErrorType.ObjectAdditionalProperties || error.message === 'Unexpected property') {
    return 'unknown key (check the spelling; see the config reference in the README)';
  }
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'required; it is missing';
  if (schema.expected) return `expected ${schema.expected}, ${got}`;
  return `${error.message.replace(/^Expected/, 'expected')}, ${got}`;
}

function formatPath(prefix: string, segments: string[]): string {
  let out = prefix;
  for (const s of segments) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

function readYaml(file: string, problems: Problems, what?: string): Json | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.push(
      `${file}: (file): expected ${what ?? 'a readable YAML file'}; ${code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`,
    );
    return undefined;
  }
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > 1) {
    problems.push(`${file}: (file): expected one YAML document, found ${list.length}`);
    return undefined;
  }
  const doc = list[0];
  if (doc === undefined) return null;
  if (!isDocument(doc)) return undefined;
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0];
      problems.push(
        `${file}: ${pos ? `line ${pos.line}, column ${pos.col}` : '(syntax)'}: expected valid YAML; ${e.message.split('\n')[0]}`,
      );
    }
    return undefined;
  }
  return doc.toJS({ maxAliasCount: 100 }) as Json;
}

const REF = /\$\$\{|\$\{([^}]*)\}/g;

/** Replaces `${NAME}`, `${NAME:-default}` and `${file:PATH}` in every string; `$${` is a literal `${`. */
function interpolate(
  node: Json,
  env: Record<string, string | undefined>,
  secrets: Set<string>,
  file: string,
  at: string,
  problems: Problems,
): Json {
  if (typeof node === 'string') {
    if (!node.includes('${')) return node;
    return node.replace(REF, (whole, ref: string | undefined) => {
      if (ref === undefined) return '${';
      const value = resolveRef(ref.trim(), env);
      if (typeof value === 'object') {
        problems.push(`${file}: ${at || '(root)'}: ${value.problem}`);
        return whole;
      }
      if (value !== '') secrets.add(value);
      return value;
    });
  }
  if (Array.isArray(node)) return node.map((v, i) => interpolate(v, env, secrets, file, `${at}[${i}]`, problems));
  if (node !== null && typeof node === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolate(v, env, secrets, file, at ? `${at}.${k}` : k, problems);
    return out;
  }
  return node;
}

function resolveRef(ref: string, env: Record<string, string | undefined>): string | { problem: string } {
  if (ref.startsWith('file:')) {
    const file = ref.slice(5);
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      return {
        problem: `expected the secret file ${file} to be readable; ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      };
    }
  }
  const [name = '', fallback] = ref.split(/:-(.*)/s, 2);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { problem: `expected \${NAME} or \${file:PATH}, got \${${ref}}` };
  const value = env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  return { problem: `expected the environment variable ${name} to be set (referenced as \${${name}})` };
}

/** Objects merge key by key; anything else (lists included) is replaced by the later layer. */
function merge(base: Json, over: Json): Json {
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? merge(out[k] as Json, v) : v;
  return out;
}

function isMap(v: Json | undefined): v is { [k: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function has(doc: Json | undefined, p: string[]): boolean {
  let cur: Json | undefined = doc;
  for (const seg of p) {
    if (!isMap(cur) || !(seg in cur)) return false;
    cur = cur[seg];
  }
  return true;
}

function rel(cwd: string, file: string): string {
  const r = path.relative(cwd, file);
  return r.startsWith('..') ? file : r;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v) && !(v instanceof Set)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
