import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { renderStatusPage } from '../../src/report/status-page.js';
import type { StatusPage } from '../../src/report/types.js';
import { type BrowserVisit, expectCleanLoad, openRendered, SKIP_BROWSER, SKIP_NOTE } from '../helpers/browser.js';

type Probe = StatusPage['probes'][number];

const NOW = '2025-06-01T14:20:00.000Z';
const HOSTILE = '<img src=x onerror=alert(1)>';

/** 24 hourly slots ending with the hour in progress; `fill(i)` gives slot i's [runs, failures]. */
function history(fill: (i: number) => [number, number] = () => [60, 0]): Probe['history'] {
  const current = Date.parse('2025-06-01T14:00:00.000Z');
  return Array.from({ length: 24 }, (_, i) => {
    const [runs, failures] = fill(i);
    return { start: new Date(current - (23 - i) * 3_600_000).toISOString(), runs, failures };
  });
}

function probe(id: string, state: Probe['state'], fields: Partial<Probe> = {}): Probe {
  const ok = state !== 'down';
  return {
    id,
    kind: 'http',
    labels: {},
    state,
    running: false,
    lastRun:
      state === 'unknown'
        ? null
        : {
            at: '2025-06-01T14:19:30.000Z',
            ok,
            durationMs: 412,
            code: ok ? null : 'HTTP_STATUS',
            message: ok ? null : 'expected 200, got 503',
          },
    history: history(),
    ...fields,
  };
}

function page(fields: Partial<StatusPage> = {}): StatusPage {
  return {
    service: 'shop',
    generatedAt: NOW,
    reportUrl: '/report',
    probes: [],
    incidents: [],
    oncall: [],
    held: [],
    ...fields,
  };
}

function styleText(body: string): string {
  const styles = [...body.matchAll(/<style>([\s\S]*?)<\/style>/g)];
  expect(styles).toHaveLength(1);
  return styles[0]![1]!;
}

/** The class of each rect in the one strip of a single-probe page, in order. */
function stripClasses(body: string): string[] {
  const svgs = [...body.matchAll(/<svg[\s\S]*?<\/svg>/g)];
  expect(svgs).toHaveLength(1);
  return [...svgs[0]![0].matchAll(/<rect [^>]*class="([^"]+)"/g)].map((m) => m[1]!);
}

