import { describe, expect, it } from 'vitest';
import { incidentTimeline, lineChart, uptimeBars } from '../../src/report/svg.js';
import type { IncidentReport } from '../../src/report/types.js';

const CHART = { width: 300, height: 120, label: 'api: daily p95', unit: 's' };

function seriesPath(svg: string): string | undefined {
  return /<path class="series" d="([^"]*)"/.exec(svg)?.[1];
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern, 'g'))?.length ?? 0;
}

function incident(id: number, over: Partial<IncidentReport> = {}): IncidentReport {
  return {
    id,
    probeId: `probe-${id}`,
    rule: 'failures',
    severity: 'critical',
    state: 'resolved',
    summary: 'down',
    openedAt: '2026-11-10T10:00:00.000Z',
    ackedAt: '2026-11-10T10:05:00.000Z',
    ackedBy: 'alice',
    resolvedAt: '2026-11-10T11:00:00.000Z',
    ttaMs: 300_000,
    ttrMs: 3_600_000,
    ...over,
  };
}

const FROM = '2026-11-01T00:00:00.000Z';
const TO = '2026-12-01T00:00:00.000Z';

/** `[x, right edge]` of each incident bar, in document order. */
function bars(svg: string): Array<[number, number]> {
  return [...svg.matchAll(/<rect class="bar[^"]*" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/g)].map((m) => [
    Number(m[1]),
    Number(m[1]) + Number(m[2]),
  ]);
}

