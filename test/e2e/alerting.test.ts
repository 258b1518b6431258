import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SlackApiServer, type SlackCall, startSlackApi } from '../helpers/slack-api.js';
import { waitFor as waitUntil } from '../helpers/wait.js';
import { freePort, target, workspace } from '../helpers/workspace.js';

// End to end: the built service as a process, a loopback target whose answer the test flips, and a
// local Slack Web API server as channel `slack-ops`. Every figure is measured here on the wall clock.

const ROOT = path.resolve(import.meta.dirname, '../..');
const INTERVAL_MS = 1_000;
const FAILURES = 2;
const RECOVERIES = 1;
const MIN_BACKOFF_MS = 200;
const POLL_MS = 200;
const SLACK_TOKEN = 'xoxb-e2e-0000-not-a-real-token';
const OPS_TOKEN = 'ops-e2e-token-0123456789abcdef';
/** Probe id → the probes it depends on. Each probe has its own path on the target. */
const PROBES: Record<string, string[]> = {
  api: [],
  web: [],
  'core-db': [],
  'app-on-db': ['core-db'],
  'pay-1': [],
  'pay-2': [],
  'pay-3': [],
  batch: [],
};

interface IncidentBody {
  id: number;
  probe: string;
  state: 'open' | 'acknowledged' | 'resolved';
  acknowledgedBy: string | null;
  resolvedBy: string | null;
  timeline: Array<{ type: string; actor: string; detail: string | null }>;
  notifications: Array<{ channel: string; action: string; state: string; attempts: number; mutedReason: string | null }>;
}

