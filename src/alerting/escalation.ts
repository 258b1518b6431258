import { ms } from '../lib/duration.js';
import { own } from '../lib/own.js';

/** An escalation policy as configured (and as copied onto an incident when it opens). */
export interface EscalationPolicy {
  steps: Array<{ notify: string[]; via?: string[]; after: string }>;
  /** Extra passes over the steps after the first, while nobody acknowledges. */
  repeat: number;
  /** How long after the last step's delay the next pass starts. */
  repeatAfter: string;
  /** Channels paged when a whole pass reached nobody. */
  fallback: string[];
}

/** Where an incident's escalation stands. Kept in the store, so a restart resumes it on time. */
export interface EscalationState {
  pass: number;
  /** The next step to fire. */
  step: number;
  /** When it is due; null once the escalation has run out or was stopped. */
  nextDueAt: number | null;
  /** Whether this pass has reached anyone yet. */
  reached: boolean;
}

/** A person as escalation sees them: which channel types can reach them. */
export interface Reachable {
  email?: string;
  slack?: string;
  pagerduty?: boolean;
}

/** What resolving a step's targets needs. */
export interface TargetContext {
  /** Configured channels, name → type. */
  channels: Record<string, string>;
  people: Record<string, Reachable>;
  /** The person on call for a schedule at `now`, if anyone. */
  onCall(schedule: string, now: number): string | undefined;
}

/** One page of a step: a channel, and the person it is addressed to when there is one. */
export interface Page {
  channel: string;
  recipient?: string;
}

function passLength(p: EscalationPolicy): number {
  const last = p.steps[p.steps.length - 1];
  return (last ? ms(last.after) : 0) + ms(p.repeatAfter);
}

/** The state of a fresh escalation for an incident opened at `openedAt`. */
export function startEscalation(p: EscalationPolicy, openedAt: number): EscalationState {
  return { pass: 0, step: 0, nextDueAt: openedAt + ms(p.steps[0]?.after ?? '0s'), reached: false };
}

/**
 * The channels a person is paged through: those named in `via`, or else the first configured
 * channel of each type that can address them (Slack by user id, email by address, PagerDuty by its
 * own routing) — one email, not one per email channel.
 */
function personPages(person: string, via: string[] | undefined, ctx: TargetContext): Page[] {
  const who = own(ctx.people, person);
  if (!who) return [];
  const can = (type: string | undefined) =>
    (type === 'slack' && who.slack !== undefined) ||
    (type === 'email' && who.email !== undefined) ||
    (type === 'pagerduty' && who.pagerduty === true) ||
    type === 'webhook';
  const names =
    via ??
    Object.keys(ctx.channels).filter(
      (c, i, all) => ctx.channels[c] !== 'webhook' && all.findIndex((d) => ctx.channels[d] === ctx.channels[c]) === i,
    );
  return names.filter((c) => can(own(ctx.channels, c))).map((channel) => ({ channel, recipient: person }));
}

/**
 * Resolves a step's targets at `now`: a channel name pages that channel, `person:<id>` a person,
 * `oncall:<schedule>` whoever is on call then. Targets that reach nobody are named in `nobody`.
 */
export function resolveTargets(
  targets: readonly string[],
  via: string[] | undefined,
  ctx: TargetContext,
  now: number,
): { pages: Page[]; nobody: string[] } {
  const pages: Page[] = [];
  const nobody: string[] = [];
  const add = (list: Page[], target: string) => {
    if (list.length === 0) nobody.push(target);
    for (const p of list) if (!pages.some((q) => q.channel === p.channel && q.recipient === p.recipient)) pages.push(p);
  };
  for (const t of targets) {
    if (t.startsWith('oncall:')) {
      const person = ctx.onCall(t.slice(7), now);
      add(person === undefined ? [] : personPages(person, via, ctx), t);
    } else if (t.startsWith('person:')) {
      add(personPages(t.slice(7), via, ctx), t);
    } else add(own(ctx.channels, t) === undefined ? [] : [{ channel: t }], t);
  }
  return { pages, nobody };
}

/**
 * After step `state.step` fired (reaching someone or not): the next state, and whether the
 * fallback is due because a whole pass reached nobody.
 */
export function advance(
  p: EscalationPolicy,
  state: EscalationState,
  openedAt: number,
  reachedNow: boolean,
): { state: EscalationState; fallback: boolean } {
  const reached = state.reached || reachedNow;
  const next = state.step + 1;
  const passStart = openedAt + state.pass * passLength(p);
  const nextStep = p.steps[next];
  if (nextStep !== undefined) {
    return {
      state: { pass: state.pass, step: next, nextDueAt: passStart + ms(nextStep.after), reached },
      fallback: false,
    };
  }
  const fallback = !reached && p.fallback.length > 0;
  if (state.pass < p.repeat) {
    const nextStart = passStart + passLength(p);
    return { state: { pass: state.pass + 1, step: 0, nextDueAt: nextStart + ms(p.steps[0]?.after ?? '0s'), reached: false }, fallback };
  }
  return { state: { ...state, step: next, nextDueAt: null, reached }, fallback };
}
