import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderBadgeSvg } from '../../src/report/index.js';
import { PLANTED, pagesApp, VIEWER } from '../helpers/pages-fixture.js';

// The probe pages, the public status page and the badges, through the real app and its routes.

const auth = { authorization: `Bearer ${VIEWER}` };
type Fixture = Awaited<ReturnType<typeof pagesApp>>;

function expectStrictPage(res: { headers: Record<string, unknown>; body: string }) {
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(String(res.headers['content-security-policy'])).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; img-src data:;/);
  expect(res.body).not.toMatch(/<script/i);
  expect(res.body).not.toMatch(/ style="/i);
}

describe('pages and badges', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await pagesApp();
  });
  afterAll(async () => {
    await f.close();
  });
  const get = (url: string, headers: Record<string, string> = auth) => f.app.server.inject({ url, headers });

  it('shows one probe on /probes/:id: state, last run, windows, charts, runs, incidents and its definition redacted', async () => {
    const res = await get('/probes/api-payments');
    expect(res.statusCode).toBe(200);
    expectStrictPage(res);
    const body = res.body;
    expect(body).toContain('<h1>api-payments</h1>');
    expect(body).toContain('<span class="pill down">down</span>');
    // Last run (an hour ago, failed) and its message, then the newest runs with theirs.
    expect(body).toMatch(/<h2>Last run<\/h2>\n<p><time datetime="2026-11-26T11:34:00.000Z">/);
    expect(body).toContain(PLANTED.message);
    // Hourly runs, the windows ending now: 24 h holds 23 (1 failed), 7 d 167 (4 failed), 30 d all 240.
    expect(body).toContain('<dt>24 h</dt><dd>95.652 %</dd><dd class="mute">p95 360 ms · 23 runs, 1 failed');
    expect(body).toMatch(/<dt>7 d<\/dt><dd>97\.605 %<\/dd><dd class="mute">p95 [^<]+ · 167 runs, 4 failed/);
    expect(body).toMatch(/<dt>30 d<\/dt><dd>98\.333 %<\/dd><dd class="mute">p95 [^<]+ · 240 runs, 4 failed/);
    expect(body.match(/<svg [^>]*class="chart line-chart"/g)).toHaveLength(2);
    expect(body.match(/<tr><td data-label="Started">/g)).toHaveLength(20);
    expect(body).toContain('page not delivered');
    expect(body).toContain('<span class="mute">resolved</span>');
    // The definition, as /api/v1/probes/:id shows it: the key in the URL and the header are secrets.
    expect(body).toContain('&quot;authorization&quot;: &quot;&lt;secret&gt;&quot;');
    expect(body).toContain('pay?key=&lt;secret&gt;');
    expect(body).not.toContain(PLANTED.secret);
  });

  it('answers an unknown id, __proto__ included, with a 404 page', async () => {
    for (const id of ['nope', '__proto__', 'constructor', encodeURIComponent('<b>x</b>')]) {
      const res = await get(`/probes/${id}`);
      expect(res.statusCode, id).toBe(404);
      expectStrictPage(res);
      expect(res.body).toContain('<h1>Not found</h1>');
      expect(res.body).not.toContain('<b>x</b>');
    }
  });

  it('links every row on / to its probe page and adds history, silences, maintenance and the undelivered flag', async () => {
    const res = await get('/');
    expect(res.statusCode).toBe(200);
    expectStrictPage(res);
    for (const id of ['web', 'api-payments', 'db-primary']) expect(res.body).toContain(`<a href="/probes/${id}">${id}</a>`);
    const open = res.body.slice(res.body.indexOf('Open incidents'), res.body.indexOf('<h2>Probes'));
    expect(open).toContain('<span class="flag"');
    const history = res.body.slice(res.body.indexOf('Incident history'));
    expect(history).toContain('Incident history (30 days, 1)');
    expect(history).toContain('<td data-label="Lasted">3h</td>');
    // The resolved incident's page went out: no flag on it.
    expect(history).not.toContain('class="flag"');
    expect(res.body).toContain('Active silences (1)');
    expect(res.body).toContain('migrating the primary');
    expect(res.body).toContain('Maintenance windows (0 in force)');
    expect(res.body).toContain('nightly-db');
    expect(res.body).toContain('next <time datetime="2026-11-27T02:00:00.000Z">');
    // A reload under a reader is opt-in, for wall screens.
    expect(res.body).not.toContain('http-equiv="refresh"');
    expect((await get('/?refresh=30')).body).toContain('<meta http-equiv="refresh" content="30">');
    expect((await get('/?refresh=1')).statusCode).toBe(400);
  });

  it('shows only the chosen probes on /status, grouped, and nothing internal', async () => {
    const res = await f.app.server.inject({ url: '/status' });
    expect(res.statusCode).toBe(200);
    expectStrictPage(res);
    const body = res.body;
    expect(body).toContain('<h1>Shop status</h1>');
    expect(body).toContain('<b>web</b>');
    expect(body).toMatch(/<section class="group">\n<h2>Checkout<\/h2>[\s\S]*<b>api-payments<\/b>/);
    expect(body).not.toContain('db-primary');
    // 90 daily cells per probe; the days with failures of api-payments show as partial.
    const cells = [...body.matchAll(/<svg class="cells"[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    expect(cells).toHaveLength(2);
    for (const c of cells) expect(c.match(/<rect /g)).toHaveLength(90);
    expect(cells[1]).toContain('class="partial"');
    expect(body).toContain('<b class="down-t">ongoing</b>');
    expect(body).toContain('resolved after 3 h');
    for (const planted of Object.values(PLANTED)) expect(body, planted).not.toContain(planted);
    for (const word of ['slack', 'alice', 'CONNECT', 'team', 'tcp']) expect(body, word).not.toContain(word);
    // The only URL on the page is the SVG namespace of the favicon.
    expect(body.match(/https?:\/\/[^'"\s)]*/g)).toEqual(['http://www.w3.org/2000/svg']);
  });

  it('keeps / and the probe pages behind the read token while /status and its badges are public', async () => {
    const anon = (url: string) => f.app.server.inject({ url }).then((r) => r.statusCode);
    expect(await anon('/')).toBe(401);
    expect(await anon('/probes/web')).toBe(401);
    expect(await anon('/api/v1/probes')).toBe(401);
    expect(await anon('/status')).toBe(200);
    expect(await anon('/badge/web/status.svg')).toBe(200);
    expect(await anon('/badge/api-payments/uptime.svg?days=7')).toBe(200);
    expect(await anon('/badge/api-payments/shields.json')).toBe(200);
    // Not on the status page: a read like any other.
    expect(await anon('/badge/db-primary/status.svg')).toBe(401);
    expect(await anon('/badge/nope/status.svg')).toBe(401);
    // Only the badge files themselves are open.
    expect(await anon('/badge/web/other.svg')).toBe(401);
    expect(await anon('/badge/web/status.svg/x')).toBe(401);
    expect(await anon('/badge/web/%2e%2e%2fstatus.svg')).toBe(401);
    expect((await get('/badge/db-primary/status.svg')).statusCode).toBe(200);
    expect((await get('/badge/nope/status.svg')).statusCode).toBe(404);
  });

  it('serves badges as SVG and shields.io JSON with a short cache, and refuses bad days', async () => {
    const status = await f.app.server.inject({ url: '/badge/web/status.svg' });
    expect(status.headers['content-type']).toBe('image/svg+xml; charset=utf-8');
    expect(status.headers['cache-control']).toBe('public, max-age=60');
    expect(status.headers['content-security-policy']).toBe("default-src 'none'");
    expect(status.body).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]* role="img" aria-label="web: up">/);
    expect(status.body).not.toMatch(/<script/i);

    const uptime = await f.app.server.inject({ url: '/badge/api-payments/uptime.svg?days=7' });
    expect(uptime.body).toContain('aria-label="uptime 7d: 97.60%"');
    expect((await f.app.server.inject({ url: '/badge/api-payments/uptime.svg' })).body).toContain('uptime 30d: 98.33%');
    const latency = await f.app.server.inject({ url: '/badge/web/latency.svg' });
    expect(latency.body).toContain('aria-label="p95 24h: 140 ms"');

    const shields = await f.app.server.inject({ url: '/badge/api-payments/shields.json' });
    expect(shields.headers['content-type']).toMatch(/^application\/json/);
    expect(shields.json()).toEqual({ schemaVersion: 1, label: 'api-payments', message: 'down', color: 'red' });
    expect((await f.app.server.inject({ url: '/badge/web/shields.json' })).json()).toEqual({
      schemaVersion: 1,
      label: 'web',
      message: 'up',
      color: 'brightgreen',
    });
    expect((await get('/badge/db-primary/shields.json')).headers['cache-control']).toBe('private, max-age=60');

    for (const days of ['0', '366', 'abc', '1.5', '-3']) {
      const res = await f.app.server.inject({ url: `/badge/web/uptime.svg?days=${days}` });
      expect(res.statusCode, days).toBe(400);
      expect(res.json().code).toBe('VIGIL_ERR_BAD_REQUEST');
      expect(res.json().message).toMatch(/days/);
    }
    expect((await f.app.server.inject({ url: '/badge/web/status.svg?days=3' })).statusCode).toBe(400);
  });

  it('escapes badge text', () => {
    const svg = renderBadgeSvg({ schemaVersion: 1, label: '<script>"x"&', message: "it's <b>", color: 'red' });
    expect(svg).not.toContain('<script');
    expect(svg).not.toContain('<b>');
    expect(svg).toContain('&lt;script&gt;&quot;x&quot;&amp;');
    expect(svg).toContain('it&#39;s &lt;b&gt;');
  });
});

describe('statusPage config', () => {
  it('without public: true, /status and every badge need the read token', async () => {
    const f = await pagesApp({ statusPage: 'statusPage: { title: Internal, probes: ["*"] }' });
    try {
      expect((await f.app.server.inject({ url: '/status' })).statusCode).toBe(401);
      expect((await f.app.server.inject({ url: '/badge/web/status.svg' })).statusCode).toBe(401);
      const res = await f.app.server.inject({ url: '/status', headers: auth });
      expect(res.statusCode).toBe(200);
      expect(res.body).toContain('<b>db-primary</b>');
    } finally {
      await f.close();
    }
  });

  it('a reload applies statusPage at once: closed, then gone', async () => {
    const f = await pagesApp();
    try {
      const anon = (url: string) => f.app.server.inject({ url }).then((r) => r.statusCode);
      expect([await anon('/status'), await anon('/badge/web/status.svg')]).toEqual([200, 200]);
      f.setStatusPage('statusPage: { title: Shop, public: false, probes: [web] }');
      expect((await f.app.reload('test')).ok).toBe(true);
      expect([await anon('/status'), await anon('/badge/web/status.svg')]).toEqual([401, 401]);
      f.setStatusPage('');
      expect((await f.app.reload('test')).ok).toBe(true);
      expect((await f.app.server.inject({ url: '/status', headers: auth })).statusCode).toBe(404);
    } finally {
      await f.close();
    }
  });

  it('without statusPage, /status is a 404 page', async () => {
    const f = await pagesApp({ statusPage: '' });
    try {
      const res = await f.app.server.inject({ url: '/status', headers: auth });
      expect(res.statusCode).toBe(404);
      expect(res.body).toContain('add statusPage to the config');
    } finally {
      await f.close();
    }
  });

  it('names the file, path and expectation of a bad statusPage', async () => {
    const bad = 'statusPage: { title: x, public: yes-please, groups: [{ probes: [web] }], colour: red }';
    const err = await pagesApp({ statusPage: bad }).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err?.split('\n').slice(1).sort()).toEqual([
      'config/default.yaml: statusPage.colour: expected one of the keys title, public, probes, groups, got "colour"',
      'config/default.yaml: statusPage.groups[0].name: expected a group name of 1-200 characters; it is missing',
      'config/default.yaml: statusPage.public: expected true or false, got "yes-please"',
    ]);
  });
});
