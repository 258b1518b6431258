import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { createRedactor } from '../../src/lib/redactor.js';
import type { AnyProber, ProbeContext, ProbeDefinition, ProbeResult } from '../../src/probers/index.js';
import { runProbe, Shutdown } from '../../src/scheduler/index.js';
import { memoryLogger, memoryState } from '../helpers/context.js';

const SECRET = 'PLANTED-RUN-TOKEN-4242';
const def = {
  id: 'api',
  kind: 'http',
  schedule: '* * * * *',
  timeout: '200ms',
  retry: { count: 0, delay: '1s' },
  labels: {},
} as unknown as ProbeDefinition;

function run(probe: (ctx: ProbeContext) => Promise<ProbeResult>, withRedactor = true) {
  const log = memoryLogger('debug');
  const prober = {
    schema: {} as never,
    values: () => [],
    report: { target: () => 'stand-in' },
    probe: (_s: unknown, ctx: ProbeContext) => probe(ctx),
  } as AnyProber;
  const record = runProbe(def, 'manual', {
    clock: systemClock,
    logger: log.logger,
    probesDir: '.',
    state: memoryState(),
    shutdown: new Shutdown(),
    prober,
    ...(withRedactor ? { redactor: createRedactor([SECRET]) } : {}),
  });
  return { record, log };
}

describe('a run is redacted where its record is made', () => {
  it('message, details (deep), value names; and the prober gets the redactor in its context', async () => {
    let seen: ProbeContext | undefined;
    const { record } = run(async (ctx) => {
      seen = ctx;
      return {
        ok: false,
        code: 'HTTP_STATUS',
        message: `401: Bearer ${SECRET.slice(0, 12)}`,
        values: { [`x_${SECRET}`]: 1, status: 401 },
        details: { body: [{ echo: encodeURIComponent(SECRET) }], b64: Buffer.from(SECRET).toString('base64') },
      };
    });
    const r = await record;
    expect(seen?.redactor?.text(SECRET)).toBe('<secret>');
    expect(r.message).toBe('401: Bearer <secret>');
    expect(r.values).toEqual({ 'x_<secret>': 1, status: 401 });
    expect(r.details).toEqual({ body: [{ echo: '<secret>' }], b64: '<secret>' });
  });

  it('a thrown error: the record and the log line say no secret', async () => {
    const { record, log } = run(async () => {
      throw new Error(`connect to https://u:${SECRET}@h failed with ${SECRET}`);
    });
    const r = await record;
    expect(r.code).toBe('INTERNAL');
    expect(r.message).toBe('probe crashed: connect to https://u:<secret>@h failed with <secret>');
    const line = JSON.stringify(log.lines.find((l) => l.msg === 'prober threw instead of returning a failure'));
    expect(line).toContain('<secret>');
    expect(line).not.toContain('RUN-TOKEN');
  });

  it('without a redactor the record is as the prober made it', async () => {
    const { record } = run(async () => ({ ok: false, code: 'X', message: SECRET, values: {} }), false);
    expect((await record).message).toBe(SECRET);
  });
});
