import { createRedactor, type Redactor } from '../lib/redactor.js';
import type { LoadedConfig } from './load.js';
import { secretsIn } from './redact.js';

/** The secrets of the configs loaded so far, as redactors: per probe, and all of them. */
export interface SecretBook {
  /** Takes in a newly loaded config's secrets (at start, and at each reload); the old ones stay known. */
  learn(config: LoadedConfig): void;
  /** Every secret any loaded config held: the last pass over pages, API answers and log lines. */
  all(): Redactor;
  /** Every `${…}` value of every config loaded so far: what config redaction by value hides. */
  interpolated(): ReadonlySet<string>;
  /** The secrets in this probe's definition, for its run context; built once per definition. */
  forProbe(def: object): Redactor;
}

/**
 * Collects secret values: every `${…}` value, values under secret-looking keys (channel tokens, API
 * tokens, link secrets) and URL passwords. A secret that left the config at a reload is still
 * hidden: it may still sit in stored runs, incidents and pages queued before.
 */
export function createSecretBook(config: LoadedConfig, onChange?: (all: Redactor) => void): SecretBook {
  const interpolated = new Set<string>();
  const every = new Set<string>();
  let all = createRedactor([]);
  // Keyed by the definition object: a reload makes new ones, so a changed probe gets a new redactor.
  const perProbe = new WeakMap<object, Redactor>();
  const book: SecretBook = {
    learn(c) {
      for (const s of c.secrets) interpolated.add(s);
      for (const s of [...c.secrets, ...secretsIn(c.service, interpolated), ...secretsIn(c.probes, interpolated)]) every.add(s);
      all = createRedactor(every);
      onChange?.(all);
    },
    all: () => all,
    interpolated: () => interpolated,
    forProbe(def) {
      let r = perProbe.get(def);
      if (r === undefined) {
        r = createRedactor(secretsIn(def, interpolated));
        perProbe.set(def, r);
      }
      return r;
    },
  };
  book.learn(config);
  return book;
}
