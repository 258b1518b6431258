import { createHash } from 'node:crypto';
import type { ReportWindow } from './types.js';

/** What every rendering shows for a figure nobody could measure: never `0`, never `NaN`. */
export const NONE = '—';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML and SVG, in element content and in quoted attribute values alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** The Content-Security-Policy of a page whose only style is one `<style>` element holding exactly `style`. */
export function pageCsp(style: string): string {
  return [
    "default-src 'none'",
    `style-src 'sha256-${createHash('sha256').update(style, 'utf8').digest('base64')}'`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function measurable(value: number | null | undefined): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Milliseconds for people: `340 ms`, `4.2 s`, `42 s`, `4 min 10 s`, `2 h 5 min`, `3 d 4 h`. */
export function formatDuration(ms: number | null): string {
  if (!measurable(ms) || ms < 0) return NONE;
  // Each step rounds before choosing its unit, so 59.7 s reads `1 min`, not `60 s`.
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  if (ms < 9_950) return `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return pair(Math.floor(s / 60), 'min', s % 60, 's');
  const min = Math.round(s / 60);
  if (min < 24 * 60) return pair(Math.floor(min / 60), 'h', min % 60, 'min');
  const h = Math.round(min / 60);
  return pair(Math.floor(h / 24), 'd', h % 24, 'h');
}

function pair(major: number, majorUnit: string, minor: number, minorUnit: string): string {
  return minor === 0 ? `${major} ${majorUnit}` : `${major} ${majorUnit} ${minor} ${minorUnit}`;
}

/** A share in [0, 1] as a percentage: `99.95 %`. */
export function formatPercent(share: number | null, digits = 2): string {
  if (!measurable(share)) return NONE;
  const step = 10 ** -digits;
  let pct = share * 100;
  // Rounding must not hide what happened: one failure in 10,000 runs is not "100.00 %" uptime, and
  // one failed run is not a "0.00 %" error rate.
  if (share < 1 && pct > 100 - step) pct = 100 - step;
  if (share > 0 && pct < step) pct = step;
  return `${pct.toFixed(digits)} %`;
}

const NUMBER_FORMATS = new Map<number, Intl.NumberFormat>();

/**
 * Error budget spent, bounded so it reads: `42 %` while some is left, then `exhausted, 3.5× the
 * budget` (a raw `100000 %` tells a reader nothing a multiple does not say better).
 */
export function formatBudget(spent: number | null): string {
  if (spent === null || Number.isNaN(spent)) return NONE;
  if (spent <= 1) return formatPercent(spent, 0);
  // An objective of 100 % leaves no budget: any failure spends it all, by no finite multiple.
  if (!Number.isFinite(spent)) return 'exhausted (the objective allows no failure)';
  return `exhausted, ${formatNumber(spent, spent < 10 ? 1 : 0)}× the budget`;
}

/** A number for people: thousands grouped, at most `digits` decimals, `—` when unmeasured. */
export function formatNumber(value: number | null, digits = 2): string {
  if (!measurable(value)) return NONE;
  let format = NUMBER_FORMATS.get(digits);
  if (format === undefined) {
    // Fixed locale: a report must read the same whichever machine renders it.
    format = new Intl.NumberFormat('en-US', { maximumFractionDigits: digits });
    NUMBER_FORMATS.set(digits, format);
  }
  return format.format(value);
}

/** An ISO instant as `2026-11-26 12:00 UTC`; a bare date, or text that is not a time, is shown as given. */
export function formatTime(iso: string | null): string {
  if (iso === null) return NONE;
  // Attestations carry a day, not an instant: `00:00 UTC` would claim a precision nobody gave.
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) return iso;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** `yes` / `no` / `—` for a check that may not have run. */
export function formatYesNo(value: boolean | null): string {
  if (value === null) return NONE;
  return value ? 'yes' : 'no';
}

/**
 * A probe value by the unit its name carries (`restore_s`, `p95_ms`, `error_rate`, `propagated_ratio`);
 * names without one are plain numbers.
 */
export function formatValue(name: string, value: number | null): string {
  if (name.endsWith('_ms')) return formatDuration(value);
  if (name.endsWith('_s')) return formatDuration(measurable(value) ? value * 1000 : null);
  if (name.endsWith('_rate') || name.endsWith('_ratio')) return formatPercent(value);
  return formatNumber(value);
}

/** The window in one line: its ends, its length and why it is that window. */
export function windowText(w: ReportWindow): string {
  const basis =
    w.basis === 'launch'
      ? `since launch${w.launchDate ? ` on ${w.launchDate.slice(0, 10)}` : ''}`
      : w.basis === 'recent'
        ? `the last ${w.days} days`
        : 'as requested';
  return `${formatTime(w.from)} to ${formatTime(w.to)} (${w.days} days, ${basis})`;
}

/**
 * Where the figures come from, in one line: the window's ends, and how much of it was read from
 * rollups rather than raw runs. "Data through <the window's start>" read as "no data at all".
 */
export function dataText(w: ReportWindow, dataThrough: string): string {
  const rolled = Date.parse(dataThrough) > Date.parse(w.from);
  const source = rolled ? `rolled up through ${formatTime(dataThrough)}, later runs read raw` : 'read from raw runs, none rolled up yet';
  return `from ${formatTime(w.from)} to ${formatTime(w.to)} (${source})`;
}

/** A figure over its limit (strictly); unknown figures and absent limits are never over. */
export function isOver(value: number | null, limit: number | null): boolean {
  return value !== null && limit !== null && value > limit;
}

/** A figure under its floor (an uptime under its objective). */
export function isUnder(value: number | null, limit: number): boolean {
  return value !== null && value < limit;
}

/** Seconds (as probes report restore times) in milliseconds, keeping null. */
export function secondsToMs(s: number | null): number | null {
  return s === null ? null : s * 1000;
}
