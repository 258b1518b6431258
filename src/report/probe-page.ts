import { runArtifacts } from '../lib/artifacts.js';
import type { Clock } from '../lib/clock.js';
import type { ProbeDefinition } from '../probers/index.js';
import type { AlertStore, RollupSummary, Rollups, Store } from '../store/index.js';
import { escapeHtml as esc, formatDuration, formatPercent, formatValue, NONE } from './format.js';
import { PAGE_CSP, pageDocument, stackTable, time } from './page-kit.js';
import { lineChart } from './svg.js';
import type { RenderedPage } from './types.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Hours of the hourly latency chart. */
const HOURS = 24;
/** Runs and incidents the page lists: the newest, enough to see a pattern without paging. */
const RECENT_RUNS = 20;
const INCIDENTS = 20;

/** One probe's page (`/probes/:id`) as data. Times are ISO strings; a figure nobody measured is null. */
export interface ProbePage {
  service: string;
  generatedAt: string;
  id: string;
  kind: string;
  labels: Record<string, string>;
  state: 'up' | 'down' | 'unknown';
  running: boolean;
  lastRun: {
    at: string;
    ok: boolean;
    durationMs: number;
    code: string | null;
    message: string | null;
    values: Record<string, number>;
  } | null;
  /** Uptime and p95 over the last 24 h, 7 d and 30 d. */
  windows: Array<{ label: string; runs: number; failures: number; uptime: number | null; p95Ms: number | null }>;
  /** p95 of each hour of the last 24 (the last one in progress), and of each UTC day of the last 30. */
  hourlyP95: Array<number | null>;
  dailyP95: Array<{ day: string; p95Ms: number | null }>;
  runs: Array<{
    at: string;
    ok: boolean;
    durationMs: number;
    code: string | null;
    message: string | null;
    /** Files the run kept (a failed browser run's screenshot and trace), as paths vigil serves them. */
    artifacts: Array<{ name: string; href: string }>;
  }>;
  incidents: Array<{
    id: number;
    severity: string;
    state: 'open' | 'acknowledged' | 'resolved';
    summary: string;
    openedAt: string;
    resolvedAt: string | null;
    undelivered: boolean;
  }>;
  /** The definition as JSON text, secrets replaced by `<secret>`. */
  definition: string;
}

/** What a probe page reads. */
export interface ProbePageDeps {
  service: string;
  clock: Clock;
  store: Pick<Store, 'latest' | 'runs' | 'flush'> & {
    rollups: Pick<Rollups, 'query' | 'summary' | 'window' | 'lastHour'>;
    alerts: Pick<AlertStore, 'incidents' | 'deliveries'>;
  };
  isRunning(probeId: string): boolean;
  /** The redaction `/api/v1/probes/:id` applies to a definition. */
  redact<T>(value: T): T;
}

const iso = (t: number) => new Date(t).toISOString();
const share = (s: RollupSummary) => (s.runs > 0 ? (s.runs - s.failures) / s.runs : null);

