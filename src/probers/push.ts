import { type Static, Type } from '@sinclair/typebox';
import { formatDuration, ms } from '../lib/duration.js';
import type { Ping } from '../lib/push-inbox.js';
import { Duration } from '../lib/schema.js';
import { defineProber, type ProbeResult, type SpecProblem } from './types.js';

const schema = Type.Object(
  {
    /**
     * The job's credential: it pings `/api/v1/push/<token>`. One URL path segment, long enough not to
     * be guessed; normally `${PUSH_TOKEN_…}` so it stays out of the YAML.
     */
    token: Type.String({
      minLength: 16,
      maxLength: 256,
      pattern: '^[A-Za-z0-9._~-]+$',
      expected: 'a secret of 16 to 256 URL-safe characters (letters, digits, . _ ~ -), normally ${SOME_ENV_VAR}',
    }),
    /** How often the job succeeds when all is well (its cron interval). */
    period: Duration(),
    /** How late a success may be before the probe fails; a tenth of the period, at least 1m, when not given. */
    grace: Type.Optional(Duration()),
  },
  { additionalProperties: false },
);

/** The kind-specific fields of a `push` definition. */
export type PushSpec = Static<typeof schema>;

/** What a push probe keeps across runs and restarts (ctx.state). */
export interface PushState {
  /** When vigil first ran this probe: the first period + grace counts from here, not from a success never seen. */
  since: number;
  lastSuccessAt?: number;
  /** A start ping not yet followed by a success or a failure. */
  startedAt?: number;
  /** The newest failure, until a success clears it. */
  lastFail?: { at: number; exitCode?: number; body?: string };
}

/** Of a request body, this much is kept with a run (the route reads at most 10 kB). */
const BODY_KEPT = 1024;
const MIN_GRACE_MS = 60_000;

/** The grace a definition gets: its own, or a tenth of its period (at least a minute). */
export function graceMs(spec: PushSpec): number {
  return spec.grace === undefined ? Math.max(MIN_GRACE_MS, Math.round(ms(spec.period) / 10)) : ms(spec.grace);
}

export const push = defineProber({
  schema,
  report: {
    // Never the token: it is the job's credential.
    target: (spec) => `a job pinging every ${spec.period}`,
  },
  // Nothing to reach: a run only reads the inbox, so once a minute is cheap and a missed deadline pages within it.
  defaultSchedule: { every: '1m' },
  unique: ['token'],
  values: () => ['since_success_s', 'duration_s', 'pings'],
  check(spec) {
    const problems: SpecProblem[] = [];
    if (ms(spec.period) <= 0) problems.push({ path: 'period', message: `expected a duration above zero, got ${spec.period}` });
    return problems;
  },
  async probe(spec, ctx) {
    if (ctx.push === undefined) {
      return {
        ok: false,
        code: 'INTERNAL',
        message: "this run has no push inbox: push probes only work inside vigil's scheduler, which receives their pings",
        values: {},
      };
    }
    const now = ctx.clock.now();
    const state: PushState = readState(ctx.state.get()) ?? { since: now };
    const pings = ctx.push.take(spec.id).sort((a, b) => a.at - b.at);
    const redact = (s: string) => (ctx.redactor ? ctx.redactor.text(s) : s);
    let durationS: number | undefined;
    let body: string | undefined;
    for (const p of pings) {
      const said = p.body === undefined ? undefined : redact(p.body.slice(0, BODY_KEPT));
      if (said !== undefined) body = said;
      if (p.kind === 'start') {
        state.startedAt = p.at;
        continue;
      }
      if (state.startedAt !== undefined && state.startedAt <= p.at) durationS = (p.at - state.startedAt) / 1000;
      state.startedAt = undefined;
      if (p.kind === 'success') {
        state.lastSuccessAt = p.at;
        state.lastFail = undefined;
      } else {
        state.lastFail = {
          at: p.at,
          ...(p.exitCode !== undefined ? { exitCode: p.exitCode } : {}),
          ...(said !== undefined ? { body: said } : {}),
        };
      }
    }
    ctx.state.set(dropUndefined(state));
    return judge(spec, state, now, { pings, durationS, body });
  },
});

/** Turns the state after this run's pings into a verdict. */
function judge(
  spec: PushSpec,
  state: PushState,
  now: number,
  run: { pings: Ping[]; durationS: number | undefined; body: string | undefined },
): ProbeResult {
  const reference = state.lastSuccessAt ?? state.since;
  const values: Record<string, number> = {
    since_success_s: Math.max(0, Math.round((now - reference) / 100) / 10),
    pings: run.pings.length,
  };
  if (run.durationS !== undefined) values.duration_s = run.durationS;
  const details: Record<string, unknown> = {
    lastSuccessAt: state.lastSuccessAt === undefined ? null : iso(state.lastSuccessAt),
    ...(state.startedAt !== undefined ? { startedAt: iso(state.startedAt) } : {}),
    ...(run.pings.length > 0
      ? { pings: run.pings.map((p) => ({ kind: p.kind, at: iso(p.at), ...(p.exitCode !== undefined ? { exitCode: p.exitCode } : {}) })) }
      : {}),
    ...(run.body !== undefined ? { body: run.body } : {}),
  };

  const fail = state.lastFail;
  if (fail !== undefined) {
    const exit = fail.exitCode !== undefined ? ` with exit code ${fail.exitCode}` : '';
    const said = fail.body ? `: ${fail.body}` : '';
    return {
      ok: false,
      code: 'PUSH_FAILED',
      message: `the job reported a failure${exit} at ${iso(fail.at)}; it stays failed until the next success ping${said}`,
      values,
      details,
    };
  }
  const allowed = ms(spec.period) + graceMs(spec);
  if (now - reference > allowed) {
    const late = formatDuration(now - reference);
    const expected = `expected every ${spec.period} + ${formatDuration(graceMs(spec))} grace`;
    const running = state.startedAt !== undefined ? `; it started at ${iso(state.startedAt)} and has not finished` : '';
    const message =
      state.lastSuccessAt === undefined
        ? `no success ping in the ${late} since vigil began watching (${expected})${running}`
        : `no success ping for ${late}, last at ${iso(state.lastSuccessAt)} (${expected})${running}`;
    return { ok: false, code: 'PUSH_MISSING', message, values, details };
  }
  return { ok: true, values, details };
}

/** The state as stored, if it has the shape this version writes; anything else starts afresh. */
function readState(v: unknown): PushState | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const s = v as Record<string, unknown>;
  if (typeof s.since !== 'number') return undefined;
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);
  const out: PushState = { since: s.since };
  const lastSuccessAt = num(s.lastSuccessAt);
  const startedAt = num(s.startedAt);
  if (lastSuccessAt !== undefined) out.lastSuccessAt = lastSuccessAt;
  if (startedAt !== undefined) out.startedAt = startedAt;
  const f = s.lastFail;
  if (typeof f === 'object' && f !== null) {
    const fail = f as Record<string, unknown>;
    const at = num(fail.at);
    if (at !== undefined) {
      const exitCode = num(fail.exitCode);
      out.lastFail = {
        at,
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(typeof fail.body === 'string' ? { body: fail.body } : {}),
      };
    }
  }
  return out;
}

function dropUndefined(state: PushState): PushState {
  return JSON.parse(JSON.stringify(state)) as PushState;
}

function iso(at: number): string {
  return new Date(at).toISOString();
}
