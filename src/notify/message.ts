import { formatDuration } from '../lib/duration.js';
import type { Notification, Severity } from './types.js';

/** The words of a notification, shared by every channel so a page reads the same everywhere. */
export interface Message {
  /** One line: `[CRITICAL] api-health is failing: 503 Service Unavailable: cache down`. */
  title: string;
  /** Plain-text body, several lines: what failed, since when, the last error, the links. */
  text: string;
  /** Label/value pairs for channels with structured layouts (Slack fields, email tables). */
  facts: Array<[label: string, value: string]>;
  /** Hex colour by state and severity, for channels that show one. */
  color: string;
}

const COLORS: Record<Severity, string> = { critical: '#d0021b', error: '#e8590c', warning: '#f5a623', info: '#4a90e2' };
const RESOLVED = '#2e8540';
const ACKED = '#7f8c8d';

/** Renders a notification at `now` (epoch ms). */
export function render(n: Notification, now: number): Message {
  const i = n.incident;
  const sev = i.severity.toUpperCase();
  const since = new Date(i.openedAt).toISOString();
  const open = formatDuration(Math.max(0, (i.resolvedAt ?? now) - i.openedAt));
  const error = i.lastError ? `${i.lastError.code}: ${i.lastError.message}` : undefined;

  let title: string;
  let color = COLORS[i.severity];
  switch (n.action) {
    case 'trigger':
      title = `[${sev}] ${i.summary}`;
      break;
    case 'remind':
      title = `[${sev}] still failing after ${open}: ${i.summary}`;
      break;
    case 'acknowledge':
      title = `[ACK] ${i.probeId} acknowledged${i.ackedBy ? ` by ${i.ackedBy}` : ''}: ${i.summary}`;
      color = ACKED;
      break;
    case 'resolve':
      title = `[RESOLVED] ${i.probeId} recovered after ${open}`;
      color = RESOLVED;
      break;
    case 'test':
      title = `[TEST] vigil test page${i.probeId ? ` for ${i.probeId}` : ''}: if you read this, the channel works`;
      color = COLORS.info;
      break;
  }

  const facts: Array<[string, string]> = [
    ['Probe', `${i.probeId} (${i.kind})`],
    ['Severity', i.severity],
    ['State', i.flapping ? `${i.state} (flapping)` : i.state],
    ['Since', since],
  ];
  if (error) facts.push(['Last error', error]);
  if (i.rule) facts.push(['Rule', i.rule]);
  const labels = Object.entries(i.labels);
  if (labels.length > 0) facts.push(['Labels', labels.map(([k, v]) => `${k}=${v}`).join(', ')]);
  if (i.ackedBy) facts.push(['Acknowledged by', i.ackedBy]);

  const lines = [title, '', ...facts.map(([k, v]) => `${k}: ${v}`), '', `Incident: ${n.links.incident}`];
  if (n.links.runbook) lines.push(`Runbook: ${n.links.runbook}`);
  if (n.links.dashboard) lines.push(`Dashboard: ${n.links.dashboard}`);
  if (n.links.screenshot) lines.push(`Screenshot: ${n.links.screenshot}`);
  return { title, text: lines.join('\n'), facts, color };
}