/** Reads everything one probe's page shows, the reads going out together. */
export async function buildProbePage(deps: ProbePageDeps, def: ProbeDefinition): Promise<ProbePage> {
  const now = deps.clock.now();
  const { store } = deps;
  // Queued runs first, so the newest run listed is the one `latest` reports.
  await store.flush().catch(() => {});
  const current = Math.floor(now / HOUR) * HOUR;
  const first = current - (HOURS - 1) * HOUR;
  const last = store.rollups.lastHour();
  const rawFrom = last === undefined ? first : Math.max(first, last + HOUR);
  const rawHours: number[] = [];
  for (let h = rawFrom; h <= current; h += HOUR) rawHours.push(h);
  const end = now + 1;
  const [day, week, month, rolled, raw, runs, incidents, deliveries] = await Promise.all([
    store.rollups.summary(def.id, end - DAY, end),
    store.rollups.summary(def.id, end - 7 * DAY, end),
    store.rollups.window(def.id, end - 30 * DAY, end),
    rawFrom > first ? store.rollups.query(def.id, first, rawFrom, 'hour') : [],
    Promise.all(rawHours.map((h) => store.rollups.summary(def.id, h, Math.min(h + HOUR, end)))),
    store.runs({ probeId: def.id, limit: RECENT_RUNS }),
    store.alerts.incidents({ probeId: def.id, limit: INCIDENTS }),
    store.alerts.deliveries(end - 30 * DAY, end),
  ]);
  const dead = new Set<number>();
  for (const d of deliveries) if (d.state === 'dead' && d.incidentId !== null && d.action !== 'test') dead.add(d.incidentId);
  const hourly = new Map<number, number | undefined>();
  for (const b of rolled) hourly.set(b.start, b.p95);
  raw.forEach((s, i) => {
    if (s.runs > 0) hourly.set(rawHours[i]!, s.p95);
  });
  const latest = store.latest(def.id);
  const window = (label: string, s: RollupSummary) => ({
    label,
    runs: s.runs,
    failures: s.failures,
    uptime: share(s),
    p95Ms: s.runs > 0 && s.p95 !== undefined ? s.p95 : null,
  });
  return deps.redact({
    service: deps.service,
    generatedAt: iso(now),
    id: def.id,
    kind: def.kind,
    labels: { ...def.labels },
    state: latest === undefined ? 'unknown' : latest.ok ? 'up' : 'down',
    running: deps.isRunning(def.id),
    lastRun:
      latest === undefined
        ? null
        : {
            at: iso(latest.startedAt),
            ok: latest.ok,
            durationMs: Math.round(latest.durationMs * 10) / 10,
            code: latest.code ?? null,
            message: latest.message ?? null,
            values: { ...latest.values },
          },
    windows: [window('24 h', day), window('7 d', week), window('30 d', month.total)],
    hourlyP95: Array.from({ length: HOURS }, (_, i) => hourly.get(first + i * HOUR) ?? null),
    dailyP95: month.days.map((d) => ({ day: iso(d.start).slice(0, 10), p95Ms: d.runs > 0 && d.p95 !== undefined ? d.p95 : null })),
    runs: runs.map((r) => ({
      at: iso(r.startedAt),
      ok: r.ok,
      durationMs: Math.round(r.durationMs * 10) / 10,
      code: r.code ?? null,
      message: r.message ?? null,
      artifacts: (runArtifacts(r.details)?.files ?? []).map((name) => ({ name, href: `/api/v1/runs/${r.id}/artifacts/${name}` })),
    })),
    incidents: incidents.map((i) => ({
      id: i.id,
      severity: i.severity,
      state: i.state,
      summary: i.summary,
      openedAt: iso(i.openedAt),
      resolvedAt: i.resolvedAt === undefined ? null : iso(i.resolvedAt),
      undelivered: dead.has(i.id),
    })),
    // Redacted before it becomes text: a value under a secret-looking key is known by its key only.
    definition: JSON.stringify(deps.redact(def), null, 2),
  });
}

const CHART = { width: 640, height: 170 };

/** `/probes/:id`: one probe, everything about it, in one self-contained page with no script. */
export function renderProbePage(p: ProbePage): RenderedPage {
  const labels = Object.entries(p.labels)
    .map(([k, v]) => `<span class="lbl">${esc(k)}=${esc(v)}</span>`)
    .join('');
  const running = p.running ? ' <span class="run">running</span>' : '';
  const body = `<header>
<h1>${esc(p.id)}</h1>
<span class="pill ${p.state}">${p.state}</span>${running}
<span class="mute">${esc(p.kind)} · generated ${time(p.generatedAt)}</span>
<a href="/">all probes</a>
</header>
<main>
${labels ? `<p>${labels}</p>` : ''}
<h2>Last run</h2>
${renderLastRun(p.lastRun)}
<h2>Uptime and p95</h2>
<dl class="figures">
${p.windows.map((w) => `<div><dt>${esc(w.label)}</dt><dd>${esc(formatPercent(w.uptime, 3))}</dd><dd class="mute">p95 ${esc(formatDuration(w.p95Ms))} · ${w.runs} runs, ${w.failures} failed</dd></div>`).join('\n')}
</dl>
<h2>Latency</h2>
${renderCharts(p)}
<h2>Recent runs</h2>
${renderRuns(p.runs)}
<h2>Incidents</h2>
${renderIncidents(p.incidents)}
<h2>Definition</h2>
<pre>${esc(p.definition)}</pre>
</main>`;
  return {
    body: pageDocument({ title: `${p.state === 'down' ? 'down · ' : ''}${p.id} · ${p.service}`, state: p.state, body }),
    csp: PAGE_CSP,
  };
}

