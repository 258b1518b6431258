import { type Static, Type } from '@sinclair/typebox';
import { probeAmqp } from './queue/amqp.js';
import { probeRedis } from './queue/redis.js';
import { checkEntry, defineProber, type SpecProblem } from './types.js';
import { credentialsProblem, shownUrl } from './url-credentials.js';

const schema = Type.Object(
  {
    broker: Type.Union([Type.Literal('amqp'), Type.Literal('redis')], { expected: 'amqp or redis' }),
    /** amqp(s)://user:password@host:port/vhost or redis(s)://user:password@host:port/db; the password by `${…}`. */
    url: Type.String({
      pattern: '^(amqps?|rediss?)://[^\\s]+$',
      expected: 'an amqp://, amqps://, redis:// or rediss:// URL',
    }),
    /** Round-trip a canary message through a temporary queue (AMQP) or list (Redis). */
    canary: Type.Boolean({ default: true }),
    /** A work queue to watch: an AMQP queue name, or the Redis key of a list or stream. */
    queue: Type.Optional(Type.String({ minLength: 1, maxLength: 255, expected: 'a queue name (AMQP) or a key (Redis)' })),
    /** Redis only: what `queue` holds. `list` when not given. */
    type: Type.Optional(Type.Union([Type.Literal('list'), Type.Literal('stream')], { expected: 'list or stream' })),
    /** AMQP only: at least this many consumers (workers) attached to `queue`. */
    minConsumers: Type.Optional(Type.Integer({ minimum: 0, expected: 'a whole number of consumers, 0 or more' })),
    /** At most this many messages waiting in `queue` (AMQP: ready; Redis: the list's or stream's length). */
    maxDepth: Type.Optional(Type.Integer({ minimum: 0, expected: 'a whole number of messages, 0 or more' })),
  },
  { additionalProperties: false },
);

/** The `queue` kind's own fields of a probe definition. */
export type QueueSpec = Static<typeof schema>;

/** What a definition watches, for the report: the broker's URL less its password, and the queue. */
function target(spec: QueueSpec): string {
  const url = shownUrl(spec.url);
  return spec.queue === undefined ? url : `${url} queue ${spec.queue}`;
}

export const queue = defineProber({
  schema,
  report: {
    target,
    // Every definition is queue-delivery evidence: a canary that comes back, workers consuming, a backlog in bounds.
    evidence: (spec, w) => checkEntry('queueDelivery', spec.id, target(spec), w),
  },
  values(spec) {
    const names: string[] = [];
    if (spec.canary) names.push('round_trip_ms');
    if (spec.queue !== undefined) names.push('depth');
    if (spec.queue !== undefined && spec.broker === 'amqp') names.push('consumers');
    return names;
  },
  check(spec) {
    const problems: SpecProblem[] = [];
    const scheme = /^([a-z]+):/.exec(spec.url)?.[1] ?? '';
    const schemes = spec.broker === 'amqp' ? ['amqp', 'amqps'] : ['redis', 'rediss'];
    if (!schemes.includes(scheme)) {
      problems.push({ path: 'url', message: `expected a ${schemes.join(':// or ')}:// URL for broker ${spec.broker}` });
    }
    const credentials = credentialsProblem(spec.url);
    if (credentials) problems.push({ path: 'url', message: credentials });
    if (spec.broker === 'redis' && spec.minConsumers !== undefined) {
      problems.push({ path: 'minConsumers', message: 'Redis lists and streams do not report their consumers: amqp only' });
    }
    if (spec.broker === 'amqp' && spec.type !== undefined) {
      problems.push({ path: 'type', message: 'an AMQP queue has no type to choose: redis only' });
    }
    for (const field of ['minConsumers', 'maxDepth', 'type'] as const) {
      if (spec[field] !== undefined && spec.queue === undefined) {
        problems.push({ path: field, message: 'needs queue: the name of the queue to watch' });
      }
    }
    if (!spec.canary && spec.queue === undefined) {
      problems.push({ path: 'canary', message: 'with canary: false and no queue, nothing is checked: name a queue or keep the canary' });
    }
    return problems;
  },
  probe(spec, ctx) {
    return spec.broker === 'amqp' ? probeAmqp(spec, ctx) : probeRedis(spec, ctx);
  },
});
