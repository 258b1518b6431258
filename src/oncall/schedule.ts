import { type Static, Type } from '@sinclair/typebox';
import { ms } from '../lib/duration.js';
import { VigilError } from '../lib/errors.js';
import { fieldOf } from '../lib/fields.js';
import { Duration } from '../lib/schema.js';
import { contactFields } from '../notify/index.js';

// ---------------------------------------------------------------------------------------------
// Config schema
// ---------------------------------------------------------------------------------------------

const NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9._-]*$';
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const TIME = '([01]\\d|2[0-3]):[0-5]\\d';
const HANDOFF_PATTERN = `^((${WEEKDAYS.join('|')}) )?${TIME}$`;

/** Someone who can be put on call and paged. */
export const PersonSchema = Type.Object(
  {
    /** How messages and the API show the person. */
    name: Type.String({ minLength: 1 }),
    email: Type.Optional(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$', expected: 'an email address like alice@example.com' })),
    /** Slack member id (profile → ⋮ → Copy member ID), so a page can @-mention the person. */
    slack: Type.Optional(Type.String({ pattern: '^[UW][A-Z0-9]{2,}$', expected: 'a Slack member id like U024BE7LH' })),
    /** Whether the person may be paged through PagerDuty. */
    pagerduty: Type.Boolean({ default: false }),
    /** Opsgenie username (usually their login email), so an `opsgenie` channel can page them as a responder. */
    opsgenie: Type.Optional(Type.String({ minLength: 1, maxLength: 100, expected: 'an Opsgenie username like alice@example.com' })),
    /** Telegram user id (their private chat with the bot, once they pressed Start), so a `telegram` channel can page them. */
    telegram: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$', expected: 'a Telegram user id like 123456789' })),
  },
  // TypeBox fills defaults inside a record's values only when the value schema has one itself.
  { additionalProperties: false, default: {} },
);

/** `people:` in the config: person id → contact details. Schedules and escalation steps name people by id. */
export const PeopleSchema = Type.Record(Type.String({ pattern: NAME_PATTERN }), PersonSchema, {
  default: {},
  expected: 'a mapping of person ids to { name, email, slack, pagerduty, opsgenie, telegram }',
});

const Rotation = Type.Union(
  [Type.Literal('daily'), Type.Literal('weekly'), Type.Object({ every: Duration() }, { additionalProperties: false })],
  {
    expected: 'daily, weekly or { every: 12h }',
  },
);

const Weekday = Type.Union(
  WEEKDAYS.map((d) => Type.Literal(d)),
  { expected: 'a weekday: mon, tue, wed, thu, fri, sat or sun' },
);

/** Limits a layer to recurring local hours; outside them the layer puts nobody on call. */
const Restriction = Type.Object(
  {
    /** Days a window starts on. */
    days: Type.Array(Weekday, { minItems: 1, default: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] }),
    from: Type.String({ pattern: `^${TIME}$`, expected: 'a local time like "09:00"' }),
    /** At or before `from`: the window ends the next day ("22:00" to "06:00"; equal times make 24 hours). */
    to: Type.String({ pattern: `^(${TIME}|24:00)$`, expected: 'a local time like "17:00" (or "24:00")' }),
  },
  { additionalProperties: false },
);

/** One rotation of participants; later layers in the list take priority. */
const LayerSchema = Type.Object(
  {
    rotation: Rotation,
    /** Local wall-clock time of each handoff; weekly rotations name the day too ("mon 09:00"). */
    handoff: Type.String({
      pattern: HANDOFF_PATTERN,
      expected: 'a local time like "09:00", or a weekday and time like "mon 09:00" for a weekly rotation',
    }),
    /** The first shift starts at the first handoff on or after this local date. */
    start: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', expected: 'a local date like 2026-11-02' }),
    /** Person ids in rotation order; the first takes the first shift. */
    participants: Type.Array(Type.String({ minLength: 1 }), { expected: 'a list of person ids' }),
    restrict: Type.Optional(Restriction),
  },
  { additionalProperties: false },
);

