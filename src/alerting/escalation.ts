import { ms } from '../lib/duration.js';
import { own } from '../lib/own.js';
import { addressesPeople, type Contact, canPage } from '../notify/index.js';
import type { EscalationPolicy } from '../oncall/index.js';

/** An escalation policy as configured (and as copied onto an incident when it opens): from its schema. */
export type { EscalationPolicy } from '../oncall/index.js';

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

/** A person as escalation sees them: the fields channel types send to. */
export type Reachable = Contact;

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
 * channel of each type that addresses people and has their field (the channel type's `person`) —
 * one email, not one per email channel.
 */
function personPages(person: string, via: string[] | undefined, ctx: TargetContext): Page[] {
  const who = own(ctx.people, person);
  if (!who) return [];
  const names =
    via ??
    Object.keys(ctx.channels).filter(
      (c, i, all) => addressesPeople(ctx.channels[c]) && all.findIndex((d) => ctx.channels[d] === ctx.channels[c]) === i,
    );
  return names.filter((c) => canPage(own(ctx.channels, c), who)).map((channel) => ({ channel, recipient: person }));
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
