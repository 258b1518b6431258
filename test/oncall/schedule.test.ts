import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { VigilError } from '../../src/lib/errors.js';
import {
  checkSchedules,
  instantToLocal,
  type Layer,
  localToInstant,
  nextHandoffs,
  type Override,
  oncallAt,
  PeopleSchema,
  type Person,
  type Schedule,
  SchedulesSchema,
  shifts,
} from '../../src/oncall/index.js';

/** Expected instants are written out in UTC so they do not depend on the code under test. */
const Z = (iso: string) => Date.parse(iso);
const H = 3_600_000;
const iso = (t: number) => new Date(t).toISOString();

const layer = (over: Partial<Layer> & Pick<Layer, 'rotation' | 'handoff'>): Layer => ({
  start: '2026-11-02',
  participants: ['a', 'b', 'c'],
  ...over,
});
const schedule = (timezone: string, ...layers: Layer[]): Schedule => ({ timezone, layers });

/** The final timeline as `person start→end (hours)` lines: DST cases read at a glance. */
const timeline = (s: Schedule, from: string, to: string, overrides: Override[] = []) =>
  shifts(s, overrides, Z(from), Z(to)).map((x) => `${x.person} ${iso(x.start)}→${iso(x.end)} ${(x.end - x.start) / H}h`);

describe('localToInstant / instantToLocal', () => {
  const berlin = (year: number, month: number, day: number, hour: number, minute = 0) =>
    localToInstant('Europe/Berlin', { year, month, day, hour, minute });
  const newYork = (year: number, month: number, day: number, hour: number, minute = 0) =>
    localToInstant('America/New_York', { year, month, day, hour, minute });

  it('converts ordinary wall-clock times in winter and summer', () => {
    expect(iso(berlin(2026, 11, 2, 9))).toBe('2026-11-02T08:00:00.000Z');
    expect(iso(berlin(2027, 7, 1, 9))).toBe('2027-07-01T07:00:00.000Z');
    expect(iso(newYork(2027, 1, 15, 9))).toBe('2027-01-15T14:00:00.000Z');
    expect(iso(localToInstant('UTC', { year: 2027, month: 1, day: 1, hour: 0, minute: 0 }))).toBe('2027-01-01T00:00:00.000Z');
    expect(iso(localToInstant('Asia/Kolkata', { year: 2027, month: 1, day: 1, hour: 9, minute: 0 }))).toBe('2027-01-01T03:30:00.000Z');
  });

  it('moves a time in the spring-forward gap to the first instant after it', () => {
    // Berlin 2027-03-28: 02:00 CET jumps to 03:00 CEST at 01:00Z.
    expect(iso(berlin(2027, 3, 28, 1, 59))).toBe('2027-03-28T00:59:00.000Z');
    expect(iso(berlin(2027, 3, 28, 2, 0))).toBe('2027-03-28T01:00:00.000Z');
    expect(iso(berlin(2027, 3, 28, 2, 30))).toBe('2027-03-28T01:00:00.000Z');
    expect(iso(berlin(2027, 3, 28, 2, 59))).toBe('2027-03-28T01:00:00.000Z');
    expect(iso(berlin(2027, 3, 28, 3, 0))).toBe('2027-03-28T01:00:00.000Z');
    expect(iso(berlin(2027, 3, 28, 3, 1))).toBe('2027-03-28T01:01:00.000Z');
    // New York 2027-03-14: 02:00 EST jumps to 03:00 EDT at 07:00Z.
    expect(iso(newYork(2027, 3, 14, 2, 30))).toBe('2027-03-14T07:00:00.000Z');
    // Samoa skipped all of 2011-12-30: any time that day is the next midnight.
    expect(iso(localToInstant('Pacific/Apia', { year: 2011, month: 12, day: 30, hour: 12, minute: 0 }))).toBe('2011-12-30T10:00:00.000Z');
  });

  it('takes the first occurrence of an ambiguous fall-back time', () => {
    // Berlin 2026-10-25 and 2027-10-31: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:xx happens twice.
    expect(iso(berlin(2026, 10, 25, 2, 30))).toBe('2026-10-25T00:30:00.000Z');
    expect(iso(berlin(2026, 10, 25, 2, 0))).toBe('2026-10-25T00:00:00.000Z');
    expect(iso(berlin(2026, 10, 25, 3, 0))).toBe('2026-10-25T02:00:00.000Z');
    expect(iso(berlin(2027, 10, 31, 2, 30))).toBe('2027-10-31T00:30:00.000Z');
    // New York 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00Z; 01:xx happens twice.
    expect(iso(newYork(2026, 11, 1, 1, 30))).toBe('2026-11-01T05:30:00.000Z');
    expect(iso(newYork(2026, 11, 1, 2, 0))).toBe('2026-11-01T07:00:00.000Z');
  });

  it('reads the wall clock of an instant, both readings of the repeated hour alike', () => {
    expect(instantToLocal('Europe/Berlin', Z('2026-10-25T00:30:00Z'))).toEqual({
      year: 2026,
      month: 10,
      day: 25,
      hour: 2,
      minute: 30,
      second: 0,
      weekday: 0,
    });
    expect(instantToLocal('Europe/Berlin', Z('2026-10-25T01:30:00Z'))).toEqual({
      year: 2026,
      month: 10,
      day: 25,
      hour: 2,
      minute: 30,
      second: 0,
      weekday: 0,
    });
    expect(instantToLocal('America/New_York', Z('2027-03-14T07:00:00Z'))).toMatchObject({ day: 14, hour: 3, minute: 0 });
    expect(instantToLocal('America/New_York', Z('2027-03-14T06:59:59.999Z'))).toMatchObject({ day: 14, hour: 1, minute: 59, second: 59 });
    expect(instantToLocal('Asia/Tokyo', Z('2026-12-31T15:00:00Z'))).toMatchObject({ year: 2027, month: 1, day: 1, hour: 0, weekday: 5 });
  });

  it('round-trips every quarter hour around each DST change; only the repeated hour maps back to its first reading', () => {
    const cases = [
      ['Europe/Berlin', '2027-03-27T00:00:00Z', 0],
      ['Europe/Berlin', '2026-10-24T00:00:00Z', 4],
      ['Europe/Berlin', '2027-10-30T00:00:00Z', 4],
      ['America/New_York', '2027-03-13T00:00:00Z', 0],
      ['America/New_York', '2026-10-31T00:00:00Z', 4],
      ['Australia/Lord_Howe', '2027-04-03T00:00:00Z', 2], // DST ends by 30 minutes
    ] as const;
    for (const [zone, start, repeats] of cases) {
      let repeated = 0;
      for (let t = Z(start) + 12 * H; t < Z(start) + 36 * H; t += 15 * 60_000) {
        const back = localToInstant(zone, instantToLocal(zone, t));
        if (back !== t) {
          expect(back).toBeLessThan(t);
          expect(instantToLocal(zone, back)).toEqual(instantToLocal(zone, t));
          repeated++;
        }
      }
      expect(repeated, `${zone} from ${start}`).toBe(repeats);
    }
  });
});