/** One on-call schedule: a zone and its layers. */
export const ScheduleSchema = Type.Object(
  {
    /** IANA zone every handoff and restriction is read in, e.g. Europe/Berlin. */
    timezone: Type.String({ minLength: 1, expected: 'an IANA time zone such as Europe/Berlin' }),
    /** Lowest priority first: at any instant the last layer with someone on call decides. */
    layers: Type.Array(LayerSchema, { default: [] }),
  },
  // As for people: without it TypeBox would not fill the defaults of a schedule inside the record.
  { additionalProperties: false, default: {} },
);

/** `schedules:` in the config: schedule id → schedule. Escalation steps name them as `oncall:<id>`. */
export const SchedulesSchema = Type.Record(Type.String({ pattern: NAME_PATTERN }), ScheduleSchema, {
  default: {},
  expected: 'a mapping of schedule ids to { timezone, layers }',
});

/** A person from `people:`, validated with defaults. */
export type Person = Static<typeof PersonSchema>;
/** A schedule from `schedules:`, validated with defaults. */
export type Schedule = Static<typeof ScheduleSchema>;
/** One layer of a schedule. */
export type Layer = Static<typeof LayerSchema>;

/** A time-bounded replacement of whoever the layers put on call; stored outside the config (API, store). */
export interface Override {
  /** Schedule id; on-call functions take the overrides of one schedule and do not read it. */
  schedule: string;
  person: string;
  /** Epoch ms, inclusive. */
  start: number;
  /** Epoch ms, exclusive; an override with `end <= start` is ignored. */
  end: number;
}

/** What put someone on call: an override, or `layer N` for `layers[N]` (0-based, as in config paths). */
export type Source = 'override' | `layer ${number}`;

/** Who is on call at an instant and the bounds of that assignment (epoch ms, `until` exclusive). */
export interface OnCall {
  person: string;
  /** When this person's unbroken stretch on call began (possibly under another source). */
  from: number;
  /** When someone else (or nobody) takes over; `Infinity` when nothing ahead ever changes it. */
  until: number;
  /** What decides at the instant asked about. */
  source: Source;
}

/** One stretch of the final timeline (epoch ms, `end` exclusive); `source` is what decided at `start`. */
export interface Shift {
  person: string;
  start: number;
  end: number;
  source: Source;
}

/** A change of who is on call: from `at` on, `person` (undefined: nobody) instead of `previous`. */
export interface Handoff {
  at: number;
  person: string | undefined;
  previous: string | undefined;
  source: Source | undefined;
}

/** A config problem found beyond the schema: `path` is dotted from the config root. */
export interface ScheduleProblem {
  path: string;
  message: string;
}

// ---------------------------------------------------------------------------------------------
// Wall clock ↔ instant
// ---------------------------------------------------------------------------------------------

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 86_400_000;

/** A wall-clock reading in some zone, as people write it (month 1-12). */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second?: number;
}

/** A zone's formatter and the wall-clock conversions already made, for the length of one call. */
interface Zone {
  readonly fmt: Intl.DateTimeFormat;
  readonly memo: Map<number, number>;
}

function openZone(timeZone: string): Zone {
  // hourCycle h23: with hour12:false some ICU versions print midnight as "24".
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  return { fmt, memo: new Map() };
}

/** The wall clock of `t` in the zone, as if that reading were UTC: arithmetic on it is calendar arithmetic. */
function wall(zone: Zone, t: number): number {
  const whole = Math.floor(t / SECOND) * SECOND;
  const f: Record<string, number> = {};
  for (const p of zone.fmt.formatToParts(whole)) if (p.type !== 'literal') f[p.type] = Number(p.value);
  return Date.UTC(f.year ?? 0, (f.month ?? 1) - 1, f.day ?? 1, f.hour ?? 0, f.minute ?? 0, f.second ?? 0) + (t - whole);
}

/**
 * The instant a zone's clocks read `local` (given as UTC ms). In a spring-forward gap the first
 * instant after the gap; in a fall-back overlap the first of the two.
 */
