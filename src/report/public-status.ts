import { matches } from '../alerting/index.js';
import type { Clock } from '../lib/clock.js';
import type { ProbeDefinition } from '../probers/index.js';
import type { AlertStore, Rollups, Store } from '../store/index.js';
import { escapeHtml as esc, formatDuration, formatPercent } from './format.js';
import { PAGE_CSP, pageDocument, plural, stackTable, time } from './page-kit.js';
import type { RenderedPage } from './types.js';

const DAY = 86_400_000;
/** Days of uptime cells per probe. */
export const PUBLIC_DAYS = 90;
/** How far back the incident history reaches. */
const INCIDENT_DAYS = 30;
const INCIDENT_LIMIT = 200;
/** Probes whose reads are in flight at once (as on `/`). */
const READ_BATCH = 50;

/** Config `statusPage` (validated by the config schema), as the page reads it. */
export interface StatusPageConfig {
  title: string;
  public: boolean;
  probes: readonly string[];
  groups: ReadonlyArray<{ name: string; probes: readonly string[] }>;
}

/**
 * The public status page (`/status`) as data. Deliberately narrow: probe ids, states, daily counts
 * and incident times. No labels, run messages, targets, summaries or people: whatever is not here
 * cannot leak onto a page customers see.
 */
export interface PublicStatus {
  title: string;
  generatedAt: string;
  /** Days of the cells, oldest first (YYYY-MM-DD), the last one today so far. */
  days: string[];
  sections: Array<{
    /** null for the probes shown outside any group. */
    name: string | null;
    probes: Array<{
      id: string;
      state: 'up' | 'down' | 'unknown';
      /** Over all the days shown; null without runs. */
      uptime: number | null;
      /** One per day of `days`. */
      daily: Array<{ runs: number; failures: number }>;
    }>;
  }>;
  /** Incidents of the shown probes open now or resolved in the last 30 days, newest first. */
  incidents: Array<{ probeId: string; severity: string; openedAt: string; resolvedAt: string | null }>;
}

/** What the public page reads. */
export interface PublicStatusDeps {
  clock: Clock;
  store: Pick<Store, 'latest'> & { rollups: Pick<Rollups, 'window'>; alerts: Pick<AlertStore, 'incidents'> };
  probes(): readonly ProbeDefinition[];
}

/** The probes a status page config shows, in sections: the ungrouped ones first, then each group in order. */
export function publicSections(config: StatusPageConfig, defs: readonly ProbeDefinition[]): Array<{ name: string | null; ids: string[] }> {
  const picked = (globs: readonly string[]) =>
    globs.length === 0 ? [] : defs.filter((d) => matches({ probes: globs, labels: {} }, { id: d.id, labels: {} })).map((d) => d.id);
  const grouped = config.groups.map((g) => ({ name: g.name, ids: picked(g.probes) }));
  const inGroups = new Set(grouped.flatMap((g) => g.ids));
  const loose = picked(config.probes).filter((id) => !inGroups.has(id));
  return [...(loose.length > 0 ? [{ name: null, ids: loose }] : []), ...grouped];
}

/** Ids of every probe the status page shows: their badges are as public as the page. */
export function publicProbeIds(config: StatusPageConfig, defs: readonly ProbeDefinition[]): Set<string> {
  return new Set(publicSections(config, defs).flatMap((s) => s.ids));
}

const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

export async function buildPublicStatus(deps: PublicStatusDeps, config: StatusPageConfig): Promise<PublicStatus> {
  const now = deps.clock.now();
  const today = Math.floor(now / DAY) * DAY;
  const from = today - (PUBLIC_DAYS - 1) * DAY;
  const days = Array.from({ length: PUBLIC_DAYS }, (_, i) => new Date(from + i * DAY).toISOString().slice(0, 10));
  const sections = publicSections(config, deps.probes());
  const ids = [...new Set(sections.flatMap((s) => s.ids))];
  const incidentsRead = deps.store.alerts.incidents({ since: now - INCIDENT_DAYS * DAY, limit: INCIDENT_LIMIT });
  incidentsRead.catch(() => {});
  const byId = new Map<string, PublicStatus['sections'][number]['probes'][number]>();
  for (let i = 0; i < ids.length; i += READ_BATCH) {
    const batch = ids.slice(i, i + READ_BATCH);
    const windows = await Promise.all(batch.map((id) => deps.store.rollups.window(id, from, now + 1)));
    batch.forEach((id, j) => {
      const { days: buckets, total } = windows[j]!;
      const cells = new Map(buckets.map((b) => [new Date(b.start).toISOString().slice(0, 10), b]));
      const latest = deps.store.latest(id);
      byId.set(id, {
        id,
        state: latest === undefined ? 'unknown' : latest.ok ? 'up' : 'down',
        uptime: total.runs > 0 ? (total.runs - total.failures) / total.runs : null,
        daily: days.map((d) => ({ runs: cells.get(d)?.runs ?? 0, failures: cells.get(d)?.failures ?? 0 })),
      });
    });
    await yieldLoop();
  }
  const shown = new Set(ids);
  const incidents = (await incidentsRead)
    .filter((i) => shown.has(i.probeId))
    .map((i) => ({
      probeId: i.probeId,
      severity: i.severity,
      openedAt: new Date(i.openedAt).toISOString(),
      resolvedAt: i.resolvedAt === undefined ? null : new Date(i.resolvedAt).toISOString(),
    }));
  return {
    title: config.title,
    generatedAt: new Date(now).toISOString(),
    days,
    sections: sections.map((s) => ({ name: s.name, probes: s.ids.map((id) => byId.get(id)!) })),
    incidents,
  };
}

