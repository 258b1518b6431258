import type { Clock } from '../lib/clock.js';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import { share } from '../lib/schema.js';
import { emptyChecklist, type ProbeDefinition, reportOf } from '../probers/index.js';
import type { AlertStore, Incident, RollupBucket, RollupSummary, Rollups, Store, StoredRun } from '../store/index.js';
import type { ReportConfig } from './schema.js';
import { type ScorecardSetup, scorecard } from './scorecard.js';
import type {
  ChecklistEvidence,
  DailyPoint,
  FailureReason,
  IncidentReport,
  IncidentsSection,
  ProbeReport,
  Report,
  ReportTargets,
  ReportWindow,
  ValueSummary,
} from './types.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** What the report reads: the store's rollups and incidents, the probes as configured, the setup the scorecard judges. */
export interface ReportDeps {
  service: string;
  clock: Clock;
  store: Pick<Store, 'lastSuccess' | 'latest'> & {
    rollups: Pick<Rollups, 'window' | 'lastHour'>;
    alerts: Pick<AlertStore, 'incidents' | 'deliveries'>;
  };
  probes(): readonly ProbeDefinition[];
  config: ReportConfig;
  /** Alerting and on-call setup, for the scorecard items judged from config. */
  setup(): ScorecardSetup;
}

/** What the caller may choose: the window's length and start. */
export interface ReportQuery {
  days?: number;
  /** Epoch ms; overrides `report.launchDate`. */
  from?: number;
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));
/**
 * Probes whose reads are in flight at once: enough to keep a PostgreSQL pool busy, few enough that
 * SQLite (which answers synchronously inside its promises) hands the loop back often.
 */
const READ_BATCH = 8;

export const PERCENTILES_NOTE =
  'Percentiles come from a mergeable DDSketch kept in hourly and daily rollups (and built from raw runs for the hours not rolled up yet): within 1 % relative error of the exact value at that rank.';

/** The targets of `report.targets` in the units the report uses. */
export function targetsOf(config: ReportConfig): ReportTargets {
  const t = config.targets;
  return {
    p95Ms: ms(t.p95),
    errorRate: share(t.errorRate),
    uptime: share(t.uptime),
    logIngestionMs: ms(t.logIngestion),
    rtoMs: ms(t.rto),
    rpoMs: ms(t.rpo),
    drillMaxAgeMs: ms(t.drillMaxAge),
    tlsMinDays: t.tlsMinDays,
    dnsMaxTtlS: ms(t.dnsMaxTtl) / 1000,
    dnsPropagationS: ms(t.dnsPropagation) / 1000,
    loadP95Ms: ms(t.loadP95),
    loadErrorRate: share(t.loadErrorRate),
    mttaMs: ms(t.mtta),
  };
}

/**
 * The report's window: `from` given → that; `report.launchDate` in the past → launch .. +days;
 * otherwise (no launch date, or launch still ahead: a pre-launch readiness check) the last `days`
 * UTC days, today included.
 * It never reaches past now.
 */
export function reportWindow(config: ReportConfig, now: number, q: ReportQuery = {}): { from: number; to: number; window: ReportWindow } {
  const days = q.days ?? config.days;
  const launch = config.launchDate === undefined ? undefined : Date.parse(`${config.launchDate}T00:00:00Z`);
  let from: number;
  let basis: ReportWindow['basis'];
  if (q.from !== undefined) {
    if (q.from >= now) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'querystring/from must be in the past');
    from = q.from;
    basis = 'query';
  } else if (launch !== undefined && launch <= now) {
    from = launch;
    basis = 'launch';
  } else {
    // Whole UTC days, today the last of them: `now - days` would start mid-day and show days + 1 of them.
    from = Math.floor(now / DAY) * DAY - (days - 1) * DAY;
    basis = 'recent';
  }
  const to = Math.min(from + days * DAY, now);
  return {
    from,
    to,
    window: {
      from: iso(from),
      to: iso(to),
      days,
      basis,
      launchDate: config.launchDate ?? null,
    },
  };
}

