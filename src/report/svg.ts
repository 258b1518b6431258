/**
 * The report's charts as inline SVG strings: no script, no external assets and no `style` attributes
 * (the page's CSP blocks those). Colours and strokes are presentation attributes, so a chart reads
 * the same pasted anywhere; the page's one `<style>` element may refine them through the class names.
 */
import { escapeHtml, formatDuration, formatNumber, formatPercent, formatTime, NONE } from './format.js';
import type { IncidentReport } from './types.js';

const FONT = 'system-ui, -apple-system, Segoe UI, sans-serif';
const INK = '#1d2125';
const MUTE = '#5f6b76';
const GRID = '#d9dee3';
const TRACK = '#eef1f4';
const GOOD = '#1f883d';
const BAD = '#cf222e';
const SERIES = '#0969da';

// Severities come from config: only these get their own colour and class, so no name can inject one.
const SEVERITY_FILL: Record<string, string> = { critical: BAD, warning: '#bf8700', info: '#0969da' };
const OTHER_SEVERITY_FILL = '#6e7781';

/** Options of a daily line chart. */
export interface LineChartOptions {
  /** Drawn as a dashed line; points above it are marked. */
  target?: number;
  width: number;
  height: number;
  /** The chart's accessible name. */
  label: string;
  /** Follows every axis value: `s`, `%`. */
  unit: string;
  /** Top of the y axis; by default the highest point or target, with headroom. */
  max?: number;
  /** The axis never goes past this, headroom or not: an error rate tops out at 100 %, not 200 %. */
  ceiling?: number;
  /** Shown under the first and last points, typically their days. */
  xLabels?: { first: string; last: string };
}

/** One probe's row of the uptime bars. */
export interface UptimeBarItem {
  label: string;
  uptime: number | null;
  target: number;
}

/** Rounds coordinates so the markup stays short and stable across platforms. */
function r(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Shortens a label to `max` characters (not UTF-16 units) with an ellipsis. */
function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function open(width: number, height: number, cls: string, title: string, desc: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart ${cls}" role="img" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="11" fill="${INK}">` +
    `<title>${escapeHtml(title)}</title><desc>${escapeHtml(desc)}</desc>`
  );
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${r(x)}" y="${r(y)}"${attrs ? ` ${attrs}` : ''}>${escapeHtml(content)}</text>`;
}

