import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { type MaintenanceWindow, matches, type Target, windowTimes } from '../alerting/index.js';
import type { Clock } from '../lib/clock.js';
import { ms, parseDuration } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import type { AlertStore, Incident, OutboxItem, Silence } from '../store/index.js';
import { type ApiToken, authenticate } from './auth.js';
import { instant } from './params.js';

/** What the incident, silence and channel routes need. */
export interface AlertRouteDeps {
  clock: Clock;
  tokens: readonly ApiToken[];
  alerts: AlertStore;
  acknowledge(id: number, actor: string): Promise<Incident>;
  resolve(id: number, actor: string): Promise<Incident>;
  silencesChanged(): void;
  /** Configured channels, name → type. */
  channels(): Record<string, string>;
  /** Queues a test page through a channel; resolves to its outbox row. */
  testChannel(name: string): Promise<OutboxItem>;
  /** The probes loaded now, as silences and windows match them. */
  targets(): readonly Target[];
  /** The maintenance windows in force in the config now. */
  maintenance(): readonly MaintenanceWindow[];
}

const Id = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const IncidentQuery = Type.Object(
  {
    state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('acknowledged'), Type.Literal('resolved')])),
    probe: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    since: Type.Optional(Type.String({ minLength: 1, maxLength: 40 })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);
const MAX_SILENCE_MS = 366 * 86_400_000;

const SilenceBody = Type.Object(
  {
    /** Probe ids, `*` wildcards allowed; all probes when empty. */
    probes: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { default: [], maxItems: 100 }),
    labels: Type.Record(Type.String(), Type.String(), { default: {} }),
    /** ISO 8601; now when omitted. */
    startsAt: Type.Optional(Type.String({ format: 'date-time' })),
    /** ISO 8601, or give `duration`. */
    endsAt: Type.Optional(Type.String({ format: 'date-time' })),
    duration: Type.Optional(Type.String({ pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h|d))+$' })),
    comment: Type.String({ minLength: 1, maxLength: 1000 }),
  },
  { additionalProperties: false },
);
const NO_PROBE_COVERED = 'matches no probe loaded now: check the probe ids and labels (it will apply to matching probes added later)';
const ChannelName = Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) });

function notificationView(n: OutboxItem) {
  return {
    id: n.id,
    channel: n.channel,
    action: n.action,
    state: n.state,
    attempts: n.attempts,
    createdAt: new Date(n.createdAt).toISOString(),
    deliveredAt: n.deliveredAt === undefined ? null : new Date(n.deliveredAt).toISOString(),
    nextAttemptAt: n.state === 'pending' ? new Date(n.nextAttemptAt).toISOString() : null,
    lastError: n.lastError ?? null,
    mutedReason: n.mutedReason ?? null,
  };
}

function incidentView(i: Incident) {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    id: i.id,
    probe: i.probeId,
    kind: i.kind,
    rule: i.rule,
    severity: i.severity,
    state: i.state,
    summary: i.summary,
    labels: i.labels,
    channels: i.channels,
    openedAt: iso(i.openedAt),
    acknowledgedAt: iso(i.ackedAt),
    acknowledgedBy: i.ackedBy ?? null,
    resolvedAt: iso(i.resolvedAt),
    resolvedBy: i.resolvedBy ?? null,
    lastError: i.lastError ? { ...i.lastError, at: iso(i.lastError.at) } : null,
    flapping: i.flapping,
  };
}