function instantOf(zone: Zone, local: number): number {
  const known = zone.memo.get(local);
  if (known !== undefined) return known;
  // The answer lies within ±14 h of `local`; offsets a day either side (and at it) cover any one change.
  const offsets = new Set([wall(zone, local - DAY) - (local - DAY), wall(zone, local) - local, wall(zone, local + DAY) - (local + DAY)]);
  const candidates = [...offsets].map((o) => local - o);
  const valid = candidates.filter((c) => wall(zone, c) === local);
  let t: number;
  if (valid.length > 0) t = Math.min(...valid);
  else {
    // A gap: the clock jumps over `local`, so find the first instant that reads at or after it.
    let lo = Math.min(...candidates);
    let hi = Math.max(...candidates);
    // Unbracketed only if a zone changed twice within a day of `local`; the later reading is then the safer answer.
    if (!(wall(zone, lo) < local && wall(zone, hi) >= local)) t = hi;
    else {
      while (hi - lo > SECOND) {
        const mid = lo + Math.floor((hi - lo) / (2 * SECOND)) * SECOND;
        if (wall(zone, mid) >= local) hi = mid;
        else lo = mid;
      }
      t = hi;
    }
  }
  zone.memo.set(local, t);
  return t;
}

/**
 * The epoch ms at which clocks in `timeZone` read `local`. A nonexistent reading (spring forward)
 * moves to the first instant after the gap; an ambiguous one (fall back) is its first occurrence.
 */
export function localToInstant(timeZone: string, local: LocalTime): number {
  return instantOf(openZone(timeZone), Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second ?? 0));
}

/** What clocks in `timeZone` read at epoch ms `t` (to the second); `weekday` 0 is Sunday. */
export function instantToLocal(timeZone: string, t: number): Required<LocalTime> & { weekday: number } {
  const d = new Date(wall(openZone(timeZone), Math.floor(t / SECOND) * SECOND));
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    weekday: d.getUTCDay(),
  };
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/** A layer with its strings parsed; local dates are day numbers (days since 1970-01-01). */
interface Compiled {
  kind: 'daily' | 'weekly' | 'every';
  period: number;
  /** Local date of the first handoff. */
  firstDay: number;
  /** Minutes after local midnight. */
  handoff: number;
  participants: readonly string[];
  /** One person in every shift: the layer never changes hands after its first handoff. */
  constant: boolean;
  restrict?: { days: ReadonlySet<number>; from: number; to: number };
}

/** A layer's (or the whole schedule's) value over `[from, until)`; `person` undefined is nobody. */
interface State {
  person: string | undefined;
  from: number;
  until: number;
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const dayNumber = (date: string) => Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10))) / DAY;
const weekdayOf = (day: number) => (day + 4) % 7; // 1970-01-01 was a Thursday
// Widened, not cast: any text may be asked about, and an unknown one is -1.
const weekdayNames: readonly string[] = WEEKDAYS;
const weekdayIndex = (name: string) => weekdayNames.indexOf(name);

function compile(layer: Layer): Compiled {
  // split always gives a first part; the default only tells the compiler so.
  const [first = '', second] = layer.handoff.split(' ');
  const time = second ?? first;
  const startDay = dayNumber(layer.start);
  const kind = typeof layer.rotation === 'string' ? layer.rotation : 'every';
  let firstDay = startDay;
  if (kind === 'weekly' && second !== undefined) firstDay += (weekdayIndex(first) - weekdayOf(startDay) + 7) % 7;
  const compiled: Compiled = {
    kind,
    // The floor keeps the arithmetic finite for a config that skipped checkSchedules (which wants ≥ 1h).
    period: typeof layer.rotation === 'string' ? 0 : Math.max(ms(layer.rotation.every), MINUTE),
    firstDay,
    handoff: minutesOf(time),
    participants: layer.participants,
    constant: layer.participants.every((p) => p === layer.participants[0]),
  };
  if (layer.restrict) {
    compiled.restrict = {
      days: new Set(layer.restrict.days.map(weekdayIndex)),
      from: minutesOf(layer.restrict.from),
      to: minutesOf(layer.restrict.to),
    };
  }
  return compiled;
}

