import { type Static, Type } from '@sinclair/typebox';
import { formatDuration } from '../lib/duration.js';
import { isJsonObject } from '../lib/fields.js';
import { createRedactor } from '../lib/redactor.js';
import { CookieJar, checkHttp, type HttpAnswer, type HttpSpec, http, lookup, patternProblem } from './http.js';
import { defineProber, type FailureCode, type ProbeContext, type ProbeResult, type SpecProblem } from './types.js';
import { urlAsWritten } from './url-credentials.js';

// A step's request and its judgement are the http kind's own fields, validated and defaulted as there.
const request = Type.Pick(http.schema, [
  'method',
  'headers',
  'body',
  'bodyFile',
  'maxBodySize',
  'insecure',
  'ca',
  'cert',
  'key',
  'http2',
  'followRedirects',
  'compression',
  'proxy',
  'ipProtocol',
  'expect',
]).properties;

const VariableName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', expected: 'a variable name (letters, digits, _)' });
const ExtractRule = Type.Union(
  [
    /** A dotted JSON path in the body (`data.token`, `items.0.id`): a text, number or boolean there. */
    Type.Object({ json: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    /** A response header (any case); its first value when it came several times. */
    Type.Object({ header: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    /** A regular expression over the body; `group` picks the capture (1 when the pattern has one, else the whole match). */
    Type.Object(
      { regex: Type.String({ minLength: 1 }), group: Type.Optional(Type.Integer({ minimum: 0, maximum: 9 })) },
      { additionalProperties: false },
    ),
  ],
  { expected: 'one of { json: <path> }, { header: <name> }, { regex: <pattern>, group: <n> }' },
);

/**
 * http's URL, but a `{{steps.<name>.<variable>}}` in it may hold spaces (a step named `get orders`):
 * the placeholders are filled in, percent-encoded, before the request is made.
 */
const StepUrl = Type.String({
  pattern: '^https?://(?:[^\\s{]|\\{(?!\\{)|\\{\\{[^{}]*\\}\\})+$',
  expected: 'an http:// or https:// URL',
});

const Step = Type.Object(
  {
    /** Named in failures (`step 'login' (1 of 3)`), in `{{steps.<name>.<variable>}}` and in the value `step_<name>_ms`. */
    name: Type.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9 _-]{0,47}$',
      expected: 'a step name: letters, digits, spaces, _ and -, up to 48 characters',
    }),
    url: StepUrl,
    ...request,
    /** Variable name → where its value is read from this step's answer; later steps use `{{steps.<name>.<variable>}}`. */
    extract: Type.Record(VariableName, ExtractRule, { additionalProperties: false, default: {} }),
  },
  { additionalProperties: false },
);

const schema = Type.Object(
  {
    /** Run in order, sharing one cookie jar and the extracted variables; the first failing step ends the run. */
    steps: Type.Array(Step, { minItems: 1, maxItems: 20, expected: 'a list of 1 to 20 steps' }),
  },
  { additionalProperties: false },
);

type MultistepSpec = Static<typeof schema>;
type StepSpec = MultistepSpec['steps'][number];
type Rule = StepSpec['extract'][string];

/** `{{ … }}` anywhere in a text; what is inside is judged by REFERENCE. */
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
/** What a placeholder may say: `steps.<step name>.<variable>`. */
const REFERENCE = /^\s*steps\.([^.]+)\.([A-Za-z_][A-Za-z0-9_]*)\s*$/;
/** How much of a body a regex reads, so a pattern that backtracks stays bounded on a large body. */
const REGEX_WINDOW = 256 * 1024;

/** One step's outcome, as kept in `details.steps`. */
interface StepOutcome {
  name: string;
  ok: boolean;
  ms: number;
  status?: number;
  code?: FailureCode;
  message?: string;
}

export const multistep = defineProber({
  schema,
  report: {
    // The journey's first request, as written less any password: a journey has no single endpoint.
    target: (spec) => urlAsWritten(spec.steps[0]?.url ?? ''),
  },
  values: (spec) => ['duration_ms', 'steps_passed', ...spec.steps.map((s) => valueName(s.name))],
  check(spec) {
    const problems: SpecProblem[] = [];
    const seen = new Map<string, number>();
    spec.steps.forEach((step, i) => {
      const at = `steps.${i}`;
      const value = valueName(step.name);
      const earlier = seen.get(value);
      if (earlier !== undefined) {
        const same = spec.steps[earlier]?.name === step.name;
        problems.push({
          path: `${at}.name`,
          message: same
            ? `expected unique step names: '${step.name}' is also step ${earlier + 1}`
            : `expected step names that differ in more than case and punctuation: '${step.name}' and step ${earlier + 1}'s '${spec.steps[earlier]?.name}' are both ${value}`,
        });
      } else seen.set(value, i);
      for (const [where, text] of fillable(step)) {
        for (const m of text.matchAll(PLACEHOLDER)) {
          const problem = referenceProblem(spec.steps, i, m[1] ?? '');
          if (problem !== undefined) problems.push({ path: `${at}.${where}`, message: problem });
        }
      }
      // Only the request is filled in: a placeholder in expect would be compared as written, and never match.
      if (JSON.stringify(step.expect).includes('{{steps.')) {
        problems.push({ path: `${at}.expect`, message: 'expected {{steps.…}} only in url, headers and body: expect is not filled in' });
      }
      for (const [variable, rule] of Object.entries(step.extract)) {
        if (!('regex' in rule)) continue;
        const problem = patternProblem(rule.regex) ?? groupProblem(rule.regex, rule.group);
        if (problem !== undefined) problems.push({ path: `${at}.extract.${variable}.regex`, message: problem });
      }
      // The http kind's own rules (status codes, patterns, certificates, credentials) hold for each step.
      for (const p of http.check?.({ ...spec, ...httpSpec(step) }) ?? []) problems.push({ path: `${at}.${p.path}`, message: p.message });
    });
    return problems;
  },
  probe: (spec, ctx) => journey(spec, ctx),
});

/** Runs the steps in order; one cookie jar, one map of variables and one deadline for them all. */
async function journey(spec: MultistepSpec, ctx: ProbeContext): Promise<ProbeResult> {
  const start = ctx.clock.now();
  const jar = new CookieJar();
  const variables = new Map<string, string>();
  const outcomes: StepOutcome[] = [];
  const values: Record<string, number> = { steps_passed: 0 };
  let failure: Failure | undefined;
  for (const [i, step] of spec.steps.entries()) {
    const label = `step '${step.name}' (${i + 1} of ${spec.steps.length})`;
    if (ctx.signal.aborted) {
      failure = { code: 'TIMEOUT', message: `${label}: not started, the journey's deadline passed after ${elapsed(ctx, start)}` };
      break;
    }
    const stepStart = ctx.clock.now();
    const ran = await runStep(step, variables, jar, ctx);
    const ms = ctx.clock.now() - stepStart;
    values[valueName(step.name)] = ms;
    const status = ran.status === undefined ? {} : { status: ran.status };
    if ('failure' in ran) {
      outcomes.push({ name: step.name, ok: false, ms, ...status, ...ran.failure });
      const late = ran.failure.code === 'TIMEOUT' ? `; the journey's deadline passed after ${elapsed(ctx, start)}` : '';
      failure = { code: ran.failure.code, message: `${label}: ${ran.failure.message}${late}` };
      break;
    }
    outcomes.push({ name: step.name, ok: true, ms, ...status });
    for (const [name, value] of ran.extracted) variables.set(variableKey(step.name, name), value);
    values.steps_passed = i + 1;
  }
  values.duration_ms = ctx.clock.now() - start;
  // Extracted values are tokens and session ids: no message or detail may carry one, whatever echoed it back.
  const hide = createRedactor(variables.values());
  const details = hide.value({ steps: outcomes });
  if (failure === undefined) return { ok: true, values, details };
  return { ok: false, code: failure.code, message: hide.text(failure.message), values, details };
}

type Failure = { code: FailureCode; message: string };

/** One step: its request judged by the http kind, then its variables read from the answer. */
async function runStep(
  step: StepSpec,
  variables: Map<string, string>,
  jar: CookieJar,
  ctx: ProbeContext,
): Promise<{ status?: number; extracted: Array<[string, string]> } | { status?: number; failure: Failure }> {
  const request = filled(step, variables);
  if (request === undefined) {
    return { failure: { code: 'ASSERTION', message: 'the URL is not a valid http(s) URL once its {{…}} are filled in' } };
  }
  let answer: HttpAnswer | undefined;
  const result = await checkHttp(request, ctx, undefined, { jar, onAnswer: (a) => (answer = a) });
  const status = result.values.status === undefined ? {} : { status: result.values.status };
  if (!result.ok) return { ...status, failure: { code: result.code ?? 'INTERNAL', message: result.message ?? 'failed' } };
  if (Object.keys(step.extract).length === 0) return { ...status, extracted: [] };
  // An http:// step judged by its redirect to https (expect.httpsRedirect) has no answer of its own to read.
  if (answer === undefined) return { ...status, failure: { code: 'ASSERTION', message: 'no answer to extract values from' } };
  const got = extract(step, answer);
  return 'problem' in got ? { ...status, failure: { code: 'ASSERTION', message: got.problem } } : { ...status, extracted: got.values };
}

/** Where an extracted value is kept: step names may hold spaces, never a NUL. */
function variableKey(step: string, variable: string): string {
  return `${step}\u0000${variable}`;
}

/** A step's request with every `{{steps.…}}` filled in; undefined when the URL no longer parses. */
function filled(step: StepSpec, variables: Map<string, string>): HttpSpec | undefined {
  const base = httpSpec(step);
  if (!fillable(step).some(([, text]) => text.includes('{{'))) return base;
  // check() made sure every reference names an earlier step's variable, which it extracted before this step ran.
  const fill = (text: string, encode: (v: string) => string) =>
    text.replace(PLACEHOLDER, (_, ref: string) => {
      const m = REFERENCE.exec(ref);
      return encode(variables.get(variableKey(m?.[1] ?? '', m?.[2] ?? '')) ?? '');
    });
  // In the URL a value is one path segment or query value, whatever characters it holds.
  const url = fill(base.url, encodeURIComponent);
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) return undefined;
  const same = (v: string) => v;
  return {
    ...base,
    url,
    headers: Object.fromEntries(Object.entries(base.headers).map(([k, v]) => [k, fill(v, same)])),
    ...(base.body === undefined ? {} : { body: fill(base.body, same) }),
  };
}

