/**
 * The 30-day report as one self-contained HTML page: no script, no external asset, one `<style>`
 * element allowed by hash. Every string that came from config, a probe or a person goes through
 * `escapeHtml` where it is interpolated; helpers here that return markup say so in their name or doc.
 */

import { isProbeKind, proberFor } from '../probers/index.js';
import {
  dataText,
  escapeHtml as esc,
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
  pageCsp,
  secondsToMs,
  windowText,
} from './format.js';
import { STANDING_CHECKS } from './schema.js';
import { incidentTimeline, lineChart, uptimeBars } from './svg.js';
import type { ItemStatus, ItemTier, ProbeReport, RenderedPage, Report, ScorecardItem } from './types.js';

// The CSP allows exactly this text by hash, so any edit here changes the policy with it.
const STYLE = `
:root{color-scheme:light;--fg:#1d2125;--mute:#5f6b76;--line:#d9dee3;--good:#1f883d;--bad:#cf222e;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0 auto;max-width:74rem;padding:1rem 1.25rem 3rem;color:var(--fg);background:#fff;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
h1{font-size:1.5rem;margin:0 0 .5rem}
h2{font-size:1.15rem;margin:2rem 0 .6rem;padding-bottom:.2rem;border-bottom:2px solid var(--line)}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
header{border-bottom:1px solid var(--line);padding-bottom:.6rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:0}
dl.meta dt{color:var(--mute)}dl.meta dd{margin:0}
.figures{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;margin:.5rem 0}
.figures div{min-width:8rem}
.figures dt{color:var(--mute);font-size:.85rem}.figures dd{margin:0;font-size:1.25rem;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.3rem 0 .8rem}
th,td{text-align:left;vertical-align:top;padding:.25rem .5rem;border-bottom:1px solid var(--line)}
thead th{color:var(--mute);font-size:.85rem;font-weight:600}
td.num,th.num{text-align:right}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
table.narrow{width:auto;min-width:16rem}
table.items th:first-child{width:30%}table.items th:nth-child(2){width:6.5rem}
td.msg{overflow-wrap:anywhere}
.over{color:var(--bad);font-weight:600}
.over::after{content:" \\25B2"}
.mute,time{color:var(--mute)}
.id,.code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em}
.pill{display:inline-block;min-width:4.5em;text-align:center;border-radius:1em;padding:0 .5em;font-weight:600;font-size:.8rem;border:1px solid currentColor}
.pill.pass{color:var(--good)}.pill.fail{color:var(--bad)}.pill.unknown{color:var(--warn)}
.verdict{display:inline-block;font-size:2.4rem;font-weight:800;letter-spacing:.04em;margin:.2rem 0;padding:.1rem .8rem;border:4px solid currentColor;border-radius:.4rem}
.verdict.go{color:var(--good)}.verdict.nogo{color:var(--bad)}
.gaps li{font-weight:600}
.advice{font-size:1.05rem;max-width:48rem}
ul.evidence{margin:0;padding-left:1rem}
.src{display:inline-block;font-size:.75rem;color:var(--mute);border:1px solid var(--line);border-radius:3px;padding:0 .3em;margin-right:.3em}
.lbl{display:inline-block;font-size:.75rem;color:var(--mute);border:1px solid var(--line);border-radius:3px;padding:0 .3em;margin:0 .2em .2em 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(34rem,1fr));gap:1rem}
.probe{border:1px solid var(--line);border-radius:.4rem;padding:.6rem .9rem}
.probe h3{margin:0 0 .2rem}
.kind{font-weight:400;color:var(--mute);font-size:.85rem}
.target{margin:0 0 .4rem;overflow-wrap:anywhere}
table.figures{display:table;width:auto}
table.figures th{color:var(--mute);font-weight:400;padding-right:1.5rem}
.charts{display:flex;flex-wrap:wrap;gap:.5rem}
svg.chart{max-width:100%;height:auto}
@media print{
body{max-width:none;padding:0;font-size:10pt}
h2{break-after:avoid;page-break-after:avoid}
.probe,.scorecard table tr,svg.chart{break-inside:avoid;page-break-inside:avoid}
.cards{display:block}.probe{margin-bottom:.8rem}
a{color:inherit;text-decoration:none}
}
`;

const CSP = pageCsp(STYLE);