function renderLastRun(run: ProbePage['lastRun']): string {
  if (!run) return '<p class="mute">Never run.</p>';
  const code = run.code ? `<span class="code">${esc(run.code)}</span> ` : '';
  const message = run.ok ? (run.message ? esc(run.message) : 'ok') : `${code}${esc(run.message ?? 'failed')}`;
  const values = Object.entries(run.values);
  const table =
    values.length === 0
      ? ''
      : `\n${stackTable(
          ['Value', 'Reading'],
          values.map(([name, v]) => [esc(name), esc(formatValue(name, v))]),
        )}`;
  return `<p>${time(run.at)} · ${esc(formatDuration(run.durationMs))} · ${message}</p>${table}`;
}

function renderCharts(p: ProbePage): string {
  const hourly = lineChart(p.hourlyP95, {
    ...CHART,
    unit: 'ms',
    label: `${p.id}: p95 of run durations, hour by hour, last 24 hours`,
    xLabels: { first: '24 h ago', last: 'now' },
  });
  const days = p.dailyP95;
  const daily = lineChart(
    days.map((d) => d.p95Ms),
    {
      ...CHART,
      unit: 'ms',
      label: `${p.id}: p95 of run durations, day by day, last 30 days`,
      ...(days.length > 0 ? { xLabels: { first: days[0]!.day, last: days[days.length - 1]!.day } } : {}),
    },
  );
  return `<div class="charts">\n<figure>${hourly}<figcaption>p95 hour by hour, last 24 hours (UTC)</figcaption></figure>\n<figure>${daily}<figcaption>p95 day by day, last 30 days (UTC)</figcaption></figure>\n</div>`;
}

function renderRuns(runs: ProbePage['runs']): string {
  if (runs.length === 0) return '<p class="mute">No runs kept.</p>';
  return stackTable(
    ['Started', 'Result', 'Duration', 'Message'],
    runs.map((r) => [
      time(r.at),
      r.ok
        ? '<span class="up-t">ok</span>'
        : `<span class="down-t">failed</span>${r.code ? ` <span class="code">${esc(r.code)}</span>` : ''}`,
      esc(formatDuration(r.durationMs)),
      {
        html:
          (r.message ? esc(r.message) : '<span class="mute">—</span>') +
          r.artifacts.map((a) => ` <a href="${esc(a.href)}">${esc(a.name)}</a>`).join(''),
        cls: 'msg',
      },
    ]),
  );
}

function renderIncidents(incidents: ProbePage['incidents']): string {
  if (incidents.length === 0) return '<p class="mute">No incidents.</p>';
  return stackTable(
    ['State', 'Severity', 'Summary', 'Opened', 'Resolved'],
    incidents.map((i) => [
      i.state === 'resolved' ? '<span class="mute">resolved</span>' : `<b class="down-t">${i.state}</b>`,
      esc(i.severity),
      {
        html: `${esc(i.summary)}${i.undelivered ? ' <span class="flag">page not delivered</span>' : ''}`,
        cls: 'msg',
      },
      time(i.openedAt),
      i.resolvedAt ? time(i.resolvedAt) : NONE,
    ]),
  );
}
