import { closeSync, constants, existsSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Kind, type TSchema, Type } from '@sinclair/typebox';
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { validateDetailed } from 'node-cron';
import { isDocument, parseAllDocuments } from 'yaml';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import { channelKindOf, channelKinds, isChannelType } from '../notify/channels/index.js';
import { checkSchedules } from '../oncall/index.js';
import { isProbeKind, type ProbeDefinition, proberFor, probers } from '../probers/index.js';
import { redactText } from './redact.js';
import { ConfigSchema, definitionSchema, type ServiceConfig } from './schema.js';

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
  /** Where relative paths (config folder, probes folder, `${file:…}`) resolve; the working directory by default. */
  cwd?: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** What one load accumulates: the problems found so far and the secrets read. */
interface Run {
  env: Record<string, string | undefined>;
  cwd: string;
  problems: string[];
  secrets: Set<string>;
  /** `file: path` of values whose `${…}` did not resolve: already reported, so not reported again as the wrong type. */
  unresolved: Set<string>;
}

const ENVIRONMENT = '(environment)';

/** Reads, interpolates, merges and validates the config and the probe definitions. Throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const cwd = opts.cwd ?? process.cwd();
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
  // The location is per instance, so the same files serve every region: VIGIL_LOCATION=eu-west.
  const location = run.env.VIGIL_LOCATION;
  if (location !== undefined && location !== '') merged = merge(merged, { service: { location } });

  const originOf = (p: string[]) => rel(cwd, originFile(read, p) ?? read.at(-1)?.file ?? path.join(configDir, 'default.yaml'));
  const { value, failed } = validate(ConfigSchema, merged, run, originOf, '');
  const service = value as ServiceConfig;
  if (!failed.has('channels')) checkChannels(service, run, originOf);
  if (failed.size === 0) checkOncall(service, run, originOf);
  (service.alerting?.maintenance ?? []).forEach((w, i) => {
    const problem = typeof w?.schedule === 'string' ? scheduleProblem(w.schedule) : undefined;
    if (problem) run.problems.push(`${originOf(['alerting', 'maintenance'])}: alerting.maintenance[${i}].${problem}`);
  });

  const probeFiles: string[] = [];
  const dir: unknown = (service as { probes?: { dir?: unknown } }).probes?.dir;
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

/** The config files in merge order, each with what a person should have put there. */
function configLayers(configDir: string, run: Run): Array<{ file: string; what: string }> {
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

function portFromEnv(run: Run): number | undefined {
  const text = run.env.PORT;
  if (text === undefined || text === '') return undefined;
  const port = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (Number.isInteger(port) && port >= 0 && port <= 65535) return port;
  run.problems.push(`${ENVIRONMENT}: PORT: expected a port number 0-65535, got ${JSON.stringify(text)}`);
  return undefined;
}

function loadProbes(
  dir: string,
  dirOrigin: string,
  run: Run,
  files: string[],
  channelNames: ReadonlySet<string>,
  policies: ReadonlySet<string>,
): ProbeDefinition[] {
  const abs = path.resolve(run.cwd, dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    const why = existsSync(abs) ? 'it is not a folder' : 'it does not exist';
    run.problems.push(`${dirOrigin}: probes.dir: expected a folder of probe definitions (*.yaml), got ${JSON.stringify(dir)}; ${why}`);
    return [];
  }
  const probes: ProbeDefinition[] = [];
  const seen = new Map<string, string>();
  const where = new Map<ProbeDefinition, string>();
  const names = readdirSync(abs)
    .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))
    .sort();
  for (const name of names) {
    const file = path.join(abs, name);
    const shown = rel(run.cwd, file);
    files.push(file);
    const doc = readYaml(file, shown, 'a readable YAML file', run.problems);
    if (doc === undefined || doc === null) continue;
    if (!Array.isArray(doc)) {
      run.problems.push(`${shown}: (root): expected a list of probe definitions (items starting with "- id:"), got ${describeValue(doc)}`);
      continue;
    }
    const items = interpolate(doc, run, shown, '') as Json[];
    items.forEach((item, i) => {
      const def = checkDefinition(item, `[${i}]`, shown, run, seen);
      if (def) {
        probes.push(def);
        where.set(def, `${shown}: [${i}]`);
      }
    });
  }
  // References across definitions and to channels, once every file is read.
  const ids = new Set(probes.map((p) => p.id));
  for (const def of probes) {
    const alert = (def as { alert?: { channels: string[]; dependsOn: string[] } }).alert;
    if (!alert) continue;
    const at = where.get(def) as string;
    const policy = (alert as { policy?: string }).policy;
    if (policy !== undefined && !policies.has(policy)) {
      run.problems.push(
        `${at}.alert.policy: expected a policy defined under escalation: in the config (${[...policies].join(', ') || 'none defined'}), got ${JSON.stringify(policy)}${didYouMean(policy, [...policies])}`,
      );
    }
    alert.channels.forEach((c, i) => {
      if (!channelNames.has(c)) {
        const known = [...channelNames];
        run.problems.push(
          `${at}.alert.channels[${i}]: expected a channel defined under channels: in the config (${known.length ? known.join(', ') : 'none defined'}), got ${JSON.stringify(c)}${didYouMean(c, known)}`,
        );
      }
    });
    alert.dependsOn.forEach((d, i) => {
      if (d === def.id) run.problems.push(`${at}.alert.dependsOn[${i}]: expected another probe's id, got the probe itself`);
      else if (!ids.has(d))
        run.problems.push(
          `${at}.alert.dependsOn[${i}]: expected the id of a configured probe, got ${JSON.stringify(d)}${didYouMean(d, [...ids])}`,
        );
    });
  }
  return probes;
}

