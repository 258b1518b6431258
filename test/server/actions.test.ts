import { createHmac } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { VigilError } from '../../src/lib/errors.js';
import { signAction } from '../../src/lib/signing.js';
import { type ActionRouteDeps, registerActionRoutes } from '../../src/server/actions-routes.js';
import type { Incident } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

const LINK_SECRET = 'link-secret-0123456789abcdef0123456789';
const SLACK_SECRET = 'slack-signing-secret-8f742231b10e';
const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const DAY = 24 * 3600_000;

function incident(id: number, over: Partial<Incident> = {}): Incident {
  return {
    id,
    probeId: 'api-health',
    rule: 'failures',
    kind: 'http',
    severity: 'critical',
    state: 'open',
    summary: 'api-health: 503 <b>Service Unavailable</b> & cache down',
    labels: {},
    channels: ['slack-ops'],
    openedAt: NOW - 10 * 60_000,
    flapping: false,
    notified: true,
    ...over,
  };
}

/** Incidents in memory with the engine's rules: a resolved incident takes nothing, an acknowledged one no second ack. */
function fakeIncidents(clock: ManualClock) {
  const incidents = new Map<number, Incident>([
    [7, incident(7)],
    [8, incident(8, { probeId: 'db-backup', kind: 'restore-drill', summary: 'db-backup: restore took 41m' })],
  ]);
  const calls: Array<{ action: 'acknowledge' | 'resolve'; id: number; actor: string }> = [];
  const get = (id: number) => {
    const i = incidents.get(id);
    if (!i) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no incident ${id}`);
    return i;
  };
  const deps = {
    async acknowledge(id: number, actor: string): Promise<Incident> {
      calls.push({ action: 'acknowledge', id, actor });
      const i = get(id);
      if (i.state === 'resolved') throw new VigilError('VIGIL_ERR_CONFLICT', `incident ${id} is already resolved`);
      if (i.state === 'acknowledged') throw new VigilError('VIGIL_ERR_CONFLICT', `incident ${id} is already acknowledged by ${i.ackedBy}`);
      const next = { ...i, state: 'acknowledged' as const, ackedAt: clock.now(), ackedBy: actor };
      incidents.set(id, next);
      return next;
    },
    async resolve(id: number, actor: string): Promise<Incident> {
      calls.push({ action: 'resolve', id, actor });
      const i = get(id);
      if (i.state === 'resolved') throw new VigilError('VIGIL_ERR_CONFLICT', `incident ${id} is already resolved`);
      const next = { ...i, state: 'resolved' as const, resolvedAt: clock.now(), resolvedBy: actor };
      incidents.set(id, next);
      return next;
    },
    incident: async (id: number) => incidents.get(id),
  };
  return { incidents, calls, deps };
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function setup(secrets: Partial<Pick<ActionRouteDeps, 'linkSecret' | 'slackSigningSecret'>> = {}) {
  const clock = new ManualClock(NOW);
  const fake = fakeIncidents(clock);
  const logs = memoryLogger('debug');
  const app = Fastify({ loggerInstance: logs.logger as FastifyBaseLogger });
  apps.push(app);
  // The API's JSON routes live beside these: the form parser must not reach them.
  app.post('/api/v1/echo', async (req) => ({ got: req.body }));
  registerActionRoutes(app, { clock, ...fake.deps, linkSecret: LINK_SECRET, slackSigningSecret: SLACK_SECRET, ...secrets });
  await app.ready();
  const link = (id: number, action: 'ack' | 'resolve', expiresAt = NOW + DAY) =>
    `/act/${signAction({ incidentId: id, action, expiresAt }, LINK_SECRET)}`;
  return { app, clock, logs, link, ...fake };
}

/** What a browser sends when the page's button is pressed: an empty form. */
const press = (app: FastifyInstance, url: string) =>
  app.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });

function expectPage(res: { statusCode: number; headers: Record<string, unknown>; body: string }, status: number) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
  expect(res.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'");
  expect(res.headers['x-frame-options']).toBe('DENY');
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['referrer-policy']).toBe('no-referrer');
  expect(res.body).toMatch(/^<!doctype html>/);
  // Self-contained: nothing to fetch from anywhere.
  expect(res.body).not.toMatch(/<(script|link|img|iframe)\b|\bsrc=|https?:\/\//i);
}

describe('signed action links', () => {
  it('GET shows what the link will do to which incident, and changes nothing', async () => {
    const { app, link, calls, incidents } = await setup();
    const url = link(7, 'ack');
    for (let n = 0; n < 3; n++) {
      const res = await app.inject({ method: 'GET', url });
      expectPage(res, 200);
      expect(res.body).toContain('<h1>Acknowledge incident #7?</h1>');
      expect(res.body).toContain('<td>api-health (http)</td>');
      expect(res.body).toContain('api-health: 503 &lt;b&gt;Service Unavailable&lt;/b&gt; &amp; cache down');
      expect(res.body).not.toContain('<b>Service');
      expect(res.body).toContain('<th>State</th><td>open</td>');
      expect(res.body).toContain('<form method="post"><button type="submit">Acknowledge incident #7</button></form>');
      expect(res.body).toContain('Nothing has changed yet');
      expect(res.body).toContain('The link works until 2026-11-27 12:00:00 UTC.');
    }
    const head = await app.inject({ method: 'HEAD', url });
    expect(head.statusCode).toBe(200);
    expect(calls).toEqual([]);
    expect(incidents.get(7)!.state).toBe('open');
  });

  it('POST acknowledges as `link`, and a second POST answers a 409 page saying who did it', async () => {
    const { app, link, calls, incidents, clock } = await setup();
    const url = link(7, 'ack');
    clock.advanceSync(60_000);
    const done = await press(app, url);
    expectPage(done, 200);
    expect(done.body).toContain('<h1>Incident #7 acknowledged</h1>');
    expect(done.body).toContain('is now <strong>acknowledged</strong>');
    expect(calls).toEqual([{ action: 'acknowledge', id: 7, actor: 'link' }]);
    expect(incidents.get(7)).toMatchObject({ state: 'acknowledged', ackedBy: 'link' });

    const again = await press(app, url);
    expectPage(again, 409);
    expect(again.body).toContain('<h1>Already acknowledged</h1>');
    expect(again.body).toContain('Nothing changed: incident #7 is already acknowledged by link at 2026-11-26 12:01:00 UTC.');

    // The page itself now says there is nothing left to do, and offers no button.
    const look = await app.inject({ method: 'GET', url });
    expectPage(look, 200);
    expect(look.body).toContain('Nothing to do: incident #7 is acknowledged by link');
    expect(look.body).not.toContain('<form');
  });

  it('POST resolves through a resolve link, also after an acknowledge', async () => {
    const { app, link, incidents } = await setup();
    await press(app, link(8, 'ack'));
    const res = await press(app, link(8, 'resolve'));
    expectPage(res, 200);
    expect(res.body).toContain('<h1>Incident #8 resolved</h1>');
    expect(res.body).toContain('<td>db-backup (restore-drill)</td>');
    expect(incidents.get(8)).toMatchObject({ state: 'resolved', resolvedBy: 'link' });
    const late = await press(app, link(8, 'ack'));
    expectPage(late, 409);
    expect(late.body).toContain('is already resolved by link');
  });

  it('accepts a POST without a body, as a fetch or curl sends it', async () => {
    const { app, link, incidents } = await setup();
    const res = await app.inject({ method: 'POST', url: link(7, 'ack') });
    expect(res.statusCode).toBe(200);
    expect(incidents.get(7)!.state).toBe('acknowledged');
  });

  it('refuses an expired link with a 410 page that says when and what to do instead, on GET and POST', async () => {
    const { app, link, calls, clock } = await setup();
    const url = link(7, 'ack', NOW + DAY);
    clock.advanceSync(DAY);
    for (const res of [await app.inject({ method: 'GET', url }), await press(app, url)]) {
      expectPage(res, 410);
      expect(res.body).toContain('<h1>This link has expired</h1>');
      expect(res.body).toContain('This link expired at 2026-11-27 12:00:00 UTC; acknowledge incident #7 from the API or a newer page.');
    }
    expect(calls).toEqual([]);
  });

  it('refuses a tampered or damaged link with a 403 page, on GET and POST', async () => {
    const { app, link, calls } = await setup();
    const good = link(7, 'ack').slice('/act/'.length);
    const [, sig] = good.split('.') as [string, string];
    const other = `${Buffer.from(`v1:8:ack:${NOW + DAY}`).toString('base64url')}.${sig}`;
    const foreign = signAction({ incidentId: 7, action: 'ack', expiresAt: NOW + DAY }, 'someone-elses-secret-0123456789abcdef');
    for (const token of [other, foreign]) {
      for (const res of [await app.inject({ method: 'GET', url: `/act/${token}` }), await press(app, `/act/${token}`)]) {
        expectPage(res, 403);
        expect(res.body).toContain('<h1>This link is not valid</h1>');
        expect(res.body).toContain('This link was altered');
      }
    }
    const cut = await press(app, `/act/${good.slice(0, -5)}`);
    expectPage(cut, 403);
    expect(cut.body).toContain('incomplete or damaged');
    expect(calls).toEqual([]);
  });

  it('answers a 404 page for an incident vigil does not have', async () => {
    const { app, link, calls } = await setup();
    for (const res of [await app.inject({ method: 'GET', url: link(99, 'ack') }), await press(app, link(99, 'resolve'))]) {
      expectPage(res, 404);
      expect(res.body).toContain('vigil has no incident #99.');
    }
    expect(calls).toEqual([]);
  });

  it('never writes the token to the request log', async () => {
    const { app, link, logs } = await setup();
    const url = link(7, 'ack');
    await app.inject({ method: 'GET', url });
    await press(app, url);
    const text = JSON.stringify(logs.lines);
    expect(text).toContain('/act/<token>');
    expect(text).toContain('incident changed from a link');
    expect(text).not.toContain(url.slice('/act/'.length));
  });

  it('is not there without a link secret', async () => {
    const { app, calls } = await setup({ linkSecret: undefined });
    const url = `/act/${signAction({ incidentId: 7, action: 'ack', expiresAt: NOW + DAY }, LINK_SECRET)}`;
    expect((await app.inject({ method: 'GET', url })).statusCode).toBe(404);
    expect((await press(app, url)).statusCode).toBe(404);
    expect(calls).toEqual([]);
  });
});

describe('Slack interactive buttons', () => {
  const TS = String(NOW / 1000);

  function slackBody(payload: unknown): string {
    return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  }

  function click(actionId: string, value: string, user: Record<string, string> = { id: 'U024BE7LH', username: 'alice' }) {
    return slackBody({
      type: 'block_actions',
      user: { ...user, team_id: 'T9TK3CUKW' },
      api_app_id: 'A0123',
      container: { type: 'message', message_ts: '1764158400.000100', channel_id: 'COPSALERTS' },
      channel: { id: 'COPSALERTS', name: 'ops-alerts' },
      response_url: 'https://hooks.slack.com/actions/T9TK3CUKW/1/abc',
      actions: [{ type: 'button', action_id: actionId, block_id: 'b1', value, action_ts: '1764158401.000200' }],
    });
  }

  function post(app: FastifyInstance, body: string, opts: { ts?: string; secret?: string; signature?: string; contentType?: string } = {}) {
    const ts = opts.ts ?? TS;
    const signature =
      opts.signature ??
      `v0=${createHmac('sha256', opts.secret ?? SLACK_SECRET)
        .update(`v0:${ts}:${body}`)
        .digest('hex')}`;
    return app.inject({
      method: 'POST',
      url: '/slack/actions',
      headers: {
        'content-type': opts.contentType ?? 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': ts,
        'x-slack-signature': signature,
      },
      payload: body,
    });
  }

  it('acknowledges from a signed click as slack:<username>, answering an empty 200', async () => {
    const { app, calls, incidents } = await setup();
    const res = await post(app, click('vigil_ack', '7'));
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(calls).toEqual([{ action: 'acknowledge', id: 7, actor: 'slack:alice' }]);
    expect(incidents.get(7)).toMatchObject({ state: 'acknowledged', ackedBy: 'slack:alice' });
  });

  it('resolves, naming the user by id when Slack sends no username', async () => {
    const { app, incidents } = await setup();
    const res = await post(app, click('vigil_resolve', '8', { id: 'U061F7AUR' }));
    expect(res.statusCode).toBe(200);
    expect(incidents.get(8)).toMatchObject({ state: 'resolved', resolvedBy: 'slack:U061F7AUR' });
  });

  it('answers 200 to a second click and to an unknown incident: the message already shows the state', async () => {
    const { app, calls } = await setup();
    await post(app, click('vigil_ack', '7'));
    expect((await post(app, click('vigil_ack', '7', { id: 'U2', username: 'bob' }))).statusCode).toBe(200);
    expect((await post(app, click('vigil_ack', '99'))).statusCode).toBe(200);
    expect(calls.map((c) => c.actor)).toEqual(['slack:alice', 'slack:bob', 'slack:alice']);
  });

  it('ignores interactions that are not vigil buttons, with a 200', async () => {
    const { app, calls } = await setup();
    for (const body of [
      click('vigil_ack_link', ''),
      click('someone_elses_button', '7'),
      click('vigil_ack', 'seven'),
      slackBody({ type: 'view_submission', user: { id: 'U1' } }),
    ]) {
      expect((await post(app, body)).statusCode).toBe(200);
    }
    expect(calls).toEqual([]);
  });

  it('refuses a stale request with 401, in either direction beyond 5 minutes, even correctly signed', async () => {
    const { app, calls } = await setup();
    for (const skew of [-301, 301]) {
      const res = await post(app, click('vigil_ack', '7'), { ts: String(NOW / 1000 + skew) });
      expect(res.statusCode, `skew ${skew}`).toBe(401);
      expect(res.json()).toEqual({
        error: 'Unauthorized',
        code: 'VIGIL_ERR_UNAUTHORIZED',
        message: 'not a verified Slack request: its timestamp is more than 5 minutes from now',
      });
    }
    expect(calls).toEqual([]);
  });

  it('refuses a tampered body, a wrong secret and missing headers with 401', async () => {
    const { app, calls } = await setup();
    const body = click('vigil_ack', '7');
    const signature = `v0=${createHmac('sha256', SLACK_SECRET).update(`v0:${TS}:${body}`).digest('hex')}`;
    const tampered = await post(app, click('vigil_resolve', '7'), { signature });
    expect(tampered.statusCode).toBe(401);
    expect(tampered.json()).toMatchObject({
      code: 'VIGIL_ERR_UNAUTHORIZED',
      message: 'not a verified Slack request: its signature is bad-signature',
    });
    expect((await post(app, body, { secret: 'another-secret-abcdef' })).statusCode).toBe(401);
    const bare = await app.inject({
      method: 'POST',
      url: '/slack/actions',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: body,
    });
    expect(bare.statusCode).toBe(401);
    expect(bare.json().message).toBe('not a verified Slack request: its signature is malformed');
    expect(calls).toEqual([]);
  });

  it('answers 400 to a signed form without a JSON payload, and 415 to a body that is not a form', async () => {
    const { app } = await setup();
    const res = await post(app, 'payload=%7Bnot-json');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VIGIL_ERR_BAD_REQUEST' });
    const json = await post(app, JSON.stringify({ type: 'block_actions' }), { contentType: 'application/json' });
    expect(json.statusCode).toBe(415);
  });

  it('is not there without a signing secret', async () => {
    const { app, calls } = await setup({ slackSigningSecret: undefined });
    expect((await post(app, click('vigil_ack', '7'))).statusCode).toBe(404);
    expect(calls).toEqual([]);
  });
});

describe('the rest of the API', () => {
  it('still parses JSON, and does not take form bodies the action routes take', async () => {
    const { app } = await setup();
    const res = await app.inject({ method: 'POST', url: '/api/v1/echo', payload: { probes: ['api-*'], comment: 'deploy' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ got: { probes: ['api-*'], comment: 'deploy' } });
    const form = await app.inject({
      method: 'POST',
      url: '/api/v1/echo',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'a=1',
    });
    expect(form.statusCode).toBe(415);
  });
});
