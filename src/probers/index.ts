import type { Static, TObject } from '@sinclair/typebox';
import { browser } from './browser.js';
import { dns } from './dns.js';
import { grpc } from './grpc.js';
import { http } from './http.js';
import { icmp } from './icmp.js';
import { k6 } from './k6.js';
import { loadBalancer } from './load-balancer.js';
import { logIngestion } from './log-ingestion.js';
import { logQuery } from './log-query.js';
import { multistep } from './multistep.js';
import { objectStorage } from './object-storage.js';
import { push } from './push.js';
import { queue } from './queue.js';
import { redis } from './redis.js';
import { restoreDrill } from './restore-drill.js';
import { secretRotation } from './secret-rotation.js';
import { sql } from './sql.js';
import { tcp } from './tcp.js';
import { tlsProber } from './tls.js';
import type { AnyProber, ProbeBase, Prober, ProberReport } from './types.js';
import { websocket } from './websocket.js';

/** Every probe kind vigil knows. Adding one is its module plus one line here. */
export const probers = {
  dns,
  http,
  icmp,
  k6,
  push,
  tls: tlsProber,
  tcp,
  'log-ingestion': logIngestion,
  'log-query': logQuery,
  'restore-drill': restoreDrill,
  grpc,
  websocket,
  'secret-rotation': secretRotation,
  'load-balancer': loadBalancer,
  'object-storage': objectStorage,
  sql,
  redis,
  queue,
  multistep,
  browser,
} satisfies Record<string, AnyProber>;

export type ProbeKind = keyof typeof probers;

// Inferred from each prober's own type parameter: cheaper for the compiler than walking the schema.
type SpecOf<K extends ProbeKind> = (typeof probers)[K] extends Prober<infer P> ? Static<TObject<P>> : never;

/** A validated probe definition: the common fields plus its kind's own. */
export type ProbeDefinition = { [K in ProbeKind]: ProbeBase & { kind: K } & SpecOf<K> }[ProbeKind];

export function isProbeKind(kind: unknown): kind is ProbeKind {
  return typeof kind === 'string' && Object.hasOwn(probers, kind);
}

/** The prober of a kind, typed to take any definition: the loader checked the definition against its schema. */
export function proberFor(kind: ProbeKind): AnyProber {
  const registry: Record<ProbeKind, AnyProber> = probers;
  return registry[kind];
}

/** What the report needs of a definition's kind, taking the definition whatever its kind. */
export function reportOf(def: ProbeDefinition): ProberReport<ProbeDefinition> {
  // Each kind's report reads only its own fields; `def.kind` picked the kind those fields belong to.
  return proberFor(def.kind).report;
}

export type {
  AlertConfig,
  AnyProber,
  CheckEvidence,
  ChecklistEntry,
  ChecklistSections,
  CheckSection,
  Endpoint,
  EvidenceTargets,
  FailureCode,
  ProbeBase,
  ProbeContext,
  ProbeResult,
  Prober,
  ProberReport,
  ProbeState,
  ProbeWindow,
  RunRecord,
  SpecProblem,
  Trigger,
  WindowValue,
} from './types.js';
export { defineProber, emptyChecklist } from './types.js';