/** Schedules name known people; escalation steps name known channels, schedules and people. */
function checkOncall(service: ServiceConfig, run: Run, originOf: (p: string[]) => string) {
  for (const p of checkSchedules(service.people, service.schedules)) {
    const first = p.path.split(/[.[]/)[0] ?? 'schedules';
    run.problems.push(`${originOf([first])}: ${p.path}: ${p.message}`);
  }
  const channels = Object.keys(service.channels);
  const schedules = Object.keys(service.schedules);
  const people = Object.keys(service.people);
  const file = originOf(['escalation']);
  const channel = (at: string, name: string) => {
    if (!channels.includes(name)) {
      run.problems.push(
        `${file}: ${at}: expected a channel defined under channels: (${channels.join(', ') || 'none defined'}), got ${JSON.stringify(name)}${didYouMean(name, channels)}`,
      );
    }
  };
  for (const [name, policy] of Object.entries(service.escalation)) {
    policy.steps.forEach((step, i) => {
      step.notify.forEach((target, j) => {
        const at = `escalation.${name}.steps[${i}].notify[${j}]`;
        if (target.startsWith('oncall:')) {
          const s = target.slice(7);
          if (!schedules.includes(s))
            run.problems.push(
              `${file}: ${at}: expected oncall:<a schedule under schedules:> (${schedules.join(', ') || 'none defined'}), got ${JSON.stringify(target)}${didYouMean(s, schedules)}`,
            );
        } else if (target.startsWith('person:')) {
          const who = target.slice(7);
          if (!people.includes(who))
            run.problems.push(
              `${file}: ${at}: expected person:<someone under people:> (${people.join(', ') || 'none defined'}), got ${JSON.stringify(target)}${didYouMean(who, people)}`,
            );
        } else channel(at, target);
      });
      step.via?.forEach((v, j) => {
        channel(`escalation.${name}.steps[${i}].via[${j}]`, v);
      });
    });
    policy.fallback.forEach((f, i) => {
      channel(`escalation.${name}.fallback[${i}]`, f);
    });
  }
}

/** Validates each channel against its type's own schema, in place (defaults filled). */
function checkChannels(service: ServiceConfig, run: Run, originOf: (p: string[]) => string) {
  const channels = (service.channels ?? {}) as Record<string, Json>;
  const known = Object.keys(channelKinds);
  for (const [name, raw] of Object.entries(channels)) {
    const file = originOf(['channels', name]);
    const type = isMap(raw) ? raw.type : undefined;
    if (!isChannelType(type)) {
      run.problems.push(
        `${file}: channels.${name}.type: expected one of ${known.join(', ') || '(no channel types)'}, got ${describeValue(type)}${typeof type === 'string' ? didYouMean(type, known) : ''}`,
      );
      continue;
    }
    const schema = Type.Object(
      {
        type: Type.Literal(type),
        // Every channel may prove itself on a schedule: a test page, its delivery recorded as a run.
        testSchedule: Type.Optional(Type.String({ minLength: 1 })),
        ...(channelKindOf(type).schema.properties as Record<string, TSchema>),
      },
      { additionalProperties: false },
    );
    const { value } = validate(schema, raw, run, () => file, `channels.${name}`);
    const testSchedule = (value as { testSchedule?: unknown }).testSchedule;
    const problem = typeof testSchedule === 'string' ? scheduleProblem(testSchedule) : undefined;
    if (problem) run.problems.push(`${file}: channels.${name}.test${problem[0]?.toUpperCase()}${problem.slice(1)}`);
    channels[name] = value as Json;
  }
}

/** Validates one list item; returns it when it is a usable definition. */
function checkDefinition(item: Json, at: string, shown: string, run: Run, seen: Map<string, string>): ProbeDefinition | undefined {
  if (!isMap(item)) {
    run.problems.push(`${shown}: ${at}: expected a probe definition (a mapping with id, kind, schedule), got ${describeValue(item)}`);
    return undefined;
  }
  const kind = item.kind;
  if (!isProbeKind(kind)) {
    const known = Object.keys(probers);
    const expected = `expected one of ${known.join(', ')}`;
    run.problems.push(
      kind === undefined
        ? `${shown}: ${at}.kind: ${expected}; it is missing`
        : `${shown}: ${at}.kind: ${expected}, got ${describeValue(kind)}${didYouMean(String(kind), known)}`,
    );
    return undefined;
  }
  const prober = proberFor(kind);
  const before = run.problems.length;
  const { value, failed } = validate(definitionSchema(prober.schema), item, run, () => shown, at);
  const def = value as ProbeDefinition;
  if ((item as Record<string, unknown>).timeout === undefined && prober.defaultTimeout && failed.size === 0) {
    (def as { timeout: string }).timeout = prober.defaultTimeout(def as never);
  }
  if (!failedAt(failed, `${at}.schedule`)) {
    const problem = scheduleProblem(def.schedule);
    if (problem) run.problems.push(`${shown}: ${at}.${problem}`);
  }
  if (!failedAt(failed, `${at}.id`)) {
    const first = seen.get(def.id);
    if (first !== undefined)
      run.problems.push(`${shown}: ${at}.id: expected a unique id, got "${def.id}" again (first defined in ${first})`);
    else seen.set(def.id, `${shown} ${at}`);
  }
  // The prober's own checks read typed fields: only run them on a definition the schema accepted.
  if (run.problems.length > before) return undefined;
  for (const p of prober.check?.(def as never) ?? []) run.problems.push(`${shown}: ${at}.${p.path}: ${p.message}`);
  return run.problems.length > before ? undefined : def;
}

/** Whether validation failed at a path or anywhere inside it. */
function failedAt(failed: ReadonlySet<string>, at: string): boolean {
  for (const f of failed) if (f === at || f.startsWith(`${at}.`) || f.startsWith(`${at}[`)) return true;
  return false;
}

const CRON_FIELDS: Record<string, [label: string, range: string]> = {
  second: ['second', '0-59'],
  minute: ['minute', '0-59'],
  hour: ['hour', '0-23'],
  dayOfMonth: ['day of month', '1-31'],
  month: ['month', '1-12 or jan-dec'],
  dayOfWeek: ['day of week', '0-7 or sun-sat'],
};

/** `schedule…: what was expected` for a schedule the schema accepted but that cannot run; undefined when fine. */
function scheduleProblem(schedule: ProbeDefinition['schedule']): string | undefined {
  if (typeof schedule !== 'string') {
    return ms(schedule.every) < 1000 ? `schedule.every: expected an interval of at least 1s, got ${schedule.every}` : undefined;
  }
  const expected = `schedule: expected a cron expression with 5 or 6 fields, got ${JSON.stringify(schedule)}`;
  const count = schedule.trim().split(/\s+/).length;
  if (count < 5 || count > 6) return `${expected} (${count} field${count === 1 ? '' : 's'})`;
  const result = validateDetailed(schedule);
  if (result.valid) return undefined;
  const reasons = result.errors.map((e) => {
    const field = CRON_FIELDS[e.field];
    // node-cron's own wording ("61 is a invalid expression for minute") reads badly; rephrase what we recognise.
    if (field === undefined || e.value === undefined) return e.message;
    const [label, range] = field;
    if (/impossible/.test(e.message)) return `${label} ${e.value} never occurs in that month`;
    return /^\d+$/.test(e.value) ? `${label} ${e.value} is outside ${range}` : `${label} "${e.value}" is not valid (${range})`;
  });
  return `${expected} (${reasons.join('; ')})`;
}

/**
 * Validates against a schema with defaults applied; pushes one line per problem (the first at each path)
 * and returns the paths that failed, in the same notation as the lines.
 */
function validate(schema: TSchema, input: Json, run: Run, fileOf: (p: string[]) => string, prefix: string) {
  const value = Value.Convert(schema, Value.Default(schema, structuredClone(input)));
  const failed = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    for (const { segments, text } of explain(error)) {
      const at = formatPath(prefix, segments);
      const file = fileOf(segments);
      if (failed.has(at) || run.unresolved.has(`${file}: ${at}`)) continue;
      failed.add(at);
      run.problems.push(`${file}: ${at}: ${redactText(text, run.secrets)}`);
    }
  }
  return { value, failed };
}