describe('rotations', () => {
  it('weekly: a week each, in list order, wrapping around', () => {
    const s = schedule('Europe/Berlin', layer({ rotation: 'weekly', handoff: 'mon 09:00' }));
    expect(timeline(s, '2026-11-01T00:00:00Z', '2026-11-30T08:00:00Z')).toEqual([
      'a 2026-11-02T08:00:00.000Z→2026-11-09T08:00:00.000Z 168h',
      'b 2026-11-09T08:00:00.000Z→2026-11-16T08:00:00.000Z 168h',
      'c 2026-11-16T08:00:00.000Z→2026-11-23T08:00:00.000Z 168h',
      'a 2026-11-23T08:00:00.000Z→2026-11-30T08:00:00.000Z 168h',
    ]);
    expect(oncallAt(s, [], Z('2026-11-04T12:00:00Z'))).toEqual({
      person: 'a',
      from: Z('2026-11-02T08:00:00Z'),
      until: Z('2026-11-09T08:00:00Z'),
      source: 'layer 0',
    });
    // One millisecond before the handoff it is still a; at it, b.
    expect(oncallAt(s, [], Z('2026-11-09T07:59:59.999Z'))?.person).toBe('a');
    expect(oncallAt(s, [], Z('2026-11-09T08:00:00Z'))?.person).toBe('b');
  });

  it('weekly: the first shift starts at the first handoff on or after the start date; before it nobody', () => {
    // 2026-11-04 is a Wednesday: the first "mon 09:00" on or after it is 2026-11-09.
    const s = schedule('Europe/Berlin', layer({ rotation: 'weekly', handoff: 'mon 09:00', start: '2026-11-04' }));
    expect(oncallAt(s, [], Z('2026-11-05T12:00:00Z'))).toBeUndefined();
    expect(oncallAt(s, [], Z('2026-11-09T08:00:00Z'))).toMatchObject({ person: 'a', from: Z('2026-11-09T08:00:00Z') });
  });

  it('weekly: seven local days at the same wall-clock time, 167 h or 169 h across a DST change', () => {
    const spring = schedule('Europe/Berlin', layer({ rotation: 'weekly', handoff: 'mon 09:00', start: '2027-03-22' }));
    expect(timeline(spring, '2027-03-22T00:00:00Z', '2027-04-05T07:00:00Z')).toEqual([
      'a 2027-03-22T08:00:00.000Z→2027-03-29T07:00:00.000Z 167h',
      'b 2027-03-29T07:00:00.000Z→2027-04-05T07:00:00.000Z 168h',
    ]);
    const autumn = schedule('Europe/Berlin', layer({ rotation: 'weekly', handoff: 'mon 09:00', start: '2026-10-19' }));
    expect(timeline(autumn, '2026-10-19T00:00:00Z', '2026-10-26T08:00:00Z')).toEqual([
      'a 2026-10-19T07:00:00.000Z→2026-10-26T08:00:00.000Z 169h',
    ]);
  });

  it('daily 09:00 in Europe/Berlin: 23 h on 2027-03-28, 25 h on 2026-10-25 and 2027-10-31', () => {
    const daily = (start: string) => schedule('Europe/Berlin', layer({ rotation: 'daily', handoff: '09:00', start }));
    expect(timeline(daily('2027-03-27'), '2027-03-27T00:00:00Z', '2027-03-29T07:00:00Z')).toEqual([
      'a 2027-03-27T08:00:00.000Z→2027-03-28T07:00:00.000Z 23h',
      'b 2027-03-28T07:00:00.000Z→2027-03-29T07:00:00.000Z 24h',
    ]);
    expect(timeline(daily('2026-10-24'), '2026-10-24T00:00:00Z', '2026-10-26T08:00:00Z')).toEqual([
      'a 2026-10-24T07:00:00.000Z→2026-10-25T08:00:00.000Z 25h',
      'b 2026-10-25T08:00:00.000Z→2026-10-26T08:00:00.000Z 24h',
    ]);
    expect(timeline(daily('2027-10-30'), '2027-10-30T00:00:00Z', '2027-11-01T08:00:00Z')).toEqual([
      'a 2027-10-30T07:00:00.000Z→2027-10-31T08:00:00.000Z 25h',
      'b 2027-10-31T08:00:00.000Z→2027-11-01T08:00:00.000Z 24h',
    ]);
  });

  it('daily 02:30 in Europe/Berlin: nonexistent on 2027-03-28 (handoff at 03:00 CEST), first occurrence on fall-back days', () => {
    const daily = (start: string) => schedule('Europe/Berlin', layer({ rotation: 'daily', handoff: '02:30', start }));
    // 02:30 CET = 01:30Z; on the 28th the handoff moves to 03:00 CEST = 01:00Z; then 02:30 CEST = 00:30Z.
    expect(timeline(daily('2027-03-27'), '2027-03-27T00:00:00Z', '2027-03-29T00:30:00Z')).toEqual([
      'a 2027-03-27T01:30:00.000Z→2027-03-28T01:00:00.000Z 23.5h',
      'b 2027-03-28T01:00:00.000Z→2027-03-29T00:30:00.000Z 23.5h',
    ]);
    // 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET): the handoff is the first, so the next shift is 25 h.
    expect(timeline(daily('2026-10-24'), '2026-10-24T00:00:00Z', '2026-10-26T01:30:00Z')).toEqual([
      'a 2026-10-24T00:30:00.000Z→2026-10-25T00:30:00.000Z 24h',
      'b 2026-10-25T00:30:00.000Z→2026-10-26T01:30:00.000Z 25h',
    ]);
    expect(timeline(daily('2027-10-30'), '2027-10-30T00:00:00Z', '2027-11-01T01:30:00Z')).toEqual([
      'a 2027-10-30T00:30:00.000Z→2027-10-31T00:30:00.000Z 24h',
      'b 2027-10-31T00:30:00.000Z→2027-11-01T01:30:00.000Z 25h',
    ]);
    // Between the two readings of 02:30 on 2026-10-25, b is already on call.
    expect(oncallAt(daily('2026-10-24'), [], Z('2026-10-25T01:00:00Z'))?.person).toBe('b');
  });

  it('daily in America/New_York across 2027-03-14 and 2026-11-01', () => {
    const daily = (handoff: string, start: string) => schedule('America/New_York', layer({ rotation: 'daily', handoff, start }));
    expect(timeline(daily('09:00', '2027-03-13'), '2027-03-13T00:00:00Z', '2027-03-15T13:00:00Z')).toEqual([
      'a 2027-03-13T14:00:00.000Z→2027-03-14T13:00:00.000Z 23h',
      'b 2027-03-14T13:00:00.000Z→2027-03-15T13:00:00.000Z 24h',
    ]);
    expect(timeline(daily('09:00', '2026-10-31'), '2026-10-31T00:00:00Z', '2026-11-02T14:00:00Z')).toEqual([
      'a 2026-10-31T13:00:00.000Z→2026-11-01T14:00:00.000Z 25h',
      'b 2026-11-01T14:00:00.000Z→2026-11-02T14:00:00.000Z 24h',
    ]);
    // 02:30 does not exist on 2027-03-14: the handoff is 03:00 EDT = 07:00Z.
    expect(timeline(daily('02:30', '2027-03-13'), '2027-03-13T00:00:00Z', '2027-03-15T06:30:00Z')).toEqual([
      'a 2027-03-13T07:30:00.000Z→2027-03-14T07:00:00.000Z 23.5h',
      'b 2027-03-14T07:00:00.000Z→2027-03-15T06:30:00.000Z 23.5h',
    ]);
    // 01:30 happens twice on 2026-11-01 (05:30Z EDT, 06:30Z EST): the first.
    expect(timeline(daily('01:30', '2026-10-31'), '2026-10-31T00:00:00Z', '2026-11-02T06:30:00Z')).toEqual([
      'a 2026-10-31T05:30:00.000Z→2026-11-01T05:30:00.000Z 24h',
      'b 2026-11-01T05:30:00.000Z→2026-11-02T06:30:00.000Z 25h',
    ]);
  });

  it('{ every: 12h }: fixed 12 h in absolute time from the first handoff, drifting on the wall clock across DST', () => {
    const s = schedule(
      'Europe/Berlin',
      layer({ rotation: { every: '12h' }, handoff: '09:00', start: '2027-03-27', participants: ['a', 'b'] }),
    );
    expect(timeline(s, '2027-03-27T00:00:00Z', '2027-03-29T08:00:00Z')).toEqual([
      'a 2027-03-27T08:00:00.000Z→2027-03-27T20:00:00.000Z 12h',
      'b 2027-03-27T20:00:00.000Z→2027-03-28T08:00:00.000Z 12h',
      'a 2027-03-28T08:00:00.000Z→2027-03-28T20:00:00.000Z 12h', // 10:00 CEST on the wall clock
      'b 2027-03-28T20:00:00.000Z→2027-03-29T08:00:00.000Z 12h',
    ]);
    // Far ahead it is still arithmetic: 1000 shifts after the first, a again.
    expect(oncallAt(s, [], Z('2027-03-27T08:00:00Z') + 1000 * 12 * H + 1)).toMatchObject({
      person: 'a',
      from: Z('2027-03-27T08:00:00Z') + 1000 * 12 * H,
    });
  });

  it('a participant listed twice in a row keeps one merged stretch', () => {
    const s = schedule('UTC', layer({ rotation: 'daily', handoff: '09:00', participants: ['a', 'a', 'b'] }));
    expect(oncallAt(s, [], Z('2026-11-02T12:00:00Z'))).toMatchObject({
      person: 'a',
      from: Z('2026-11-02T09:00:00Z'),
      until: Z('2026-11-04T09:00:00Z'),
    });
  });
});