/** The instant of local date `day` at `minutes` past local midnight (may be 24:00 or beyond). */
const onDay = (zone: Zone, day: number, minutes: number) => instantOf(zone, day * DAY + minutes * MINUTE);

/** Whose shift it is in a layer at `t`, ignoring restrictions. */
function rotationAt(zone: Zone, layer: Compiled, t: number): State {
  const n = layer.participants.length;
  if (n === 0) return { person: undefined, from: Number.NEGATIVE_INFINITY, until: Number.POSITIVE_INFINITY };
  const first = onDay(zone, layer.firstDay, layer.handoff);
  if (t < first) return { person: undefined, from: Number.NEGATIVE_INFINITY, until: first };
  if (layer.constant) return { person: layer.participants[0], from: first, until: Number.POSITIVE_INFINITY };
  let k: number;
  let from: number;
  let until: number;
  if (layer.kind === 'every') {
    // Absolute time: every shift lasts exactly `period`, whatever the clocks do.
    k = Math.floor((t - first) / layer.period);
    from = first + k * layer.period;
    until = from + layer.period;
  } else {
    // Calendar arithmetic: shift k starts on local date firstDay + k·step at the handoff time, so
    // shifts spanning a DST change are an hour shorter or longer.
    const step = layer.kind === 'daily' ? 1 : 7;
    const handoff = (i: number) => onDay(zone, layer.firstDay + i * step, layer.handoff);
    const today = Math.floor(wall(zone, t) / DAY);
    k = Math.max(0, Math.floor((today - layer.firstDay) / step));
    while (k > 0 && handoff(k) > t) k--;
    while (handoff(k + 1) <= t) k++;
    from = handoff(k);
    until = handoff(k + 1);
  }
  return { person: layer.participants[k % n], from, until };
}

/** Whether `t` falls in one of the restriction's windows, and the bounds of that answer. */
function windowAt(zone: Zone, r: NonNullable<Compiled['restrict']>, t: number): { inside: boolean; from: number; until: number } {
  const today = Math.floor(wall(zone, t) / DAY);
  const end = r.to > r.from ? r.to : r.to + 24 * 60;
  const opens = (day: number) => onDay(zone, day, r.from);
  const closes = (day: number) => onDay(zone, day, end);
  // A window lasts at most a day (25 h on a fall-back day), so one open at t began today or yesterday.
  for (const day of [today - 1, today]) {
    if (r.days.has(weekdayOf(day)) && opens(day) <= t && t < closes(day)) return { inside: true, from: opens(day), until: closes(day) };
  }
  let from = Number.NEGATIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  // Windows start at most a week apart, so the neighbours lie within eight days either side.
  for (let day = today; day >= today - 8; day--) {
    if (r.days.has(weekdayOf(day)) && closes(day) <= t) {
      from = closes(day);
      break;
    }
  }
  for (let day = today; day <= today + 8; day++) {
    if (r.days.has(weekdayOf(day)) && opens(day) > t) {
      until = opens(day);
      break;
    }
  }
  return { inside: false, from, until };
}

function layerAt(zone: Zone, layer: Compiled, t: number): State {
  const rotation = rotationAt(zone, layer, t);
  if (!layer.restrict || rotation.person === undefined) return rotation;
  const w = windowAt(zone, layer.restrict, t);
  return {
    person: w.inside ? rotation.person : undefined,
    from: Math.max(rotation.from, w.from),
    until: Math.min(rotation.until, w.until),
  };
}

// ---------------------------------------------------------------------------------------------
// The final timeline
// ---------------------------------------------------------------------------------------------

/** How far oncallAt and nextHandoffs follow an unchanging person before they stop looking. */
const HORIZON = 366 * DAY;
/** Bound on the elementary stretches one call walks (a guard; valid configs stay far below it). */
const MAX_STEPS = 50_000;

interface Timeline {
  zone: Zone;
  layers: readonly Compiled[];
  overrides: readonly Override[];
}

function timeline(schedule: Schedule, overrides: readonly Override[]): Timeline {
  return { zone: openZone(schedule.timezone), layers: schedule.layers.map(compile), overrides: overrides.filter((o) => o.end > o.start) };
}

