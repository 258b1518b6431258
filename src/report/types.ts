import type { ChecklistSections, WindowValue } from '../probers/index.js';

/**
 * The 30-day post-launch report as data: what `GET /api/v1/report` answers in JSON and what the HTML
 * and Markdown renderings show. Times are ISO 8601 strings (UTC), durations milliseconds unless the
 * name says otherwise, shares fractions in [0, 1]. A figure nobody could measure is `null`, never 0.
 */

/** Targets the report judges against (config `report.targets`). */
export interface ReportTargets {
  /** Daily p95 of a probe's run durations must stay under this (ms). Checklist: p95 < 5 s. */
  p95Ms: number;
  /** Daily error rate must stay under this. Checklist: 5 %. */
  errorRate: number;
  /** Availability objective of each probe over the window: the error budget is 1 − uptime. */
  uptime: number;
  /** Log-ingestion canary p95 must stay under this (ms). Checklist: 30 s. */
  logIngestionMs: number;
  /** Restore drills must finish within this (ms). Checklist: RTO 4 h. */
  rtoMs: number;
  /** The restored backup must be at most this old (ms). Checklist: hourly backups, RPO 1 h. */
  rpoMs: number;
  /** A restore drill older than this no longer counts as "tested" (ms). */
  drillMaxAgeMs: number;
  /** Certificates with fewer days left than this are a gap. */
  tlsMinDays: number;
  /** DNS records should carry at most this TTL (s). Checklist: 300 s. */
  dnsMaxTtlS: number;
  /** DNS changes should reach every resolver within this (s). Checklist: 5 min. */
  dnsPropagationS: number;
  /** A load run's p95 at 10x must stay under this (ms). */
  loadP95Ms: number;
  /** A load run's error rate must stay under this. */
  loadErrorRate: number;
  /** Pages should be acknowledged within this (ms). Checklist: respond within 15 min. */
  mttaMs: number;
}

export interface ReportWindow {
  from: string;
  to: string;
  days: number;
  /** `launch` when it starts at `report.launchDate`, `recent` for the last N days, `query` when given. */
  basis: 'launch' | 'recent' | 'query';
  launchDate: string | null;
}

/** One UTC day of one probe. */
export interface DailyPoint {
  /** YYYY-MM-DD */
  day: string;
  runs: number;
  failures: number;
  /** failures / runs, null without runs. */
  errorRate: number | null;
  p95Ms: number | null;
  /** Both daily targets met (no runs: null). */
  ok: boolean | null;
  /** The day's highest of each value the kind charts (`report.charts`); null for a day without it. */
  values?: Record<string, number | null>;
}

/** min / max / last / mean of one named value over the window: what the probers' evidence reads too. */
export type ValueSummary = WindowValue;

export interface ProbeReport {
  id: string;
  kind: string;
  labels: Record<string, string>;
  /** What it watches, for a person: a URL, host:port, record name, backend, script. */
  target: string;
  runs: number;
  failures: number;
  /** (runs − failures) / runs over the window; null without runs. */
  uptime: number | null;
  /** Window percentiles of run durations (sketch, within 1 %). */
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** Availability objective and how much of its error budget the window's failures spent (1 = all of it). */
  slo: { uptime: number; budgetSpent: number | null; met: boolean | null };
  /**
   * The daily p95 target this probe is judged against: `targets.p95Ms` for request-like kinds (http,
   * tls, dns), null for drills (restore, load, log canary) whose run time is not a latency.
   */
  p95TargetMs: number | null;
  /** Days whose p95 or error rate missed the target. */
  daysOverP95: number;
  daysOverErrorRate: number;
  daily: DailyPoint[];
  values: Record<string, ValueSummary>;
  /** The newest run: its time and outcome. */
  last: { at: string; ok: boolean; code: string | null; message: string | null } | null;
  /** Newest successful run within the raw retention (restore drills and load runs). */
  lastSuccess: { at: string; values: Record<string, number> } | null;
}

export interface IncidentReport {
  id: number;
  probeId: string;
  rule: string;
  severity: string;
  state: string;
  summary: string;
  openedAt: string;
  ackedAt: string | null;
  ackedBy: string | null;
  resolvedAt: string | null;
  /** ackedAt − openedAt */
  ttaMs: number | null;
  /** resolvedAt − openedAt */
  ttrMs: number | null;
}

