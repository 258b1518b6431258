import type { Static, TObject, TProperties } from '@sinclair/typebox';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { PushInbox } from '../lib/push-inbox.js';
import type { Redactor } from '../lib/redactor.js';
import type { ProbeBase } from '../lib/schema.js';

// From the schema the loader validates with, so a spec's type is what the loader hands a prober.
export type { AlertConfig, ProbeBase } from '../lib/schema.js';

/**
 * Why a run failed. Stable: alert rules, metrics and the report group by it.
 * Probers may add their own (e.g. `CERT_EXPIRED`) but should reuse these where they fit.
 */
export type FailureCode =
  | 'TIMEOUT'
  | 'DNS'
  | 'CONNECT'
  | 'TLS'
  | 'PROTOCOL'
  | 'HTTP_STATUS'
  | 'BODY_TOO_LARGE'
  | 'ASSERTION'
  | 'INTERNAL'
  | (string & {});

/** What a probe returns: a measurement, and a verdict with a reason a person can act on. */
export interface ProbeResult {
  ok: boolean;
  /** Set when `ok` is false. */
  code?: FailureCode;
  /** What went wrong, phrased for the person who is paged. */
  message?: string;
  /** Named numeric measurements (`latency_ms`, `status`, `days_remaining`, …). */
  values: Record<string, number>;
  /** Kind-specific evidence kept with the run (failing dependencies, certificate chain, …). */
  details?: Record<string, unknown>;
}

/** What the scheduler hands a probe for one run. */
export interface ProbeContext {
  /** Aborts at the run's deadline or at shutdown. Every wait inside the probe must honour it. */
  signal: AbortSignal;
  /** Epoch ms when the run must be over. */
  deadline: number;
  clock: Clock;
  logger: Logger;
  /** The folder probe definitions live in: assets (k6 scripts, SQL) resolve against it. */
  probesDir: string;
  /** vigil's data folder: kinds that keep files (a browser run's screenshot and trace) write under it. Absent: none kept. */
  dataDir?: string;
  /**
   * A small JSON document this probe keeps across runs and restarts (e.g. when a DNS answer
   * changed), persisted by the scheduler. Measurement stays the probe's; storage is not.
   */
  state: ProbeState;
  /**
   * Hides this probe's secrets (its `${…}` values, header credentials, URL passwords) in every form.
   * The scheduler redacts the result with it when the run ends; a prober uses it for what it logs.
   */
  redactor?: Redactor;
  /** Pings received for push probes (`/api/v1/push/:token`), which their runs take; absent outside the scheduler. */
  push?: PushInbox;
}

/** Per-probe state carried from one run to the next. */
export interface ProbeState {
  get<T = unknown>(): T | undefined;
  set(value: unknown): void;
}

/** A problem found by a prober's own semantic check of a definition. */
export interface SpecProblem {
  /** Dotted path inside the definition, e.g. `expect.status`. */
  path: string;
  message: string;
}

/** How the launch report and its scorecard show one kind: everything they need, so they name no kind. */
export interface ProberReport<S> {
  /** What a definition watches, in a word a person recognises (a URL less its password, host:port, …). */
  target(spec: S): string;
  /** Its run time is a request's latency, judged against the daily p95 target (not a drill's length). */
  readonly latency?: boolean;
  /** Its runs are rare drills whose newest success is the evidence: the report reads and shows it. */
  readonly lastSuccess?: boolean;
  /** Named values the report charts day by day (each day's highest): a log query's match count. */
  readonly charts?: readonly string[];
  /**
   * The checklist evidence a definition's window is; absent for kinds the checklist does not ask about.
   * A list when one definition proves several items (a triggered log line: audit logging and structured logging).
   */
  evidence?(spec: S, window: ProbeWindow, targets: EvidenceTargets): ChecklistEntry | readonly ChecklistEntry[] | undefined;
  /** The user-facing endpoint a definition watches, if it watches one (judged for https and alerting). */
  endpoint?(spec: S): Endpoint;
}

