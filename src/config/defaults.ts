/**
 * TypeBox's `Value.Default`, compiled once per schema into a tree of closures.
 *
 * At 60,000 probes `Value.Default` took ~0.5 s of a ~2.2 s config load: for every value it
 * dispatches on the schema's kind, visits each object property twice (once to see whether it yields
 * anything, once to assign it) and deep-clones every default it meets, also where the value is
 * already there and the clone is thrown away. The compiled form gives the same result (the same
 * values, keys in the same order, defaults cloned wherever TypeBox clones them into the result:
 * test/config/defaults.test.ts compares the two over every kind's schema) with one visit and no
 * wasted clone. Kinds it does not know, and any schema with references, are left to TypeBox.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';

/** Fills in a value's missing defaults (in place where TypeBox does) and returns the result. */
export type Defaulter = (value: unknown) => unknown;

const compiled = new WeakMap<TSchema, Defaulter>();

/** The schema's defaulter, built on first use. */
export function defaulterOf(schema: TSchema): Defaulter {
  let fill = compiled.get(schema);
  if (fill === undefined) {
    fill = hasReference(schema) ? (value) => Value.Default(schema, value) : compile(schema);
    compiled.set(schema, fill);
  }
  return fill;
}

// TypeBox's guards, as its Default uses them: an array is an object too.
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const hasDefault = (schema: unknown) => isObject(schema) && Kind in schema && 'default' in schema;

/**
 * TypeBox's ValueOrDefault: the value, or a clone of the default where the value is missing; an
 * object value over an object default is merged into a clone of it (the default's keys first).
 */
function valueOrDefault(schema: TSchema): Defaulter {
  if (!Object.hasOwn(schema, 'default')) return (value) => value;
  const given: unknown = schema.default;
  const fresh = typeof given === 'function' ? (given as () => unknown) : () => Value.Clone(given);
  return (value) => {
    if (value === undefined) return fresh();
    if (!isObject(value) || !isObject(given)) return value;
    const clone = fresh();
    return isObject(clone) ? Object.assign(clone, value) : value;
  };
}

function compile(schema: TSchema): Defaulter {
  switch (schema[Kind]) {
    case 'Object':
      return compileObject(schema);
    case 'Array':
      return compileArray(schema);
    case 'Union':
      return compileUnion(schema);
    case 'Date':
    case 'Intersect':
    case 'Record':
    case 'Tuple':
      // Rare in a definition and not on the hot path: TypeBox's own code for these.
      return (value) => Value.Default(schema, value);
    default:
      return valueOrDefault(schema);
  }
}

function compileObject(schema: TSchema): Defaulter {
  const own = valueOrDefault(schema);
  const known = Object.getOwnPropertyNames(schema.properties);
  const props = known.map((key) => [key, compile((schema.properties as Record<string, TSchema>)[key]!)] as const);
  const extraSchema: unknown = schema.additionalProperties;
  const extra = hasDefault(extraSchema) ? compile(extraSchema as TSchema) : undefined;
  return (value) => {
    const defaulted = own(value);
    if (!isObject(defaulted)) return defaulted;
    // TypeBox visits each property twice and keeps the second result; visiting is idempotent (it
    // only adds what is missing), so once gives the same value.
    for (const [key, fill] of props) {
      const v = fill(defaulted[key]);
      if (v !== undefined) defaulted[key] = v;
    }
    if (extra !== undefined) {
      for (const key of Object.getOwnPropertyNames(defaulted)) if (!known.includes(key)) defaulted[key] = extra(defaulted[key]);
    }
    return defaulted;
  };
}

function compileArray(schema: TSchema): Defaulter {
  const own = valueOrDefault(schema);
  const item = compile(schema.items as TSchema);
  const each = (list: unknown[]) => {
    for (let i = 0; i < list.length; i++) list[i] = item(list[i]);
    return list;
  };
  return (value) => {
    if (Array.isArray(value)) return each(value);
    const defaulted = own(value);
    return Array.isArray(defaulted) ? each(defaulted) : defaulted;
  };
}

/** The first variant whose defaults make a value it accepts, as TypeBox's FromUnion; else the value. */
function compileUnion(schema: TSchema): Defaulter {
  const own = valueOrDefault(schema);
  const variants = (schema.anyOf as TSchema[]).map((inner) => ({ fill: compile(inner), accepts: TypeCompiler.Compile(inner) }));
  return (value) => {
    const defaulted = own(value);
    for (const { fill, accepts } of variants) {
      const result = fill(Value.Clone(defaulted));
      if (accepts.Check(result)) return result;
    }
    return defaulted;
  };
}

/** References need TypeBox's own walk (it carries the referenced schemas along). */
function hasReference(schema: unknown): boolean {
  if (!isObject(schema)) return false;
  const kind = (schema as TSchema)[Kind];
  if (kind === 'Ref' || kind === 'This' || kind === 'Import') return true;
  return Object.values(schema).some(hasReference);
}
