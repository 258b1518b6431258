import type { Clock } from '../lib/clock.js';
import type { Rollups, Store } from '../store/index.js';
import { escapeHtml as esc, formatDuration, formatPercent } from './format.js';

const DAY = 86_400_000;

/** What a badge says: the shields.io endpoint schema's fields (https://shields.io/badges/endpoint-badge). */
export interface Badge {
  schemaVersion: 1;
  label: string;
  message: string;
  /** A shields.io colour name. */
  color: 'brightgreen' | 'green' | 'yellow' | 'orange' | 'red' | 'lightgrey';
}

/** Which figure a badge shows. */
export type BadgeKind = 'status' | 'uptime' | 'latency';

/** What a badge reads: one probe's last run or its rollups. */
export interface BadgeDeps {
  clock: Clock;
  store: Pick<Store, 'latest'> & { rollups: Pick<Rollups, 'summary'> };
}

/** The badge of one probe: its state, its uptime over `days`, or its p95 over the last 24 hours. */
export async function buildBadge(deps: BadgeDeps, probeId: string, kind: BadgeKind, days = 30): Promise<Badge> {
  if (kind === 'status') {
    const last = deps.store.latest(probeId);
    if (last === undefined) return badge(probeId, 'unknown', 'lightgrey');
    return last.ok ? badge(probeId, 'up', 'brightgreen') : badge(probeId, 'down', 'red');
  }
  const end = deps.clock.now() + 1;
  if (kind === 'uptime') {
    const s = await deps.store.rollups.summary(probeId, end - days * DAY, end);
    const label = `uptime ${days}d`;
    if (s.runs <= 0) return badge(label, 'no data', 'lightgrey');
    const up = (s.runs - s.failures) / s.runs;
    const color = up >= 0.999 ? 'brightgreen' : up >= 0.99 ? 'green' : up >= 0.95 ? 'yellow' : up >= 0.9 ? 'orange' : 'red';
    return badge(label, formatPercent(up).replace(' %', '%'), color);
  }
  const s = await deps.store.rollups.summary(probeId, end - DAY, end);
  if (s.runs <= 0 || s.p95 === undefined) return badge('p95 24h', 'no data', 'lightgrey');
  const color = s.p95 < 500 ? 'brightgreen' : s.p95 < 1000 ? 'green' : s.p95 < 2500 ? 'yellow' : s.p95 < 5000 ? 'orange' : 'red';
  return badge('p95 24h', formatDuration(s.p95), color);
}

function badge(label: string, message: string, color: Badge['color']): Badge {
  return { schemaVersion: 1, label, message, color };
}

const FILL: Record<Badge['color'], string> = {
  brightgreen: '#1a7f37',
  green: '#2c7a3f',
  yellow: '#8a6100',
  orange: '#b5470b',
  red: '#b42318',
  lightgrey: '#57606a',
};

/** Width of text in 11 px Verdana-like type, roughly: badges need no font metrics to be legible. */
function textWidth(text: string): number {
  let w = 0;
  for (const ch of text) w += /[ilj.,:;|!'1]/.test(ch) ? 3.5 : /[mwMW%@]/.test(ch) ? 10 : /[A-Z0-9]/.test(ch) ? 7.5 : 6.5;
  return Math.ceil(w);
}

/** Clips a label to `max` characters so a long probe id cannot make a badge a banner. */
function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** A flat badge in the shields.io look, as a standalone SVG: escaped text, no script, no external reference. */
export function renderBadgeSvg(b: Badge): string {
  const label = clip(b.label, 40);
  const message = clip(b.message, 40);
  const lw = textWidth(label) + 12;
  const mw = textWidth(message) + 12;
  const w = lw + mw;
  const title = esc(`${b.label}: ${b.message}`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="20" viewBox="0 0 ${w} 20" role="img" aria-label="${title}"><title>${title}</title><rect width="${lw}" height="20" fill="#555"/><rect x="${lw}" width="${mw}" height="20" fill="${FILL[b.color]}"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle"><text x="${lw / 2}" y="14">${esc(label)}</text><text x="${lw + mw / 2}" y="14">${esc(message)}</text></g></svg>
`;
}
