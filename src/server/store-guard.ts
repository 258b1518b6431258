import { VigilError } from '../lib/errors.js';

/** Mistakes in vigil's own code: never relabelled as the database's failure. */
const PROGRAMMING_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError];

/**
 * The error a route answers when the store failed under it: `VIGIL_ERR_STORE` (503) naming the
 * store, with the backend's error as its cause for the log. The backend's message stays out of the
 * answer (a connection error names hosts and ports). Errors vigil raised on purpose (VigilError) and
 * programming errors pass through as they are.
 */
export function storeFailure(err: unknown, why: string | undefined): unknown {
  if (err instanceof VigilError || PROGRAMMING_ERRORS.some((E) => err instanceof E)) return err;
  return new VigilError(
    'VIGIL_ERR_STORE',
    `the store is unavailable (${why ?? 'a database call failed; the log has the cause under this request id'}); try again shortly`,
    { cause: err },
  );
}

/**
 * `target` (a store, part of one, or functions that only go to the store) seen through a proxy whose
 * promises reject with `storeFailure`: a database that is down turns a route into a prompt 503 in the
 * API's error shape, not a 500 that reads like a bug. How promptly is the store's own deadline.
 * Nested objects (`store.alerts`, `store.rollups`) are guarded too; synchronous answers (`latest`,
 * `health`: memory) pass untouched. `why` names what is wrong with the store now (its health).
 */
export function guardStore<T extends object>(target: T, why: () => string | undefined = () => undefined): T {
  // Wrapped once per property, so a guarded method keeps its identity between reads.
  const wrapped = new Map<PropertyKey, { of: unknown; as: unknown }>();
  return new Proxy(target, {
    get(t, key) {
      const value: unknown = Reflect.get(t, key);
      const own = Reflect.getOwnPropertyDescriptor(t, key);
      // A proxy must hand out a frozen property as it is; stores are not frozen, so this is only a guard's guard.
      if (own !== undefined && !own.configurable && own.writable === false) return value;
      const known = wrapped.get(key);
      if (known !== undefined && known.of === value) return known.as;
      let as: unknown = value;
      if (typeof value === 'function') {
        as = (...args: unknown[]) => {
          const out: unknown = Reflect.apply(value, t, args);
          return out instanceof Promise
            ? out.catch((err: unknown) => {
                throw storeFailure(err, why());
              })
            : out;
        };
      } else if (value !== null && typeof value === 'object' && !(value instanceof Promise)) {
        as = guardStore(value, why);
      }
      wrapped.set(key, { of: value, as });
      return as;
    },
  });
}