const TIERS: Array<{ tier: ItemTier; title: string }> = [
  { tier: 'critical', title: 'Critical' },
  { tier: 'important', title: 'Important' },
  { tier: 'nice', title: 'Nice to have' },
];

const STATUS_CLASS: Record<ItemStatus, string> = { pass: 'pass', fail: 'fail', unknown: 'unknown' };

const CHART = { width: 340, height: 140 };

/** Renders the report as one printable HTML page and the CSP it must be served with. */
export function renderReportHtml(report: Report): RenderedPage {
  const body = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`${report.service}: launch report ${report.window.from.slice(0, 10)} to ${report.window.to.slice(0, 10)}`)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    header(report),
    '<main>',
    scorecard(report),
    summary(report),
    uptime(report),
    probes(report),
    incidents(report),
    checklist(report),
    failures(report),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
  return { body, csp: CSP };
}

// ---- markup helpers: arguments named `text` are escaped here, arguments named `html` are markup ----

function td(text: string, cls = ''): string {
  return `<td${cls ? ` class="${cls}"` : ''}>${esc(text)}</td>`;
}

/** A right-aligned figure, marked when it misses its target. */
function num(text: string, over = false): string {
  return td(text, over ? 'num over' : 'num');
}

/** A yes/no check; a `no` misses its target. */
function check(value: boolean | null): string {
  return td(formatYesNo(value), value === false ? 'over' : '');
}

/** A column heading; figures' headings align right, over their figures. */
type Head = string | { figure: string };

function fig(title: string): Head {
  return { figure: title };
}