describe('lineChart', () => {
  it('is an accessible image with a title and no style attribute', () => {
    const svg = lineChart([1, 2, 3], CHART);
    expect(svg).toMatch(/^<svg [^>]*role="img"[^>]*><title>api: daily p95<\/title>/);
    expect(svg).not.toMatch(/\sstyle\s*=/);
    expect(svg.endsWith('</svg>')).toBe(true);
  });

  it('starts a new subpath after a day without data instead of bridging it', () => {
    const d = seriesPath(lineChart([1, 2, null, 3, 4], CHART));
    expect(d).toBeDefined();
    expect(count(d ?? '', /M/)).toBe(2);
    expect(count(d ?? '', /L/)).toBe(2);
  });

  it('opens no empty subpath for leading or trailing gaps', () => {
    const d = seriesPath(lineChart([null, null, 1, 2, null], CHART)) ?? '';
    expect(count(d, /M/)).toBe(1);
    expect(d.startsWith('M')).toBe(true);
  });

  it('still shows a single day between gaps as a dot', () => {
    const svg = lineChart([null, 2, null], CHART);
    expect(count(seriesPath(svg) ?? '', /L/)).toBe(0);
    expect(count(svg, /<circle class="point/)).toBe(1);
  });

  it('draws no line for a series without data, and says so', () => {
    const svg = lineChart([null, null, null], { ...CHART, target: 5 });
    expect(seriesPath(svg)).toBeUndefined();
    expect(svg).toContain('no data');
    expect(svg).not.toContain('NaN');
  });

  it('draws the target dashed and marks only the points above it', () => {
    const svg = lineChart([1, 6, null, 7, 5], { ...CHART, target: 5 });
    expect(svg).toMatch(/<line class="target"[^>]*stroke-dasharray=/);
    expect(count(svg, /<circle class="point over"/)).toBe(2);
    expect(count(svg, /<circle class="point"/)).toBe(2);
  });

  it('keeps points above an explicit max inside the chart', () => {
    const svg = lineChart([1, 500], { ...CHART, max: 10 });
    const ys = [...svg.matchAll(/<circle [^>]*cy="([\d.-]+)"/g)].map((m) => Number(m[1]));
    for (const y of ys) expect(y).toBeGreaterThanOrEqual(0);
  });

  it('escapes its label and axis text', () => {
    const svg = lineChart([1], { ...CHART, label: '<img src=x onerror=alert(1)>', unit: '<b>', xLabels: { first: '"a"', last: '&' } });
    expect(svg).not.toContain('<img');
    expect(svg).not.toContain('<b>');
    expect(svg).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(svg).toContain('&quot;a&quot;');
  });
});

describe('uptimeBars', () => {
  const items = [
    { label: 'api', uptime: 0.9965, target: 0.999 },
    { label: 'cert', uptime: 1, target: 0.999 },
    { label: 'new', uptime: null, target: 0.999 },
  ];

  it('draws one bar per measured probe and a dash for one without runs', () => {
    const svg = uptimeBars(items);
    expect(count(svg, /<rect class="bar"/)).toBe(2);
    expect(count(svg, /<line class="target"/)).toBe(3);
    expect(svg).toMatch(/<g class="row nodata">.*?>—<\/text><\/g>/);
    expect(svg).toMatch(/role="img"/);
    expect(svg).not.toMatch(/\sstyle\s*=/);
  });

  it('marks a probe below its target and keeps its bar short of the target', () => {
    const svg = uptimeBars(items);
    const row = /<g class="row miss">.*?<\/g>/.exec(svg)?.[0] ?? '';
    expect(row).toContain('99.65 %');
    const barEnd = /<rect class="bar" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"/.exec(row);
    const targetX = /<line class="target" x1="([\d.]+)"/.exec(row);
    expect(Number(barEnd?.[1]) + Number(barEnd?.[2])).toBeLessThan(Number(targetX?.[1]));
  });

  it('escapes labels', () => {
    const svg = uptimeBars([{ label: '<img src=x onerror=alert(1)>', uptime: 0.5, target: 0.9 }]);
    expect(svg).not.toContain('<img');
    expect(svg).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });
});

describe('incidentTimeline', () => {
  it('draws one bar per incident and one ack mark per acknowledged incident', () => {
    const list = [
      incident(1),
      incident(2, { ackedAt: null, ackedBy: null, ttaMs: null }),
      incident(3, { resolvedAt: null, state: 'open' }),
    ];
    const svg = incidentTimeline(list, FROM, TO);
    expect(bars(svg)).toHaveLength(3);
    expect(count(svg, /class="ack"/)).toBe(2);
    expect(svg).toMatch(/role="img"/);
    expect(svg).not.toMatch(/\sstyle\s*=/);
  });

  it('runs an open incident to the end of the window', () => {
    const open = incident(1, { openedAt: '2026-11-15T00:00:00.000Z', resolvedAt: null, state: 'open' });
    const closedAtEnd = incident(2, { openedAt: '2026-11-15T00:00:00.000Z', resolvedAt: TO });
    const [a, b] = bars(incidentTimeline([open, closedAtEnd], FROM, TO));
    expect(a).toEqual(b);
    expect(incidentTimeline([open], FROM, TO)).toMatch(/class="incident sev-critical open"/);
  });

  it('places bars in time order along the axis', () => {
    const early = incident(1, { openedAt: '2026-11-02T00:00:00.000Z', resolvedAt: '2026-11-03T00:00:00.000Z' });
    const late = incident(2, { openedAt: '2026-11-20T00:00:00.000Z', resolvedAt: '2026-11-21T00:00:00.000Z' });
    const [a, b] = bars(incidentTimeline([early, late], FROM, TO));
    expect(a?.[1]).toBeLessThan(b?.[0] ?? 0);
  });

  it('colours by severity without letting a severity name into the markup', () => {
    const svg = incidentTimeline(
      [incident(1, { severity: 'warning' }), incident(2, { severity: '"><script>alert(1)</script>' })],
      FROM,
      TO,
    );
    expect(svg).toContain('class="bar sev-warning"');
    expect(svg).toContain('class="bar sev-other"');
    expect(svg).not.toContain('<script');
  });

  it('escapes probe ids and summaries', () => {
    const svg = incidentTimeline([incident(1, { probeId: '<img src=x onerror=alert(1)>', summary: '</title><b>x' })], FROM, TO);
    expect(svg).not.toContain('<img');
    expect(svg).not.toContain('</title><b>');
    expect(svg).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('says so when there is nothing to draw', () => {
    const svg = incidentTimeline([], FROM, TO);
    expect(bars(svg)).toHaveLength(0);
    expect(svg).toContain('no incidents');
  });
});
