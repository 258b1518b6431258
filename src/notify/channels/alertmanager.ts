import { type Static, Type } from '@sinclair/typebox';
import { Agent, request } from 'undici';
import { untilAborted } from '../../lib/abort.js';
import { ms } from '../../lib/duration.js';
import { codeOf, messageOf } from '../../lib/errors.js';
import { fieldOf } from '../../lib/fields.js';
import { Duration } from '../../lib/schema.js';
import { render } from '../message.js';
import { hostOf, isAbsoluteHttp, parseRetryAfter, readCapped } from '../provider-http.js';
import { DeliveryError, defineChannel, type Notification, type SendContext, type SendResult } from '../types.js';

/** Alertmanager's label names: the Prometheus data model's, `[a-zA-Z_][a-zA-Z0-9_]*`. */
const LABEL_NAME = '^[a-zA-Z_][a-zA-Z0-9_]*$';

const schema = Type.Object(
  {
    /**
     * Every Alertmanager of the cluster, each by its base URL (with its route prefix, if any): vigil
     * posts to each, as Prometheus does, and the cluster deduplicates.
     */
    urls: Type.Array(Type.String({ pattern: '^https?://[^\\s]+$', expected: 'an http:// or https:// URL' }), {
      minItems: 1,
      expected: 'a list of Alertmanager base URLs, e.g. [http://alertmanager:9093]',
    }),
    basicAuth: Type.Optional(
      Type.Object(
        {
          username: Type.String({ minLength: 1, expected: 'a user name' }),
          password: Type.String({ minLength: 1, expected: 'a password, from ${AM_PASSWORD} or ${file:…}' }),
        },
        { additionalProperties: false },
      ),
    ),
    bearerToken: Type.Optional(Type.String({ minLength: 1, expected: 'a bearer token, from ${AM_TOKEN} or ${file:…}' })),
    /**
     * How often an open incident's alert is posted again. Each post says the alert lasts four
     * intervals (`endsAt`), so Alertmanager resolves it by itself only when vigil stops sending.
     */
    resendInterval: Duration('1m'),
    /** Labels added to every alert (e.g. `env: prod`); vigil's own labels take precedence. */
    labels: Type.Record(Type.String({ pattern: LABEL_NAME }), Type.String(), {
      default: {},
      // A Record with a key pattern only describes matching keys; without this, a bad name would pass.
      additionalProperties: false,
      expected: 'a map of label names ([a-zA-Z_][a-zA-Z0-9_]*) to strings',
    }),
  },
  { additionalProperties: false },
);

/** An `alertmanager` channel's config, defaults applied. */
export type AlertmanagerConfig = Static<typeof schema>;

/** One alert as `POST /api/v2/alerts` takes it (Alertmanager's `postableAlert`). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

/** A firing alert is declared to last this many resend intervals: a late resend or two does not resolve it. */
export const VALID_FOR_INTERVALS = 4;
/** How long a test page's alert fires before Alertmanager resolves it by itself. */
const TEST_ALERT_MS = 5 * 60_000;
const EXCERPT_CHARS = 200;

export const alertmanager = defineChannel({
  schema,
  // Alertmanager routes by labels, not to people: a person's page goes there only when a step names it in `via:`.
  person: 'own-target',
  resendWhileOpen: (config) => ms(config.resendInterval),
  create(name, config, deps) {
    const log = deps.logger.child({ channel: name, type: 'alertmanager' });
    const validForMs = VALID_FOR_INTERVALS * ms(config.resendInterval);
    const endpoints = config.urls.map((u) => `${u.replace(/\/+$/, '')}/api/v2/alerts`);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'vigil' };
    if (config.bearerToken !== undefined) headers.authorization = `Bearer ${config.bearerToken}`;
    else if (config.basicAuth !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${config.basicAuth.username}:${config.basicAuth.password}`).toString('base64')}`;
    }
    const secrets = [config.bearerToken, config.basicAuth?.password, headers.authorization].filter(
      (s): s is string => s !== undefined && s.length >= 4,
    );
    // Backstops only: the worker's per-send signal normally ends a request first.
    const agent = new Agent({ connections: 4, connect: { timeout: 10_000 }, headersTimeout: 30_000, bodyTimeout: 30_000 });

    /** One Alertmanager: resolves when it took the alert, else rejects with a DeliveryError. */
    async function postTo(endpoint: string, body: string, ctx: SendContext): Promise<void> {
      const where = `Alertmanager at ${hostOf(endpoint)}`;
      let status: number;
      let excerpt: string;
      let retryAfter: string | undefined;
      try {
        ({ status, excerpt, retryAfter } = await untilAborted(ctx.signal, async () => {
          const res = await request(endpoint, { method: 'POST', headers, body, signal: ctx.signal, dispatcher: agent });
          const first = res.headers['retry-after'];
          const text = await readCapped(res.body);
          return { status: res.statusCode, excerpt: text, retryAfter: Array.isArray(first) ? first[0] : first };
        }));
      } catch (err) {
        throw networkError(err, where, ctx.signal, secrets);
      }
      if (status >= 200 && status < 300) return;
      const said = scrub(excerpt.replace(/\s+/g, ' ').trim(), secrets).slice(0, EXCERPT_CHARS);
      const answered = `${where} answered ${status}${said ? `: ${said}` : ''}`;
      if (status === 408 || status === 429 || status >= 500) {
        const wait = status === 429 || status === 503 ? parseRetryAfter(retryAfter, ctx.clock.now()) : undefined;
        throw new DeliveryError(answered, { retryable: true, ...(wait === undefined ? {} : { retryAfterMs: wait }) });
      }
      // 400 (an alert it cannot take), 401/403 (credentials), 404 (wrong URL or route prefix): sending again cannot help.
      const hint =
        status === 404 ? ' (check the url and its route prefix)' : status === 401 || status === 403 ? ' (check the credentials)' : '';
      throw new DeliveryError(`${answered}${hint}`, { retryable: false });
    }

    return {
      async send(n: Notification, ctx: SendContext): Promise<SendResult> {
        const body = JSON.stringify([alertOf(n, ctx.clock.now(), validForMs, config.labels)]);
        const outcomes = await Promise.allSettled(endpoints.map((e) => postTo(e, body, ctx)));
        const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [asDeliveryError(o.reason)] : []));
        // Like Prometheus: one Alertmanager that took it is enough, the cluster shares it among its peers.
        if (failures.length < endpoints.length) {
          if (failures.length > 0) log.warn({ failed: failures.map((f) => f.message) }, 'some Alertmanagers did not take the alert');
          return {};
        }
        const retryable = failures.some((f) => f.retryable);
        const waits = failures.flatMap((f) => (f.retryAfterMs === undefined ? [] : [f.retryAfterMs]));
        const message =
          failures.length === 1 ? (failures[0]?.message ?? '') : `every Alertmanager failed: ${failures.map((f) => f.message).join('; ')}`;
        throw new DeliveryError(message, { retryable, ...(retryable && waits.length > 0 ? { retryAfterMs: Math.min(...waits) } : {}) });
      },
      async close() {
        await agent.close();
      },
    };
  },
});

