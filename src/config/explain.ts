/**
 * Config problems in words: each schema, YAML, cron or file error becomes one line that names the
 * file, the path inside it and what was expected there, with the value it got (secrets redacted).
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value, type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import { validateDetailed } from 'node-cron';
import { ms } from '../lib/duration.js';
import { codeOf, messageOf } from '../lib/errors.js';
import { fieldOf, isJsonObject } from '../lib/fields.js';
import type { ProbeDefinition } from '../probers/index.js';
import { defaulterOf } from './defaults.js';
import { redactText } from './redact.js';
import type { Json, Run } from './run.js';

/**
 * Validates against a schema with defaults applied; pushes one line per problem (the first at each path)
 * and returns the paths that failed, in the same notation as the lines.
 */
export function validate(
  schema: TSchema,
  input: Json,
  run: Run,
  fileOf: (p: string[]) => string,
  prefix: string,
  opts: { owned?: boolean } = {},
) {
  // Defaults only fill in YAML values: what comes out is still plain data. A value the caller owns (a
  // probe definition fresh from interpolation) is filled in place: 60,000 clones cost a second.
  const defaulted = defaulterOf(schema)(opts.owned ? input : structuredClone(input)) as Json;
  const failed = new Set<string>();
  // The compiled check first: a valid value needs no conversion (Convert changes only what does not
  // match) and no error walk, the two slowest steps at 60,000 probes.
  if (checkerOf(schema).Check(defaulted)) return { value: defaulted, failed };
  const value = Value.Convert(schema, defaulted) as Json;
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

const checkers = new WeakMap<TSchema, { Check(value: unknown): boolean }>();

/** The schema's compiled check, built once per schema object (a kind's definition schema, the config's). */
function checkerOf(schema: TSchema): { Check(value: unknown): boolean } {
  let checker = checkers.get(schema);
  if (checker === undefined) {
    checker = TypeCompiler.Compile(schema);
    checkers.set(schema, checker);
  }
  return checker;
}

/** Whether validation failed at a path or anywhere inside it. */
export function failedAt(failed: ReadonlySet<string>, at: string): boolean {
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

/** Cron expressions already judged: thousands of probes share a handful, and node-cron takes ~100 µs for each. */
const judged = new Map<string, string | undefined>();
const MAX_JUDGED = 10_000;

/** `schedule…: what was expected` for a schedule the schema accepted but that cannot run; undefined when fine. */
export function scheduleProblem(schedule: ProbeDefinition['schedule']): string | undefined {
  if (typeof schedule === 'string') {
    if (judged.has(schedule)) return judged.get(schedule);
    const problem = cronProblem(schedule);
    // A bound, so a config of a million distinct expressions cannot grow it without end.
    if (judged.size >= MAX_JUDGED) judged.clear();
    judged.set(schedule, problem);
    return problem;
  }
  return ms(schedule.every) < 1000 ? `schedule.every: expected an interval of at least 1s, got ${schedule.every}` : undefined;
}

function cronProblem(schedule: string): string | undefined {
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
  const shape = Array.isArray(value) ? 'Array' : isJsonObject(value) ? 'Object' : undefined;
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
export function describeValue(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Words longer than this get no suggestion. */
const MAX_SUGGESTED = 256;

/** ` (did you mean "service"?)` for a near miss of a known word, else empty. */
export function didYouMean(word: string, known: readonly string[]): string {
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
export const keyText = (k: string) => (k.length > MAX_KEY ? `${k.slice(0, MAX_KEY)}…` : k);

function formatPath(prefix: string, segments: string[]): string {
  let out = prefix;
  for (const s of segments.map(keyText)) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  return out === '' ? '(root)' : out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** `8 MiB`, `1 MiB`, `512 KiB`: a cap as a person reads it. */
const sizeOf = (bytes: number) => (bytes >= 1024 * 1024 ? `${Math.round(bytes / 1024 / 1024)} MiB` : `${Math.round(bytes / 1024)} KiB`);

/** Why a file could not be read, in words. */
export function whyUnreadable(err: unknown): string {
  const code = codeOf(err);
  switch (code) {
    case 'ENOENT':
      return 'it does not exist';
    case 'EISDIR':
      return 'it is a folder';
    case 'VIGIL_NOT_A_FILE':
      return 'it is not a regular file (a device, a pipe or a socket)';
    case 'VIGIL_TOO_LARGE': {
      const limit = fieldOf(err, 'limit');
      return `it is larger than ${sizeOf(typeof limit === 'number' ? limit : 0)}, the cap on files vigil reads`;
    }
    default:
      return `it cannot be read (${code || messageOf(err)})`;
  }
}

/** Longest problem line shown: a 10 MB value echoed back helps nobody. */
const MAX_LINE = 1000;

/**
 * One problem as one printable line of bounded length: control characters (a key with a newline) are
 * escaped, and a long line is cut. Applied last, after secrets were redacted from the whole value.
 */
export function printable(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
  const escaped = line.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
  if (escaped.length <= MAX_LINE) return escaped;
  const cut = /[\ud800-\udbff]/.test(escaped.charAt(MAX_LINE - 1)) ? MAX_LINE - 1 : MAX_LINE;
  return `${escaped.slice(0, cut)}… (${escaped.length - cut} more characters)`;
}

/**
 * Where an unclosed quoted string starts. The parser reports where the file ran out, usually a blank
 * line after the mistake; the quote that opened the string is what a person has to find.
 */
export function unclosedQuote(text: string, message: string, end: number): { line: number; col: number } | undefined {
  const quote = /^Missing closing (["'])quote/.exec(message)?.[1];
  const start = quote === undefined ? -1 : text.lastIndexOf(quote, end - 1);
  if (start < 0) return undefined;
  const before = text.slice(0, start);
  return { line: before.split('\n').length, col: start - before.lastIndexOf('\n') };
}

/** The parser's message without the location it repeats and the source excerpt it appends. */
export function yamlReason(message: string): string {
  const first = (message.split('\n')[0] ?? '')
    .replace(/ at line \d+, column \d+:?$/, '')
    .replace(/^Missing closing (["'])quote/, 'the $1 opened here is never closed');
  return first.charAt(0).toLowerCase() + first.slice(1);
}