function table(head: Head[], rowsHtml: string[], cls = ''): string {
  const th = head
    .map((h) => (typeof h === 'string' ? `<th scope="col">${esc(h)}</th>` : `<th scope="col" class="num">${esc(h.figure)}</th>`))
    .join('');
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${th}</tr></thead><tbody>\n${rowsHtml.join('\n')}\n</tbody></table>`;
}

function tr(cellsHtml: string[], cls = ''): string {
  return `<tr${cls ? ` class="${cls}"` : ''}>${cellsHtml.join('')}</tr>`;
}

function figures(pairs: Array<[label: string, text: string, over?: boolean]>): string {
  const items = pairs.map(([label, text, over]) => `<div><dt>${esc(label)}</dt><dd${over ? ' class="over"' : ''}>${esc(text)}</dd></div>`);
  return `<dl class="figures">${items.join('')}</dl>`;
}

function time(iso: string | null): string {
  return iso === null ? esc(NONE) : `<time datetime="${esc(iso)}">${esc(formatTime(iso))}</time>`;
}

function empty(text: string): string {
  return `<p class="mute">${esc(text)}</p>`;
}

// ---- sections ----

function header(report: Report): string {
  return [
    '<header>',
    `<h1>${esc(report.service)}: 30-day launch report</h1>`,
    '<dl class="meta">',
    `<dt>Window</dt><dd>${esc(windowText(report.window))}</dd>`,
    `<dt>Generated</dt><dd>${time(report.generatedAt)}</dd>`,
    `<dt>Data</dt><dd>${esc(dataText(report.window, report.dataThrough))}</dd>`,
    `<dt>Percentiles</dt><dd>${esc(report.percentiles)}</dd>`,
    '</dl>',
    '</header>',
  ].join('\n');
}

function gapTitle(gap: string, items: ScorecardItem[]): string {
  const item = items.find((i) => i.id === gap);
  return item ? `${item.title} (${item.id}, ${item.status})` : gap;
}

function evidenceList(item: ScorecardItem): string {
  if (item.evidence.length === 0) return esc(NONE);
  const lines = item.evidence.map((e) => {
    const probes =
      e.probes && e.probes.length > 0 ? ` <span class="mute">probes: <span class="id">${esc(e.probes.join(', '))}</span></span>` : '';
    const at = e.at ? ` ${time(e.at)}` : '';
    return `<li><span class="src">${esc(e.source)}</span>${esc(e.detail)}${probes}${at}</li>`;
  });
  return `<ul class="evidence">${lines.join('')}</ul>`;
}

function scorecard(report: Report): string {
  const { verdict, gaps, advice, items } = report.scorecard;
  const parts = [
    '<section id="scorecard" class="scorecard">',
    '<h2>Go / no-go</h2>',
    `<p class="verdict ${verdict === 'GO' ? 'go' : 'nogo'}">${esc(verdict)}</p>`,
  ];
  if (gaps.length === 0) parts.push('<p>No launch gaps: every critical item passes.</p>');
  else {
    parts.push(
      `<p>${gaps.length === 1 ? '1 launch gap' : `${gaps.length} launch gaps`} (critical items not passing):</p>`,
      `<ul class="gaps">${gaps.map((g) => `<li>${esc(gapTitle(g, items))}</li>`).join('')}</ul>`,
    );
  }
  parts.push(`<p class="advice">${esc(advice)}</p>`);
  for (const { tier, title } of TIERS) {
    const inTier = items.filter((i) => i.tier === tier);
    if (inTier.length === 0) continue;
    const rows = inTier.map((item) => {
      const status = STATUS_CLASS[item.status] ?? 'unknown';
      return tr(
        [
          `<td><b>${esc(item.title)}</b><br><span class="id mute">${esc(item.id)}</span></td>`,
          `<td><span class="pill ${status}">${esc(status)}</span></td>`,
          `<td class="msg">${evidenceList(item)}</td>`,
        ],
        status,
      );
    });
    parts.push(`<h3>${esc(title)}</h3>`, table(['Item', 'Status', 'Evidence'], rows, 'items'));
  }
  parts.push('</section>');
  return parts.join('\n');
}

function summary(report: Report): string {
  const s = report.summary;
  return [
    '<section id="summary">',
    '<h2>Summary</h2>',
    figures([
      ['Probes', formatNumber(s.probes)],
      ['Runs', formatNumber(s.runs)],
      ['Failed runs', formatNumber(s.failures)],
      ['Uptime', formatPercent(s.uptime), isUnder(s.uptime, report.targets.uptime)],
      ['Meeting their SLO', `${formatNumber(s.probesMeetingSlo)} of ${formatNumber(s.probes)}`, s.probesMeetingSlo < s.probes],
      ['Incidents', formatNumber(s.incidents)],
    ]),
    '</section>',
  ].join('\n');
}

function uptime(report: Report): string {
  const items = report.probes.map((p) => ({ label: p.id, uptime: p.uptime, target: p.slo.uptime }));
  return ['<section id="uptime">', '<h2>Uptime against objective</h2>', uptimeBars(items), '</section>'].join('\n');
}

function probes(report: Report): string {
  const cards = report.probes.map((p) => probeCard(p, report));
  return [
    '<section id="probes">',
    '<h2>Probes</h2>',
    cards.length > 0 ? `<div class="cards">\n${cards.join('\n')}\n</div>` : empty('No probes ran in the window.'),
    '</section>',
  ].join('\n');
}

function lastRun(last: ProbeReport['last']): string {
  if (last === null) return esc(NONE);
  const outcome = last.ok ? '<b>ok</b>' : '<b class="over">failed</b>';
  const code = last.code ? ` <span class="code">${esc(last.code)}</span>` : '';
  const message = last.message ? `: ${esc(last.message)}` : '';
  return `${time(last.at)} ${outcome}${code}${message}`;
}

function lastSuccess(success: ProbeReport['lastSuccess']): string {
  if (success === null) return esc(NONE);
  const values = Object.entries(success.values).map(([name, v]) => `${name} ${formatValue(name, v)}`);
  return `${time(success.at)}${values.length > 0 ? ` <span class="mute">${esc(values.join(', '))}</span>` : ''}`;
}

function probeCard(p: ProbeReport, report: Report): string {
  const t = report.targets;
  const withData = p.daily.filter((d) => d.runs > 0).length;
  const labels = Object.entries(p.labels).map(([k, v]) => `<span class="lbl">${esc(`${k}=${v}`)}</span>`);
  // Row heading, then the cell's markup.
  const rows: Array<[string, string]> = [
    ['Uptime', td(formatPercent(p.uptime), isUnder(p.uptime, p.slo.uptime) ? 'over' : '')],
    ['Runs', td(`${formatNumber(p.runs)} (${formatNumber(p.failures)} failed)`)],
    ['p50', td(formatDuration(p.p50Ms))],
    ['p95', td(formatDuration(p.p95Ms), isOver(p.p95Ms, p.p95TargetMs) ? 'over' : '')],
    ['p99', td(formatDuration(p.p99Ms))],
    [
      'SLO',
      td(
        `${formatPercent(p.slo.uptime, 3)}: ${p.slo.met === null ? NONE : p.slo.met ? 'met' : 'missed'}`,
        p.slo.met === false ? 'over' : '',
      ),
    ],
    ['Error budget spent', td(formatBudget(p.slo.budgetSpent), isOver(p.slo.budgetSpent, 1) ? 'over' : '')],
    p.p95TargetMs === null
      ? ['Days p95 over target', td('not judged: run time is not a latency')]
      : [`Days p95 over ${formatDuration(p.p95TargetMs)}`, td(`${p.daysOverP95} of ${withData}`, p.daysOverP95 > 0 ? 'over' : '')],
    [
      `Days error rate over ${formatPercent(t.errorRate, 0)}`,
      td(`${p.daysOverErrorRate} of ${withData}`, p.daysOverErrorRate > 0 ? 'over' : ''),
    ],
    ['Last run', `<td class="msg">${lastRun(p.last)}</td>`],
  ];
  // A drill's newest success is its evidence: "none" is worth a row too.
  if (p.lastSuccess !== null || (isProbeKind(p.kind) && proberFor(p.kind).report.lastSuccess === true)) {
    rows.push(['Last success', `<td class="msg">${lastSuccess(p.lastSuccess)}</td>`]);
  }
  const days = p.daily.map((d) => d.day);
  const first = days[0];
  const last = days.at(-1);
  const xLabels = first !== undefined && last !== undefined ? { first, last } : undefined;
  const p95Chart = lineChart(
    p.daily.map((d) => (d.p95Ms === null ? null : d.p95Ms / 1000)),
    p.p95TargetMs === null
      ? { ...CHART, unit: 's', label: `${p.id}: daily p95 of run time`, xLabels }
      : {
          ...CHART,
          target: p.p95TargetMs / 1000,
          unit: 's',
          label: `${p.id}: daily p95 against the ${formatDuration(p.p95TargetMs)} target`,
          xLabels,
        },
  );
  const errorChart = lineChart(
    p.daily.map((d) => (d.errorRate === null ? null : d.errorRate * 100)),
    {
      ...CHART,
      target: t.errorRate * 100,
      unit: '%',
      ceiling: 100,
      label: `${p.id}: daily error rate against the ${formatPercent(t.errorRate, 0)} target`,
      xLabels,
    },
  );
  // Values the kind charts day by day (a log query's match count): each day's highest.
  const charted = [...new Set(p.daily.flatMap((d) => Object.keys(d.values ?? {})))].map((name) =>
    lineChart(
      p.daily.map((d) => d.values?.[name] ?? null),
      { ...CHART, unit: '', label: `${p.id}: daily highest ${name}`, xLabels },
    ),
  );
  return [
    '<article class="probe">',
    `<h3><span class="id">${esc(p.id)}</span> <span class="kind">${esc(p.kind)}</span></h3>`,
    `<p class="target">${esc(p.target)}</p>`,
    labels.length > 0 ? `<p>${labels.join('')}</p>` : '',
    `<table class="figures"><tbody>${rows.map(([label, cell]) => `<tr><th scope="row">${esc(label)}</th>${cell}</tr>`).join('')}</tbody></table>`,
    `<div class="charts">${p95Chart}${errorChart}${charted.join('')}</div>`,
    valuesTable(p),
    '</article>',
  ]
    .filter(Boolean)
    .join('\n');
}

function valuesTable(p: ProbeReport): string {
  const entries = Object.entries(p.values);
  if (entries.length === 0) return '';
  const rows = entries.map(([name, v]) =>
    tr([
      `<td class="id">${esc(name)}</td>`,
      num(formatValue(name, v.min)),
      num(formatValue(name, v.mean)),
      num(formatValue(name, v.max)),
      num(formatValue(name, v.last)),
      num(formatValue(name, v.p95 ?? null)),
      num(formatNumber(v.count)),
    ]),
  );
  return table(['Value', fig('Min'), fig('Mean'), fig('Max'), fig('Last'), fig('p95'), fig('Samples')], rows, 'values');
}

function incidents(report: Report): string {
  const inc = report.incidents;
  const t = report.targets;
  const n = inc.notifications;
  const bySeverity = Object.entries(inc.bySeverity).map(([sev, count]) => `${count} ${sev}`);
  const parts = [
    '<section id="incidents">',
    '<h2>Incidents</h2>',
    figures([
      ['Incidents', formatNumber(inc.count)],
      ['By severity', bySeverity.length > 0 ? bySeverity.join(', ') : NONE],
      [`MTTA (target ${formatDuration(t.mttaMs)})`, formatDuration(inc.mttaMs), isOver(inc.mttaMs, t.mttaMs)],
      ['MTTR', formatDuration(inc.mttrMs)],
      ['Notifications sent', formatNumber(n.sent)],
      ['Delivered', formatNumber(n.delivered)],
      ['Dead', formatNumber(n.dead), n.dead > 0],
      ['Muted', formatNumber(n.muted)],
      ['Pending', formatNumber(n.pending)],
      ['Delivery p95', formatDuration(n.deliveryP95Ms)],
    ]),
  ];
  const people = Object.entries(inc.pagesPerPerson).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  parts.push(
    '<h3>Pages per person</h3>',
    people.length > 0
      ? table(
          ['Person', fig('Pages')],
          people.map(([person, pages]) => tr([td(person), num(formatNumber(pages))])),
          'narrow',
        )
      : empty('Nobody was paged.'),
    '<h3>Timeline</h3>',
    incidentTimeline(inc.list, report.window.from, report.window.to),
    '<h3>All incidents</h3>',
  );
  if (inc.list.length === 0) parts.push(empty('No incidents in the window.'));
  else {
    const rows = inc.list.map((i) =>
      tr([
        num(`#${i.id}`),
        `<td class="id">${esc(i.probeId)}</td>`,
        td(i.rule),
        td(i.severity),
        td(i.state, i.resolvedAt === null ? 'over' : ''),
        td(i.summary, 'msg'),
        `<td>${time(i.openedAt)}</td>`,
        `<td>${time(i.ackedAt)}${i.ackedBy ? ` <span class="mute">by ${esc(i.ackedBy)}</span>` : ''}</td>`,
        `<td>${time(i.resolvedAt)}</td>`,
        num(formatDuration(i.ttaMs), isOver(i.ttaMs, t.mttaMs)),
        num(formatDuration(i.ttrMs)),
      ]),
    );
    parts.push(
      table(
        [fig('#'), 'Probe', 'Rule', 'Severity', 'State', 'Summary', 'Opened', 'Acknowledged', 'Resolved', fig('TTA'), fig('TTR')],
        rows,
      ),
    );
  }
  parts.push('</section>');
  return parts.join('\n');
}