/** The http definition a step is: its own fields, cached per (frozen) step so its rules compile once. */
const HTTP_SPECS = new WeakMap<StepSpec, HttpSpec>();

function httpSpec(step: StepSpec): HttpSpec {
  let spec = HTTP_SPECS.get(step);
  if (spec === undefined) {
    const { name: _name, extract: _extract, ...request } = step;
    // http's own `extract` (numbers into values) has no place in a step: a step's extract feeds later steps.
    spec = { ...request, extract: {} };
    HTTP_SPECS.set(step, spec);
  }
  return spec;
}

/** The texts a `{{…}}` may appear in, with their paths in the step. */
function fillable(step: StepSpec): Array<[string, string]> {
  return [
    ['url', step.url],
    ...Object.entries(step.headers).map(([k, v]): [string, string] => [`headers.${k}`, v]),
    ...(step.body === undefined ? [] : [['body', step.body] as [string, string]]),
  ];
}

/** Why `{{ref}}` in step `i` cannot be filled in: it must name a variable an earlier step extracts. */
function referenceProblem(steps: readonly StepSpec[], i: number, ref: string): string | undefined {
  const used = `{{${ref}}} in step '${steps[i]?.name}'`;
  const m = REFERENCE.exec(ref);
  if (m === null) return `expected {{steps.<step name>.<variable>}}, got ${used} (\${…} is for secrets)`;
  const [, name = '', variable = ''] = m;
  const j = steps.findIndex((s) => s.name === name);
  if (j < 0) return `expected ${used} to name an earlier step: no step is named '${name}'`;
  if (j >= i) return `expected ${used} to name an earlier step: '${name}' ${j === i ? 'is this step' : 'runs after it'}`;
  const extract = steps[j]?.extract ?? {};
  if (Object.hasOwn(extract, variable)) return undefined;
  const has = Object.keys(extract).length === 0 ? 'it extracts nothing' : `it extracts ${Object.keys(extract).join(', ')}`;
  return `expected ${used} to name a variable step '${name}' extracts: ${has}`;
}

