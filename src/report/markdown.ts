/**
 * The 30-day report as GitHub-flavoured Markdown: the HTML page's sections as tables, verdict first,
 * with columns padded so the raw text also reads in a terminal or a pull-request diff. No line is
 * longer than LINE_MAX characters: a table that would be wider becomes a list, long text wraps.
 */
import {
  dataText,
  formatBudget,
  formatDuration,
  formatNumber,
  formatPercent,
  formatTime,
  formatValue,
  formatYesNo,
  isOver,
  isUnder,
  NONE,
  secondsToMs,
  windowText,
} from './format.js';
import { STANDING_CHECKS } from './schema.js';
import type { ItemTier, ProbeReport, Report, ScorecardItem } from './types.js';

/** Follows a figure that misses its target, so the mark survives a terminal without colour. */
const OVER = ' ▲';

const TIERS: Array<{ tier: ItemTier; title: string }> = [
  { tier: 'critical', title: 'Critical' },
  { tier: 'important', title: 'Important' },
  { tier: 'nice', title: 'Nice to have' },
];

// Wider cells are left unpadded: one long message should not push every row off the screen.
const MAX_PAD = 40;

const SPARK = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** The longest line, in characters: a pull-request view and an 80–120 column terminal show it whole. */
export const LINE_MAX = 120;

/** A sparkline longer than this (a 400-day window) shows each stretch of days by its highest. */
const SPARK_MAX = 90;

/** Renders the report as GitHub-flavoured Markdown. */
export function renderReportMarkdown(report: Report): string {
  const sections = [header, scorecard, summary, probes, incidents, checklist, failures].map((section) => section(report));
  return `${sections.join('\n\n').split('\n').map(wrap).join('\n')}\n`;
}

/**
 * Escapes text for Markdown: characters that would start a link, emphasis, code or raw HTML are
 * backslash-escaped, `|` so it cannot split a table cell, and line breaks become ` / ` because a
 * cell must stay on one line (and `<br>` would be raw HTML).
 */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*[\]<>|]/g, (c) => `\\${c}`).replace(/\r\n|\r|\n/g, ' / ');
}

function width(text: string): number {
  return Array.from(text).length;
}

/** A table when its widest line fits in LINE_MAX, otherwise one list item per row: its first cell, then `Header: cell` pairs. */
function table(head: string[], rows: string[][]): string {
  const cells = [head, ...rows].map((row) => row.map(escapeMarkdown));
  const widths = head.map((_, col) => Math.min(MAX_PAD, Math.max(3, ...cells.map((row) => width(row[col] ?? '')))));
  const line = (row: string[]) =>
    `| ${row.map((cell, col) => cell.padEnd(cell.length + Math.max(0, (widths[col] ?? 0) - width(cell)))).join(' | ')} |`;
  const [first, ...rest] = cells;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  const lines = [line(first ?? []), rule, ...rest.map(line)];
  if (lines.every((l) => width(l) <= LINE_MAX)) return lines.join('\n');
  const names = (first ?? []).slice(1);
  return rest.map(([id, ...values]) => `- **${id}** · ${values.map((v, i) => `${names[i]}: ${v}`).join(' · ')}`).join('\n');
}

/**
 * Wraps a line longer than LINE_MAX at spaces; a list item's continuation lines are indented so
 * they stay in the item. Tables never reach here too wide (see `table`); a single word longer than
 * a line (a long URL) is cut with `…`: the HTML and JSON reports carry it whole.
 */