/** `/api/v1/incidents`, `/api/v1/silences`, `/api/v1/channels`. Reads are open; writes need a token. */
export function registerAlertRoutes(app: FastifyInstance, deps: AlertRouteDeps): void {
  const operator = (req: Parameters<typeof authenticate>[1]) => authenticate(deps.tokens, req, 'operator');
  const incident = async (id: number) => {
    const i = await deps.alerts.incident(id);
    if (!i) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no incident ${id}`);
    return i;
  };

  app.get<{ Querystring: Static<typeof IncidentQuery> }>('/api/v1/incidents', { schema: { querystring: IncidentQuery } }, async (req) => {
    const since = instant(req.query.since, 'since');
    const list = await deps.alerts.incidents({ state: req.query.state, probeId: req.query.probe, since, limit: req.query.limit });
    return { incidents: list.map(incidentView) };
  });

  app.get<{ Params: Static<typeof Id> }>('/api/v1/incidents/:id', { schema: { params: Id } }, async (req) => {
    const i = await incident(req.params.id);
    const [timeline, notifications] = await Promise.all([deps.alerts.timeline(i.id), deps.alerts.notifications(i.id)]);
    return {
      ...incidentView(i),
      timeline: timeline.map((e) => ({ at: new Date(e.at).toISOString(), type: e.type, actor: e.actor, detail: e.detail ?? null })),
      notifications: notifications.map(notificationView),
    };
  });

  app.post<{ Params: Static<typeof Id> }>('/api/v1/incidents/:id/ack', { schema: { params: Id } }, async (req) => {
    const caller = operator(req);
    await incident(req.params.id);
    return incidentView(await deps.acknowledge(req.params.id, caller.name));
  });

  app.post<{ Params: Static<typeof Id> }>('/api/v1/incidents/:id/resolve', { schema: { params: Id } }, async (req) => {
    const caller = operator(req);
    await incident(req.params.id);
    return incidentView(await deps.resolve(req.params.id, caller.name));
  });

  /** The probe ids a silence or window matches among the probes loaded now. */
  const covered = (m: { probes: readonly string[]; labels: Record<string, string> }) =>
    deps
      .targets()
      .filter((t) => matches(m, t))
      .map((t) => t.id);
  const silenceView = (s: Silence) => {
    const covers = covered(s);
    return {
      id: s.id,
      probes: s.probes,
      labels: s.labels,
      startsAt: new Date(s.startsAt).toISOString(),
      endsAt: new Date(s.endsAt).toISOString(),
      author: s.author,
      comment: s.comment,
      active: s.startsAt <= deps.clock.now() && deps.clock.now() < s.endsAt,
      covers,
      // Kept, not refused: a silence for probes about to be added is legitimate; a typo is not, and this says which.
      ...(covers.length === 0 ? { warning: NO_PROBE_COVERED } : {}),
    };
  };

  app.get('/api/v1/silences', async () => ({ silences: (await deps.alerts.silences(deps.clock.now())).map(silenceView) }));

  app.post<{ Body: Static<typeof SilenceBody> }>('/api/v1/silences', { schema: { body: SilenceBody } }, async (req, reply) => {
    const caller = operator(req);
    const now = deps.clock.now();
    const b = req.body;
    const startsAt = b.startsAt ? Date.parse(b.startsAt) : now;
    if (b.endsAt === undefined && b.duration === undefined)
      throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body must have endsAt or duration');
    // Neither given was refused above; NaN (an empty endsAt without a duration) is refused below.
    const endsAt = b.endsAt ? Date.parse(b.endsAt) : b.duration !== undefined ? startsAt + ms(b.duration) : Number.NaN;
    if (!(endsAt > startsAt)) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body/endsAt must be after startsAt');
    if (endsAt <= now) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body/endsAt is in the past: the silence would never apply');
    // A year at most: a longer one is a probe to delete, and an unbounded end is not even a date.
    if (endsAt - startsAt > MAX_SILENCE_MS || !Number.isFinite(startsAt))
      throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body: a silence lasts at most 366d; delete or change the probe instead');
    if (b.duration !== undefined && parseDuration(b.duration) === undefined)
      throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body/duration must be like 2h');
    const s = await deps.alerts.addSilence({
      probes: b.probes,
      labels: b.labels,
      startsAt,
      endsAt,
      author: caller.name,
      comment: b.comment,
      createdAt: now,
    });
    deps.silencesChanged();
    return reply.status(201).send(silenceView(s));
  });

  app.delete<{ Params: Static<typeof Id> }>('/api/v1/silences/:id', { schema: { params: Id } }, async (req, reply) => {
    operator(req);
    if (!(await deps.alerts.deleteSilence(req.params.id, deps.clock.now())))
      throw new VigilError('VIGIL_ERR_NOT_FOUND', `no active silence ${req.params.id}`);
    deps.silencesChanged();
    return reply.status(204).send();
  });

  app.get('/api/v1/maintenance', async () => {
    const now = deps.clock.now();
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    return {
      windows: deps.maintenance().map((w) => {
        const times = windowTimes(w, now);
        const covers = covered(w);
        return {
          name: w.name,
          schedule: w.schedule,
          durationSeconds: w.durationMs / 1000,
          probes: w.probes,
          labels: w.labels,
          covers,
          active: times.active,
          startsAt: iso(times.startsAt),
          endsAt: iso(times.endsAt),
          nextStartsAt: iso(times.nextStartsAt),
          ...(covers.length === 0 ? { warning: NO_PROBE_COVERED } : {}),
        };
      }),
    };
  });

  app.get('/api/v1/channels', async () => ({
    channels: Object.entries(deps.channels()).map(([name, type]) => ({ name, type })),
  }));

  app.post<{ Params: Static<typeof ChannelName> }>(
    '/api/v1/channels/:name/test',
    { schema: { params: ChannelName } },
    async (req, reply) => {
      operator(req);
      if (!Object.hasOwn(deps.channels(), req.params.name)) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no channel "${req.params.name}"`);
      const item = await deps.testChannel(req.params.name);
      return reply.status(202).send({ channel: req.params.name, notification: notificationView(item) });
    },
  );

  app.get<{ Params: Static<typeof ChannelName> & { id: number } }>(
    '/api/v1/channels/:name/tests/:id',
    { schema: { params: Type.Intersect([ChannelName, Id]) } },
    async (req) => {
      const item = await deps.alerts.outboxItem(req.params.id);
      if (!item || item.channel !== req.params.name || item.action !== 'test')
        throw new VigilError('VIGIL_ERR_NOT_FOUND', `no test page ${req.params.id} for channel "${req.params.name}"`);
      return {
        channel: item.channel,
        notification: notificationView(item),
        deliveryMs: item.deliveredAt === undefined ? null : item.deliveredAt - item.createdAt,
      };
    },
  );
}
