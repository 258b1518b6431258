import type { Static, TObject } from '@sinclair/typebox';
import { http } from './http.js';
import type { AnyProber, ProbeBase, Prober } from './types.js';

/** Every probe kind vigil knows. Adding one is its module plus one line here. */
export const probers = {
  http,
} satisfies Record<string, AnyProber>;

export type ProbeKind = keyof typeof probers;

type SpecOf<K extends ProbeKind> = (typeof probers)[K]['schema'] extends TObject ? Static<(typeof probers)[K]['schema']> : never;

/** A validated probe definition: the common fields plus its kind's own. */
export type ProbeDefinition = { [K in ProbeKind]: ProbeBase & { kind: K } & SpecOf<K> }[ProbeKind];

export function isProbeKind(kind: unknown): kind is ProbeKind {
  return typeof kind === 'string' && Object.hasOwn(probers, kind);
}

export function proberFor(kind: ProbeKind): Prober {
  return probers[kind] as unknown as Prober;
}

export type { AnyProber, FailureCode, ProbeBase, ProbeContext, ProbeResult, Prober, ProbeState, SpecProblem } from './types.js';
export { defineProber } from './types.js';
