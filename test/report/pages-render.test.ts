import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ProbeDefinition } from '../../src/probers/index.js';
import { type ProbePage, type PublicStatus, publicProbeIds, renderProbePage, renderPublicStatus } from '../../src/report/index.js';

const HOSTILE = '<img src=x onerror=alert(1)>';
const AT = '2026-11-26T12:00:00.000Z';

function probePage(fields: Partial<ProbePage> = {}): ProbePage {
  return {
    service: 'shop',
    generatedAt: AT,
    id: 'api',
    kind: 'http',
    labels: {},
    state: 'up',
    running: false,
    lastRun: null,
    windows: [{ label: '24 h', runs: 0, failures: 0, uptime: null, p95Ms: null }],
    hourlyP95: Array(24).fill(null),
    dailyP95: [],
    runs: [],
    incidents: [],
    definition: '{}',
    ...fields,
  };
}

function publicPage(fields: Partial<PublicStatus> = {}): PublicStatus {
  return { title: 'Status', generatedAt: AT, days: ['2026-11-25', '2026-11-26'], sections: [], incidents: [], ...fields };
}

function expectOneHashedStyle(body: string, csp: string) {
  const styles = [...body.matchAll(/<style>([\s\S]*?)<\/style>/g)];
  expect(styles).toHaveLength(1);
  expect(csp).toContain(`style-src 'sha256-${createHash('sha256').update(styles[0]![1]!).digest('base64')}'`);
  expect(body).not.toMatch(/<script|style="/i);
}

describe('renderProbePage', () => {
  it('escapes everything that comes from config and runs', () => {
    const { body, csp } = renderProbePage(
      probePage({
        id: HOSTILE,
        kind: HOSTILE,
        labels: { [HOSTILE]: HOSTILE },
        lastRun: { at: AT, ok: false, durationMs: 5, code: HOSTILE, message: HOSTILE, values: { [HOSTILE]: 1 } },
        runs: [{ at: AT, ok: false, durationMs: 5, code: HOSTILE, message: HOSTILE, artifacts: [] }],
        incidents: [{ id: 1, severity: HOSTILE, state: 'open', summary: HOSTILE, openedAt: AT, resolvedAt: null, undelivered: true }],
        definition: HOSTILE,
      }),
    );
    expect(body).not.toContain('<img');
    expect(body.split('&lt;img src=x onerror=alert(1)&gt;').length - 1).toBeGreaterThanOrEqual(10);
    expect(body).toContain('page not delivered');
    expectOneHashedStyle(body, csp);
  });

  it("links the files a failed run kept (a browser run's screenshot and trace)", () => {
    const artifacts = ['screenshot.png', 'trace.zip'].map((name) => ({ name, href: `/api/v1/runs/7/artifacts/${name}` }));
    const { body } = renderProbePage(
      probePage({ runs: [{ at: AT, ok: false, durationMs: 5, code: 'STEP', message: 'step failed', artifacts }] }),
    );
    expect(body).toContain('step failed <a href="/api/v1/runs/7/artifacts/screenshot.png">screenshot.png</a>');
    expect(body).toContain('<a href="/api/v1/runs/7/artifacts/trace.zip">trace.zip</a>');
  });

  it('says so when there are no runs, no incidents and no data for the charts', () => {
    const { body } = renderProbePage(probePage());
    expect(body).toContain('Never run.');
    expect(body).toContain('No runs kept.');
    expect(body).toContain('No incidents.');
    expect(body.match(/>no data<\/text>/g)).toHaveLength(2);
    expect(body).toContain('<dt>24 h</dt><dd>—</dd>');
  });
});

describe('renderPublicStatus', () => {
  it('escapes the title, group names and ids, and colours each day by its failures', () => {
    const { body, csp } = renderPublicStatus(
      publicPage({
        title: HOSTILE,
        sections: [
          {
            name: HOSTILE,
            probes: [
              {
                id: HOSTILE,
                state: 'down',
                uptime: 0.5,
                daily: [
                  { runs: 10, failures: 1 },
                  { runs: 10, failures: 6 },
                ],
              },
            ],
          },
          {
            name: null,
            probes: [
              {
                id: 'web',
                state: 'up',
                uptime: 1,
                daily: [
                  { runs: 0, failures: 0 },
                  { runs: 4, failures: 0 },
                ],
              },
            ],
          },
        ],
      }),
    );
    expect(body).not.toContain('<img');
    expect(body).toContain('<h1>&lt;img src=x onerror=alert(1)&gt;</h1>');
    expect(body).toContain('<h2>&lt;img src=x onerror=alert(1)&gt;</h2>');
    expect([...body.matchAll(/<rect [^>]*class="(\w+)"/g)].map((m) => m[1])).toEqual(['partial', 'failed', 'nodata', 'ok']);
    expect(body).toContain('1 service down');
    expectOneHashedStyle(body, csp);
  });

  it('says all is well only when every shown service is up and no incident is open', () => {
    const up = { name: null, probes: [{ id: 'web', state: 'up' as const, uptime: 1, daily: [] }] };
    expect(renderPublicStatus(publicPage({ sections: [up] })).body).toContain('All services operational');
    const open = renderPublicStatus(
      publicPage({ sections: [up], incidents: [{ probeId: 'web', severity: 'critical', openedAt: AT, resolvedAt: null }] }),
    );
    expect(open.body).toContain('1 open incident');
    expect(renderPublicStatus(publicPage()).body).toContain('No services are shown on this page yet.');
  });
});

describe('publicProbeIds', () => {
  const defs = ['web', 'api-a', 'api-b', 'db', '__proto__'].map((id) => ({ id, kind: 'http', labels: {} }) as unknown as ProbeDefinition);
  it('matches ids by glob, grouped or not, and nothing else', () => {
    expect([...publicProbeIds({ title: 's', public: true, probes: ['web'], groups: [{ name: 'API', probes: ['api-*'] }] }, defs)]).toEqual([
      'web',
      'api-a',
      'api-b',
    ]);
    expect(publicProbeIds({ title: 's', public: true, probes: [], groups: [] }, defs).size).toBe(0);
    expect(publicProbeIds({ title: 's', public: true, probes: ['*'], groups: [] }, defs).has('__proto__')).toBe(true);
  });
});