type SchemaInfo = TSchema & {
  expected?: string;
  anyOf?: SchemaInfo[];
  properties?: Record<string, TSchema>;
  patternProperties?: Record<string, TSchema>;
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  pattern?: string;
  minItems?: number;
};

/** One error as the lines a person should read: a union is explained by the branch the value was meant for. */
function explain(error: ValueError): Array<{ segments: string[]; text: string }> {
  const segments = error.path.split('/').slice(1).map(unescapePointer);
  const schema = error.schema as SchemaInfo;
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    const key = segments.at(-1) ?? '';
    if (schema.patternProperties) {
      const pattern = Object.keys(schema.patternProperties)[0];
      return [{ segments, text: `expected a key matching ${pattern}, got ${JSON.stringify(key)}` }];
    }
    const known = Object.keys(schema.properties ?? {});
    const hint = didYouMean(key, known);
    const expected = hint ? 'a known key' : `one of the keys ${known.join(', ')}`;
    return [{ segments, text: `expected ${expected}, got ${JSON.stringify(key)}${hint}` }];
  }
  if (error.type === ValueErrorType.Union) {
    const branch = error.errors.length === 1 ? 0 : intendedBranch(schema.anyOf ?? [], error.value);
    const inner = branch === undefined ? [] : [...(error.errors[branch] ?? [])];
    if (inner.length > 0) return inner.flatMap(explain);
  }
  const got = error.value === undefined ? '; it is missing' : `, got ${describeValue(error.value)}`;
  return [{ segments, text: `expected ${expectedOf(schema)}${got}` }];
}

