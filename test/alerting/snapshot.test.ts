import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createAlertSnapshot } from '../../src/alerting/index.js';
import { buildStatusPage } from '../../src/report/index.js';
import { createSqliteStore, type IncidentChange, type Store } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';
import { memoryLogger } from '../helpers/context.js';

// The "page not delivered" flag on `/` comes from the alert snapshot, which reads the month of
// outbox rows again only when a page is given up on (the dead count moves), not on every load.

const DAY = 86_400_000;

function opening(probeId: string, at: number): NonNullable<IncidentChange['open']> {
  return {
    probeId,
    rule: 'down',
    kind: 'http',
    severity: 'critical',
    state: 'open',
    summary: `${probeId} is down`,
    labels: {},
    channels: ['slack'],
    openedAt: at,
    lastError: { code: 'TIMEOUT', message: 'no answer in 5 s', at },
    flapping: false,
    notified: true,
  };
}

describe('undelivered pages on /', () => {
  let dir: string | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('flags an incident once its page is given up on, reads the outbox only then, and clears the flag after 30 days', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vigil-snapshot-'));
    const clock = new ManualClock();
    const s = createSqliteStore({ path: path.join(dir, 'vigil.db'), clock, logger: memoryLogger().logger });
    store = s;
    await s.ready();
    let reads = 0;
    const alerts = new Proxy(s.alerts, {
      get(target, name, receiver) {
        if (name === 'deliveries') reads++;
        return Reflect.get(target, name, receiver);
      },
    });
    const snapshot = createAlertSnapshot({ store: alerts, clock, logger: memoryLogger().logger, intervalMs: 5_000 });
    const open = (probeId: string) =>
      s.alerts.applyIncidentChange({
        open: opening(probeId, clock.now()),
        event: { at: clock.now(), type: 'opened', actor: 'vigil', detail: '3 failures' },
        notify: (i) => [{ channel: 'slack', action: 'trigger', dedupKey: `vigil-${i.id}`, payload: { id: i.id } }],
      });
    const giveUp = async (incidentId: number) => {
      const [page] = await s.alerts.notifications(incidentId);
      await s.alerts.markDead(page!.id, clock.now(), 'channel_not_found');
    };
    const flags = async () =>
      (
        await buildStatusPage({
          service: 'shop',
          clock,
          store: s,
          probes: () => [],
          isRunning: () => false,
          undelivered: async () => snapshot.current().undelivered,
          oncall: { roster: async () => ({ schedules: [], overrides: [] }) },
          people: () => ({}),
          reportUrl: '/api/v1/report?format=html',
        })
      ).incidents.map((i) => [i.probeId, i.undelivered]);

    const api = await open('api');
    await snapshot.start();
    expect(await flags()).toEqual([['api', false]]);

    await giveUp(api.id);
    await snapshot.refresh();
    expect(await flags()).toEqual([['api', true]]);
    const after = reads;
    // Loads and reads with no page given up on since: the month of deliveries is not read again.
    for (let i = 0; i < 3; i++) {
      await snapshot.refresh();
      expect(await flags()).toEqual([['api', true]]);
    }
    expect(reads).toBe(after);

    clock.jump(10 * DAY);
    const web = await open('web');
    await snapshot.refresh();
    expect(await flags()).toEqual([
      ['web', false],
      ['api', true],
    ]);
    await giveUp(web.id);
    await snapshot.refresh();
    expect(reads).toBe(after + 1);
    expect(await flags()).toEqual([
      ['web', true],
      ['api', true],
    ]);

    // 30 days after api's page was queued it is out of the page's month; web's is not yet.
    clock.jump(20 * DAY + 1);
    expect(await flags()).toEqual([
      ['web', true],
      ['api', false],
    ]);
    snapshot.stop();
  });
});
