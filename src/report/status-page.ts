import { formatDuration } from '../lib/duration.js';
import { escapeHtml as esc } from './format.js';
import { compareIds, PAGE_CSP, pageDocument, plural, probeHref, stackTable, time } from './page-kit.js';
import type { RenderedPage, StatusPage } from './types.js';

type Probe = StatusPage['probes'][number];
type Slot = Probe['history'][number];

/** Hours the history strip always shows, whatever the store handed over. */
const SLOTS = 24;
const SLOT_W = 10;
const RECT_W = 8;
const STRIP_H = 18;

const STATE_ORDER: Record<Probe['state'], number> = { down: 0, unknown: 1, up: 2 };

// Severities come from config; only these get a colour, so a typo cannot inject a class name.
const KNOWN_SEVERITIES = new Set(['critical', 'warning', 'info']);

/**
 * The status page at `/`: one self-contained HTML document with no script (refreshed by a meta tag
 * when `refreshSeconds` is set), served with the returned CSP (which allows only its own style element, by hash).
 */
export function renderStatusPage(page: StatusPage): RenderedPage {
  const counts = { up: 0, down: 0, unknown: 0 };
  for (const p of page.probes) counts[p.state]++;
  const title = `${counts.down > 0 ? `${counts.down} down · ` : ''}${page.service} status`;
  const worst = counts.down > 0 ? 'down' : counts.unknown > 0 ? 'unknown' : 'up';

  const body = `<header>
<h1>${esc(page.service)}</h1>
<span class="mute">generated ${time(page.generatedAt)}</span>
<a href="${esc(safeHref(page.reportUrl))}">30-day report</a>
</header>
<main>
<p class="summary"><b class="up-t">${counts.up} up</b>, <b class="down-t">${counts.down} down</b>, <b>${counts.unknown} unknown</b></p>
${renderHeld(page.held)}${renderOncall(page.oncall)}
${renderIncidents(page.incidents)}
${renderProbes(page.probes)}
${renderQuiet(page.silences, page.maintenance)}
${renderRecent(page.recent)}
</main>`;
  return {
    body: pageDocument({
      title,
      state: worst,
      body,
      ...(page.refreshSeconds !== undefined ? { refreshSeconds: page.refreshSeconds } : {}),
    }),
    csp: PAGE_CSP,
  };
}

/** Pages not going out come first: nothing else on the page matters as much to whoever is on call. */
function renderHeld(held: StatusPage['held']): string {
  if (held.length === 0) return '';
  const total = held.reduce((n, h) => n + h.count, 0);
  const items = held.map((h) => `<li><b>${esc(h.channel)}</b>: ${plural(h.count, 'page')} since ${time(h.since)}</li>`);
  return `<h2 class="down-t">${plural(total, 'page')} held: channel not configured</h2>
<p>These pages are not going out. They are sent once the channel is configured again (reload or restart).</p>
<ul class="held">
${items.join('\n')}
</ul>
`;
}

function renderOncall(oncall: StatusPage['oncall']): string {
  if (oncall.length === 0) return '<h2>On call</h2>\n<p class="mute">No on-call schedules configured.</p>';
  const rows = oncall.map((o) => {
    const who = o.name ?? o.person;
    const until = o.until ? `until ${time(o.until)}` : '';
    return [esc(o.schedule), who ? esc(who) : '<span class="mute">nobody</span>', until];
  });
  return `<h2>On call</h2>\n${stackTable(['Schedule', 'Person', 'Until'], rows)}`;
}

/** Shown beside an incident one of whose pages was given up on (dead-lettered). */
const UNDELIVERED = ' <span class="flag" title="a page of this incident was dead-lettered">page not delivered</span>';

function severityCell(severity: string) {
  return { html: esc(severity), cls: `sev${KNOWN_SEVERITIES.has(severity) ? ` ${severity}` : ''}` };
}

function renderIncidents(incidents: StatusPage['incidents']): string {
  if (incidents.length === 0) return '<h2>Open incidents</h2>\n<p class="mute">No open incidents.</p>';
  const rows = incidents.map((i) => {
    const acked = i.ackedBy ? esc(i.ackedBy) : '<span class="mute">not acknowledged</span>';
    return [
      severityCell(i.severity),
      probeLink(i.probeId),
      { html: `${esc(i.summary)}${i.undelivered ? UNDELIVERED : ''}`, cls: 'msg' },
      time(i.openedAt),
      acked,
    ];
  });
  return `<h2>Open incidents (${incidents.length})</h2>\n${stackTable(['Severity', 'Probe', 'Summary', 'Opened', 'Acked by'], rows)}`;
}

function renderRecent(recent: StatusPage['recent']): string {
  if (recent === undefined) return '';
  if (recent.length === 0) return '<h2>Incident history (30 days)</h2>\n<p class="mute">No incidents resolved in the last 30 days.</p>';
  const rows = recent.map((i) => [
    severityCell(i.severity),
    probeLink(i.probeId),
    { html: `${esc(i.summary)}${i.undelivered ? UNDELIVERED : ''}`, cls: 'msg' },
    time(i.openedAt),
    esc(formatDuration(Date.parse(i.resolvedAt) - Date.parse(i.openedAt))),
  ]);
  return `<h2>Incident history (30 days, ${recent.length})</h2>\n${stackTable(['Severity', 'Probe', 'Summary', 'Opened', 'Lasted'], rows)}`;
}