/** A gentle top for the y axis: 1, 2, 2.5 or 5 times a power of ten, at or above `value`. */
function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/** A daily series as a line with a dashed target; a null point (no data) leaves a gap in the line. */
export function lineChart(points: Array<number | null>, opts: LineChartOptions): string {
  const { width, height, unit, target } = opts;
  const padLeft = 52;
  const padRight = 8;
  const padTop = 10;
  const padBottom = opts.xLabels ? 20 : 8;
  const plotW = Math.max(1, width - padLeft - padRight);
  const plotH = Math.max(1, height - padTop - padBottom);

  const measured = points.filter((p): p is number => p !== null && Number.isFinite(p));
  const highest = Math.max(0, ...measured, target ?? 0);
  const max =
    opts.max !== undefined && opts.max > 0 ? opts.max : Math.min(niceCeiling(highest * 1.1), opts.ceiling ?? Number.POSITIVE_INFINITY);
  const over = (v: number) => target !== undefined && v > target;
  const withUnit = (v: number) => (unit === '' ? formatNumber(v, 2) : `${formatNumber(v, 2)} ${unit}`);

  const x = (i: number) => padLeft + (points.length === 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
  const y = (v: number) => padTop + plotH - (Math.min(Math.max(v, 0), max) / max) * plotH;

  const gaps = points.length - measured.length;
  const overCount = measured.filter(over).length;
  const desc = [
    `${points.length} points, ${gaps} without data`,
    measured.length > 0 ? `highest ${withUnit(Math.max(...measured))}` : 'no data',
    target !== undefined ? `target ${withUnit(target)}, ${overCount} over it` : '',
  ]
    .filter(Boolean)
    .join('; ');

  const parts = [open(width, height, 'line-chart', opts.label, desc)];
  const bottom = padTop + plotH;
  parts.push(
    `<line class="axis" x1="${padLeft}" y1="${r(bottom)}" x2="${r(padLeft + plotW)}" y2="${r(bottom)}" stroke="${GRID}"/>`,
    `<line class="grid" x1="${padLeft}" y1="${padTop}" x2="${r(padLeft + plotW)}" y2="${padTop}" stroke="${GRID}" stroke-dasharray="1 3"/>`,
    text(padLeft - 4, padTop + 4, withUnit(max), `text-anchor="end" fill="${MUTE}"`),
    text(padLeft - 4, bottom, withUnit(0), `text-anchor="end" fill="${MUTE}"`),
  );
  if (opts.xLabels) {
    parts.push(
      text(padLeft, height - 4, opts.xLabels.first, `fill="${MUTE}"`),
      text(padLeft + plotW, height - 4, opts.xLabels.last, `text-anchor="end" fill="${MUTE}"`),
    );
  }
  if (target !== undefined) {
    const ty = r(y(target));
    parts.push(
      `<line class="target" x1="${padLeft}" y1="${ty}" x2="${r(padLeft + plotW)}" y2="${ty}" stroke="${BAD}" stroke-width="1" stroke-dasharray="5 3"/>`,
      text(padLeft + plotW, ty - 3, `target ${withUnit(target)}`, `text-anchor="end" fill="${BAD}"`),
    );
  }

  // A null ends the current stretch: the next measured point starts a new subpath, so the line
  // never bridges a day without data.
  let d = '';
  let drawing = false;
  points.forEach((p, i) => {
    if (p === null || !Number.isFinite(p)) {
      drawing = false;
      return;
    }
    d += `${drawing ? 'L' : 'M'}${r(x(i))} ${r(y(p))}`;
    drawing = true;
  });
  if (d) parts.push(`<path class="series" d="${d}" fill="none" stroke="${SERIES}" stroke-width="1.5" stroke-linejoin="round"/>`);

  // Dots make single days between gaps visible and carry the over-target mark.
  points.forEach((p, i) => {
    if (p === null || !Number.isFinite(p)) return;
    const cls = over(p) ? 'point over' : 'point';
    parts.push(`<circle class="${cls}" cx="${r(x(i))}" cy="${r(y(p))}" r="${over(p) ? 3 : 1.8}" fill="${over(p) ? BAD : SERIES}"/>`);
  });
  if (measured.length === 0) parts.push(text(padLeft + plotW / 2, padTop + plotH / 2, 'no data', `text-anchor="middle" fill="${MUTE}"`));

  parts.push('</svg>');
  return parts.join('');
}

/** Availability in nines: 90 % is 1, 99.9 % is 3; 100 % is infinite and callers cap it. */
function nines(share: number): number {
  return share >= 1 ? Number.POSITIVE_INFINITY : -Math.log10(1 - Math.max(0, share));
}

/**
 * One horizontal bar per probe: its uptime against its target. The scale counts nines, because
 * uptimes cluster near 100 %: on a linear scale 99.6 % and a 99.9 % target would look the same.
 */
export function uptimeBars(items: UptimeBarItem[]): string {
  const width = 640;
  const labelW = 180;
  const valueW = 76;
  const barX = labelW;
  const barW = width - labelW - valueW;
  const rowH = 22;
  const top = 18;
  const height = top + Math.max(1, items.length) * rowH + 4;
  // One nine beyond the strictest target, so a probe that meets it still shows room above.
  const strictest = Math.max(3, ...items.map((i) => nines(i.target)).filter(Number.isFinite));
  const scale = Math.min(6, Math.ceil(strictest) + 1);
  const xOf = (share: number) => barX + (Math.min(nines(share), scale) / scale) * barW;

  const below = items.filter((i) => i.uptime !== null && i.uptime < i.target).length;
  const desc = `${items.length} probes, ${below} below target; bars measure nines of availability, the right end is ${formatPercent(1 - 10 ** -scale, scale - 2)}`;
  const parts = [open(width, height, 'uptime-bars', 'Uptime per probe against its target', desc)];
  for (let n = 1; n <= scale; n++) {
    const tx = r(barX + (n / scale) * barW);
    parts.push(
      `<line class="tick" x1="${tx}" y1="14" x2="${tx}" y2="${height - 4}" stroke="${GRID}" stroke-dasharray="1 3"/>`,
      text(
        tx,
        11,
        formatPercent(1 - 10 ** -n, Math.max(0, n - 2)).replace(' %', '%'),
        `text-anchor="middle" fill="${MUTE}" font-size="10"`,
      ),
    );
  }
  if (items.length === 0) parts.push(text(barX + barW / 2, top + 14, 'no probes', `text-anchor="middle" fill="${MUTE}"`));

  items.forEach((item, i) => {
    const rowTop = top + i * rowH;
    const mid = rowTop + rowH / 2;
    const value = formatPercent(item.uptime);
    const state = item.uptime === null ? 'nodata' : item.uptime < item.target ? 'miss' : 'ok';
    parts.push(
      `<g class="row ${state}"><title>${escapeHtml(`${item.label}: ${value}, target ${formatPercent(item.target)}`)}</title>`,
      text(barX - 6, mid + 4, clip(item.label, 28), 'text-anchor="end"'),
      `<rect class="track" x="${barX}" y="${r(rowTop + 4)}" width="${barW}" height="${rowH - 8}" fill="${TRACK}" fill-opacity="0.6"/>`,
    );
    if (item.uptime !== null) {
      const w = Math.max(1, xOf(item.uptime) - barX);
      parts.push(
        `<rect class="bar" x="${barX}" y="${r(rowTop + 4)}" width="${r(w)}" height="${rowH - 8}" fill="${state === 'miss' ? BAD : GOOD}"/>`,
      );
    }
    const tx = r(xOf(item.target));
    parts.push(
      `<line class="target" x1="${tx}" y1="${r(rowTop + 1)}" x2="${tx}" y2="${r(rowTop + rowH - 1)}" stroke="${INK}" stroke-width="2"/>`,
      text(barX + barW + 6, mid + 4, item.uptime === null ? NONE : value, state === 'miss' ? `fill="${BAD}" font-weight="600"` : ''),
      '</g>',
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

function severityClass(severity: string): string {
  return Object.hasOwn(SEVERITY_FILL, severity) ? `sev-${severity}` : 'sev-other';
}

/** One row per incident: a bar from opened to resolved (or to `to` while open), the ack as a dot. */
export function incidentTimeline(incidents: IncidentReport[], from: string, to: string): string {
  const width = 960;
  const labelW = 170;
  const padRight = 90;
  const plotW = width - labelW - padRight;
  const rowH = 20;
  const axisH = 20;
  const start = Date.parse(from);
  const end = Date.parse(to);
  const span = Math.max(1, end - start);
  const height = 4 + Math.max(1, incidents.length) * rowH + axisH;
  const plotBottom = 4 + Math.max(1, incidents.length) * rowH;
  const xOf = (t: number) => labelW + (Math.min(Math.max(t - start, 0), span) / span) * plotW;

  const stillOpen = incidents.filter((i) => i.resolvedAt === null).length;
  const desc = `${incidents.length} incidents from ${formatTime(from)} to ${formatTime(to)}, ${stillOpen} still open`;
  const parts = [open(width, height, 'incident-timeline', 'Incident timeline', desc)];

  // Weekly ticks: a 30-day window reads as four or five weeks.
  const week = 7 * 86_400_000;
  for (let t = start; t <= end && Number.isFinite(t); t += week) {
    const tx = r(xOf(t));
    parts.push(
      `<line class="tick" x1="${tx}" y1="0" x2="${tx}" y2="${r(plotBottom)}" stroke="${GRID}" stroke-dasharray="1 3"/>`,
      text(tx, height - 6, new Date(t).toISOString().slice(0, 10), `fill="${MUTE}" text-anchor="${t === start ? 'start' : 'middle'}"`),
    );
  }
  if (incidents.length === 0) parts.push(text(labelW + plotW / 2, 18, 'no incidents in the window', `text-anchor="middle" fill="${MUTE}"`));

  incidents.forEach((inc, i) => {
    const rowTop = 4 + i * rowH;
    const opened = Date.parse(inc.openedAt);
    const closed = inc.resolvedAt === null ? end : Date.parse(inc.resolvedAt);
    const x1 = xOf(Number.isNaN(opened) ? start : opened);
    const x2 = xOf(Number.isNaN(closed) ? end : closed);
    const sev = severityClass(inc.severity);
    const fill = SEVERITY_FILL[inc.severity] ?? OTHER_SEVERITY_FILL;
    const ack = inc.ackedAt === null ? Number.NaN : Date.parse(inc.ackedAt);
    const tip = [
      `#${inc.id} ${inc.probeId} (${inc.severity}): ${inc.summary}`,
      `opened ${formatTime(inc.openedAt)}`,
      inc.ackedAt === null ? 'not acknowledged' : `acknowledged ${formatTime(inc.ackedAt)}${inc.ackedBy ? ` by ${inc.ackedBy}` : ''}`,
      inc.resolvedAt === null ? 'still open' : `resolved ${formatTime(inc.resolvedAt)}`,
    ].join('; ');
    const label = `#${inc.id} ${inc.probeId}${inc.resolvedAt === null ? ' (open)' : ''}`;
    parts.push(
      `<g class="incident ${sev}${inc.resolvedAt === null ? ' open' : ''}"><title>${escapeHtml(tip)}</title>`,
      text(labelW - 6, rowTop + rowH / 2 + 4, clip(label, 26), 'text-anchor="end"'),
      // A 3-unit floor keeps a one-minute incident visible on a 30-day axis.
      `<rect class="bar ${sev}" x="${r(x1)}" y="${r(rowTop + 5)}" width="${r(Math.max(3, x2 - x1))}" height="${rowH - 9}" fill="${fill}"` +
        `${inc.resolvedAt === null ? ` fill-opacity="0.55" stroke="${fill}" stroke-dasharray="3 2"` : ''}/>`,
    );
    if (!Number.isNaN(ack)) {
      // Above the bar, not on it: most incidents are minutes long and the mark would hide them.
      const ax = r(xOf(ack));
      parts.push(`<path class="ack" d="M${ax - 3.5} ${rowTop}h7l-3.5 4.5z" fill="${INK}"/>`);
    }
    // Bars of minutes are slivers on a 30-day axis, so the duration is written beside each.
    const lasted = inc.resolvedAt === null ? 'open' : formatDuration(inc.ttrMs ?? closed - opened);
    parts.push(text(Math.max(x1 + 3, x2) + 5, rowTop + rowH / 2 + 4, lasted, `fill="${MUTE}"`), '</g>');
  });
  parts.push('</svg>');
  return parts.join('');
}