/**
 * The one branch of a union that takes the value's shape when that shape is a mapping or a list
 * (`schedule: { every: soon }` is a bad interval, not a bad cron string); scalars keep the union's own wording.
 */
function intendedBranch(branches: SchemaInfo[], value: unknown): number | undefined {
  const shape = Array.isArray(value) ? 'Array' : isMap(value as Json) ? 'Object' : undefined;
  if (shape === undefined) return undefined;
  const matching = branches.flatMap((b, i) => (b[Kind] === shape || (shape === 'Object' && b[Kind] === 'Record') ? [i] : []));
  return matching.length === 1 ? matching[0] : undefined;
}

/** What a schema accepts, in words: its own `expected` when it has one. */
function expectedOf(schema: SchemaInfo): string {
  if (schema.expected) return schema.expected;
  switch (schema[Kind]) {
    case 'Integer':
      return withRange('a whole number', schema);
    case 'Number':
      return withRange('a number', schema);
    case 'String':
      if (schema.pattern) return `a string matching ${schema.pattern}`;
      return schema.minLength ? 'a non-empty string' : 'a string';
    case 'Boolean':
      return 'true or false';
    case 'Object':
    case 'Record':
      return 'a mapping (key: value)';
    case 'Array':
      return schema.minItems ? `a list of at least ${schema.minItems}` : 'a list';
    case 'Literal':
      return JSON.stringify(schema.const);
    case 'Union':
      return (schema.anyOf ?? []).map(expectedOf).join(' or ');
    default:
      return `a ${String(schema[Kind]).toLowerCase()}`;
  }
}

