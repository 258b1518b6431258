/**
 * Loading the config, start to end: read the layers, interpolate, merge, validate, check what the
 * parts name, read the probe definitions. Each step lives in its own module; this one only orders them.
 */
import path from 'node:path';
import { VigilError } from '../lib/errors.js';
import type { ProbeDefinition } from '../probers/index.js';
import { defaultBaseUrl } from './base-url.js';
import { describeValue, printable, scheduleProblem, validate } from './explain.js';
import { interpolate } from './interpolate.js';
import { checkChannels, checkDefinition } from './kinds.js';
import { configLayers, hostFromEnv, merge, originFile, portFromEnv, probeFilesIn, readProbeFile, readYaml, rel } from './read.js';
import { checkOncall, checkProbeReferences, checkUniqueFields } from './references.js';
import { isMap, type Json, type Run } from './run.js';
import { ConfigSchema, type ServiceConfig } from './schema.js';

/** Everything vigil runs on, validated and frozen. */
export interface LoadedConfig {
  readonly service: ServiceConfig;
  readonly probes: readonly ProbeDefinition[];
  /** The files it was read from, in merge order (probe files last). */
  readonly files: readonly string[];
  /** Values that came from `${…}` references: never printed. */
  readonly secrets: ReadonlySet<string>;
  /** The folder relative paths in the config (probes, database) resolve against. */
  readonly baseDir: string;
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

/** Where to read from and which environment to use; every field has a default. */
export interface LoadOptions {
  /** Folder of `default.yaml` and the per-environment files. */
  configDir?: string;
  /** Environment variables: VIGIL_ENV, VIGIL_CONFIG, PORT, VIGIL_LOCATION and the `${NAME}` references. */
  env?: Record<string, string | undefined>;
  /** Where relative paths (config folder, probes folder, `${file:…}`) resolve: the entry point passes its working directory. */
  cwd: string;
}

/** Reads, interpolates, merges and validates the config and the probe definitions. Throws ConfigError. */
export function loadConfig(opts: LoadOptions): LoadedConfig {
  const { cwd } = opts;
  const run: Run = { env: opts.env ?? {}, cwd, problems: [], secrets: new Set(), unresolved: new Set() };
  const configDir = path.resolve(cwd, opts.configDir ?? 'config');

  const read: Array<{ file: string; doc: Json }> = [];
  for (const layer of configLayers(configDir, run)) {
    const shown = rel(cwd, layer.file);
    const doc = readYaml(layer.file, shown, layer.what, run.problems);
    if (doc === undefined) continue;
    if (!isMap(doc) && doc !== null) {
      run.problems.push(`${shown}: (root): expected a mapping of config sections (service:, probes:, …), got ${describeValue(doc)}`);
      continue;
    }
    read.push({ file: layer.file, doc: interpolate(doc ?? {}, run, shown, '') });
  }

  let merged: Json = {};
  for (const { doc } of read) merged = merge(merged, doc);
  const port = portFromEnv(run);
  if (port !== undefined) merged = merge(merged, { service: { port } });
  const host = hostFromEnv(run);
  if (host !== undefined) merged = merge(merged, { service: { host } });
  // Read before the schema fills in defaults: only a baseUrl nobody wrote follows the listen address.
  const baseUrlGiven = isMap(merged) && isMap(merged.alerting) && merged.alerting.baseUrl !== undefined;
  // The location is per instance, so the same files serve every region: VIGIL_LOCATION=eu-west.
  const location = run.env.VIGIL_LOCATION;
  if (location !== undefined && location !== '') merged = merge(merged, { service: { location } });

  const originOf = (p: string[]) => rel(cwd, originFile(read, p) ?? read.at(-1)?.file ?? path.join(configDir, 'default.yaml'));
  const { value, failed } = validate(ConfigSchema, merged, run, originOf, '');
  const service = value as ServiceConfig;
  if (!baseUrlGiven && failed.size === 0) {
    (service.alerting as { baseUrl: string }).baseUrl = defaultBaseUrl(service.service.host, service.service.port);
  }
  if (!failed.has('channels')) checkChannels(service, run, originOf);
  if (failed.size === 0) checkOncall(service, run, originOf);
  (service.alerting?.maintenance ?? []).forEach((w, i) => {
    const problem = typeof w?.schedule === 'string' ? scheduleProblem(w.schedule) : undefined;
    if (problem) run.problems.push(`${originOf(['alerting', 'maintenance'])}: alerting.maintenance[${i}].${problem}`);
  });

  const probeFiles: string[] = [];
  // Read from the value, not the type: a config that failed validation may lack `probes:` or hold anything there.
  const dir = isMap(value) && isMap(value.probes) ? value.probes.dir : undefined;
  const probes =
    typeof dir === 'string' && !failed.has('probes.dir')
      ? loadProbes(
          dir,
          originOf(['probes', 'dir']),
          run,
          probeFiles,
          new Set(Object.keys(service.channels ?? {})),
          new Set(Object.keys(service.escalation ?? {})),
        )
      : [];

  if (run.problems.length > 0) throw new ConfigError(run.problems.map(printable));
  return deepFreeze({
    service,
    probes,
    files: [...read.map((r) => r.file), ...probeFiles],
    secrets: frozenSet(run.secrets),
    baseDir: cwd,
  });
}

/** Every probe file in the folder, each definition checked against its kind, then what the alerts name. */
function loadProbes(
  dir: string,
  dirOrigin: string,
  run: Run,
  files: string[],
  channelNames: ReadonlySet<string>,
  policies: ReadonlySet<string>,
): ProbeDefinition[] {
  const probeFiles = probeFilesIn(dir, dirOrigin, run);
  if (probeFiles === undefined) return [];
  const probes: Array<{ def: ProbeDefinition; at: string }> = [];
  const seen = new Map<string, string>();
  for (const file of probeFiles) {
    const shown = rel(run.cwd, file);
    files.push(file);
    const doc = readProbeFile(file, shown, run.problems);
    if (doc === undefined) continue;
    // Every reference in the file first, then every definition: problems come in that order.
    const items = doc.map((raw, i) => interpolate(raw, run, shown, `[${i}]`));
    items.forEach((item, i) => {
      const def = checkDefinition(item, `[${i}]`, shown, run, seen);
      if (def) probes.push({ def, at: `${shown}: [${i}]` });
    });
  }
  // References across definitions and to channels, once every file is read.
  checkProbeReferences(probes, run, channelNames, policies);
  checkUniqueFields(probes, run);
  const defs = probes.map((p) => p.def);
  shareAlike(defs);
  return defs;
}

/**
 * Definitions repeat the same small parts (`retry: { count: 0, delay: 10s }`, `labels: {}`, a
 * kind's `expect` as defaulted): equal ones become one object. The loaded config is frozen, so no
 * reader can tell; 60,000 http probes keep six such objects instead of 360,000 (~20 MB). Only parts
 * whose values are all plain (string, number, boolean) are compared, each by its JSON text.
 */
function shareAlike(defs: ProbeDefinition[]): void {
  const first = new Map<string, unknown>();
  // The part last shared under each key: the next definition's is most often equal to it, and two
  // plain parts compared key by key are equal exactly when their JSON texts are (this skips the text).
  const last = new Map<string, object>();
  for (const def of defs) {
    const parts = def as unknown as Record<string, unknown>;
    for (const key of Object.keys(parts)) {
      const part = parts[key];
      if (part === null || typeof part !== 'object' || !plainOnly(part)) continue;
      const recent = last.get(key);
      if (recent !== undefined && samePlain(part, recent)) {
        parts[key] = recent;
        continue;
      }
      const text = `${key}:${Array.isArray(part) ? '[]' : '{}'}${JSON.stringify(part)}`;
      const shared = first.get(text);
      if (shared === undefined) first.set(text, part);
      else parts[key] = shared;
      last.set(key, (shared ?? part) as object);
    }
  }
}

/** Two plain-only parts (see plainOnly) with the same JSON text: both arrays or neither, the same keys in the same order, equal values. */
function samePlain(a: object, b: object): boolean {
  if (a === b) return true;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i] || (a as Record<string, unknown>)[k] !== (b as Record<string, unknown>)[k]) return false;
  }
  return true;
}

function plainOnly(part: object): boolean {
  for (const v of Object.values(part)) {
    // NaN and Infinity both print as null: not plain here.
    if (typeof v !== 'string' && typeof v !== 'boolean' && !(typeof v === 'number' && Number.isFinite(v))) return false;
  }
  return true;
}

/** A set nobody can change afterwards (Object.freeze alone leaves add/delete working). */
function frozenSet<T>(items: Iterable<T>): ReadonlySet<T> {
  const set = new Set(items);
  const refuse = () => {
    throw new TypeError('the loaded config is frozen');
  };
  Object.defineProperties(set, { add: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } });
  return Object.freeze(set);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v) && !(v instanceof Set)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