/** A capture group the pattern does not have. */
function groupProblem(pattern: string, group: number | undefined): string | undefined {
  const groups = groupCount(pattern);
  return group !== undefined && group > groups ? `expected group ${group} to exist: the pattern has ${groups}` : undefined;
}

function groupCount(pattern: string): number {
  // An empty alternative always matches, so every group is in the match array, undefined or not.
  return (new RegExp(`${pattern}|`).exec('')?.length ?? 1) - 1;
}

/** The values a passing step's answer gives its variables, or why one is missing (never quoting the body). */
function extract(step: StepSpec, answer: HttpAnswer): { values: Array<[string, string]> } | { problem: string } {
  const values: Array<[string, string]> = [];
  let json: { doc: unknown } | undefined;
  for (const [variable, rule] of Object.entries(step.extract)) {
    const got = readRule(rule, answer, () => {
      json ??= { doc: parsed(answer.text) };
      return json.doc;
    });
    if (typeof got !== 'string') return { problem: `cannot extract ${variable}: ${got.problem}` };
    values.push([variable, got]);
  }
  return { values };
}

function readRule(rule: Rule, answer: HttpAnswer, json: () => unknown): string | { problem: string } {
  if ('json' in rule) {
    const doc = json();
    if (doc === undefined) return { problem: 'the body is not JSON' };
    const v = lookup(doc, rule.json);
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    const what = v === undefined ? 'nothing' : v === null ? 'null' : isJsonObject(v) ? 'an object' : 'a list';
    return { problem: `JSON ${rule.json} is ${what} (expected a text, a number or a boolean)` };
  }
  if ('header' in rule) {
    const v = answer.headers[rule.header.toLowerCase()];
    const first = Array.isArray(v) ? v[0] : v;
    return first === undefined ? { problem: `the answer has no ${rule.header.toLowerCase()} header` } : first;
  }
  const re = new RegExp(rule.regex);
  const m = re.exec(answer.text.length > REGEX_WINDOW ? answer.text.slice(0, REGEX_WINDOW) : answer.text);
  const group = rule.group ?? (groupCount(rule.regex) > 0 ? 1 : 0);
  const v = m?.[group];
  if (v === undefined)
    return { problem: m === null ? `the body does not match /${rule.regex}/` : `group ${group} of /${rule.regex}/ matched nothing` };
  return v;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `step_<name>_ms`: the step's name in snake_case, as value names are. */
function valueName(name: string): string {
  return `step_${name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_|_$/g, '')}_ms`;
}

function elapsed(ctx: ProbeContext, start: number): string {
  return formatDuration(ctx.clock.now() - start);
}
