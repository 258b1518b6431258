import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { escapeHtml, formatDuration, formatPercent, pageCsp } from '../../src/report/format.js';
import { renderReportHtml } from '../../src/report/html.js';
import type { Report } from '../../src/report/types.js';
import { type BrowserVisit, expectCleanLoad, openRendered, SKIP_BROWSER, SKIP_NOTE } from '../helpers/browser.js';
import { sampleReport } from '../helpers/report-sample.js';

const EVIL = '<img src=x onerror=alert(1)>';

/** A report whose every person- or config-provided string tries to break out of its context. */
function hostileReport(): Report {
  const r = sampleReport({ service: '<script>alert("service")</script>' });
  const api = r.probes[0]!;
  api.id = EVIL;
  api.labels = { '<b>team</b>': '"><svg onload=alert(2)>' };
  api.target = 'https://example.com/?q=<script>alert(3)</script>';
  api.last = { at: api.last!.at, ok: false, code: '<i>CODE</i>', message: '<script>alert(4)</script>\nsecond line' };
  api.values = { '<u>v</u>': { min: 1, max: 2, last: 1, mean: 1.5, count: 2 } };
  r.incidents.list[1]!.probeId = EVIL;
  r.incidents.list[0]!.summary = '"><iframe src=//evil.example></iframe>';
  r.incidents.list[0]!.ackedBy = '<marquee>bob</marquee>';
  r.incidents.pagesPerPerson = { '<blink>alice</blink>': 3 };
  r.checklist.tls[0]!.probeId = EVIL;
  r.checklist.restoreDrills[0]!.source = '<object data=x>';
  r.topFailures[0]!.probes[0]!.id = EVIL;
  r.scorecard.advice = '<script>alert(5)</script>';
  r.scorecard.gaps = ['<h1>gap</h1>'];
  r.scorecard.items[0]!.evidence = [
    { source: 'probe', detail: '<a href="javascript:alert(6)">x</a>', probes: [EVIL], at: '2026-11-20" onmouseover="alert(7)' },
  ];
  return r;
}

function styleElements(body: string): string[] {
  return [...body.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1] as string);
}

/** The figure cell next to a row heading inside the card of one probe. */
function cardFigure(body: string, probeId: string, row: string): string | undefined {
  const start = body.indexOf(`<h3><span class="id">${escapeHtml(probeId)}</span>`);
  const card = body.slice(start, body.indexOf('</article>', start));
  return new RegExp(`<th scope="row">${row}</th><td[^>]*>([^<]*)</td>`).exec(card)?.[1];
}

