/**
 * Where pings of push probes (dead-man's switches) wait for their probe's next run. The HTTP route
 * records them; the probe's run takes them. In memory: a ping is a trigger, and the run it triggers
 * keeps what matters in the probe's persisted state.
 */

/** What a job said: it started, it succeeded, or it failed (a fail ping, or a non-zero exit code). */
export type PingKind = 'start' | 'success' | 'fail';

/** One ping from a job. */
export interface Ping {
  kind: PingKind;
  /** Epoch ms when vigil received it. */
  at: number;
  /** The exit code the job reported (`/push/<token>/<code>`); absent for start, success and fail pings. */
  exitCode?: number;
  /** The request body, already cut short by the route; absent when there was none. */
  body?: string;
}

/** Pings per probe, from the route to the probe's runs. */
export interface PushInbox {
  /** Keeps a ping for the probe's next run. */
  record(probeId: string, ping: Ping): void;
  /** The pings since the last take, oldest first; empties the probe's queue. */
  take(probeId: string): Ping[];
}

/**
 * Pings kept per probe between two runs (each ping triggers a run, so a few is the norm); a job
 * pinging in a loop cannot grow memory past this: the oldest go first.
 */
const MAX_PENDING = 100;
/** Probes with pings waiting at once; ids come only from configured tokens, so this is a bound, not a feature. */
const MAX_PROBES = 100_000;

export function createPushInbox(opts: { maxPending?: number } = {}): PushInbox {
  const max = opts.maxPending ?? MAX_PENDING;
  const queues = new Map<string, Ping[]>();
  return {
    record(probeId, ping) {
      let q = queues.get(probeId);
      if (q === undefined) {
        if (queues.size >= MAX_PROBES) return;
        q = [];
        queues.set(probeId, q);
      }
      q.push(ping);
      if (q.length > max) q.shift();
    },
    take(probeId) {
      const q = queues.get(probeId);
      if (q === undefined) return [];
      queues.delete(probeId);
      return q;
    },
  };
}
