/**
 * Each channel and each probe definition checked against its own kind's schema (the config schema
 * only knows that a channel has a type and a probe a kind), plus the checks those schemas cannot
 * express: schedules that can run, unique probe ids, a prober's own rules.
 */
import { Type } from '@sinclair/typebox';
import { channelKindOf, channelKinds, isChannelType } from '../notify/index.js';
import { isProbeKind, type ProbeDefinition, proberFor, probers } from '../probers/index.js';
import { describeValue, didYouMean, failedAt, scheduleProblem, validate } from './explain.js';
import { isMap, type Json, type Run } from './run.js';
import { definitionSchema, type ServiceConfig } from './schema.js';

/** Validates each channel against its type's own schema, in place (defaults filled). */
export function checkChannels(service: ServiceConfig, run: Run, originOf: (p: string[]) => string) {
  const channels = (service.channels ?? {}) as Record<string, Json>;
  const known = Object.keys(channelKinds);
  for (const [name, raw] of Object.entries(channels)) {
    const file = originOf(['channels', name]);
    const type = isMap(raw) ? raw.type : undefined;
    if (!isChannelType(type)) {
      run.problems.push(
        `${file}: channels.${name}.type: expected one of ${known.join(', ') || '(no channel types)'}, got ${describeValue(type)}${typeof type === 'string' ? didYouMean(type, known) : ''}`,
      );
      continue;
    }
    const schema = Type.Object(
      {
        type: Type.Literal(type),
        // Every channel may prove itself on a schedule: a test page, its delivery recorded as a run.
        testSchedule: Type.Optional(Type.String({ minLength: 1 })),
        ...channelKindOf(type).schema.properties,
      },
      { additionalProperties: false },
    );
    const before = run.problems.length;
    const { value } = validate(schema, raw, run, () => file, `channels.${name}`);
    // The type's own rules read typed fields: only on a channel its schema accepted.
    if (run.problems.length === before && isMap(value)) {
      for (const p of channelKindOf(type).check?.(value) ?? []) run.problems.push(`${file}: channels.${name}.${p.path}: ${p.message}`);
    }
    const testSchedule = isMap(value) ? value.testSchedule : undefined;
    const problem = typeof testSchedule === 'string' ? scheduleProblem(testSchedule) : undefined;
    if (problem) run.problems.push(`${file}: channels.${name}.test${problem[0]?.toUpperCase()}${problem.slice(1)}`);
    channels[name] = value;
  }
}

/** Validates one list item; returns it when it is a usable definition. */
export function checkDefinition(item: Json, at: string, shown: string, run: Run, seen: Map<string, string>): ProbeDefinition | undefined {
  if (!isMap(item)) {
    run.problems.push(`${shown}: ${at}: expected a probe definition (a mapping with id, kind, schedule), got ${describeValue(item)}`);
    return undefined;
  }
  const kind = item.kind;
  if (!isProbeKind(kind)) {
    const known = Object.keys(probers);
    const expected = `expected one of ${known.join(', ')}`;
    run.problems.push(
      kind === undefined
        ? `${shown}: ${at}.kind: ${expected}; it is missing`
        : `${shown}: ${at}.kind: ${expected}, got ${describeValue(kind)}${didYouMean(String(kind), known)}`,
    );
    return undefined;
  }
  const prober = proberFor(kind);
  const before = run.problems.length;
  const timeoutGiven = item.timeout !== undefined;
  const input = item.schedule === undefined && prober.defaultSchedule !== undefined ? { ...item, schedule: prober.defaultSchedule } : item;
  // The item is this load's own copy (interpolation made it): defaults may be filled in place.
  const { value, failed } = validate(definitionSchema(prober.schema), input, run, () => shown, at, { owned: true });
  const def = value as ProbeDefinition;
  if (!timeoutGiven && prober.defaultTimeout && failed.size === 0) def.timeout = prober.defaultTimeout(def);
  if (!failedAt(failed, `${at}.schedule`)) {
    const problem = scheduleProblem(def.schedule);
    if (problem) run.problems.push(`${shown}: ${at}.${problem}`);
  }
  if (!failedAt(failed, `${at}.id`)) {
    const first = seen.get(def.id);
    if (first !== undefined)
      run.problems.push(`${shown}: ${at}.id: expected a unique id, got "${def.id}" again (first defined in ${first})`);
    else seen.set(def.id, `${shown} ${at}`);
  }
  // The prober's own checks read typed fields: only run them on a definition the schema accepted.
  if (run.problems.length > before) return undefined;
  for (const p of prober.check?.(def) ?? []) run.problems.push(`${shown}: ${at}.${p.path}: ${p.message}`);
  return run.problems.length > before ? undefined : def;
}