/**
 * Who is on call at `t` and the largest interval around it in which no source that could matter
 * changes. Neighbouring stretches may have the same person; callers merge them.
 */
function stretchAt(tl: Timeline, t: number): State & { source: Source | undefined } {
  let from = Number.NEGATIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  const bound = (b: number) => {
    if (b <= t) from = Math.max(from, b);
    else until = Math.min(until, b);
  };
  let person: string | undefined;
  let source: Source | undefined;
  // Every override's edges count, since one starting later in the list would take over.
  for (const o of tl.overrides) {
    bound(o.start);
    bound(o.end);
    if (o.start <= t && t < o.end) {
      person = o.person;
      source = 'override';
    }
  }
  // Layers below the winner cannot change the outcome, so their edges are left out.
  for (const [i, layer] of [...tl.layers.entries()].reverse()) {
    if (person !== undefined) break;
    const s = layerAt(tl.zone, layer, t);
    bound(s.from);
    bound(s.until);
    if (s.person !== undefined) {
      person = s.person;
      source = `layer ${i}`;
    }
  }
  return { person, source, from, until };
}

/**
 * Who is on call at epoch ms `t`, or undefined for nobody. `overrides` are this schedule's overrides;
 * where they overlap the later one in the list wins, so pass them oldest first. `from`/`until` bound
 * the person's unbroken stretch, looking at most a year either way.
 */
export function oncallAt(schedule: Schedule, overrides: readonly Override[], t: number): OnCall | undefined {
  const tl = timeline(schedule, overrides);
  const here = stretchAt(tl, t);
  if (here.person === undefined || here.source === undefined) return undefined;
  let { from, until } = here;
  for (let steps = 0; until < t + HORIZON && steps < MAX_STEPS; steps++) {
    const next = stretchAt(tl, until);
    if (next.person !== here.person) break;
    until = next.until;
  }
  for (let steps = 0; from > t - HORIZON && steps < MAX_STEPS; steps++) {
    const prev = stretchAt(tl, from - 1);
    if (prev.person !== here.person) break;
    from = prev.from;
  }
  return { person: here.person, from, until, source: here.source };
}

/**
 * The final timeline over `[from, to)`: who is on call when, clipped to the range, a person's
 * adjacent stretches merged, gaps (nobody on call) left out. Throws VIGIL_ERR_BAD_REQUEST when the
 * range holds more changes than one call walks (ask for a shorter range).
 */
export function shifts(schedule: Schedule, overrides: readonly Override[], from: number, to: number): Shift[] {
  const tl = timeline(schedule, overrides);
  const out: Shift[] = [];
  for (let t = from, steps = 0; t < to; steps++) {
    if (steps >= MAX_STEPS) {
      throw new VigilError('VIGIL_ERR_BAD_REQUEST', `the range holds more than ${MAX_STEPS} schedule changes; ask for a shorter one`);
    }
    const s = stretchAt(tl, t);
    const end = Math.min(s.until, to);
    if (s.person !== undefined && s.source !== undefined) {
      const last = out.at(-1);
      if (last && last.person === s.person && last.end === t) last.end = end;
      else out.push({ person: s.person, start: t, end, source: s.source });
    }
    t = end;
  }
  return out;
}