/** One probe kind: its definition fields and its measurement. */
export interface Prober<P extends TProperties = TProperties> {
  /** The kind-specific fields of a definition (besides the common ones). */
  readonly schema: TObject<P>;
  /** Names of the values a definition's runs report, so their metric series exist from the start. */
  values(spec: ProbeBase & Static<TObject<P>>): readonly string[];
  /**
   * At most this many runs of this kind at once in one vigil instance (a k6 load run wants 1).
   * The scheduler enforces it; `scheduler.kindConcurrency` in config overrides it.
   */
  readonly concurrency?: number;
  /**
   * Values whose percentiles the report needs (the canary's ingestion latency against 30 s): the
   * rollups keep a sketch of each, so their p95 outlives the raw runs.
   */
  readonly percentiles?: readonly string[];
  /**
   * How long this kind may take to wind down after its signal aborts (killing a child process
   * group, dropping a scratch database) before the run is ended for it. 250 ms when not given.
   */
  abortGraceMs?(spec: ProbeBase & Static<TObject<P>>): number;
  /**
   * The run timeout when a definition sets none, for kinds whose runs outlast the common 10s
   * (a restore drill, a load run). A duration string.
   */
  defaultTimeout?(spec: ProbeBase & Static<TObject<P>>): string;
  /** The schedule when a definition sets none, for kinds with nothing to reach (a push probe only reads its inbox). */
  readonly defaultSchedule?: ProbeBase['schedule'];
  /**
   * Top-level string fields no two definitions of this kind may share (a push token: the route
   * finds its probe by it). The load error names both probes, never the value.
   */
  readonly unique?: readonly (keyof Static<TObject<P>> & string)[];
  /** Checks the schema cannot express (cross-field rules); empty when fine. */
  check?(spec: ProbeBase & Static<TObject<P>>): SpecProblem[];
  /** What the report and scorecard need of this kind. */
  readonly report: ProberReport<ProbeBase & Static<TObject<P>>>;
  /** Measures once. Never throws for a down target: a failure is a result with a code. */
  probe(spec: ProbeBase & Static<TObject<P>>, ctx: ProbeContext): Promise<ProbeResult>;
}

/** Any prober, whatever its fields: what the registry holds. */
// biome-ignore lint/suspicious/noExplicitAny: a registry of heterogeneous probers; each entry keeps its own type.
export type AnyProber = Prober<any>;

/** Helps a prober module keep its literal schema type. */
export function defineProber<P extends TProperties>(prober: Prober<P>): Prober<P> {
  return prober;
}

/** How a run came about. */
export type Trigger = 'schedule' | 'manual';

/** One finished run of a probe, as the scheduler makes it from a prober's result and hands it on (metrics, store, alert rules). */
export interface RunRecord {
  probeId: string;
  kind: string;
  /** Epoch ms when the first attempt started. */
  startedAt: number;
  /** Duration of the attempt that decided the outcome. */
  durationMs: number;
  ok: boolean;
  code?: string;
  message?: string;
  values: Record<string, number>;
  details?: Record<string, unknown>;
  /** 1 + retries used to confirm a failure. */
  attempts: number;
  trigger: Trigger;
  /** The location of the instance that ran it (several instances, one database); absent without one. */
  location?: string;
}

/**
 * What the launch report asks of a probe kind: the checklist evidence its runs are. The types live
 * with the probers (they produce the evidence); the report only collects and renders them.
 */

/** min / max / last / mean of one named value over the report's window. */
export interface WindowValue {
  min: number;
  max: number;
  last: number;
  mean: number;
  count: number;
  /** Only for values the rollups sketch (a prober's `percentiles`): within 1 % relative error. */
  p95?: number;
}

/** One probe's runs over the report's window, as its prober judges them. */
export interface ProbeWindow {
  runs: number;
  failures: number;
  values: Record<string, WindowValue>;
  /** The newest run in the window. */
  last: { ok: boolean } | null;
  /** The newest successful run in the window, read only for kinds that ask for it (`report.lastSuccess`). */
  lastSuccess: { at: string; values: Record<string, number> } | null;
}

/** The report targets evidence is judged against (config `report.targets`, in the report's units). */
export interface EvidenceTargets {
  logIngestionMs: number;
  rtoMs: number;
  rpoMs: number;
  tlsMinDays: number;
  dnsMaxTtlS: number;
  dnsPropagationS: number;
  loadP95Ms: number;
  loadErrorRate: number;
}

/** A certificate: days left and trust, against `tlsMinDays`. */
export interface TlsEvidence {
  probeId: string;
  host: string;
  daysRemaining: number | null;
  minDaysRemaining: number | null;
  chainValid: boolean | null;
  ok: boolean | null;
}

/** A DNS record: its TTL and how fast a change reached every resolver. */
export interface DnsEvidence {
  probeId: string;
  name: string;
  /** Seconds from a change to every resolver agreeing, worst seen. */
  propagationS: number | null;
  maxTtlS: number | null;
  propagatedRatio: number | null;
  ok: boolean | null;
}

