import { formatDuration } from '../lib/duration.js';
import { escapeHtml as esc, pageCsp } from './format.js';
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

// The CSP allows exactly this text by hash, so any edit here changes the policy with it.
const STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2125;--mute:#5f6b76;--line:#d9dee3;--up:#1f883d;--down:#cf222e;--warn:#bf8700;--none:#c8ced4}
@media (prefers-color-scheme:dark){:root{--bg:#0f1317;--fg:#e3e7eb;--mute:#98a3ad;--line:#2b333b;--up:#3fb950;--down:#f85149;--warn:#d29922;--none:#39424b}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem 1.25rem 3rem;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem 1rem;border-bottom:1px solid var(--line);padding-bottom:.5rem}
h1{font-size:1.4rem;margin:0}
h2{font-size:1rem;margin:1.5rem 0 .5rem}
a{color:inherit}
.mute,time{color:var(--mute)}
.summary{font-size:1.05rem;margin:.75rem 0}
.summary b{font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid var(--line)}
th{font-weight:600;color:var(--mute);font-size:.85rem}
td.msg{overflow-wrap:anywhere;max-width:28rem}
.pill{display:inline-block;min-width:4.5em;text-align:center;border-radius:1em;padding:0 .5em;color:#fff;font-weight:600;font-size:.8rem}
.pill.up{background:var(--up)}.pill.down{background:var(--down)}.pill.unknown{background:var(--mute)}
.run{font-size:.75rem;color:var(--mute)}
.lbl{display:inline-block;font-size:.75rem;color:var(--mute);border:1px solid var(--line);border-radius:3px;padding:0 .3em;margin:.1em .2em 0 0}
.code{font:600 .8rem ui-monospace,monospace;color:var(--down)}
.sev{font-weight:600}.sev.critical{color:var(--down)}.sev.warning{color:var(--warn)}
.up-t{color:var(--up)}.down-t{color:var(--down)}
svg{display:block}
rect.nodata{fill:var(--none)}rect.ok{fill:var(--up)}rect.partial{fill:var(--warn)}rect.failed{fill:var(--down)}
`;

const CSP = pageCsp(STYLE);

/**
 * The status page at `/`: one self-contained HTML document with no script, refreshed by a meta tag,
 * served with the returned CSP (which allows only its own style element, by hash).
 */
export function renderStatusPage(page: StatusPage): RenderedPage {
  const counts = { up: 0, down: 0, unknown: 0 };
  for (const p of page.probes) counts[p.state]++;
  const title = `${counts.down > 0 ? `${counts.down} down · ` : ''}${page.service} status`;
  const worst = counts.down > 0 ? 'down' : counts.unknown > 0 ? 'unknown' : 'up';

  const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="${Math.max(1, Math.round(page.refreshSeconds))}">
<title>${esc(title)}</title>
${favicon(worst)}
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${esc(page.service)}</h1>
<span class="mute">generated ${time(page.generatedAt)}</span>
<a href="${esc(safeHref(page.reportUrl))}">30-day report</a>
</header>
<p class="summary"><b class="up-t">${counts.up} up</b>, <b class="down-t">${counts.down} down</b>, <b>${counts.unknown} unknown</b></p>
${renderHeld(page.held)}${renderOncall(page.oncall)}
${renderIncidents(page.incidents)}
${renderProbes(page.probes)}
</body>
</html>
`;
  return { body, csp: CSP };
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
    return `<tr><td>${esc(o.schedule)}</td><td>${who ? esc(who) : '<span class="mute">nobody</span>'}</td><td>${until}</td></tr>`;
  });
  return `<h2>On call</h2>\n<table>\n<tr><th>Schedule</th><th>Person</th><th>Until</th></tr>\n${rows.join('\n')}\n</table>`;
}

function renderIncidents(incidents: StatusPage['incidents']): string {
  if (incidents.length === 0) return '<h2>Open incidents</h2>\n<p class="mute">No open incidents.</p>';
  const rows = incidents.map((i) => {
    const sevClass = KNOWN_SEVERITIES.has(i.severity) ? ` ${i.severity}` : '';
    const acked = i.ackedBy ? esc(i.ackedBy) : '<span class="mute">not acknowledged</span>';
    return `<tr><td class="sev${sevClass}">${esc(i.severity)}</td><td>${esc(i.probeId)}</td><td class="msg">${esc(i.summary)}</td><td>${time(i.openedAt)}</td><td>${acked}</td></tr>`;
  });
  return `<h2>Open incidents (${incidents.length})</h2>\n<table>\n<tr><th>Severity</th><th>Probe</th><th>Summary</th><th>Opened</th><th>Acked by</th></tr>\n${rows.join('\n')}\n</table>`;
}

function renderProbes(probes: StatusPage['probes']): string {
  if (probes.length === 0)
    return '<h2>Probes</h2>\n<p class="mute empty">No probes configured yet — add a definition under probes/ and reload.</p>';
  const sorted = [...probes].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || compareIds(a.id, b.id));
  return `<h2>Probes (${probes.length})</h2>
<table>
<tr><th>State</th><th>Probe</th><th>Kind</th><th>Last run</th><th>Last 24 h (UTC)</th></tr>
${sorted.map(renderProbe).join('\n')}
</table>`;
}

function renderProbe(p: Probe): string {
  const labels = Object.entries(p.labels)
    .map(([k, v]) => `<span class="lbl">${esc(k)}=${esc(v)}</span>`)
    .join('');
  const running = p.running ? ' <span class="run">running</span>' : '';
  return `<tr><td><span class="pill ${p.state}">${p.state}</span>${running}</td><td>${esc(p.id)}${labels ? `<br>${labels}` : ''}</td><td>${esc(p.kind)}</td><td class="msg">${renderLastRun(p.lastRun)}</td><td>${renderStrip(p.history)}</td></tr>`;
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

/** `<time>` with the machine-readable instant and a UTC rendering a person reads at a glance. */
function time(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return esc(iso);
  const text = `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return `<time datetime="${esc(d.toISOString())}">${text}</time>`;
}

// A favicon inline keeps the browser from fetching /favicon.ico, which the CSP would refuse and
// log as a violation; its colour also tells a background tab how things stand.
function favicon(state: 'up' | 'down' | 'unknown'): string {
  const fill = { up: '%231f883d', down: '%23cf222e', unknown: '%235f6b76' }[state];
  return `<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='${fill}'/%3E%3C/svg%3E">`;
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

// Code-unit order, not locale order, so the page reads the same on every host.
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