/** The next `n` changes of who is on call strictly after epoch ms `t`, looking at most a year ahead. */
export function nextHandoffs(schedule: Schedule, overrides: readonly Override[], t: number, n: number): Handoff[] {
  const tl = timeline(schedule, overrides);
  const out: Handoff[] = [];
  const here = stretchAt(tl, t);
  let current = here.person;
  let next = here.until;
  for (let steps = 0; out.length < n && next < t + HORIZON && steps < MAX_STEPS; steps++) {
    const s = stretchAt(tl, next);
    if (s.person !== current) out.push({ at: next, person: s.person, previous: current, source: s.source });
    current = s.person;
    next = s.until;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Config checks beyond the schema
// ---------------------------------------------------------------------------------------------

/** Custom rotations shorter than this are almost certainly a typo (`12m` for `12h`). */
const MIN_EVERY = 3_600_000;

/**
 * What the schema cannot see: unknown time zones and people, a handoff that does not fit its
 * rotation, impossible dates, people nobody can reach. Expects schema-valid input with defaults.
 */
export function checkSchedules(people: Record<string, Person>, schedules: Record<string, Schedule>): ScheduleProblem[] {
  const problems: ScheduleProblem[] = [];
  const known = Object.keys(people);
  // The fields channel types send to (their `person`): a person with none of them can never be paged.
  const fields = contactFields();
  for (const [id, p] of Object.entries(people)) {
    if (!fields.some((f) => p[f] === true || (typeof p[f] === 'string' && p[f] !== ''))) {
      problems.push({ path: `people.${id}`, message: `expected at least one way to reach the person (${waysToReach(fields)})` });
    }
  }
  for (const [id, schedule] of Object.entries(schedules)) {
    const at = `schedules.${id}`;
    const zoneProblem = checkTimeZone(schedule.timezone);
    if (zoneProblem) problems.push({ path: `${at}.timezone`, message: zoneProblem });
    schedule.layers.forEach((layer, i) => {
      problems.push(...checkLayer(layer, `${at}.layers[${i}]`, known));
    });
  }
  return problems;
}

/** `email, slack or pagerduty: true`: the fields as a person writes them (a flag needs `true`). */
function waysToReach(fields: ReadonlyArray<keyof Person>): string {
  const shown = fields.map((f) => (fieldOf(PersonSchema.properties[f], 'type') === 'boolean' ? `${f}: true` : f));
  return shown.length <= 1 ? shown.join('') : `${shown.slice(0, -1).join(', ')} or ${shown.at(-1)}`;
}

function checkTimeZone(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    const all = Intl.supportedValuesOf('timeZone');
    const city = zone.split('/').at(-1)?.toLowerCase();
    const near = all.find((z) => z.split('/').at(-1)?.toLowerCase() === city);
    const hint = near ? ` (did you mean "${near}"?)` : '';
    return `expected an IANA time zone such as Europe/Berlin or America/New_York, got ${JSON.stringify(zone)}${hint}`;
  }
}

function checkLayer(layer: Layer, at: string, known: readonly string[]): ScheduleProblem[] {
  const problems: ScheduleProblem[] = [];
  const kind = typeof layer.rotation === 'string' ? layer.rotation : 'every';
  const hasDay = layer.handoff.includes(' ');
  if (kind === 'weekly' && !hasDay) {
    problems.push({
      path: `${at}.handoff`,
      message: `expected a weekday and time like "mon 09:00" for a weekly rotation, got ${JSON.stringify(layer.handoff)}`,
    });
  }
  if (kind !== 'weekly' && hasDay) {
    const rotation = kind === 'daily' ? 'a daily rotation' : 'an { every: … } rotation';
    problems.push({
      path: `${at}.handoff`,
      message: `expected a time like "09:00" for ${rotation} (a weekday goes only with weekly), got ${JSON.stringify(layer.handoff)}`,
    });
  }
  if (typeof layer.rotation !== 'string' && ms(layer.rotation.every) < MIN_EVERY) {
    problems.push({ path: `${at}.rotation.every`, message: `expected a shift of at least 1h, got ${layer.rotation.every}` });
  }
  // A missing part is NaN, which the round trip below reports as an invalid date.
  const [y = Number.NaN, m = Number.NaN, d = Number.NaN] = layer.start.split('-').map(Number);
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) {
    problems.push({
      path: `${at}.start`,
      message: `expected a calendar date like 2026-11-02, got ${JSON.stringify(layer.start)} (no such day)`,
    });
  }
  const list = known.length ? known.join(', ') : 'none defined';
  layer.participants.forEach((p, i) => {
    if (!known.includes(p)) {
      problems.push({
        path: `${at}.participants[${i}]`,
        message: `expected a person defined under people: (${list}), got ${JSON.stringify(p)}`,
      });
    }
  });
  return problems;
}
