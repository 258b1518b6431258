/**
 * Names one part of the config uses for another: alerts name channels, policies and other probes;
 * escalation steps name channels, schedules and people; schedules name people. Each must exist.
 */
import { fieldOf } from '../lib/fields.js';
import { checkSchedules } from '../oncall/index.js';
import { type ProbeDefinition, proberFor } from '../probers/index.js';
import { didYouMean } from './explain.js';
import type { Run } from './run.js';
import type { ServiceConfig } from './schema.js';

/** What every probe's `alert:` names, once every probe file is read; `at` is where each definition is (`file: [i]`). */
export function checkProbeReferences(
  probes: ReadonlyArray<{ def: ProbeDefinition; at: string }>,
  run: Run,
  channelNames: ReadonlySet<string>,
  policies: ReadonlySet<string>,
): void {
  const ids = new Set(probes.map((p) => p.def.id));
  for (const { def, at } of probes) {
    const alert = def.alert;
    if (!alert) continue;
    const policy = alert.policy;
    if (policy !== undefined && !policies.has(policy)) {
      run.problems.push(
        `${at}.alert.policy: expected a policy defined under escalation: in the config (${[...policies].join(', ') || 'none defined'}), got ${JSON.stringify(policy)}${didYouMean(policy, [...policies])}`,
      );
    }
    alert.channels.forEach((c, i) => {
      if (!channelNames.has(c)) {
        const known = [...channelNames];
        run.problems.push(
          `${at}.alert.channels[${i}]: expected a channel defined under channels: in the config (${known.length ? known.join(', ') : 'none defined'}), got ${JSON.stringify(c)}${didYouMean(c, known)}`,
        );
      }
    });
    alert.dependsOn.forEach((d, i) => {
      if (d === def.id) run.problems.push(`${at}.alert.dependsOn[${i}]: expected another probe's id, got the probe itself`);
      else if (!ids.has(d))
        run.problems.push(
          `${at}.alert.dependsOn[${i}]: expected the id of a configured probe, got ${JSON.stringify(d)}${didYouMean(d, [...ids])}`,
        );
    });
  }
}

/**
 * The fields a kind keeps unique (`Prober.unique`) are each definition's own: a push probe's token
 * finds its probe, and two probes sharing one would each take the other's pings. The error names
 * both probes, never the value (it is usually a secret).
 */
export function checkUniqueFields(probes: ReadonlyArray<{ def: ProbeDefinition; at: string }>, run: Run): void {
  const owners = new Map<string, { id: string; at: string }>();
  for (const { def, at } of probes) {
    for (const field of proberFor(def.kind).unique ?? []) {
      const value = fieldOf(def, field);
      if (typeof value !== 'string') continue;
      const key = `${def.kind}\0${field}\0${value}`;
      const first = owners.get(key);
      if (first === undefined) owners.set(key, { id: def.id, at });
      else
        run.problems.push(
          `${at}.${field}: expected a ${field} of its own, got the ${field} of ${def.kind} probe "${first.id}" (${first.at}); give "${def.id}" another`,
        );
    }
  }
}

/** Schedules name known people; escalation steps name known channels, schedules and people. */
export function checkOncall(service: ServiceConfig, run: Run, originOf: (p: string[]) => string) {
  for (const p of checkSchedules(service.people, service.schedules)) {
    const first = p.path.split(/[.[]/)[0] ?? 'schedules';
    run.problems.push(`${originOf([first])}: ${p.path}: ${p.message}`);
  }
  const channels = Object.keys(service.channels);
  const schedules = Object.keys(service.schedules);
  const people = Object.keys(service.people);
  const file = originOf(['escalation']);
  const channel = (at: string, name: string) => {
    if (!channels.includes(name)) {
      run.problems.push(
        `${file}: ${at}: expected a channel defined under channels: (${channels.join(', ') || 'none defined'}), got ${JSON.stringify(name)}${didYouMean(name, channels)}`,
      );
    }
  };
  for (const [name, policy] of Object.entries(service.escalation)) {
    policy.steps.forEach((step, i) => {
      step.notify.forEach((target, j) => {
        const at = `escalation.${name}.steps[${i}].notify[${j}]`;
        if (target.startsWith('oncall:')) {
          const s = target.slice(7);
          if (!schedules.includes(s))
            run.problems.push(
              `${file}: ${at}: expected oncall:<a schedule under schedules:> (${schedules.join(', ') || 'none defined'}), got ${JSON.stringify(target)}${didYouMean(s, schedules)}`,
            );
        } else if (target.startsWith('person:')) {
          const who = target.slice(7);
          if (!people.includes(who))
            run.problems.push(
              `${file}: ${at}: expected person:<someone under people:> (${people.join(', ') || 'none defined'}), got ${JSON.stringify(target)}${didYouMean(who, people)}`,
            );
        } else channel(at, target);
      });
      step.via?.forEach((v, j) => {
        channel(`escalation.${name}.steps[${i}].via[${j}]`, v);
      });
    });
    policy.fallback.forEach((f, i) => {
      channel(`escalation.${name}.fallback[${i}]`, f);
    });
  }
}
