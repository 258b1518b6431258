import { describe, expect, it } from 'vitest';
import { createOnCall, type Schedule } from '../../src/oncall/index.js';
import type { OncallOverride } from '../../src/store/index.js';
import { ManualClock } from '../helpers/clock.js';

// Who is on call, worked out by hand: a daily 09:00 UTC rotation from Mon 2026-11-02 puts alice on
// even days since then and bob on odd ones; 2026-11-26 is day 24, so alice from 09:00 to 09:00.

const Z = (iso: string) => Date.parse(iso);
const NOW = Z('2026-11-26T12:00:00Z');

const SCHEDULES: Record<string, Schedule> = {
  primary: { timezone: 'UTC', layers: [{ rotation: 'daily', handoff: '09:00', start: '2026-11-02', participants: ['alice', 'bob'] }] },
  secondary: { timezone: 'UTC', layers: [{ rotation: 'weekly', handoff: 'mon 09:00', start: '2026-11-02', participants: ['carol'] }] },
};

/** Overrides kept as a store keeps them: `overrides(now)` gives those that have not ended by `now`. */
function overrideStore(rows: Array<Omit<OncallOverride, 'id'>> = []) {
  const all: OncallOverride[] = rows.map((r, i) => ({ ...r, id: i + 1 }));
  const asked: number[] = [];
  return {
    asked,
    alerts: {
      overrides: async (now: number) => {
        asked.push(now);
        return all.filter((o) => o.endsAt > now);
      },
    },
  };
}

const override = (schedule: string, person: string, start: string, end: string, createdAt = NOW - 60_000) => ({
  schedule,
  person,
  startsAt: Z(start),
  endsAt: Z(end),
  author: 'ops',
  createdAt,
});

describe('createOnCall', () => {
  it('says who is on call now on every schedule, from the rotation', async () => {
    const { alerts, asked } = overrideStore();
    const oncall = createOnCall({ clock: new ManualClock(NOW), alerts, schedules: () => SCHEDULES });
    expect(await oncall.now()).toEqual({ primary: 'alice', secondary: 'carol' });
    // One read of the overrides for all schedules, not one per schedule.
    expect(asked).toHaveLength(1);
    expect(await oncall.at('primary', Z('2026-11-27T09:00:00Z'))).toEqual({
      person: 'bob',
      from: Z('2026-11-27T09:00:00Z'),
      until: Z('2026-11-28T09:00:00Z'),
      source: 'layer 0',
    });
  });

  it('applies overrides: the latest created wins where they overlap, and one that ended counts no more', async () => {
    const { alerts } = overrideStore([
      override('primary', 'bob', '2026-11-26T10:00:00Z', '2026-11-26T14:00:00Z', NOW - 120_000),
      override('primary', 'dave', '2026-11-26T11:00:00Z', '2026-11-26T13:00:00Z', NOW - 60_000),
      override('secondary', 'erin', '2026-11-20T00:00:00Z', '2026-11-21T00:00:00Z'),
    ]);
    const oncall = createOnCall({ clock: new ManualClock(NOW), alerts, schedules: () => SCHEDULES });
    expect(await oncall.now()).toEqual({ primary: 'dave', secondary: 'carol' });
    expect(await oncall.at('primary', Z('2026-11-26T13:30:00Z'))).toMatchObject({ person: 'bob', source: 'override' });
    expect(await oncall.at('primary', Z('2026-11-26T14:00:00Z'))).toMatchObject({ person: 'alice', source: 'layer 0' });

    const roster = await oncall.roster(NOW);
    expect(roster.overrides.map((o) => o.person)).toEqual(['bob', 'dave']);
    expect(roster.schedules.map((s) => [s.schedule, s.current?.person, s.current?.until, s.overrides.length])).toEqual([
      ['primary', 'dave', Z('2026-11-26T13:00:00Z'), 2],
      // Alone in the rotation: nobody ever takes over.
      ['secondary', 'carol', Number.POSITIVE_INFINITY, 0],
    ]);

    expect(
      (await oncall.shifts('primary', Z('2026-11-26T09:00:00Z'), Z('2026-11-26T18:00:00Z')))?.map((s) => [
        s.person,
        new Date(s.start).toISOString(),
        s.source,
      ]),
    ).toEqual([
      ['alice', '2026-11-26T09:00:00.000Z', 'layer 0'],
      ['bob', '2026-11-26T10:00:00.000Z', 'override'],
      ['dave', '2026-11-26T11:00:00.000Z', 'override'],
      ['bob', '2026-11-26T13:00:00.000Z', 'override'],
      ['alice', '2026-11-26T14:00:00.000Z', 'layer 0'],
    ]);
  });

  it('knows no schedule that is not configured, whatever its name, and reads the schedules anew on every call', async () => {
    const { alerts } = overrideStore();
    let schedules: Record<string, Schedule> = SCHEDULES;
    const oncall = createOnCall({ clock: new ManualClock(NOW), alerts, schedules: () => schedules });
    for (const name of ['nope', '__proto__', 'constructor', 'hasOwnProperty']) {
      expect(await oncall.at(name, NOW)).toBeUndefined();
      expect(await oncall.shifts(name, NOW, NOW + 3_600_000)).toBeUndefined();
    }
    // A reload replaced the schedules.
    schedules = {
      night: { timezone: 'UTC', layers: [{ rotation: 'daily', handoff: '21:00', start: '2026-11-01', participants: ['zoe'] }] },
    };
    expect(await oncall.now()).toEqual({ night: 'zoe' });
    expect(await oncall.at('primary', NOW)).toBeUndefined();
  });

  it('passes a failed store read on to the caller instead of answering "nobody"', async () => {
    const down = new Error('the database is down');
    const oncall = createOnCall({
      clock: new ManualClock(NOW),
      alerts: { overrides: () => Promise.reject(down) },
      schedules: () => SCHEDULES,
    });
    await expect(oncall.now()).rejects.toBe(down);
    await expect(oncall.at('primary', NOW)).rejects.toBe(down);
  });
});