function withRange(base: string, s: SchemaInfo): string {
  if (s.minimum !== undefined && s.maximum !== undefined) return `${base} from ${s.minimum} to ${s.maximum}`;
  if (s.exclusiveMinimum !== undefined) return `${base} greater than ${s.exclusiveMinimum}`;
  if (s.minimum !== undefined) return `${base} of at least ${s.minimum}`;
  if (s.exclusiveMaximum !== undefined) return `${base} less than ${s.exclusiveMaximum}`;
  if (s.maximum !== undefined) return `${base} of at most ${s.maximum}`;
  return base;
}

/** A value as an error line shows it: scalars as written, containers by their shape. */
function describeValue(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Words longer than this get no suggestion. */
const MAX_SUGGESTED = 256;

/** ` (did you mean "service"?)` for a near miss of a known word, else empty. */
function didYouMean(word: string, known: readonly string[]): string {
  // Nobody mistypes a key hundreds of characters long; and the distance to a 10 MB one takes a minute.
  if (word.length > MAX_SUGGESTED) return '';
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = k.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const close = best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3));
  return close ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** Keys longer than this are cut in paths (a key is never a secret, so cutting shows nothing it should not). */
const MAX_KEY = 100;
const keyText = (k: string) => (k.length > MAX_KEY ? `${k.slice(0, MAX_KEY)}…` : k);