describe('alerting end to end, the built service against a local Slack API', () => {
  let upstream: Awaited<ReturnType<typeof target>>;
  let slack: SlackApiServer;
  let ws: ReturnType<typeof workspace>;
  let base: string;
  let service: { child: ChildProcess; logs: string[]; exited: Promise<NodeJS.Signals | number | null> };
  /** Wall-clock arrival of each Slack call, by its index in `slack.calls`. */
  const arrivals: number[] = [];
  let recording = true;
  const down = new Set<string>();
  /** Per probe: when the target first answered it 503 since it was flipped down, and 200 since flipped up. */
  const firstFail = new Map<string, number>();
  const firstOk = new Map<string, number>();

  const logTail = () => service.logs.join('').split('\n').slice(-15).join('\n');

  const waitFor = <T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000) =>
    waitUntil(what, fn, ms, () => `service log tail:\n${logTail()}`);

  function flip(probe: string, state: 'down' | 'up') {
    if (state === 'down') {
      firstFail.delete(probe);
      down.add(probe);
    } else {
      firstOk.delete(probe);
      down.delete(probe);
    }
  }

  function startService() {
    const child = spawn(process.execPath, [path.join(ROOT, 'dist/main.js')], {
      cwd: ws.dir,
      env: { ...process.env, VIGIL_ENV: '', SLACK_TOKEN, VIGIL_OPS_TOKEN: OPS_TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs: string[] = [];
    child.stdout?.on('data', (d) => logs.push(String(d)));
    child.stderr?.on('data', (d) => logs.push(String(d)));
    const exited = new Promise<NodeJS.Signals | number | null>((r) => child.once('exit', (code, signal) => r(signal ?? code)));
    return { child, logs, exited };
  }

  /** The incident key (`probe/rule/id`) a Slack call is about, from the dedup line of its blocks. */
  const keyOf = (c: SlackCall) => /dedup `([^`]+)`/.exec(JSON.stringify(c.body.blocks ?? ''))?.[1];
  const indexed = () => slack.calls.map((call, i) => ({ call, i, key: keyOf(call), at: arrivals[i] }));
  const callsFor = (probe: string, method?: string) =>
    indexed().filter((c) => c.key?.startsWith(`${probe}/`) && (method === undefined || c.call.method === method));
  /** Calls Slack accepted (answered `ok`), by method and incident key. */
  const accepted = () => {
    const counts: Record<string, number> = {};
    for (const c of indexed())
      if (c.call.mode === 'ok') counts[`${c.call.method} ${c.key}`] = (counts[`${c.call.method} ${c.key}`] ?? 0) + 1;
    return counts;
  };

  const api = async <T>(p: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${base}${p}`, init);
    return { status: res.status, body: (await res.json()) as T };
  };
  const incidentsOf = async (probe: string) =>
    (await api<{ incidents: Array<{ id: number; state: string }> }>(`/api/v1/incidents?probe=${probe}`)).body.incidents;
  const incident = async (id: number) => (await api<IncidentBody>(`/api/v1/incidents/${id}`)).body;

  beforeAll(async () => {
    upstream = await target((req, res) => {
      const probe = (req.url ?? '/').slice(1);
      if (down.has(probe)) {
        if (!firstFail.has(probe)) firstFail.set(probe, Date.now());
        res.statusCode = 503;
        res.end('{"status":"fail","checks":{"db":"down"}}');
      } else {
        if (!firstOk.has(probe)) firstOk.set(probe, Date.now());
        res.end('ok');
      }
    });
    slack = await startSlackApi({ token: SLACK_TOKEN });
    void (async () => {
      for (let i = 1; recording; i++) {
        await slack.waitForCalls(i);
        arrivals[i - 1] = Date.now();
      }
    })();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const alert = (deps: string[]) =>
      `  alert:\n    failures: ${FAILURES}\n    recoveries: ${RECOVERIES}\n    channels: [slack-ops]\n` +
      (deps.length > 0 ? `    dependsOn: [${deps.join(', ')}]\n` : '');
    ws = workspace({
      'config/default.yaml': [
        'service:',
        '  host: 127.0.0.1',
        `  port: ${port}`,
        '  shutdownTimeout: 2s',
        'storage:',
        '  batch:',
        '    interval: 100ms',
        'alerting:',
        `  baseUrl: ${base}`,
        '  delivery:',
        `    minBackoff: ${MIN_BACKOFF_MS}ms`,
        '    maxBackoff: 1s',
        `    pollInterval: ${POLL_MS}ms`,
        '    timeout: 3s',
        'channels:',
        `  slack-ops: { type: slack, token: "\${SLACK_TOKEN}", channel: "#ops-alerts", apiUrl: "${slack.apiUrl}" }`,
        'auth:',
        '  tokens:',
        '    - { name: ops, token: "${VIGIL_OPS_TOKEN}", role: operator }',
        '',
      ].join('\n'),
      'probes/targets.yaml': Object.entries(PROBES)
        .map(
          ([id, deps]) =>
            `- id: ${id}\n  kind: http\n  url: ${upstream.url}/${id}\n  schedule: { every: 1s }\n  timeout: 1s\n${alert(deps)}`,
        )
        .join(''),
    });
    service = startService();
    await waitFor('the service to listen', async () => (await fetch(`${base}/health`)).status === 200);
  });

  afterAll(async () => {
    recording = false;
    if (service && service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
    await upstream?.close();
    await slack?.close();
    ws?.remove();
  });

  const bound = FAILURES * INTERVAL_MS + MIN_BACKOFF_MS + 1_000;

  it(`a. target down → chat.postMessage within failures × interval + retry delay + 1 s (= ${bound} ms) of the first failing answer`, async ({
    annotate,
  }) => {
    flip('api', 'down');
    const post = await waitFor('the page for api', () => callsFor('api', 'chat.postMessage')[0]);
    const failedAt = firstFail.get('api') as number;
    const delay = (post.at as number) - failedAt;
    await annotate(`page arrived ${delay} ms after the first failing answer (bound ${bound} ms)`);
    expect(delay).toBeLessThan(bound);
    // It waited for the second failure: one page, not one per failed run.
    expect(delay).toBeGreaterThan((FAILURES - 1) * INTERVAL_MS - 100);

    expect(post.call.mode).toBe('ok');
    expect(post.call.authorization).toBe(`Bearer ${SLACK_TOKEN}`);
    expect(post.call.body.channel).toBe('#ops-alerts');
    expect(post.call.body.text).toContain('api: HTTP_STATUS: 503 Service Unavailable: db down');
    expect(post.call.body.text).toContain(`Incident: ${base}/api/v1/incidents/`);
    const [open] = await incidentsOf('api');
    expect(open?.state).toBe('open');
    expect(post.key).toBe(`api/failures/${open?.id}`);
    const view = await waitFor('the trigger to be marked delivered', async () => {
      const i = await incident(open?.id as number);
      return i.notifications[0]?.state === 'delivered' ? i : undefined;
    });
    expect(view.notifications).toMatchObject([{ channel: 'slack-ops', action: 'trigger', state: 'delivered', attempts: 1 }]);
  });

  it('b. target back → chat.update of the same message shows it resolved', async ({ annotate }) => {
    const [post] = callsFor('api', 'chat.postMessage');
    const ts = [...slack.messages.values()].find((m) => m.text === post?.call.body.text)?.ts as string;
    expect(ts).toMatch(/^\d+\.\d+$/);
    flip('api', 'up');
    const update = await waitFor('the resolve update for api', () => callsFor('api', 'chat.update')[0]);
    const delay = (update.at as number) - (firstOk.get('api') as number);
    await annotate(`message updated to resolved ${delay} ms after the first good answer`);
    expect(delay).toBeLessThan(RECOVERIES * INTERVAL_MS + 1_000);
    expect(update.call.body.ts).toBe(ts);
    expect(update.call.body.channel).toBe(slack.messages.get(ts)?.channel);
    expect(update.call.mode).toBe('ok');
    const message = slack.messages.get(ts);
    expect(message?.text).toMatch(/^\[RESOLVED\] api recovered after /);
    expect(message?.history).toHaveLength(1);
    expect(callsFor('api', 'chat.postMessage')).toHaveLength(1);
    const [i] = await incidentsOf('api');
    expect(i?.state).toBe('resolved');
  });

  it('c. a probe that depends on a failing probe pages nothing: its notification is muted', async () => {
    flip('core-db', 'down');
    flip('app-on-db', 'down');
    await waitFor('the page for core-db', () => callsFor('core-db', 'chat.postMessage')[0]);
    const [dependent] = await waitFor('the incident of app-on-db', async () => {
      const list = await incidentsOf('app-on-db');
      return list.length > 0 ? list : undefined;
    });
    const view = await incident(dependent?.id as number);
    expect(view.state).toBe('open');
    expect(view.notifications).toHaveLength(1);
    expect(view.notifications[0]).toMatchObject({ channel: 'slack-ops', action: 'trigger', state: 'muted', attempts: 0 });
    expect(view.notifications[0]?.mutedReason).toBe('depends on core-db, which is failing');
    expect(view.timeline[0]?.detail).toContain('pages muted: depends on core-db');

    // The dependent recovers first (so no sweep can find it failing with core-db fine), then the root cause.
    flip('app-on-db', 'up');
    await waitFor('app-on-db resolved', async () => ((await incident(dependent?.id as number)).state === 'resolved' ? true : undefined));
    flip('core-db', 'up');
    await waitFor('the resolve update for core-db', () => callsFor('core-db', 'chat.update')[0]);
    const after = await incident(dependent?.id as number);
    // Nobody was told it opened, so nobody is told it ended.
    expect(after.notifications.map((n) => n.state)).toEqual(['muted']);
    expect(callsFor('app-on-db')).toEqual([]);
    expect(callsFor('core-db').map((c) => c.call.method)).toEqual(['chat.postMessage', 'chat.update']);
  });

  it('d. ack through the API needs a bearer token and updates the Slack message', async ({ annotate }) => {
    flip('web', 'down');
    const post = await waitFor('the page for web', () => callsFor('web', 'chat.postMessage')[0]);
    const [open] = await incidentsOf('web');
    const id = open?.id as number;
    const ts = [...slack.messages.values()].find((m) => m.text === post.call.body.text)?.ts as string;

    const anonymous = await api<{ code: string }>(`/api/v1/incidents/${id}/ack`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.code).toBe('VIGIL_ERR_UNAUTHORIZED');
    const wrong = await api<{ code: string }>(`/api/v1/incidents/${id}/ack`, {
      method: 'POST',
      headers: { authorization: 'Bearer not-the-token-at-all' },
    });
    expect(wrong.status).toBe(401);
    expect((await incident(id)).state).toBe('open');
    expect(callsFor('web', 'chat.update')).toEqual([]);

    const acked = await api<{ state: string; acknowledgedBy: string }>(`/api/v1/incidents/${id}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPS_TOKEN}` },
    });
    const ackedAt = Date.now();
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({ state: 'acknowledged', acknowledgedBy: 'ops' });
    const update = await waitFor('the ack update for web', () => callsFor('web', 'chat.update')[0]);
    await annotate(`Slack message updated ${(update.at as number) - ackedAt} ms after the ack answered`);
    expect(update.call.body.ts).toBe(ts);
    expect(slack.messages.get(ts)?.text).toMatch(/^\[ACK\] web acknowledged by ops: web: HTTP_STATUS/);
    const again = await api<{ code: string }>(`/api/v1/incidents/${id}/ack`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPS_TOKEN}` },
    });
    expect(again.status).toBe(409);

    flip('web', 'up');
    await waitFor('the resolve update for web', () => (callsFor('web', 'chat.update').length === 2 ? true : undefined));
    expect(slack.messages.get(ts)?.text).toMatch(/^\[RESOLVED\] web recovered after /);
    expect(callsFor('web').map((c) => [c.call.method, c.call.mode])).toEqual([
      ['chat.postMessage', 'ok'],
      ['chat.update', 'ok'],
      ['chat.update', 'ok'],
    ]);
    expect((await incident(id)).timeline.map((e) => e.type)).toEqual(['opened', 'acknowledged', 'resolved']);
  });

  it('e. Slack answering 500, then 429 with Retry-After, then fine: every notification delivered exactly once', async ({ annotate }) => {
    const probes = ['pay-1', 'pay-2', 'pay-3'];
    const failed = (probe: string, method: string, mode: SlackCall['mode']) => callsFor(probe, method).filter((c) => c.call.mode === mode);
    slack.retryAfter = 1;

    slack.mode = 'server-error';
    for (const p of probes) flip(p, 'down');
    await waitFor('two 500s for every page', () => probes.every((p) => failed(p, 'chat.postMessage', 'server-error').length >= 2));
    slack.mode = 'rate-limited';
    await waitFor('a 429 for every page', () => probes.every((p) => failed(p, 'chat.postMessage', 'rate-limited').length >= 1));
    const outageEnded = Date.now();
    slack.mode = 'ok';
    await waitFor('every page delivered', () => probes.every((p) => failed(p, 'chat.postMessage', 'ok').length >= 1));

    // The resolve updates go through an outage of their own.
    slack.mode = 'server-error';
    for (const p of probes) flip(p, 'up');
    await waitFor('a 500 for every update', () => probes.every((p) => failed(p, 'chat.update', 'server-error').length >= 1));
    slack.mode = 'ok';
    await waitFor('every update delivered', () => probes.every((p) => failed(p, 'chat.update', 'ok').length >= 1));
    await waitFor('every incident resolved with its notifications delivered', async () => {
      for (const p of probes) {
        const [i] = await incidentsOf(p);
        const view = await incident(i?.id as number);
        if (view.state !== 'resolved' || view.notifications.some((n) => n.state !== 'delivered')) return undefined;
      }
      return true;
    });

    const figures: string[] = [];
    for (const p of probes) {
      const [i] = await incidentsOf(p);
      const view = await incident(i?.id as number);
      const posts = callsFor(p, 'chat.postMessage');
      const updates = callsFor(p, 'chat.update');
      // Exactly one of each accepted, however many attempts it took.
      expect(posts.filter((c) => c.call.mode === 'ok')).toHaveLength(1);
      expect(updates.filter((c) => c.call.mode === 'ok')).toHaveLength(1);
      expect(posts.at(-1)?.call.mode).toBe('ok');
      expect(new Set(posts.map((c) => c.key))).toEqual(new Set([`${p}/failures/${i?.id}`]));
      expect(
        [...slack.messages.values()].filter((m) => m.text.includes(`${p}: HTTP_STATUS`) || m.text.startsWith(`[RESOLVED] ${p} `)),
      ).toHaveLength(1);
      // The outbox counted every attempt Slack saw, and no more.
      expect(view.notifications).toMatchObject([
        { action: 'trigger', state: 'delivered', attempts: posts.length },
        { action: 'resolve', state: 'delivered', attempts: updates.length },
      ]);
      // Retry-After: 1 was honoured: the next attempt came at least a second after the 429.
      for (const [k, c] of posts.entries()) {
        if (c.call.mode !== 'rate-limited') continue;
        const next = posts[k + 1];
        expect((next?.at as number) - (c.at as number)).toBeGreaterThanOrEqual(1_000);
      }
      const ok = posts.at(-1) as (typeof posts)[number];
      figures.push(`${p}: ${posts.length} postMessage attempts, delivered ${(ok.at as number) - outageEnded} ms after Slack recovered`);
    }
    await annotate(figures.join('; '));
  });

  it('f. kill -9 with a page in flight: delivered once after the restart, nothing delivered before is sent again', async ({ annotate }) => {
    slack.modeFor['chat.postMessage'] = 'hang';
    flip('batch', 'down');
    const held = await waitFor('the page for batch to reach Slack', () => callsFor('batch', 'chat.postMessage')[0]);
    const [open] = await incidentsOf('batch');
    expect((await incident(open?.id as number)).notifications).toMatchObject([{ action: 'trigger', state: 'pending' }]);

    service.child.kill('SIGKILL');
    expect(await service.exited).toBe('SIGKILL');
    await waitFor('Slack to see the held call dropped', () => held.call.clientGone);

    const dbPath = path.join(ws.dir, 'data/vigil.db');
    const db = new Database(dbPath, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare(`SELECT action, state FROM outbox WHERE dedup_key = ?`).all(`batch/failures/${open?.id}`)).toEqual([
      { action: 'trigger', state: 'pending' },
    ]);
    db.close();

    // Slack is back, and the outage ends while vigil is down.
    delete slack.modeFor['chat.postMessage'];
    flip('batch', 'up');
    const before = accepted();
    const restartedAt = Date.now();
    service = startService();

    const post = await waitFor('the page for batch after the restart', () =>
      callsFor('batch', 'chat.postMessage').find((c) => c.call.mode === 'ok'),
    );
    const update = await waitFor('the resolve update for batch', () => callsFor('batch', 'chat.update')[0]);
    await annotate(
      `page delivered ${(post.at as number) - restartedAt} ms after the restart began; resolved ${(update.at as number) - restartedAt} ms after`,
    );
    await waitFor('an empty outbox', async () => {
      const h = await api<{ checks: { outbox: { pending: number } } }>('/health');
      return h.status === 200 && h.body.checks.outbox.pending === 0 ? true : undefined;
    });

    const key = `batch/failures/${open?.id}`;
    expect(post.key).toBe(key);
    expect(callsFor('batch').map((c) => [c.call.method, c.call.mode])).toEqual([
      ['chat.postMessage', 'hang'],
      ['chat.postMessage', 'ok'],
      ['chat.update', 'ok'],
    ]);
    expect(slack.messages.get(update.call.body.ts as string)?.text).toMatch(/^\[RESOLVED\] batch recovered after /);
    // Everything accepted before the kill was accepted exactly as often afterwards: nothing re-sent.
    const after = accepted();
    expect(after).toEqual({ ...before, [`chat.postMessage ${key}`]: 1, [`chat.update ${key}`]: 1 });
    const incidents = await incidentsOf('batch');
    expect(incidents).toHaveLength(1);
    expect(incidents[0]?.state).toBe('resolved');

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    const check = new Database(dbPath, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    // Over the whole run, Slack accepted one call per delivered notification, and no more.
    const delivered = check
      .prepare(`SELECT dedup_key AS key, count(*) AS n FROM outbox WHERE state = 'delivered' GROUP BY dedup_key`)
      .all() as Array<{
      key: string;
      n: number;
    }>;
    check.close();
    const acceptedPerIncident: Record<string, number> = {};
    for (const c of indexed()) if (c.call.mode === 'ok' && c.key) acceptedPerIncident[c.key] = (acceptedPerIncident[c.key] ?? 0) + 1;
    expect(acceptedPerIncident).toEqual(Object.fromEntries(delivered.map((r) => [r.key, r.n])));
  });
});