const CELL_W = 10;
const CELL_H = 24;

/** `/status`: the probes chosen for customers, grouped, with daily uptime cells and incident history. */
export function renderPublicStatus(page: PublicStatus): RenderedPage {
  const all = page.sections.flatMap((s) => s.probes);
  const down = all.filter((p) => p.state === 'down').length;
  const openIncidents = page.incidents.filter((i) => i.resolvedAt === null).length;
  const headline =
    down > 0
      ? `<p class="summary down-t"><b>${plural(down, 'service')} down</b></p>`
      : openIncidents > 0
        ? `<p class="summary down-t"><b>${plural(openIncidents, 'open incident')}</b></p>`
        : all.length > 0 && all.every((p) => p.state === 'up')
          ? '<p class="summary up-t"><b>All services operational</b></p>'
          : '<p class="summary"><b>Some services have no recent checks</b></p>';
  const sections =
    all.length === 0
      ? '<p class="mute">No services are shown on this page yet.</p>'
      : page.sections.map((s) => renderSection(s, page.days)).join('\n');
  const body = `<header>
<h1>${esc(page.title)}</h1>
<span class="mute">updated ${time(page.generatedAt)}</span>
</header>
<main>
${headline}
${sections}
${renderIncidents(page.incidents)}
</main>`;
  return {
    body: pageDocument({ title: page.title, state: down > 0 ? 'down' : all.length > 0 ? 'up' : 'unknown', body }),
    csp: PAGE_CSP,
  };
}

function renderSection(section: PublicStatus['sections'][number], days: string[]): string {
  const rows = section.probes.map((p) => renderProbe(p, days)).join('\n');
  if (section.name === null) return `<section>\n${rows}\n</section>`;
  return `<section class="group">\n<h2>${esc(section.name)}</h2>\n${rows || '<p class="mute">No services in this group.</p>'}\n</section>`;
}

function renderProbe(p: PublicStatus['sections'][number]['probes'][number], days: string[]): string {
  const width = days.length * CELL_W;
  const cells = p.daily.map((d, i) => {
    const cls = d.runs <= 0 ? 'nodata' : d.failures <= 0 ? 'ok' : d.failures * 2 < d.runs ? 'partial' : 'failed';
    const what = d.runs <= 0 ? 'no data' : `${formatPercent((d.runs - d.failures) / d.runs)} up, ${plural(d.runs, 'check')}`;
    return `<rect x="${i * CELL_W}" width="${CELL_W - 2}" height="${CELL_H}" class="${cls}"><title>${days[i]}: ${what}</title></rect>`;
  });
  const label = `${p.id}: ${formatPercent(p.uptime)} uptime over the last ${days.length} days`;
  return `<div class="bar-head"><span><span class="pill ${p.state}">${p.state}</span> <b>${esc(p.id)}</b></span><span class="mute">${esc(formatPercent(p.uptime))} uptime</span></div>
<svg class="cells" viewBox="0 0 ${width} ${CELL_H}" preserveAspectRatio="none" role="img" aria-label="${esc(label)}">${cells.join('')}</svg>
<div class="bar-foot"><span>${days.length} days ago</span><span>today</span></div>`;
}

function renderIncidents(incidents: PublicStatus['incidents']): string {
  if (incidents.length === 0) return '<h2>Incidents (30 days)</h2>\n<p class="mute">No incidents in the last 30 days.</p>';
  return `<h2>Incidents (30 days)</h2>\n${stackTable(
    ['Service', 'Started', 'Duration'],
    incidents.map((i) => [
      esc(i.probeId),
      time(i.openedAt),
      i.resolvedAt === null
        ? '<b class="down-t">ongoing</b>'
        : `resolved after ${esc(formatDuration(Date.parse(i.resolvedAt) - Date.parse(i.openedAt)))}`,
    ]),
  )}`;
}