describe('layers and overrides', () => {
  const weekdays: Array<'mon' | 'tue' | 'wed' | 'thu' | 'fri'> = ['mon', 'tue', 'wed', 'thu', 'fri'];
  const allDay = layer({ rotation: 'weekly', handoff: 'mon 09:00', participants: ['alice', 'bob'] });
  const business = layer({
    rotation: 'daily',
    handoff: '09:00',
    participants: ['xena', 'yuri'],
    restrict: { days: weekdays, from: '09:00', to: '17:00' },
  });
  const s = schedule('Europe/Berlin', allDay, business);

  it('a business-hours layer above a 24/7 layer decides inside its hours, the 24/7 layer outside them', () => {
    // Tuesday 2026-11-03 10:00 CET: the restricted layer (index 1) has yuri (day 2 of its rotation).
    expect(oncallAt(s, [], Z('2026-11-03T09:00:00Z'))).toEqual({
      person: 'yuri',
      from: Z('2026-11-03T08:00:00Z'),
      until: Z('2026-11-03T16:00:00Z'),
      source: 'layer 1',
    });
    // Tuesday 18:00: outside business hours, alice from the 24/7 layer until Wednesday 09:00.
    expect(oncallAt(s, [], Z('2026-11-03T17:00:00Z'))).toEqual({
      person: 'alice',
      from: Z('2026-11-03T16:00:00Z'),
      until: Z('2026-11-04T08:00:00Z'),
      source: 'layer 0',
    });
    // Saturday: alice all weekend, from Friday 17:00 to Monday 09:00 (when bob's week starts).
    expect(oncallAt(s, [], Z('2026-11-07T12:00:00Z'))).toMatchObject({
      person: 'alice',
      from: Z('2026-11-06T16:00:00Z'),
      until: Z('2026-11-09T08:00:00Z'),
    });
    expect(timeline(s, '2026-11-02T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual([
      'xena 2026-11-02T08:00:00.000Z→2026-11-02T16:00:00.000Z 8h',
      'alice 2026-11-02T16:00:00.000Z→2026-11-03T00:00:00.000Z 8h',
    ]);
  });

  it('the order of layers is their priority: a 24/7 layer listed last hides the restricted one', () => {
    const flipped = schedule('Europe/Berlin', business, allDay);
    expect(oncallAt(flipped, [], Z('2026-11-03T09:00:00Z'))).toMatchObject({ person: 'alice', source: 'layer 1' });
  });

  it('restricted windows follow the local clock across DST and may run past midnight', () => {
    const nights = schedule(
      'Europe/Berlin',
      layer({
        rotation: 'weekly',
        handoff: 'mon 09:00',
        start: '2027-03-22',
        participants: ['nina'],
        restrict: { days: ['sat'], from: '22:00', to: '06:00' },
      }),
    );
    // Saturday 22:00 CET (21:00Z) to Sunday 06:00 CEST (04:00Z): 7 h, as the clocks skip an hour.
    expect(timeline(nights, '2027-03-22T00:00:00Z', '2027-04-01T00:00:00Z')).toEqual([
      'nina 2027-03-27T21:00:00.000Z→2027-03-28T04:00:00.000Z 7h',
    ]);
  });

  it('overrides win over every layer, and their edges are the reported boundaries', () => {
    const o: Override = { schedule: 'primary', person: 'carol', start: Z('2026-11-03T13:00:00Z'), end: Z('2026-11-03T15:00:00Z') };
    expect(oncallAt(s, [o], Z('2026-11-03T14:00:00Z'))).toEqual({ person: 'carol', from: o.start, until: o.end, source: 'override' });
    expect(oncallAt(s, [o], Z('2026-11-03T12:00:00Z'))).toEqual({
      person: 'yuri',
      from: Z('2026-11-03T08:00:00Z'),
      until: o.start,
      source: 'layer 1',
    });
    expect(oncallAt(s, [o], Z('2026-11-03T15:00:00Z'))).toEqual({
      person: 'yuri',
      from: o.end,
      until: Z('2026-11-03T16:00:00Z'),
      source: 'layer 1',
    });
    // An override where no layer has anyone (before the first handoff) still puts someone on call.
    const early: Override = { ...o, start: Z('2026-10-01T00:00:00Z'), end: Z('2026-10-02T00:00:00Z') };
    expect(oncallAt(s, [early], Z('2026-10-01T12:00:00Z'))).toMatchObject({ person: 'carol', source: 'override' });
    expect(oncallAt(s, [early], Z('2026-10-02T12:00:00Z'))).toBeUndefined();
  });

  it('of overlapping overrides the later in the list wins; an empty or inverted one is ignored', () => {
    const first: Override = { schedule: 'primary', person: 'carol', start: Z('2026-11-03T10:00:00Z'), end: Z('2026-11-03T14:00:00Z') };
    const second: Override = { schedule: 'primary', person: 'dana', start: Z('2026-11-03T12:00:00Z'), end: Z('2026-11-03T13:00:00Z') };
    const inverted: Override = { schedule: 'primary', person: 'eve', start: Z('2026-11-03T13:00:00Z'), end: Z('2026-11-03T12:00:00Z') };
    expect(timeline(s, '2026-11-03T08:00:00Z', '2026-11-03T16:00:00Z', [first, second, inverted])).toEqual([
      'yuri 2026-11-03T08:00:00.000Z→2026-11-03T10:00:00.000Z 2h',
      'carol 2026-11-03T10:00:00.000Z→2026-11-03T12:00:00.000Z 2h',
      'dana 2026-11-03T12:00:00.000Z→2026-11-03T13:00:00.000Z 1h',
      'carol 2026-11-03T13:00:00.000Z→2026-11-03T14:00:00.000Z 1h',
      'yuri 2026-11-03T14:00:00.000Z→2026-11-03T16:00:00.000Z 2h',
    ]);
    expect(oncallAt(s, [second, first], Z('2026-11-03T12:30:00Z'))?.person).toBe('carol');
  });

  it('an override for the person already on call extends the same stretch', () => {
    const o: Override = { schedule: 'primary', person: 'yuri', start: Z('2026-11-03T15:00:00Z'), end: Z('2026-11-03T18:00:00Z') };
    expect(oncallAt(s, [o], Z('2026-11-03T12:00:00Z'))).toEqual({
      person: 'yuri',
      from: Z('2026-11-03T08:00:00Z'),
      until: o.end,
      source: 'layer 1',
    });
    expect(oncallAt(s, [o], Z('2026-11-03T17:00:00Z'))).toEqual({
      person: 'yuri',
      from: Z('2026-11-03T08:00:00Z'),
      until: o.end,
      source: 'override',
    });
  });
});