function formatPath(prefix: string, segments: string[]): string {
  let out = prefix;
  for (const s of segments.map(keyText)) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * Config and probe files are read and parsed whole, on the event loop (a reload too): a 50 MB file
 * held the service for 5.7 s. A file past this is not a config; the biggest real ones are kilobytes.
 */
export const MAX_YAML_BYTES = 8 * 1024 * 1024;
/** A `${file:…}` secret is a token, a password or a certificate bundle. */
const MAX_SECRET_BYTES = 1024 * 1024;

/**
 * A regular file's text, up to `limit` bytes. A device (`/dev/zero`), a pipe or a socket is refused
 * before it is read: read whole it never ends, or blocks the process until a writer comes.
 */
function readTextFile(file: string, limit: number): string {
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

/** `8 MiB`, `1 MiB`, `512 KiB`: a cap as a person reads it. */
const sizeOf = (bytes: number) => (bytes >= 1024 * 1024 ? `${Math.round(bytes / 1024 / 1024)} MiB` : `${Math.round(bytes / 1024)} KiB`);

/** Why a file could not be read, in words. */
function whyUnreadable(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { limit?: number };
  switch (e.code) {
    case 'ENOENT':
      return 'it does not exist';
    case 'EISDIR':
      return 'it is a folder';
    case 'VIGIL_NOT_A_FILE':
      return 'it is not a regular file (a device, a pipe or a socket)';
    case 'VIGIL_TOO_LARGE':
      return `it is larger than ${sizeOf(e.limit ?? 0)}, the cap on files vigil reads`;
    default:
      return `it cannot be read (${e.code})`;
  }
}

/** Longest problem line shown: a 10 MB value echoed back helps nobody. */
const MAX_LINE = 1000;

/**
 * One problem as one printable line of bounded length: control characters (a key with a newline) are
 * escaped, and a long line is cut. Applied last, after secrets were redacted from the whole value.
 */
function printable(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  const escaped = line.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
  if (escaped.length <= MAX_LINE) return escaped;
  const cut = /[\ud800-\udbff]/.test(escaped.charAt(MAX_LINE - 1)) ? MAX_LINE - 1 : MAX_LINE;
  return `${escaped.slice(0, cut)}… (${escaped.length - cut} more characters)`;
}

/** The parsed file; undefined (with a problem pushed) when it cannot be used; null when it is empty. */
function readYaml(file: string, shown: string, what: string, problems: string[]): Json | undefined {
  let text: string;
  try {
    text = readTextFile(file, MAX_YAML_BYTES);
  } catch (err) {
    problems.push(`${shown}: (file): expected ${what}; ${whyUnreadable(err)}`);
    return undefined;
  }
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

/**
 * Where an unclosed quoted string starts. The parser reports where the file ran out, usually a blank
 * line after the mistake; the quote that opened the string is what a person has to find.
 */
function unclosedQuote(text: string, message: string, end: number): { line: number; col: number } | undefined {
  const quote = /^Missing closing (["'])quote/.exec(message)?.[1];
  const start = quote === undefined ? -1 : text.lastIndexOf(quote, end - 1);
  if (start < 0) return undefined;
  const before = text.slice(0, start);
  return { line: before.split('\n').length, col: start - before.lastIndexOf('\n') };
}

/** The parser's message without the location it repeats and the source excerpt it appends. */
function yamlReason(message: string): string {
  const first = (message.split('\n')[0] ?? '')
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/^Missing closing (["'])quote/, 'the $1 opened here is never closed');
  return first.charAt(0).toLowerCase() + first.slice(1);
}

const REF = /\$\$\{|\$\{([^}]*)\}/g;

/** Replaces `${NAME}`, `${NAME:-default}` and `${file:PATH}` in every string; `$${` is a literal `${`. */
function interpolate(node: Json, run: Run, file: string, at: string): Json {
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

/** Objects merge key by key; anything else (lists included) is replaced by the later layer. */
function merge(base: Json, over: Json): Json {
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, Json> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? merge(out[k] as Json, v) : v;
  return out;
}

/** The last layer that set the deepest existing part of a path: where a person has to look to fix it. */
function originFile(layers: ReadonlyArray<{ file: string; doc: Json }>, p: string[]): string | undefined {
  for (let depth = p.length; depth > 0; depth--) {
    for (let i = layers.length - 1; i >= 0; i--) {
      if (has(layers[i]?.doc, p.slice(0, depth))) return layers[i]?.file;
    }
  }
  return undefined;
}

function isMap(v: Json | undefined): v is { [k: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
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

function rel(cwd: string, file: string): string {
  const r = path.relative(cwd, file);
  return r.startsWith('..') || path.isAbsolute(r) ? file : r;
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
