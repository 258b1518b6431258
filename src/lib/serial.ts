/**
 * Work serialized per key: tasks of one key run one at a time, in the order given; tasks of
 * different keys run concurrently. The alert engine's guarantee (one unresolved incident per probe
 * and rule, a change and its pages in one transaction) rests on this, not on blocking the process:
 * while the database is slow only the keys waiting on it wait.
 */
export interface SerialQueues {
  /** Runs `task` after every task queued before it for `key`; settles as it does. */
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /**
   * Queues `task` for `key` unless one queued by `coalesce` is still waiting to start: for work that
   * reads the latest wanted state when it runs, so a burst of runs during an outage costs one task.
   */
  coalesce(key: string, task: () => Promise<void>): void;
  /** Whether a task of `key` is running or waiting. */
  busy(key: string): boolean;
  /** How many keys have work running or waiting. */
  readonly size: number;
  /** Resolves when every task queued so far has settled. */
  idle(): Promise<void>;
}

export function createSerialQueues(onError: (key: string, err: unknown) => void): SerialQueues {
  /** The tail of each key's chain; removed when the chain runs dry so the map holds busy keys only. */
  const tails = new Map<string, Promise<unknown>>();
  /** Keys with a coalesced task queued and not yet started. */
  const waiting = new Set<string>();

  function run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = tails.get(key) ?? Promise.resolve();
    const result = before.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return result;
  }

  return {
    run,
    coalesce(key, task) {
      if (waiting.has(key)) return;
      waiting.add(key);
      run(key, () => {
        waiting.delete(key);
        return task();
      }).catch((err: unknown) => onError(key, err));
    },
    busy: (key) => tails.has(key),
    get size() {
      return tails.size;
    },
    async idle() {
      while (tails.size > 0) await Promise.all(tails.values());
    },
  };
}