describe('renderStatusPage', () => {
  it('escapes ids, labels, messages, summaries and names from config and runs', () => {
    const { body } = renderStatusPage(
      page({
        service: `shop ${HOSTILE}`,
        probes: [
          probe(HOSTILE, 'down', {
            kind: '<b>kind</b>',
            labels: { '<k>': '"v"&' },
            lastRun: { at: NOW, ok: false, durationMs: 10, code: '<CODE>', message: '<script>alert(1)</script>' },
          }),
        ],
        incidents: [{ id: 1, probeId: HOSTILE, severity: '<sev>', state: 'open', summary: "it's <down>", openedAt: NOW, ackedBy: '<ann>' }],
        oncall: [{ schedule: '<primary>', person: 'ann', name: '<Ann>', until: NOW }],
      }),
    );
    expect(body).not.toContain('<img');
    expect(body).not.toContain('<script');
    expect(body).not.toContain('<b>kind');
    expect(body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(body).toContain('&lt;k&gt;=&quot;v&quot;&amp;');
    expect(body).toContain('&lt;CODE&gt;');
    expect(body).toContain('it&#39;s &lt;down&gt;');
    expect(body).toContain('&lt;Ann&gt;');
    expect(body).toContain('&lt;primary&gt;');
    expect(body).toContain('&lt;ann&gt;');
    // An unknown severity is shown but never becomes a class name.
    expect(body).toContain('<td data-label="Severity" class="sev">&lt;sev&gt;</td>');
  });

  it('drops a report link that is not http(s)', () => {
    expect(renderStatusPage(page({ reportUrl: 'javascript:alert(1)' })).body).toContain('<a href="#">30-day report</a>');
    expect(renderStatusPage(page({ reportUrl: 'https://vigil.example/report' })).body).toContain(
      '<a href="https://vigil.example/report">30-day report</a>',
    );
  });

  it('lists down probes first, then unknown, then up, ids alphabetical within each', () => {
    const { body } = renderStatusPage(
      page({
        probes: [
          probe('b-up', 'up'),
          probe('z-down', 'down'),
          probe('a-up', 'up'),
          probe('m-unknown', 'unknown'),
          probe('c-down', 'down'),
          probe('b-unknown', 'unknown'),
        ],
      }),
    );
    const order = [
      ...body.matchAll(/<span class="pill (\w+)">\w+<\/span><\/td><td data-label="Probe"><a href="\/probes\/[\w-]+">([\w-]+)/g),
    ].map((m) => m[2]);
    expect(order).toEqual(['c-down', 'z-down', 'b-unknown', 'm-unknown', 'a-up', 'b-up']);
    expect(body).toMatch(/2 up<\/b>, <b[^>]*>2 down<\/b>, <b>2 unknown<\/b>/);
    expect(body).toContain('<title>2 down · shop status</title>');
  });

  it('ships a CSP whose style hash matches the one style element, and no script or inline style', () => {
    const { body, csp } = renderStatusPage(page({ probes: [probe('api', 'up'), probe('db', 'down')] }));
    const hash = createHash('sha256').update(styleText(body)).digest('base64');
    expect(csp).toBe(
      `default-src 'none'; style-src 'sha256-${hash}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    expect(body).not.toMatch(/<script/i);
    expect(body).not.toMatch(/style="/i);
    // A reload under a reader is opt-in (`/?refresh=30`).
    expect(body).not.toContain('http-equiv="refresh"');
    expect(renderStatusPage(page({ refreshSeconds: 30 })).body).toContain('<meta http-equiv="refresh" content="30">');
    expect(body.startsWith('<!doctype html>')).toBe(true);
  });

  it('draws 24 hourly rects classed by failures over runs, each with a tooltip', () => {
    const fill = (i: number): [number, number] =>
      [
        [0, 0],
        [60, 0],
        [60, 2],
        [5, 5],
      ][i % 4] as [number, number];
    const { body } = renderStatusPage(page({ probes: [probe('api', 'up', { history: history(fill) })] }));
    const classes = stripClasses(body);
    expect(classes).toHaveLength(24);
    expect(classes.slice(0, 4)).toEqual(['nodata', 'ok', 'partial', 'failed']);
    expect(classes.filter((c) => c === 'nodata')).toHaveLength(6);
    // Slot 22 is 13:00 UTC (i % 4 = 2: partial), slot 23 the hour in progress.
    expect(body).toContain('<title>13:00 UTC — 60 runs, 2 failed</title>');
    expect(body).toContain('<title>14:00 UTC — 5 runs, 5 failed</title>');
    expect(body).toContain('<title>15:00 UTC — no data</title>');
  });

  it('pads a short history on the old side so every strip is 24 wide', () => {
    const short = history().slice(-3);
    const classes = stripClasses(renderStatusPage(page({ probes: [probe('api', 'up', { history: short })] })).body);
    expect(classes).toEqual([...Array(21).fill('nodata'), 'ok', 'ok', 'ok']);
  });

  it('says so when no probes are configured', () => {
    const { body } = renderStatusPage(page());
    expect(body).toMatch(/No probes configured/);
    expect(body).toContain('0 up</b>, <b class="down-t">0 down</b>, <b>0 unknown</b>');
    expect(body).not.toContain('<svg');
  });

  it('shows who is on call and the open incidents', () => {
    const { body } = renderStatusPage(
      page({
        incidents: [
          { id: 7, probeId: 'api', severity: 'critical', state: 'acknowledged', summary: 'api down', openedAt: NOW, ackedBy: 'Ann' },
          { id: 8, probeId: 'db', severity: 'warning', state: 'open', summary: 'db slow', openedAt: NOW, ackedBy: null },
        ],
        oncall: [
          { schedule: 'primary', person: 'ann', name: 'Ann Lee', until: '2025-06-02T09:00:00.000Z' },
          { schedule: 'secondary', person: null, name: null, until: null },
        ],
      }),
    );
    expect(body).toContain(
      '<td data-label="Schedule">primary</td><td data-label="Person">Ann Lee</td><td data-label="Until">until <time datetime="2025-06-02T09:00:00.000Z">2025-06-02 09:00 UTC</time>',
    );
    expect(body).toContain('<td data-label="Schedule">secondary</td><td data-label="Person"><span class="mute">nobody</span>');
    expect(body).toContain('Open incidents (2)');
    expect(body).toContain(
      '<td data-label="Severity" class="sev critical">critical</td><td data-label="Probe"><a href="/probes/api">api</a></td><td data-label="Summary" class="msg">api down</td>',
    );
    expect(body).toContain('not acknowledged');
  });

  it('keeps the markup lean at 1,000 probes', () => {
    const probes = Array.from({ length: 1000 }, (_, i) => probe(`probe-${String(i).padStart(4, '0')}`, i % 10 === 0 ? 'down' : 'up'));
    const { body } = renderStatusPage(page({ probes }));
    expect(body.match(/<svg/g)).toHaveLength(1000);
    // About 3 KB a probe, nearly all of it the 24 tooltips.
    expect(body.length).toBeLessThan(3_500_000);
  });
});

describe('status page in Chromium', () => {
  let visit: BrowserVisit | undefined;
  afterEach(async () => {
    await visit?.close();
    visit = undefined;
  });

  it.skipIf(SKIP_BROWSER)(
    `renders under its own CSP without errors${SKIP_NOTE}`,
    async () => {
      const probes = [
        probe(HOSTILE, 'down', { labels: { team: 'web' } }),
        probe('api', 'up', { running: true, history: history((i) => [i < 4 ? 0 : 60, i === 10 ? 3 : i === 20 ? 60 : 0]) }),
        probe('dns', 'unknown', { history: history(() => [0, 0]) }),
      ];
      const rendered = renderStatusPage(
        page({
          probes,
          incidents: [
            { id: 1, probeId: HOSTILE, severity: 'critical', state: 'open', summary: 'down for 5m', openedAt: NOW, ackedBy: null },
          ],
          oncall: [{ schedule: 'primary', person: 'ann', name: 'Ann Lee', until: '2025-06-02T09:00:00.000Z' }],
        }),
      );
      visit = await openRendered(rendered, { screenshot: 'test-artifacts/status-page.png' });

      expectCleanLoad(visit);
      expect(visit.title).toBe('1 down · shop status');
      expect(visit.svgCount).toBeGreaterThanOrEqual(probes.length);
      expect(visit.text).toContain(HOSTILE);
      expect(visit.text).toMatch(/1 up, 1 down, 1 unknown/);
    },
    60_000,
  );
});