/**
 * Builds the report from rollups (whole days), hour rows and raw runs (the ragged edges), incidents
 * and the outbox. Reads a few probes at once and yields to the event loop between batches, so a
 * report over many probes neither waits on the database one probe at a time nor holds the loop.
 */
export async function buildReport(deps: ReportDeps, q: ReportQuery = {}): Promise<Report> {
  const now = deps.clock.now();
  const targets = targetsOf(deps.config);
  const { from, to, window } = reportWindow(deps.config, now, q);
  const probes = [...deps.probes()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Started first: the incidents and the outbox are read while the probes are.
  const incidentsRead = incidentsSection(deps.store.alerts, from, to);
  // A rejected read must not become an unhandled rejection while the probes are still being read.
  incidentsRead.catch(() => {});
  const reports: ProbeReport[] = [];
  const totals = new Map<string, RollupSummary>();
  // Overall uptime weighs each probe's days by the time they cover, not by their runs: a probe run
  // every 10 s must not outvote one run hourly 360 to 1.
  let upMs = 0;
  let measuredMs = 0;
  const dailyCodes = new Map<string, Array<{ day: string; codes: Record<string, number> }>>();
  const read = async (def: ProbeDefinition) => {
    const needsSuccess = reportOf(def).lastSuccess === true;
    const [window, lastSuccess] = await Promise.all([
      deps.store.rollups.window(def.id, from, to),
      needsSuccess ? deps.store.lastSuccess(def.id) : undefined,
    ]);
    return { def, ...window, lastSuccess };
  };
  for (let i = 0; i < probes.length; i += READ_BATCH) {
    for (const { def, days, total, lastSuccess } of await Promise.all(probes.slice(i, i + READ_BATCH).map(read))) {
      totals.set(def.id, total);
      for (const d of days) {
        if (d.runs === 0) continue;
        const span = Math.min(d.start + DAY, to) - Math.max(d.start, from);
        measuredMs += span;
        upMs += span * (1 - d.failures / d.runs);
      }
      dailyCodes.set(
        def.id,
        days.filter((d) => d.failures > 0).map((d) => ({ day: dayOf(d.start), codes: d.codes })),
      );
      reports.push(probeReport(def, days, total, targets, deps.store.latest(def.id), lastSuccess, to));
    }
    await yieldLoop();
  }

  const incidents = await incidentsRead;
  const checklist = checklistEvidence(probes, reports, targets);
  const topFailures = failureReasons(dailyCodes);
  const runs = reports.reduce((n, p) => n + p.runs, 0);
  const failures = reports.reduce((n, p) => n + p.failures, 0);
  const rolled = deps.store.rollups.lastHour();

  const body: Omit<Report, 'scorecard'> = {
    service: deps.service,
    generatedAt: iso(now),
    window,
    targets,
    dataThrough: iso(rolled === undefined ? from : Math.min(rolled + HOUR, to)),
    percentiles: PERCENTILES_NOTE,
    summary: {
      probes: reports.length,
      runs,
      failures,
      uptime: measuredMs === 0 ? null : upMs / measuredMs,
      probesMeetingSlo: reports.filter((p) => p.slo.met === true).length,
      incidents: incidents.count,
    },
    probes: reports,
    incidents,
    checklist,
    topFailures,
  };
  return {
    ...body,
    scorecard: scorecard({
      report: body,
      probes,
      setup: deps.setup(),
      attestations: deps.config.attestations,
      attestationMaxAgeMs: ms(deps.config.attestationMaxAge),
      now,
    }),
  };
}

function probeReport(
  def: ProbeDefinition,
  days: RollupBucket[],
  total: RollupSummary,
  targets: ReportTargets,
  latest: ReturnType<Store['latest']>,
  lastSuccess: StoredRun | undefined,
  to: number,
): ProbeReport {
  const p95Target = reportOf(def).latency === true ? targets.p95Ms : null;
  const charts = reportOf(def).charts ?? [];
  const daily: DailyPoint[] = days.map((d) => {
    const errorRate = d.runs === 0 ? null : d.failures / d.runs;
    const p95Ms = d.p95 ?? null;
    return {
      day: dayOf(d.start),
      runs: d.runs,
      failures: d.failures,
      errorRate,
      p95Ms,
      ok: errorRate === null ? null : errorRate <= targets.errorRate && (p95Ms === null || p95Target === null || p95Ms <= p95Target),
      ...(charts.length > 0
        ? { values: Object.fromEntries(charts.map((name) => [name, Object.hasOwn(d.values, name) ? d.values[name]!.max : null])) }
        : {}),
    };
  });
  const uptime = total.uptime ?? null;
  const budget = 1 - targets.uptime;
  const values: Record<string, ValueSummary> = {};
  for (const [name, a] of Object.entries(total.values)) {
    values[name] = {
      min: a.min,
      max: a.max,
      last: a.last,
      mean: a.sum / a.count,
      count: a.count,
      ...(a.p95 !== undefined ? { p95: a.p95 } : {}),
    };
  }
  // The newest run inside the window: a report on a past window must not show today's state.
  const last = latest !== undefined && latest.startedAt < to ? latest : undefined;
  return {
    id: def.id,
    kind: def.kind,
    labels: { ...def.labels },
    target: reportOf(def).target(def),
    runs: total.runs,
    failures: total.failures,
    uptime,
    p50Ms: total.p50 ?? null,
    p95Ms: total.p95 ?? null,
    p99Ms: total.p99 ?? null,
    slo: {
      uptime: targets.uptime,
      budgetSpent: uptime === null ? null : budget > 0 ? (1 - uptime) / budget : uptime < 1 ? Number.POSITIVE_INFINITY : 0,
      met: uptime === null ? null : uptime >= targets.uptime,
    },
    p95TargetMs: p95Target,
    daysOverP95: p95Target === null ? 0 : daily.filter((d) => d.p95Ms !== null && d.p95Ms > p95Target).length,
    daysOverErrorRate: daily.filter((d) => d.errorRate !== null && d.errorRate > targets.errorRate).length,
    daily,
    values,
    last: last === undefined ? null : { at: iso(last.startedAt), ok: last.ok, code: last.code ?? null, message: last.message ?? null },
    lastSuccess:
      lastSuccess === undefined || lastSuccess.startedAt >= to
        ? null
        : { at: iso(lastSuccess.startedAt), values: { ...lastSuccess.values } },
  };
}

async function incidentsSection(alerts: ReportDeps['store']['alerts'], from: number, to: number): Promise<IncidentsSection> {
  // Incidents open at any time in the window: opened before its end and not resolved before its start.
  const [incidents, deliveries] = await Promise.all([
    alerts.incidents({ since: from, until: to, limit: 1000 }),
    alerts.deliveries(from, to),
  ]);
  const list = incidents.sort((a, b) => a.openedAt - b.openedAt || a.id - b.id);
  const bySeverity: Record<string, number> = {};
  for (const i of list) bySeverity[i.severity] = (bySeverity[i.severity] ?? 0) + 1;
  const acked = list.filter((i) => i.ackedAt !== undefined && i.ackedAt < to);
  const resolved = list.filter((i) => i.resolvedAt !== undefined && i.resolvedAt < to);
  const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);

  const sent = deliveries.filter((d) => d.action !== 'test');
  const latencies = sent
    .filter((d) => d.state === 'delivered' && d.deliveredAt !== undefined)
    .map((d) => d.deliveredAt! - d.createdAt)
    .sort((a, b) => a - b);
  const pagesPerPerson: Record<string, number> = {};
  for (const d of sent) {
    if (d.recipient === undefined || d.state === 'muted' || (d.action !== 'trigger' && d.action !== 'remind')) continue;
    pagesPerPerson[d.recipient] = (pagesPerPerson[d.recipient] ?? 0) + 1;
  }
  const count = (state: string) => sent.filter((d) => d.state === state).length;
  return {
    count: list.length,
    bySeverity,
    mttaMs: mean(acked.map((i) => i.ackedAt! - i.openedAt)),
    mttrMs: mean(resolved.map((i) => i.resolvedAt! - i.openedAt)),
    list: list.map((i) => incidentReport(i, to)),
    notifications: {
      sent: sent.length - count('muted'),
      delivered: count('delivered'),
      dead: count('dead'),
      muted: count('muted'),
      pending: count('pending'),
      deliveryP95Ms: latencies.length === 0 ? null : latencies[Math.floor(0.95 * (latencies.length - 1))]!,
    },
    pagesPerPerson,
  };
}

