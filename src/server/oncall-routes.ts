import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../lib/clock.js';
import { VigilError } from '../lib/errors.js';
import { own } from '../lib/own.js';
import { createOnCall, nextHandoffs, type Schedule } from '../oncall/index.js';
import type { AlertStore } from '../store/index.js';
import { type ApiToken, authenticate } from './auth.js';

/** What the on-call routes need. */
export interface OncallRouteDeps {
  clock: Clock;
  tokens: readonly ApiToken[];
  alerts: AlertStore;
  schedules(): Record<string, Schedule>;
  people(): Record<string, { name: string }>;
}

const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : null);
const MAX_RANGE_MS = 92 * 86_400_000;
/** As long as a silence may last: a longer override is a schedule to change. */
const MAX_OVERRIDE_MS = 366 * 86_400_000;

const ScheduleId = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
const Range = Type.Object(
  { from: Type.Optional(Type.String({ format: 'date-time' })), to: Type.Optional(Type.String({ format: 'date-time' })) },
  { additionalProperties: false },
);
const OverrideBody = Type.Object(
  {
    schedule: Type.String({ minLength: 1 }),
    person: Type.String({ minLength: 1 }),
    start: Type.String({ format: 'date-time' }),
    end: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);
const OverrideId = Type.Object({ id: Type.Integer({ minimum: 1 }) });

/** `/api/v1/oncall`, `/api/v1/schedules/:id/shifts`, `/api/v1/oncall/overrides`. */
export function registerOncallRoutes(app: FastifyInstance, deps: OncallRouteDeps): void {
  const oncall = createOnCall(deps);
  const schedule = (id: string) => {
    const s = own(deps.schedules(), id);
    if (!s) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no schedule "${id}"`);
    return s;
  };
  const personView = (id: string | undefined) => (id === undefined ? null : { id, name: own(deps.people(), id)?.name ?? id });

  app.get('/api/v1/oncall', async () => {
    const now = deps.clock.now();
    const roster = await oncall.roster(now);
    return {
      schedules: roster.schedules.map(({ schedule, definition, current, overrides }) => ({
        schedule,
        timezone: definition.timezone,
        onCall: current
          ? { ...personView(current.person), since: iso(current.from), until: iso(current.until), source: current.source }
          : null,
        next: nextHandoffs(definition, overrides, now, 3).map((h) => ({ at: iso(h.at), person: personView(h.person) })),
      })),
      overrides: roster.overrides.map((o) => ({
        id: o.id,
        schedule: o.schedule,
        person: personView(o.person),
        start: iso(o.startsAt),
        end: iso(o.endsAt),
        author: o.author,
      })),
    };
  });

  app.get<{ Params: Static<typeof ScheduleId>; Querystring: Static<typeof Range> }>(
    '/api/v1/schedules/:id/shifts',
    { schema: { params: ScheduleId, querystring: Range } },
    async (req) => {
      const s = schedule(req.params.id);
      const now = deps.clock.now();
      const from = req.query.from ? Date.parse(req.query.from) : now;
      const to = req.query.to ? Date.parse(req.query.to) : from + 14 * 86_400_000;
      if (!(to > from)) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'querystring/to must be after from');
      if (to - from > MAX_RANGE_MS) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'querystring: the range may span at most 92 days');
      const timeline = await oncall.shifts(req.params.id, from, to);
      // Gone only if a reload removed the schedule while its overrides were being read.
      if (timeline === undefined) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no schedule "${req.params.id}"`);
      return {
        schedule: req.params.id,
        timezone: s.timezone,
        shifts: timeline.map((x) => ({
          person: personView(x.person),
          start: iso(x.start),
          end: iso(x.end),
          source: x.source,
        })),
      };
    },
  );

  app.post<{ Body: Static<typeof OverrideBody> }>('/api/v1/oncall/overrides', { schema: { body: OverrideBody } }, async (req, reply) => {
    const caller = authenticate(deps.tokens, req, 'operator');
    const b = req.body;
    schedule(b.schedule);
    if (!own(deps.people(), b.person))
      throw new VigilError('VIGIL_ERR_BAD_REQUEST', `body/person: no person "${b.person}" under people: in the config`);
    const start = Date.parse(b.start);
    const end = Date.parse(b.end);
    if (!(end > start)) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body/end must be after start');
    if (end <= deps.clock.now()) throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body/end is in the past');
    if (end - start > MAX_OVERRIDE_MS)
      throw new VigilError('VIGIL_ERR_BAD_REQUEST', 'body: an override lasts at most 366d; change the schedule instead');
    const o = await deps.alerts.addOverride({
      schedule: b.schedule,
      person: b.person,
      startsAt: start,
      endsAt: end,
      author: caller.name,
      createdAt: deps.clock.now(),
    });
    return reply
      .status(201)
      .send({ id: o.id, schedule: o.schedule, person: personView(o.person), start: iso(o.startsAt), end: iso(o.endsAt), author: o.author });
  });

  app.delete<{ Params: Static<typeof OverrideId> }>(
    '/api/v1/oncall/overrides/:id',
    { schema: { params: OverrideId } },
    async (req, reply) => {
      authenticate(deps.tokens, req, 'operator');
      if (!(await deps.alerts.deleteOverride(req.params.id))) throw new VigilError('VIGIL_ERR_NOT_FOUND', `no override ${req.params.id}`);
      return reply.status(204).send();
    },
  );
}