describe('renderReportHtml', () => {
  it('is one HTML5 document with charset, viewport and title', () => {
    const { body } = renderReportHtml(sampleReport());
    expect(body.startsWith('<!doctype html>')).toBe(true);
    expect(body).toContain('<meta charset="utf-8">');
    expect(body).toMatch(/<meta name="viewport" content="width=device-width[^"]*">/);
    expect(body).toMatch(/<title>shop: launch report 2026-10-27 to 2026-11-26<\/title>/);
    expect(body.trimEnd().endsWith('</html>')).toBe(true);
  });

  it('is served with a CSP that allows exactly its one style element', () => {
    const { body, csp } = renderReportHtml(sampleReport());
    const styles = styleElements(body);
    expect(styles).toHaveLength(1);
    const hash = createHash('sha256')
      .update(styles[0] as string)
      .digest('base64');
    expect(csp).toContain(`style-src 'sha256-${hash}'`);
    expect(csp).toBe(pageCsp(styles[0] as string));
    for (const directive of ["default-src 'none'", 'img-src data:', "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"]) {
      expect(csp).toContain(directive);
    }
  });

  it('keeps the same policy for every report, since the style does not depend on the data', () => {
    expect(renderReportHtml(hostileReport()).csp).toBe(renderReportHtml(sampleReport()).csp);
  });

  it('escapes every string that came from config, probes or people', () => {
    const { body } = renderReportHtml(hostileReport());
    for (const raw of [
      '<img',
      '<script',
      '<svg onload',
      '<iframe',
      '<marquee',
      '<blink',
      '<object',
      '<h1>gap',
      '<b>team',
      '<i>CODE',
      '<u>v',
      '" onmouseover="',
    ]) {
      expect(body).not.toContain(raw);
    }
    expect(body).not.toContain('href="javascript:');
    expect(body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(body).toContain('&lt;script&gt;alert(4)&lt;/script&gt;');
    expect(body).toContain('&quot;&gt;&lt;iframe src=//evil.example&gt;&lt;/iframe&gt;');
    expect(body).toContain('datetime="2026-11-20&quot; onmouseover=&quot;alert(7)"');
  });

  it('has no script, no style attribute and nothing fetched from elsewhere', () => {
    const { body } = renderReportHtml(hostileReport());
    expect(body).not.toMatch(/<script/i);
    expect(body).not.toMatch(/\sstyle\s*=/i);
    expect(body).not.toMatch(
      /<(?:link|img|script|iframe|object|embed|source|image|use)\b[^>]*\b(?:src|href|data)\s*=\s*["']?(?:https?:)?\/\//i,
    );
    expect(body).not.toMatch(/<link\b/i);
    expect(body).not.toMatch(/url\(/i);
  });

  it('prints: a print block that keeps probe cards whole', () => {
    const [style] = styleElements(renderReportHtml(sampleReport()).body);
    const print = style?.slice(style.indexOf('@media print')) ?? '';
    expect(print).toMatch(/\.probe[^{]*\{[^}]*break-inside:avoid/);
  });

  it('puts the verdict first, big, with the gaps and the advice', () => {
    const { body } = renderReportHtml(sampleReport());
    const verdict = body.indexOf('<p class="verdict nogo">NO-GO</p>');
    expect(verdict).toBeGreaterThan(-1);
    expect(verdict).toBeLessThan(body.indexOf('<section id="summary">'));
    expect(verdict).toBeLessThan(body.indexOf('<section id="probes">'));
    const gaps = /<ul class="gaps">(.*?)<\/ul>/.exec(body)?.[1] ?? '';
    expect(gaps).toContain('Audit logging for all API calls (audit-logging, unknown)');
    expect(gaps).toContain('Alerting configured for error rate and latency (alerting, fail)');
    expect(body).toContain('2 critical gaps: do not launch.');
    expect(body).toMatch(/<span class="pill fail">fail<\/span>/);
    expect(body).toMatch(/<span class="pill unknown">unknown<\/span>/);
  });

  it('shows a GO without gaps', () => {
    const r = sampleReport();
    r.scorecard = { ...r.scorecard, verdict: 'GO', gaps: [], advice: 'Launch.' };
    const { body } = renderReportHtml(r);
    expect(body).toContain('<p class="verdict go">GO</p>');
    expect(body).toContain('No launch gaps');
    expect(body).not.toContain('<ul class="gaps">');
  });

  it('lists evidence with its source, detail, probes and time', () => {
    const { body } = renderReportHtml(sampleReport());
    expect(body).toMatch(
      /<span class="src">probe<\/span>restored in 43 min, backup 32 min old <span class="mute">probes: <span class="id">db-restore<\/span><\/span> <time datetime="2026-11-20T03:53:00.000Z">2026-11-20 03:53 UTC<\/time>/,
    );
  });

  it('renders unmeasured figures as a dash, never 0 or NaN', () => {
    const r = sampleReport();
    const api = r.probes[0]!;
    Object.assign(api, { uptime: null, p50Ms: null, p95Ms: null, p99Ms: null, runs: 0, failures: 0, last: null });
    api.slo = { uptime: 0.999, budgetSpent: null, met: null };
    api.daily = api.daily.map((d) => ({ ...d, runs: 0, failures: 0, errorRate: null, p95Ms: null, ok: null }));
    r.summary.uptime = null;
    r.incidents.mttaMs = null;
    r.checklist.loadRuns[0]!.p95Ms = null;
    const { body } = renderReportHtml(r);
    for (const row of ['Uptime', 'p50', 'p95', 'p99', 'Error budget spent', 'Last run'])
      expect(cardFigure(body, 'api-health', row)).toBe('—');
    expect(cardFigure(body, 'api-health', 'SLO')).toBe('99.900 %: —');
    expect(cardFigure(body, 'api-cert', 'p99')).toBe('—');
    expect(body).toMatch(/<dt>Uptime<\/dt><dd>—<\/dd>/);
    expect(body).toMatch(/<dt>MTTA \(target 15 min\)<\/dt><dd>—<\/dd>/);
    expect(body).not.toMatch(/NaN|undefined|>null</);
  });

  it('marks figures that miss their target', () => {
    const r = sampleReport();
    r.checklist.restoreDrills[0]!.lastSuccessAt = '2026-11-01T00:00:00.000Z';
    r.checklist.loadRuns[0]!.errorRate = 0.2;
    const { body } = renderReportHtml(r);
    expect(cardFigure(body, 'api-health', 'Uptime')).toBe('99.65 %');
    expect(body).toMatch(/<th scope="row">Uptime<\/th><td class="over">99.65 %<\/td>/);
    expect(body).toMatch(/<td class="num over">22 min<\/td>/);
    expect(body).toMatch(/<td class="over"><time datetime="2026-11-01T00:00:00.000Z">/);
    expect(body).toMatch(/<td class="num over">20.00 %<\/td>/);
    expect(body).toMatch(/<td class="num">1.8 s<\/td>/);
  });

  it('draws the uptime bars, two charts per probe and the incident timeline', () => {
    const r = sampleReport();
    const { body } = renderReportHtml(r);
    expect(body.match(/<svg [^>]*class="chart uptime-bars"/g)).toHaveLength(1);
    expect(body.match(/<svg [^>]*class="chart line-chart"/g)).toHaveLength(2 * r.probes.length);
    const timeline = /<svg [^>]*class="chart incident-timeline"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
    expect(timeline.match(/<rect class="bar /g)).toHaveLength(r.incidents.list.length);
  });

  it('formats incident times for people', () => {
    const { body } = renderReportHtml(sampleReport());
    expect(body).toContain('<dd>13 min 5 s</dd>');
    expect(body).toMatch(/<td class="num">4 min 10 s<\/td><td class="num">47 min<\/td>/);
    expect(body).toMatch(/<td>alice<\/td><td class="num">5<\/td>/);
  });

  it('says so when a section has nothing to show', () => {
    const r = sampleReport({ topFailures: [] });
    r.incidents.list = [];
    r.incidents.pagesPerPerson = {};
    const { body } = renderReportHtml(r);
    expect(body).toContain('No DNS probes.');
    expect(body).toContain('No failed runs in the window.');
    expect(body).toContain('No incidents in the window.');
    expect(body).toContain('Nobody was paged.');
  });
});

describe('formatters', () => {
  it.each([
    [340, '340 ms'],
    [999.4, '999 ms'],
    [999.6, '1 s'],
    [4_200, '4.2 s'],
    [42_000, '42 s'],
    [59_700, '1 min'],
    [250_000, '4 min 10 s'],
    [3_600_000, '1 h'],
    [2 * 3_600_000 + 5 * 60_000, '2 h 5 min'],
    [3 * 86_400_000 + 4 * 3_600_000, '3 d 4 h'],
    [null, '—'],
    [Number.NaN, '—'],
    [-5, '—'],
  ])('formatDuration(%s) is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([
    [0.9995, 2, '99.95 %'],
    [1, 2, '100.00 %'],
    [0.99999, 2, '99.99 %'],
    [0.00001, 2, '0.01 %'],
    [0, 2, '0.00 %'],
    [0.05, 0, '5 %'],
    [null, 2, '—'],
  ])('formatPercent(%s, %s) is %s', (share, digits, text) => {
    expect(formatPercent(share, digits)).toBe(text);
  });

  it('escapes the five HTML-significant characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});

describe('report page in Chromium', () => {
  let visit: BrowserVisit | undefined;
  afterEach(async () => {
    await visit?.close();
    visit = undefined;
  });

  it.skipIf(SKIP_BROWSER)(
    `renders under its own CSP, fetching nothing${SKIP_NOTE}`,
    async () => {
      const report = hostileReport();
      const rendered = renderReportHtml(report);
      visit = await openRendered(rendered, { screenshot: 'test-artifacts/report.png' });

      expectCleanLoad(visit);
      expect(visit.title).toBe('<script>alert("service")</script>: launch report 2026-10-27 to 2026-11-26');
      expect(visit.svgCount).toBe(2 + 2 * report.probes.length);
      expect(visit.text).toContain(EVIL);
      expect(visit.text).toContain('NO-GO');
    },
    60_000,
  );
});
