/**
 * TypeBox's `Value.Default`, compiled once per schema into a tree of closures.
 *
 * At 60,000 probes `Value.Default` took ~0.5 s of a ~2.2 s config load: for every value it
 * dispatches on the schema's kind, visits each object property twice (once to see whether it yields
 * anything, once to assign it) and deep-clones every default it meets, also where the value is
 * already there and the clone is thrown away. The compiled form gives the same result (the same
 * values, keys in the same order, defaults cloned wherever TypeBox clones them into the result:
 * test/config/defaults.test.ts compares the two over every kind's schema) with one visit and no
 * wasted clone, and it leaves out the parts of a schema that hold no default (see pruned). Kinds it
 * does not know, and any schema with references, are left to TypeBox.
 */
import { Kind, type TSchema, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';

/** Fills in a value's missing defaults (in place where TypeBox does) and returns the result. */
export type Defaulter = (value: unknown) => unknown;

const compiled = new WeakMap<TSchema, Defaulter>();

/** The schema's defaulter, built on first use. */
export function defaulterOf(schema: TSchema): Defaulter {
  let fill = compiled.get(schema);
  if (fill === undefined) {
    fill = anywhere(schema, isReference) ? (value) => Value.Default(schema, value) : compile(pruned(schema));
    compiled.set(schema, fill);
  }
  return fill;
}

/**
 * The schema without what holds no default: an object's properties with no default anywhere inside
 * (filling them changes nothing, yet TypeBox would visit each, and clone and check each union such
 * as `schedule`: half the load time of 60,000 probes), and a record's entries when they have none.
 */
function pruned(schema: TSchema): TSchema {
  const extra: unknown = schema.additionalProperties;
  // A record whose entries have no default takes only its own (`labels: {}`); TypeBox would build a
  // RegExp from its key pattern on every visit, for every probe.
  if (schema[Kind] === 'Record' && !Object.values(schema.patternProperties as object).some(hasOwnDefault) && !hasOwnDefault(extra)) {
    return Object.hasOwn(schema, 'default') ? Type.Unknown({ default: schema.default }) : Type.Unknown();
  }
  // Keys outside `properties` get the additional schema's defaults: keep such an object whole.
  if (schema[Kind] !== 'Object' || (isObject(extra) && anywhere(extra, hasOwnDefault))) return schema;
  const properties: Record<string, TSchema> = {};
  for (const [key, sub] of Object.entries(schema.properties as Record<string, TSchema>)) {
    if (anywhere(sub, hasOwnDefault)) properties[key] = pruned(sub);
  }
  return { ...schema, properties };
}

/** Whether `test` holds for the schema or anything inside it. */
function anywhere(schema: unknown, test: (s: object) => boolean): boolean {
  if (!isObject(schema)) return false;
  return test(schema) || Object.values(schema).some((x) => anywhere(x, test));
}

/** What TypeBox's Default asks of a record's entry schemas: a default of their own. */
const hasOwnDefault = (schema: unknown) => isObject(schema) && Object.hasOwn(schema, 'default');

/** References need TypeBox's own walk (it carries the referenced schemas along). */
const isReference = (schema: object) => ['Ref', 'This', 'Import'].includes((schema as TSchema)[Kind]);

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
