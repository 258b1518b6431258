/** How a run came about. */
export type Trigger = 'schedule' | 'manual';

/** One finished run of a probe, as the scheduler hands it to the store. */
export interface RunRecord {
  probeId: string;
  kind: string;
  /** Epoch ms when the first attempt started. */
  startedAt: number;
  /** Duration of the attempt that decided the outcome. */
  durationMs: number;
  ok: boolean;
  code?: string;
  message?: string;
  values: Record<string, number>;
  details?: Record<string, unknown>;
  /** 1 + retries used to confirm a failure. */
  attempts: number;
  trigger: Trigger;
}

/** A run as stored: with its id. */
export interface StoredRun extends RunRecord {
  id: number;
}

/** Runs of one probe in a time window, newest first. */
export interface RunQuery {
  probeId: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  limit?: number;
}

/** What `/health` needs to know of the store. */
export interface StoreHealth {
  writable: boolean;
  /** Results waiting for the next batch. */
  queued: number;
  error?: string;
}

/**
 * The store's public surface. Every backend (SQLite now, PostgreSQL later) implements it and passes
 * the same contract tests; callers never see SQL.
 */
export interface Store {
  /** Queues a run for the next batched write. Never blocks and never throws on the probe path. */
  append(run: RunRecord): void;
  /** Writes everything queued now. */
  flush(): Promise<void>;
  runs(query: RunQuery): Promise<StoredRun[]>;
  /** The newest run of each probe (queued ones included), for state after a restart. */
  latest(probeId: string): StoredRun | RunRecord | undefined;
  /** Reads per-probe state kept across runs (see ProbeContext.state). */
  probeState(probeId: string): unknown;
  setProbeState(probeId: string, value: unknown): void;
  /** Deletes raw runs that started before `before` (epoch ms), in bounded chunks; returns how many. */
  prune(before: number): Promise<number>;
  /** Proves the database takes a write now. */
  health(): StoreHealth;
  /** Flushes and closes. */
  close(): Promise<void>;
}