function checklist(report: Report): string {
  const c = report.checklist;
  const t = report.targets;
  const generated = Date.parse(report.generatedAt);
  // A drill nobody ran recently proves nothing about today's backups.
  const stale = (at: string | null) => at === null || generated - Date.parse(at) > t.drillMaxAgeMs;
  const probeCell = (id: string) => `<td class="id">${esc(id)}</td>`;
  const section = (title: string, none: string, head: Head[], rows: string[]) =>
    [`<h3>${esc(title)}</h3>`, rows.length > 0 ? table(head, rows, 'evidence') : empty(none)].join('\n');

  return [
    '<section id="checklist">',
    '<h2>Checklist evidence</h2>',
    section(
      `TLS certificates (at least ${t.tlsMinDays} days left)`,
      'No TLS probes.',
      ['Probe', 'Host', fig('Days left'), fig('Fewest days left'), 'Chain valid', 'OK'],
      c.tls.map((x) =>
        tr([
          probeCell(x.probeId),
          td(x.host),
          num(formatNumber(x.daysRemaining, 1), isUnder(x.daysRemaining, t.tlsMinDays)),
          num(formatNumber(x.minDaysRemaining, 1), isUnder(x.minDaysRemaining, t.tlsMinDays)),
          check(x.chainValid),
          check(x.ok),
        ]),
      ),
    ),
    section(
      `DNS (TTL at most ${t.dnsMaxTtlS} s, propagation within ${formatDuration(t.dnsPropagationS * 1000)})`,
      'No DNS probes.',
      ['Probe', 'Name', fig('Propagation (worst)'), fig('Max TTL'), fig('Resolvers agreeing'), 'OK'],
      c.dns.map((x) =>
        tr([
          probeCell(x.probeId),
          td(x.name),
          num(formatDuration(secondsToMs(x.propagationS)), isOver(x.propagationS, t.dnsPropagationS)),
          num(x.maxTtlS === null ? NONE : `${formatNumber(x.maxTtlS)} s`, isOver(x.maxTtlS, t.dnsMaxTtlS)),
          num(formatPercent(x.propagatedRatio, 0), isUnder(x.propagatedRatio, 1)),
          check(x.ok),
        ]),
      ),
    ),
    section(
      `Log ingestion (p95 under ${formatDuration(t.logIngestionMs)})`,
      'No log-ingestion probes.',
      ['Probe', 'Backend', fig('p95'), fig('Max'), fig('Runs'), fig('Failed'), 'OK'],
      c.logIngestion.map((x) =>
        tr([
          probeCell(x.probeId),
          td(x.backend),
          num(formatDuration(x.p95Ms), isOver(x.p95Ms, t.logIngestionMs)),
          num(formatDuration(x.maxMs)),
          num(formatNumber(x.runs)),
          num(formatNumber(x.failures), x.failures > 0),
          check(x.ok),
        ]),
      ),
    ),
    section(
      `Restore drills (RTO ${formatDuration(t.rtoMs)}, RPO ${formatDuration(t.rpoMs)}, drilled within ${formatDuration(t.drillMaxAgeMs)})`,
      'No restore drills.',
      ['Probe', 'Source', 'Last success', fig('Restore took'), fig('Backup age'), 'Within RTO', 'Within RPO', fig('Runs'), fig('Failed')],
      c.restoreDrills.map((x) =>
        tr([
          probeCell(x.probeId),
          td(x.source),
          `<td${stale(x.lastSuccessAt) ? ' class="over"' : ''}>${time(x.lastSuccessAt)}</td>`,
          num(formatDuration(secondsToMs(x.restoreS)), isOver(secondsToMs(x.restoreS), t.rtoMs)),
          num(formatDuration(secondsToMs(x.backupAgeS)), isOver(secondsToMs(x.backupAgeS), t.rpoMs)),
          check(x.withinRto),
          check(x.withinRpo),
          num(formatNumber(x.runs)),
          num(formatNumber(x.failures), x.failures > 0),
        ]),
      ),
    ),
    section(
      `Load runs (p95 under ${formatDuration(t.loadP95Ms)}, errors under ${formatPercent(t.loadErrorRate, 0)})`,
      'No load runs.',
      ['Probe', 'Script', 'Last success', fig('p95'), fig('Error rate'), fig('Requests/s'), 'OK', fig('Runs'), fig('Failed')],
      c.loadRuns.map((x) =>
        tr([
          probeCell(x.probeId),
          td(x.script),
          `<td>${time(x.lastSuccessAt)}</td>`,
          num(formatDuration(x.p95Ms), isOver(x.p95Ms, t.loadP95Ms)),
          num(formatPercent(x.errorRate), isOver(x.errorRate, t.loadErrorRate)),
          num(formatNumber(x.rps, 1)),
          check(x.ok),
          num(formatNumber(x.runs)),
          num(formatNumber(x.failures), x.failures > 0),
        ]),
      ),
    ),
    ...STANDING_CHECKS.map((k) =>
      section(
        k.title,
        k.none,
        ['Probe', 'Target', fig('Runs'), fig('Failed'), 'OK'],
        c[k.section].map((x) =>
          tr([probeCell(x.probeId), td(x.target), num(formatNumber(x.runs)), num(formatNumber(x.failures), x.failures > 0), check(x.ok)]),
        ),
      ),
    ),
    '</section>',
  ].join('\n');
}

function failures(report: Report): string {
  const rows = report.topFailures.map((f) =>
    tr([
      `<td class="code">${esc(f.code)}</td>`,
      num(formatNumber(f.count)),
      `<td class="id">${esc(f.probes.map((p) => `${p.id} ×${p.count}`).join(', '))}</td>`,
      td(f.firstDay),
      td(f.lastDay),
    ]),
  );
  return [
    '<section id="failures">',
    '<h2>Top failure reasons</h2>',
    rows.length > 0
      ? table(['Code', fig('Failed runs'), 'Probes', 'First seen', 'Last seen'], rows)
      : empty('No failed runs in the window.'),
    '</section>',
  ].join('\n');
}