describe('empty schedules', () => {
  it('no layers, or layers without participants, put nobody on call', () => {
    for (const s of [
      schedule('Europe/Berlin'),
      schedule('Europe/Berlin', layer({ rotation: 'daily', handoff: '09:00', participants: [] })),
    ]) {
      expect(oncallAt(s, [], Z('2026-11-03T12:00:00Z'))).toBeUndefined();
      expect(shifts(s, [], Z('2026-11-01T00:00:00Z'), Z('2026-12-01T00:00:00Z'))).toEqual([]);
      expect(nextHandoffs(s, [], Z('2026-11-03T12:00:00Z'), 3)).toEqual([]);
    }
  });

  it('an empty layer falls through to the one below it', () => {
    const s = schedule(
      'UTC',
      layer({ rotation: 'daily', handoff: '09:00' }),
      layer({ rotation: 'daily', handoff: '09:00', participants: [] }),
    );
    expect(oncallAt(s, [], Z('2026-11-03T12:00:00Z'))).toMatchObject({ person: 'b', source: 'layer 0' });
  });
});

describe('shifts()', () => {
  it('merges a person’s adjacent stretches across layers and sources, clips to the range, and leaves gaps out', () => {
    const s = schedule(
      'UTC',
      layer({ rotation: 'weekly', handoff: 'mon 09:00', participants: ['alice'] }),
      layer({
        rotation: 'daily',
        handoff: '09:00',
        participants: ['alice', 'bob'],
        restrict: { days: ['mon', 'tue'], from: '09:00', to: '17:00' },
      }),
    );
    expect(shifts(s, [], Z('2026-11-02T12:00:00Z'), Z('2026-11-04T12:00:00Z'))).toEqual([
      // Monday's business hours are alice's too (layer 1, day 0): one stretch with layer 0 around it.
      { person: 'alice', start: Z('2026-11-02T12:00:00Z'), end: Z('2026-11-03T09:00:00Z'), source: 'layer 1' },
      { person: 'bob', start: Z('2026-11-03T09:00:00Z'), end: Z('2026-11-03T17:00:00Z'), source: 'layer 1' },
      { person: 'alice', start: Z('2026-11-03T17:00:00Z'), end: Z('2026-11-04T12:00:00Z'), source: 'layer 0' },
    ]);
    expect(shifts(s, [], Z('2026-11-01T00:00:00Z'), Z('2026-11-02T10:00:00Z'))).toEqual([
      { person: 'alice', start: Z('2026-11-02T09:00:00Z'), end: Z('2026-11-02T10:00:00Z'), source: 'layer 1' },
    ]);
    expect(shifts(s, [], Z('2026-11-04T00:00:00Z'), Z('2026-11-04T00:00:00Z'))).toEqual([]);
    expect(shifts(s, [], Z('2026-11-05T00:00:00Z'), Z('2026-11-04T00:00:00Z'))).toEqual([]);
  });

  it('refuses a range with more changes than one call walks, with a stable code', () => {
    const s = schedule('UTC', layer({ rotation: { every: '1h' }, handoff: '00:00', start: '2026-01-01' }));
    expect(shifts(s, [], Z('2026-01-01T00:00:00Z'), Z('2026-01-08T00:00:00Z'))).toHaveLength(7 * 24);
    let caught: unknown;
    try {
      shifts(s, [], Z('2026-01-01T00:00:00Z'), Z('2032-01-01T00:00:00Z'));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(VigilError);
    expect((caught as VigilError).code).toBe('VIGIL_ERR_BAD_REQUEST');
  });
});

describe('nextHandoffs()', () => {
  it('lists the next n changes of person, including to and from nobody', () => {
    const s = schedule(
      'Europe/Berlin',
      layer({
        rotation: 'daily',
        handoff: '09:00',
        participants: ['xena', 'yuri'],
        restrict: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' },
      }),
    );
    const next = nextHandoffs(s, [], Z('2026-11-02T12:00:00Z'), 3);
    expect(next).toEqual([
      { at: Z('2026-11-02T16:00:00Z'), person: undefined, previous: 'xena', source: undefined },
      { at: Z('2026-11-03T08:00:00Z'), person: 'yuri', previous: undefined, source: 'layer 0' },
      { at: Z('2026-11-03T16:00:00Z'), person: undefined, previous: 'yuri', source: undefined },
    ]);
    expect(nextHandoffs(s, [], Z('2026-11-02T12:00:00Z'), 0)).toEqual([]);
  });

  it('skips handoffs that do not change the person, and starts strictly after t', () => {
    const s = schedule('UTC', layer({ rotation: 'daily', handoff: '09:00', participants: ['a', 'a', 'b'] }));
    const o: Override = { schedule: 'primary', person: 'c', start: Z('2026-11-05T00:00:00Z'), end: Z('2026-11-05T06:00:00Z') };
    expect(nextHandoffs(s, [o], Z('2026-11-02T09:00:00Z'), 4).map((h) => [iso(h.at), h.person, h.source])).toEqual([
      ['2026-11-04T09:00:00.000Z', 'b', 'layer 0'],
      ['2026-11-05T00:00:00.000Z', 'c', 'override'],
      ['2026-11-05T06:00:00.000Z', 'b', 'layer 0'],
      ['2026-11-05T09:00:00.000Z', 'a', 'layer 0'],
    ]);
  });

  it('finds the first handoff of a schedule that has not started, and nothing when nothing will change', () => {
    const future = schedule('UTC', layer({ rotation: 'daily', handoff: '09:00', start: '2027-01-01' }));
    expect(nextHandoffs(future, [], Z('2026-11-02T00:00:00Z'), 1)).toEqual([
      { at: Z('2027-01-01T09:00:00Z'), person: 'a', previous: undefined, source: 'layer 0' },
    ]);
    const solo = schedule('UTC', layer({ rotation: 'weekly', handoff: 'mon 09:00', participants: ['alice'] }));
    expect(nextHandoffs(solo, [], Z('2026-12-01T00:00:00Z'), 3)).toEqual([]);
    expect(oncallAt(solo, [], Z('2026-12-01T00:00:00Z'))).toEqual({
      person: 'alice',
      from: Z('2026-11-02T09:00:00Z'),
      until: Number.POSITIVE_INFINITY,
      source: 'layer 0',
    });
  });
});

describe('config', () => {
  const people: Record<string, Person> = {
    alice: { name: 'Alice Ng', email: 'alice@example.com', slack: 'U024BE7LH', pagerduty: true },
    bob: { name: 'Bob', email: 'bob@example.com', pagerduty: false },
  };

  it('the schemas accept the documented example and fill defaults', () => {
    const raw = {
      people: {
        alice: { name: 'Alice Ng', email: 'alice@example.com', slack: 'U024BE7LH', pagerduty: true },
        bob: { name: 'Bob', email: 'bob@example.com' },
      },
      schedules: {
        primary: {
          timezone: 'Europe/Berlin',
          layers: [
            { rotation: 'weekly', handoff: 'mon 09:00', start: '2026-11-02', participants: ['alice', 'bob'] },
            {
              rotation: { every: '12h' },
              handoff: '08:00',
              start: '2026-11-02',
              participants: ['bob'],
              restrict: { from: '09:00', to: '17:00' },
            },
          ],
        },
      },
    };
    const p = Value.Default(PeopleSchema, structuredClone(raw.people));
    const s = Value.Default(SchedulesSchema, structuredClone(raw.schedules));
    expect(Value.Check(PeopleSchema, p)).toBe(true);
    expect(Value.Check(SchedulesSchema, s)).toBe(true);
    expect((p as Record<string, Person>).bob?.pagerduty).toBe(false);
    expect((s as Record<string, Schedule>).primary?.layers[1]?.restrict?.days).toEqual(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
    expect(checkSchedules(p as Record<string, Person>, s as Record<string, Schedule>)).toEqual([]);
  });

  it('the schemas reject malformed fields and unknown keys', () => {
    const base = { timezone: 'UTC', layers: [{ rotation: 'daily', handoff: '09:00', start: '2026-11-02', participants: ['alice'] }] };
    const bad = (patch: Record<string, unknown>) => ({ primary: { ...base, layers: [{ ...base.layers[0], ...patch }] } });
    expect(Value.Check(SchedulesSchema, { primary: base })).toBe(true);
    expect(Value.Check(SchedulesSchema, bad({ handoff: '9:00' }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ handoff: 'monday 09:00' }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ rotation: 'hourly' }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ rotation: { every: 'often' } }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ start: '02.11.2026' }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ restrict: { days: [], from: '09:00', to: '17:00' } }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ restrict: { from: '09:00', to: '25:00' } }))).toBe(false);
    expect(Value.Check(SchedulesSchema, bad({ participant: ['alice'] }))).toBe(false);
    expect(Value.Check(SchedulesSchema, { primary: { ...base, overrides: [] } })).toBe(false);
    expect(Value.Check(PeopleSchema, { alice: { name: 'Alice', slack: '@alice' } })).toBe(false);
    expect(Value.Check(PeopleSchema, { alice: { name: 'Alice', phone: '+49' } })).toBe(false);
  });

  it('checkSchedules reports unknown people and zones, handoffs that do not fit the rotation, impossible dates', () => {
    const s: Record<string, Schedule> = {
      primary: {
        timezone: 'Europa/Berlin',
        layers: [
          { rotation: 'weekly', handoff: '09:00', start: '2026-11-02', participants: ['alice', 'dave'] },
          { rotation: 'daily', handoff: 'mon 09:00', start: '2026-02-30', participants: ['bob'] },
          { rotation: { every: '12m' }, handoff: 'tue 09:00', start: '2026-11-02', participants: [] },
        ],
      },
      secondary: { timezone: 'Mars/Olympus_Mons', layers: [] },
      tertiary: { timezone: 'UTC', layers: [] },
    };
    expect(checkSchedules({ ...people, ghost: { name: 'Ghost', pagerduty: false } }, s)).toEqual([
      {
        path: 'people.ghost',
        message: 'expected at least one way to reach the person (email, opsgenie, pagerduty: true, slack or telegram)',
      },
      {
        path: 'schedules.primary.timezone',
        message:
          'expected an IANA time zone such as Europe/Berlin or America/New_York, got "Europa/Berlin" (did you mean "Europe/Berlin"?)',
      },
      {
        path: 'schedules.primary.layers[0].handoff',
        message: 'expected a weekday and time like "mon 09:00" for a weekly rotation, got "09:00"',
      },
      {
        path: 'schedules.primary.layers[0].participants[1]',
        message: 'expected a person defined under people: (alice, bob, ghost), got "dave"',
      },
      {
        path: 'schedules.primary.layers[1].handoff',
        message: 'expected a time like "09:00" for a daily rotation (a weekday goes only with weekly), got "mon 09:00"',
      },
      { path: 'schedules.primary.layers[1].start', message: 'expected a calendar date like 2026-11-02, got "2026-02-30" (no such day)' },
      {
        path: 'schedules.primary.layers[2].handoff',
        message: 'expected a time like "09:00" for an { every: … } rotation (a weekday goes only with weekly), got "tue 09:00"',
      },
      { path: 'schedules.primary.layers[2].rotation.every', message: 'expected a shift of at least 1h, got 12m' },
      {
        path: 'schedules.secondary.timezone',
        message: 'expected an IANA time zone such as Europe/Berlin or America/New_York, got "Mars/Olympus_Mons"',
      },
    ]);
  });
});