function incidentReport(i: Incident, to: number): IncidentReport {
  // What happened after the window's end is not part of it.
  const ackedAt = i.ackedAt !== undefined && i.ackedAt < to ? i.ackedAt : undefined;
  const resolvedAt = i.resolvedAt !== undefined && i.resolvedAt < to ? i.resolvedAt : undefined;
  return {
    id: i.id,
    probeId: i.probeId,
    rule: i.rule,
    severity: i.severity,
    state: resolvedAt !== undefined ? 'resolved' : ackedAt !== undefined ? 'acknowledged' : 'open',
    summary: i.summary,
    openedAt: iso(i.openedAt),
    ackedAt: ackedAt === undefined ? null : iso(ackedAt),
    ackedBy: ackedAt === undefined ? null : (i.ackedBy ?? null),
    resolvedAt: resolvedAt === undefined ? null : iso(resolvedAt),
    ttaMs: ackedAt === undefined ? null : ackedAt - i.openedAt,
    ttrMs: resolvedAt === undefined ? null : resolvedAt - i.openedAt,
  };
}

function checklistEvidence(probes: readonly ProbeDefinition[], reports: ProbeReport[], targets: ReportTargets): ChecklistEvidence {
  const byId = new Map(reports.map((r) => [r.id, r]));
  const evidence = emptyChecklist();
  for (const def of probes) {
    const entries = reportOf(def).evidence?.(def, byId.get(def.id)!, targets) ?? [];
    // The entry's section and item types go together by construction (ChecklistEntry).
    for (const entry of [entries].flat()) (evidence[entry.section] as Array<typeof entry.item>).push(entry.item);
  }
  return evidence;
}