export interface IncidentsSection {
  count: number;
  bySeverity: Record<string, number>;
  /** Mean time to acknowledge over acknowledged incidents; null when none was. */
  mttaMs: number | null;
  /** Mean time to resolve over resolved incidents. */
  mttrMs: number | null;
  list: IncidentReport[];
  notifications: {
    sent: number;
    delivered: number;
    dead: number;
    muted: number;
    pending: number;
    /** p95 of delivered − queued, exact over the window's deliveries. */
    deliveryP95Ms: number | null;
  };
  /** Pages that reached each person (by escalation or on-call), trigger and reminder pages counted. */
  pagesPerPerson: Record<string, number>;
}

/** Evidence of the checklist's items, by section: each probe kind's prober produces its own (`report.evidence`). */
export type ChecklistEvidence = ChecklistSections;

/** A code seen on failed runs: how often, on which probes, first and last day seen. */
export interface FailureReason {
  code: string;
  count: number;
  probes: Array<{ id: string; count: number }>;
  firstDay: string;
  lastDay: string;
}

export type ItemStatus = 'pass' | 'fail' | 'unknown';
export type ItemTier = 'critical' | 'important' | 'nice';

/** What an item's status rests on: probe runs, config, or a person's dated word. */
export interface Evidence {
  source: 'probe' | 'config' | 'attestation' | 'none';
  /** One line a person can check. */
  detail: string;
  probes?: string[];
  /** When the evidence was observed (a run) or attested. */
  at?: string;
}

export interface ScorecardItem {
  id: string;
  tier: ItemTier;
  title: string;
  status: ItemStatus;
  evidence: Evidence[];
}

export interface Scorecard {
  verdict: 'GO' | 'NO-GO';
  /** Critical items not passing (fail or unknown): the launch gaps. */
  gaps: string[];
  /** The checklist's advice for the number of gaps. */
  advice: string;
  items: ScorecardItem[];
}

export interface Report {
  service: string;
  generatedAt: string;
  window: ReportWindow;
  targets: ReportTargets;
  /** Rollups cover up to here; runs after it are read raw. */
  dataThrough: string;
  /** How percentiles are computed and how far they can be off. */
  percentiles: string;
  summary: {
    probes: number;
    runs: number;
    failures: number;
    uptime: number | null;
    probesMeetingSlo: number;
    incidents: number;
  };
  probes: ProbeReport[];
  incidents: IncidentsSection;
  checklist: ChecklistEvidence;
  topFailures: FailureReason[];
  scorecard: Scorecard;
}

/** What the status page at `/` shows: the state of things now, for a person with a browser. */
export interface StatusPage {
  service: string;
  generatedAt: string;
  /**
   * The page reloads itself this often, when asked (`/?refresh=30`, for a wall screen): never by
   * default, because a page that reloads under a reader fails WCAG 2.2.1 (axe's meta-refresh).
   */
  refreshSeconds?: number;
  /** Link to the HTML report. */
  reportUrl: string;
  probes: Array<{
    id: string;
    kind: string;
    labels: Record<string, string>;
    state: 'up' | 'down' | 'unknown';
    running: boolean;
    lastRun: { at: string; ok: boolean; durationMs: number; code: string | null; message: string | null } | null;
    /** 24 hourly slots, oldest first, the last one the hour in progress; runs 0 means no data. */
    history: Array<{ start: string; runs: number; failures: number }>;
  }>;
  incidents: Array<{
    id: number;
    probeId: string;
    severity: string;
    state: 'open' | 'acknowledged';
    summary: string;
    openedAt: string;
    ackedBy: string | null;
    /** A page of this incident was dead-lettered: someone who should know may not. */
    undelivered?: boolean;
  }>;
  oncall: Array<{ schedule: string; person: string | null; name: string | null; until: string | null }>;
  /** Pages not going out: held because their channel is not configured (empty when none). */
  held: Array<{ channel: string; count: number; since: string }>;
  /** Incidents resolved in the last 30 days, newest first. */
  recent?: Array<{
    id: number;
    probeId: string;
    severity: string;
    summary: string;
    openedAt: string;
    resolvedAt: string;
    undelivered: boolean;
  }>;
  /** Silences in force now. */
  silences?: Array<{ id: number; probes: string[]; labels: Record<string, string>; endsAt: string; author: string; comment: string }>;
  /** Configured maintenance windows: in force now, or their next opening. */
  maintenance?: Array<{ name: string; active: boolean; startsAt: string | null; endsAt: string | null; probes: string[] }>;
}

/** A rendered page and the Content-Security-Policy it must be served with (its style's hash). */
export interface RenderedPage {
  body: string;
  csp: string;
}
