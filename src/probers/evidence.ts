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

/** Evidence of the launch checklist's items, by section. A kind with new evidence adds its section here. */
export interface ChecklistSections {
  tls: TlsEvidence[];
  dns: DnsEvidence[];
  logIngestion: LogIngestionEvidence[];
  restoreDrills: RestoreDrillEvidence[];
  loadRuns: LoadRunEvidence[];
}

/** One probe's evidence and the checklist section it belongs in. */
export type ChecklistEntry = {
  [S in keyof ChecklistSections]: { section: S; item: ChecklistSections[S][number] };
}[keyof ChecklistSections];

/** The sections, each empty: what a report starts from. */
export function emptyChecklist(): ChecklistSections {
  return { tls: [], dns: [], logIngestion: [], restoreDrills: [], loadRuns: [] };
}

/** A user-facing endpoint a definition watches, for the scorecard's "TLS everywhere" and "alerting" items. */
export interface Endpoint {
  url: string;
  /** The definition checks that plain http redirects to https. */
  redirectsToHttps: boolean;
  /** The definition itself fails a run that is too slow (so a failures rule pages on latency). */
  latencyBound: boolean;
}