/** Failure codes over the window, most frequent first: the daily log review in one table. */
function failureReasons(dailyCodes: Map<string, Array<{ day: string; codes: Record<string, number> }>>, top = 10): FailureReason[] {
  const byCode = new Map<string, FailureReason & { perProbe: Map<string, number> }>();
  for (const [probeId, days] of dailyCodes) {
    for (const { day, codes } of days) {
      for (const [code, n] of Object.entries(codes)) {
        let r = byCode.get(code);
        if (r === undefined) {
          r = { code, count: 0, probes: [], firstDay: day, lastDay: day, perProbe: new Map() };
          byCode.set(code, r);
        }
        r.count += n;
        r.perProbe.set(probeId, (r.perProbe.get(probeId) ?? 0) + n);
        if (day < r.firstDay) r.firstDay = day;
        if (day > r.lastDay) r.lastDay = day;
      }
    }
  }
  return [...byCode.values()]
    .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1))
    .slice(0, top)
    .map(({ perProbe, ...r }) => ({
      ...r,
      probes: [...perProbe].map(([id, count]) => ({ id, count })).sort((a, b) => b.count - a.count || (a.id < b.id ? -1 : 1)),
    }));
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

const dayNames = new Map<number, string>();
/** YYYY-MM-DD of a UTC day start; remembered, since a report names the same 30 days for every probe. */
function dayOf(t: number): string {
  let name = dayNames.get(t);
  if (name === undefined) {
    name = iso(t).slice(0, 10);
    if (dayNames.size > 5_000) dayNames.clear();
    dayNames.set(t, name);
  }
  return name;
}