/** The alert name a rule fires as; the exact rule is in the `rule` label. */
export function alertNameOf(rule: string): string {
  if (rule === 'failures') return 'VigilProbeFailing';
  if (rule === 'errorRate') return 'VigilErrorRateHigh';
  if (rule === 'latency') return 'VigilLatencyHigh';
  return 'VigilThresholdCrossed';
}

/**
 * The alert for one notification at `now`. Its labels are its identity in Alertmanager: they stay the
 * same for every send of one incident, so a resend, an acknowledgement and the resolve all update
 * one alert. Firing sends last `validForMs`; the resolve ends it when vigil resolved the incident.
 */
export function alertOf(n: Notification, now: number, validForMs: number, extra: Record<string, string>): PostableAlert {
  const i = n.incident;
  const msg = render(n, now);
  const test = n.action === 'test';
  const labels: Record<string, string> = { ...extra };
  for (const [k, v] of Object.entries(i.labels)) if (v !== '') labels[labelName(k)] = v;
  Object.assign(labels, {
    alertname: test ? 'VigilTestPage' : alertNameOf(i.rule),
    probe: i.probeId || 'vigil',
    severity: test ? 'info' : i.severity,
  });
  if (i.kind) labels.kind = i.kind;
  if (i.rule && !test) labels.rule = i.rule;
  // A test page is an alert of its own, so it can never resolve (or be taken for) a real incident.
  if (test) labels.vigil_test = String(n.id);
  for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];

  const annotations: Record<string, string> = { summary: test ? msg.title : i.summary || msg.title, description: msg.text };
  if (n.links.runbook) annotations.runbook_url = n.links.runbook;
  annotations.incident_url = n.links.incident;
  if (n.links.dashboard) annotations.dashboard_url = n.links.dashboard;
  if (i.lastError) annotations.last_error = `${i.lastError.code}: ${i.lastError.message}`;
  if (i.state === 'acknowledged' && i.ackedAt !== undefined) {
    annotations.acknowledged_by = i.ackedBy ?? 'unknown';
    annotations.acknowledged_at = new Date(i.ackedAt).toISOString();
  }

  const ended = n.action === 'resolve' || i.state === 'resolved';
  const startsAt = test ? now : i.openedAt;
  const endsAt = ended ? Math.max(i.resolvedAt ?? now, startsAt) : now + (test ? TEST_ALERT_MS : validForMs);
  const alert: PostableAlert = {
    labels,
    annotations,
    startsAt: new Date(startsAt).toISOString(),
    endsAt: new Date(endsAt).toISOString(),
  };
  if (isAbsoluteHttp(n.links.incident)) alert.generatorURL = n.links.incident;
  return alert;
}

/** A probe label as an Alertmanager label name: invalid characters become `_` (`app.kubernetes.io/name` → `app_kubernetes_io_name`). */
export function labelName(key: string): string {
  const name = key.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(name) || name === '' ? `_${name}` : name;
}

function asDeliveryError(err: unknown): DeliveryError {
  return err instanceof DeliveryError ? err : new DeliveryError(messageOf(err), { retryable: true, cause: err });
}

function networkError(err: unknown, where: string, signal: AbortSignal, secrets: string[]): DeliveryError {
  const code = codeOf(err) || codeOf(fieldOf(err, 'cause'));
  if (signal.aborted || code === 'UND_ERR_ABORTED' || code.endsWith('_TIMEOUT')) {
    return new DeliveryError(`${where} did not take the alert before the send deadline`, { retryable: true });
  }
  // Every transport failure may heal (DNS, refused, reset); the worker's maximum age bounds it.
  return new DeliveryError(`cannot reach ${where}: ${scrub(code || messageOf(err), secrets)}`, { retryable: true });
}

/** Removes every secret, and its percent-encoded and base64 forms, from text a peer sent back. */
function scrub(text: string, secrets: string[]): string {
  const forms = secrets.flatMap((s) => [s, encodeURIComponent(s), Buffer.from(s).toString('base64')]);
  return forms.reduce((t, s) => t.split(s).join('<secret>'), text);
}