/** Silences and maintenance windows: why a failing probe may not be paging anyone. */
function renderQuiet(silences: StatusPage['silences'], windows: StatusPage['maintenance']): string {
  const parts: string[] = [];
  if (silences !== undefined) {
    parts.push(`<h2>Active silences (${silences.length})</h2>`);
    if (silences.length === 0) parts.push('<p class="mute">No silences in force.</p>');
    else
      parts.push(
        stackTable(
          ['Matches', 'Until', 'By', 'Comment'],
          silences.map((s) => [matchText(s.probes, s.labels), time(s.endsAt), esc(s.author), { html: esc(s.comment), cls: 'msg' }]),
        ),
      );
  }
  if (windows !== undefined && windows.length > 0) {
    parts.push(`<h2>Maintenance windows (${windows.filter((w) => w.active).length} in force)</h2>`);
    parts.push(
      stackTable(
        ['Window', 'Matches', 'State'],
        windows.map((w) => {
          const when =
            w.startsAt === null
              ? '<span class="mute">does not open again</span>'
              : w.active
                ? `<b class="down-t">in force</b> until ${w.endsAt ? time(w.endsAt) : '—'}`
                : `next ${time(w.startsAt)}`;
          return [esc(w.name), matchText(w.probes, {}), when];
        }),
      ),
    );
  }
  return parts.join('\n');
}

function matchText(probes: readonly string[], labels: Record<string, string>): string {
  const ids = probes.length === 0 ? ['every probe'] : probes.map((p) => esc(p));
  const lbls = Object.entries(labels).map(([k, v]) => `<span class="lbl">${esc(k)}=${esc(v)}</span>`);
  return [ids.join(', '), ...lbls].join(' ');
}

function renderProbes(probes: StatusPage['probes']): string {
  if (probes.length === 0)
    return '<h2>Probes</h2>\n<p class="mute empty">No probes configured yet — add a definition under probes/ and reload.</p>';
  const sorted = [...probes].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || compareIds(a.id, b.id));
  return `<h2>Probes (${probes.length})</h2>\n${stackTable(['State', 'Probe', 'Kind', 'Last run', 'Last 24 h (UTC)'], sorted.map(renderProbe))}`;
}

function renderProbe(p: Probe) {
  const labels = Object.entries(p.labels)
    .map(([k, v]) => `<span class="lbl">${esc(k)}=${esc(v)}</span>`)
    .join('');
  const running = p.running ? ' <span class="run">running</span>' : '';
  return [
    `<span class="pill ${p.state}">${p.state}</span>${running}`,
    `${probeLink(p.id)}${labels ? `<br>${labels}` : ''}`,
    esc(p.kind),
    { html: renderLastRun(p.lastRun), cls: 'msg' },
    renderStrip(p.history),
  ];
}

function probeLink(id: string): string {
  return `<a href="${esc(probeHref(id))}">${esc(id)}</a>`;
}

function renderLastRun(run: Probe['lastRun']): string {
  if (!run) return '<span class="mute">never run</span>';
  const head = `${time(run.at)} · ${esc(formatDuration(run.durationMs))}`;
  if (run.ok) return head;
  const code = run.code ? `<span class="code">${esc(run.code)}</span> ` : '';
  return `${head}<br>${code}${esc(run.message ?? 'failed')}`;
}

function renderStrip(history: Slot[]): string {
  // Always SLOTS wide so strips line up; a short history is padded on the old side as "no data".
  const slots: Array<Slot | undefined> = history.slice(-SLOTS);
  while (slots.length < SLOTS) slots.unshift(undefined);
  let runs = 0;
  let failures = 0;
  const rects = slots.map((slot, i) => {
    if (slot) {
      runs += slot.runs;
      failures += slot.failures;
    }
    return `<rect x="${i * SLOT_W}" width="${RECT_W}" height="${STRIP_H}" class="${slotClass(slot)}"><title>${slotTitle(slot)}</title></rect>`;
  });
  const label = `last 24 hours: ${plural(runs, 'run')}, ${failures} failed`;
  return `<svg width="${SLOTS * SLOT_W}" height="${STRIP_H}" viewBox="0 0 ${SLOTS * SLOT_W} ${STRIP_H}" role="img" aria-label="${label}">${rects.join('')}</svg>`;
}

function slotClass(slot: Slot | undefined): 'nodata' | 'ok' | 'partial' | 'failed' {
  if (!slot || slot.runs <= 0) return 'nodata';
  if (slot.failures <= 0) return 'ok';
  return slot.failures >= slot.runs ? 'failed' : 'partial';
}

function slotTitle(slot: Slot | undefined): string {
  if (!slot) return 'no data';
  const hour = new Date(slot.start);
  const at = Number.isNaN(hour.getTime()) ? esc(slot.start) : `${hour.toISOString().slice(11, 16)} UTC`;
  if (slot.runs <= 0) return `${at} — no data`;
  return `${at} — ${plural(slot.runs, 'run')}, ${slot.failures} failed`;
}

// Config supplies the report URL; anything that is not http(s) once resolved (say `javascript:`) is dropped.
function safeHref(url: string): string {
  try {
    const { protocol } = new URL(url, 'http://status.invalid/');
    return protocol === 'http:' || protocol === 'https:' ? url : '#';
  } catch {
    return '#';
  }
}