/** A log-ingestion canary: how long a line took to become searchable. */
export interface LogIngestionEvidence {
  probeId: string;
  backend: string;
  p95Ms: number | null;
  maxMs: number | null;
  runs: number;
  failures: number;
  ok: boolean | null;
}

/** A restore drill: its newest success against the RTO and RPO. */
export interface RestoreDrillEvidence {
  probeId: string;
  source: string;
  lastSuccessAt: string | null;
  restoreS: number | null;
  backupAgeS: number | null;
  withinRto: boolean | null;
  withinRpo: boolean | null;
  runs: number;
  failures: number;
}

/** A load run: its newest success against the load p95 and error-rate targets. */
export interface LoadRunEvidence {
  probeId: string;
  script: string;
  lastSuccessAt: string | null;
  p95Ms: number | null;
  errorRate: number | null;
  rps: number | null;
  ok: boolean | null;
  runs: number;
  failures: number;
}

/**
 * A standing check of one piece of infrastructure (a port that must stay closed, a cache that
 * persists, a queue that delivers, …): it holds when every run in the window passed.
 */
export interface CheckEvidence {
  probeId: string;
  /** What is checked, as the kind's report names it (host:port, a URL less its password, …). */
  target: string;
  runs: number;
  failures: number;
  /** Every run in the window passed; null without runs. */
  ok: boolean | null;
}

/** A port that must stay closed from where vigil runs (a `tcp` probe with `refused: true`). */
export type FirewallEvidence = CheckEvidence;

/** Evidence of the launch checklist's items, by section. A kind with new evidence adds its section here. */
export interface ChecklistSections {
  tls: TlsEvidence[];
  dns: DnsEvidence[];
  logIngestion: LogIngestionEvidence[];
  restoreDrills: RestoreDrillEvidence[];
  loadRuns: LoadRunEvidence[];
  firewall: FirewallEvidence[];
  /** Redis (or another cache) persists to disk and its last save succeeded. */
  cachePersistence: CheckEvidence[];
  /** A message queue round-trips a canary and its workers consume. */
  queueDelivery: CheckEvidence[];
  /** Every instance behind the load balancer healthy, no 5xx through it. */
  loadBalancer: CheckEvidence[];
  /** Object storage stores and returns a file intact. */
  objectStorage: CheckEvidence[];
  /** The database replicates to a standby within its lag bound. */
  replication: CheckEvidence[];
  /** Another environment's credentials are refused by production's database. */
  credentialsSeparation: CheckEvidence[];
  /** A query for secrets or PII in the logs finds none. */
  secretsInLogs: CheckEvidence[];
  /** A request made to the application is found in its audit log in time. */
  auditLogging: CheckEvidence[];
  /** Log lines from the retention horizon are still found. */
  logRetention: CheckEvidence[];
  /** Log lines found are JSON carrying the required fields. */
  structuredLogging: CheckEvidence[];
  /** Every service picks up a rotated secret in time. */
  secretRotation: CheckEvidence[];
}

/** The standing-check sections: each is a list of CheckEvidence. */
export type CheckSection = {
  [S in keyof ChecklistSections]: ChecklistSections[S] extends CheckEvidence[] ? S : never;
}[keyof ChecklistSections];

/** A window's standing check in `section`: it holds when no run in the window failed. */
export function checkEntry(section: CheckSection, probeId: string, target: string, w: ProbeWindow): ChecklistEntry {
  return { section, item: { probeId, target, runs: w.runs, failures: w.failures, ok: w.runs === 0 ? null : w.failures === 0 } };
}

/** One probe's evidence and the checklist section it belongs in. */
export type ChecklistEntry = {
  [S in keyof ChecklistSections]: { section: S; item: ChecklistSections[S][number] };
}[keyof ChecklistSections];

/** The sections, each empty: what a report starts from. */
export function emptyChecklist(): ChecklistSections {
  return {
    tls: [],
    dns: [],
    logIngestion: [],
    restoreDrills: [],
    loadRuns: [],
    firewall: [],
    cachePersistence: [],
    queueDelivery: [],
    loadBalancer: [],
    objectStorage: [],
    replication: [],
    credentialsSeparation: [],
    secretsInLogs: [],
    auditLogging: [],
    logRetention: [],
    structuredLogging: [],
    secretRotation: [],
  };
}

/** A user-facing endpoint a definition watches, for the scorecard's "TLS everywhere" and "alerting" items. */
export interface Endpoint {
  url: string;
  /** The definition checks that plain http redirects to https. */
  redirectsToHttps: boolean;
  /** The definition itself fails a run that is too slow (so a failures rule pages on latency). */
  latencyBound: boolean;
}