function wrap(line: string): string {
  if (width(line) <= LINE_MAX) return line;
  const indent = /^(\s*)(- )?/.exec(line)![0].replace(/\S/g, ' ');
  const out: string[] = [];
  let current = '';
  // A word may land on a continuation line (indented, escaped by one `\`): it is cut to fit there.
  const room = LINE_MAX - indent.length - 1;
  for (const raw of line.split(' ')) {
    const word =
      width(raw) > room
        ? `${Array.from(raw)
            .slice(0, room - 1)
            .join('')}…`
        : raw;
    if (current !== '' && width(current) + 1 + width(word) > (out.length === 0 ? LINE_MAX : room)) {
      out.push(current);
      current = word;
    } else current = current === '' ? word : `${current} ${word}`;
  }
  out.push(current);
  // A continuation line must not start a list item, heading, quote or table of its own.
  const plain = (l: string) => l.replace(/^([-+#>|=]|\d+[.)])/, (m) => `${m.slice(0, -1)}\\${m.slice(-1)}`);
  return out.map((l, i) => (i === 0 ? l : `${indent}${plain(l)}`)).join('\n');
}

function mark(text: string, over: boolean): string {
  return over ? `${text}${OVER}` : text;
}

function check(value: boolean | null): string {
  return mark(formatYesNo(value), value === false);
}

/** A daily series as one line of block characters, `·` for a day without data. */
function sparkline(all: Array<number | null>, target: number): string {
  const points = squeeze(all, SPARK_MAX);
  const top = Math.max(target, ...points.filter((p): p is number => p !== null));
  if (!(top > 0)) return points.map((p) => (p === null ? '·' : SPARK[0])).join('');
  return points.map((p) => (p === null ? '·' : SPARK[Math.min(SPARK.length - 1, Math.floor((p / top) * SPARK.length))])).join('');
}

/** At most `max` points, each the highest of its stretch (null when none of it has data). */
function squeeze(points: Array<number | null>, max: number): Array<number | null> {
  if (points.length <= max) return points;
  const step = Math.ceil(points.length / max);
  const out: Array<number | null> = [];
  for (let i = 0; i < points.length; i += step) {
    const measured = points.slice(i, i + step).filter((p): p is number => p !== null);
    out.push(measured.length === 0 ? null : Math.max(...measured));
  }
  return out;
}

function header(report: Report): string {
  return [
    `# ${escapeMarkdown(report.service)}: 30-day launch report`,
    '',
    `- Window: ${escapeMarkdown(windowText(report.window))}`,
    `- Generated: ${formatTime(report.generatedAt)}`,
    `- Data: ${dataText(report.window, report.dataThrough)}`,
    `- Percentiles: ${escapeMarkdown(report.percentiles)}`,
    `- ${NONE} means not measured;${OVER} marks a figure that misses its target.`,
  ].join('\n');
}

function gapTitle(gap: string, items: ScorecardItem[]): string {
  const item = items.find((i) => i.id === gap);
  return item ? `${item.title} (${item.id}, ${item.status})` : gap;
}

function evidenceText(item: ScorecardItem): string {
  if (item.evidence.length === 0) return NONE;
  return item.evidence
    .map((e) => {
      const extra = [e.probes && e.probes.length > 0 ? `probes: ${e.probes.join(', ')}` : '', e.at ? formatTime(e.at) : ''].filter(Boolean);
      return `${e.source}: ${e.detail}${extra.length > 0 ? ` (${extra.join('; ')})` : ''}`;
    })
    .join('\n');
}

function scorecard(report: Report): string {
  const { verdict, gaps, advice, items } = report.scorecard;
  const parts = [`## Go / no-go: **${escapeMarkdown(verdict)}**`, ''];
  if (gaps.length === 0) parts.push('No launch gaps: every critical item passes.');
  else {
    parts.push(`${gaps.length === 1 ? '1 launch gap' : `${gaps.length} launch gaps`} (critical items not passing):`, '');
    for (const gap of gaps) parts.push(`- ${escapeMarkdown(gapTitle(gap, items))}`);
  }
  parts.push('', escapeMarkdown(advice));
  for (const { tier, title } of TIERS) {
    const inTier = items.filter((i) => i.tier === tier);
    if (inTier.length === 0) continue;
    const rows = inTier.map((i) => [`${i.title} (${i.id})`, i.status.toUpperCase(), evidenceText(i)]);
    parts.push('', `### ${title}`, '', table(['Item', 'Status', 'Evidence'], rows));
  }
  return parts.join('\n');
}

function summary(report: Report): string {
  const s = report.summary;
  return [
    '## Summary',
    '',
    table(
      ['Probes', 'Runs', 'Failed runs', 'Uptime', 'Meeting their SLO', 'Incidents'],
      [
        [
          formatNumber(s.probes),
          formatNumber(s.runs),
          formatNumber(s.failures),
          mark(formatPercent(s.uptime), isUnder(s.uptime, report.targets.uptime)),
          mark(`${s.probesMeetingSlo} of ${s.probes}`, s.probesMeetingSlo < s.probes),
          formatNumber(s.incidents),
        ],
      ],
    ),
  ].join('\n');
}

function lastRunText(last: ProbeReport['last']): string {
  if (last === null) return NONE;
  const outcome = last.ok ? 'ok' : `failed${OVER}`;
  return `${formatTime(last.at)} ${outcome}${last.code ? ` ${last.code}` : ''}${last.message ? `: ${last.message}` : ''}`;
}

function probes(report: Report): string {
  const t = report.targets;
  if (report.probes.length === 0) return '## Probes\n\nNo probes ran in the window.';
  const rows = report.probes.map((p) => {
    const withData = p.daily.filter((d) => d.runs > 0).length;
    return [
      p.id,
      p.kind,
      mark(formatPercent(p.uptime), isUnder(p.uptime, p.slo.uptime)),
      formatDuration(p.p50Ms),
      mark(formatDuration(p.p95Ms), isOver(p.p95Ms, p.p95TargetMs)),
      formatDuration(p.p99Ms),
      mark(`${formatPercent(p.slo.uptime, 3)} ${p.slo.met === null ? NONE : p.slo.met ? 'met' : 'missed'}`, p.slo.met === false),
      mark(formatBudget(p.slo.budgetSpent), isOver(p.slo.budgetSpent, 1)),
      p.p95TargetMs === null ? 'not judged' : mark(`${p.daysOverP95} of ${withData}`, p.daysOverP95 > 0),
      mark(`${p.daysOverErrorRate} of ${withData}`, p.daysOverErrorRate > 0),
    ];
  });
  const parts = [
    '## Probes',
    '',
    table(
      [
        'Probe',
        'Kind',
        'Uptime',
        'p50',
        'p95',
        'p99',
        'SLO',
        'Budget spent',
        `Days p95 over ${formatDuration(t.p95Ms)}`,
        `Days errors over ${formatPercent(t.errorRate, 0)}`,
      ],
      rows,
    ),
  ];
  for (const p of report.probes) parts.push('', probeDetail(p, report));
  return parts.join('\n');
}

function probeDetail(p: ProbeReport, report: Report): string {
  const t = report.targets;
  const labels = Object.entries(p.labels).map(([k, v]) => `${k}=${v}`);
  const days = p.daily.length > 0 ? ` (${p.daily[0]?.day} to ${p.daily[p.daily.length - 1]?.day})` : '';
  const lines = [`### ${escapeMarkdown(p.id)} (${escapeMarkdown(p.kind)})`, '', `- Target: ${escapeMarkdown(p.target)}`];
  if (labels.length > 0) lines.push(`- Labels: ${escapeMarkdown(labels.join(', '))}`);
  lines.push(
    `- Daily p95${days}: \`${sparkline(
      p.daily.map((d) => d.p95Ms),
      p.p95TargetMs ?? Number.POSITIVE_INFINITY,
    )}\``,
    `- Daily error rate: \`${sparkline(
      p.daily.map((d) => d.errorRate),
      t.errorRate,
    )}\``,
    `- Last run: ${escapeMarkdown(lastRunText(p.last))}`,
  );
  if (p.lastSuccess !== null) {
    const values = Object.entries(p.lastSuccess.values).map(([name, v]) => `${name} ${formatValue(name, v)}`);
    lines.push(`- Last success: ${escapeMarkdown(`${formatTime(p.lastSuccess.at)}${values.length > 0 ? `, ${values.join(', ')}` : ''}`)}`);
  }
  const values = Object.entries(p.values);
  if (values.length > 0) {
    const rows = values.map(([name, v]) => [
      name,
      formatValue(name, v.min),
      formatValue(name, v.mean),
      formatValue(name, v.max),
      formatValue(name, v.last),
      formatValue(name, v.p95 ?? null),
      formatNumber(v.count),
    ]);
    lines.push('', table(['Value', 'Min', 'Mean', 'Max', 'Last', 'p95', 'Samples'], rows));
  }
  return lines.join('\n');
}

function incidents(report: Report): string {
  const inc = report.incidents;
  const t = report.targets;
  const n = inc.notifications;
  const bySeverity = Object.entries(inc.bySeverity).map(([sev, count]) => `${count} ${sev}`);
  const parts = [
    '## Incidents',
    '',
    table(
      ['Incidents', 'By severity', `MTTA (target ${formatDuration(t.mttaMs)})`, 'MTTR'],
      [
        [
          formatNumber(inc.count),
          bySeverity.length > 0 ? bySeverity.join(', ') : NONE,
          mark(formatDuration(inc.mttaMs), isOver(inc.mttaMs, t.mttaMs)),
          formatDuration(inc.mttrMs),
        ],
      ],
    ),
    '',
    table(
      ['Notifications sent', 'Delivered', 'Dead', 'Muted', 'Pending', 'Delivery p95'],
      [
        [
          formatNumber(n.sent),
          formatNumber(n.delivered),
          mark(formatNumber(n.dead), n.dead > 0),
          formatNumber(n.muted),
          formatNumber(n.pending),
          formatDuration(n.deliveryP95Ms),
        ],
      ],
    ),
    '',
    '### Pages per person',
    '',
  ];
  const people = Object.entries(inc.pagesPerPerson).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  parts.push(
    people.length > 0
      ? table(
          ['Person', 'Pages'],
          people.map(([person, pages]) => [person, formatNumber(pages)]),
        )
      : 'Nobody was paged.',
  );
  parts.push('', '### All incidents', '');
  if (inc.list.length === 0) parts.push('No incidents in the window.');
  else {
    const rows = inc.list.map((i) => [
      `#${i.id}`,
      i.probeId,
      i.rule,
      i.severity,
      mark(i.state, i.resolvedAt === null),
      i.summary,
      formatTime(i.openedAt),
      i.ackedAt === null ? NONE : `${formatTime(i.ackedAt)}${i.ackedBy ? ` by ${i.ackedBy}` : ''}`,
      formatTime(i.resolvedAt),
      mark(formatDuration(i.ttaMs), isOver(i.ttaMs, t.mttaMs)),
      formatDuration(i.ttrMs),
    ]);
    parts.push(table(['#', 'Probe', 'Rule', 'Severity', 'State', 'Summary', 'Opened', 'Acknowledged', 'Resolved', 'TTA', 'TTR'], rows));
  }
  return parts.join('\n');
}

function checklist(report: Report): string {
  const c = report.checklist;
  const t = report.targets;
  const generated = Date.parse(report.generatedAt);
  // A drill nobody ran recently proves nothing about today's backups.
  const stale = (at: string | null) => at === null || generated - Date.parse(at) > t.drillMaxAgeMs;
  const section = (title: string, none: string, head: string[], rows: string[][]) =>
    [`### ${escapeMarkdown(title)}`, '', rows.length > 0 ? table(head, rows) : none].join('\n');
  return [
    '## Checklist evidence',
    section(
      `TLS certificates (at least ${t.tlsMinDays} days left)`,
      'No TLS probes.',
      ['Probe', 'Host', 'Days left', 'Fewest days left', 'Chain valid', 'OK'],
      c.tls.map((x) => [
        x.probeId,
        x.host,
        mark(formatNumber(x.daysRemaining, 1), isUnder(x.daysRemaining, t.tlsMinDays)),
        mark(formatNumber(x.minDaysRemaining, 1), isUnder(x.minDaysRemaining, t.tlsMinDays)),
        check(x.chainValid),
        check(x.ok),
      ]),
    ),
    section(
      `DNS (TTL at most ${t.dnsMaxTtlS} s, propagation within ${formatDuration(t.dnsPropagationS * 1000)})`,
      'No DNS probes.',
      ['Probe', 'Name', 'Propagation (worst)', 'Max TTL', 'Resolvers agreeing', 'OK'],
      c.dns.map((x) => [
        x.probeId,
        x.name,
        mark(formatDuration(secondsToMs(x.propagationS)), isOver(x.propagationS, t.dnsPropagationS)),
        mark(x.maxTtlS === null ? NONE : `${formatNumber(x.maxTtlS)} s`, isOver(x.maxTtlS, t.dnsMaxTtlS)),
        mark(formatPercent(x.propagatedRatio, 0), isUnder(x.propagatedRatio, 1)),
        check(x.ok),
      ]),
    ),
    section(
      `Log ingestion (p95 under ${formatDuration(t.logIngestionMs)})`,
      'No log-ingestion probes.',
      ['Probe', 'Backend', 'p95', 'Max', 'Runs', 'Failed', 'OK'],
      c.logIngestion.map((x) => [
        x.probeId,
        x.backend,
        mark(formatDuration(x.p95Ms), isOver(x.p95Ms, t.logIngestionMs)),
        formatDuration(x.maxMs),
        formatNumber(x.runs),
        mark(formatNumber(x.failures), x.failures > 0),
        check(x.ok),
      ]),
    ),
    section(
      `Restore drills (RTO ${formatDuration(t.rtoMs)}, RPO ${formatDuration(t.rpoMs)}, drilled within ${formatDuration(t.drillMaxAgeMs)})`,
      'No restore drills.',
      ['Probe', 'Source', 'Last success', 'Restore took', 'Backup age', 'Within RTO', 'Within RPO', 'Runs', 'Failed'],
      c.restoreDrills.map((x) => [
        x.probeId,
        x.source,
        mark(formatTime(x.lastSuccessAt), stale(x.lastSuccessAt)),
        mark(formatDuration(secondsToMs(x.restoreS)), isOver(secondsToMs(x.restoreS), t.rtoMs)),
        mark(formatDuration(secondsToMs(x.backupAgeS)), isOver(secondsToMs(x.backupAgeS), t.rpoMs)),
        check(x.withinRto),
        check(x.withinRpo),
        formatNumber(x.runs),
        mark(formatNumber(x.failures), x.failures > 0),
      ]),
    ),
    section(
      `Load runs (p95 under ${formatDuration(t.loadP95Ms)}, errors under ${formatPercent(t.loadErrorRate, 0)})`,
      'No load runs.',
      ['Probe', 'Script', 'Last success', 'p95', 'Error rate', 'Requests/s', 'OK', 'Runs', 'Failed'],
      c.loadRuns.map((x) => [
        x.probeId,
        x.script,
        formatTime(x.lastSuccessAt),
        mark(formatDuration(x.p95Ms), isOver(x.p95Ms, t.loadP95Ms)),
        mark(formatPercent(x.errorRate), isOver(x.errorRate, t.loadErrorRate)),
        formatNumber(x.rps, 1),
        check(x.ok),
        formatNumber(x.runs),
        mark(formatNumber(x.failures), x.failures > 0),
      ]),
    ),
    ...STANDING_CHECKS.map((k) =>
      section(
        k.title,
        k.none,
        ['Probe', 'Target', 'Runs', 'Failed', 'OK'],
        c[k.section].map((x) => [x.probeId, x.target, formatNumber(x.runs), mark(formatNumber(x.failures), x.failures > 0), check(x.ok)]),
      ),
    ),
  ].join('\n\n');
}

function failures(report: Report): string {
  if (report.topFailures.length === 0) return '## Top failure reasons\n\nNo failed runs in the window.';
  const rows = report.topFailures.map((f) => [
    f.code,
    formatNumber(f.count),
    f.probes.map((p) => `${p.id} ×${p.count}`).join(', '),
    f.firstDay,
    f.lastDay,
  ]);
  return ['## Top failure reasons', '', table(['Code', 'Failed runs', 'Probes', 'First seen', 'Last seen'], rows)].join('\n');
}
