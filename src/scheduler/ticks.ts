import cron from 'node-cron';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';

/** Fires at each slot of one schedule. */
export interface TickSource {
  stop(): void;
}

export interface TickHandlers {
  /** A slot began: `slot` is its planned instant, `next` the following slot's (epoch ms). */
  onTick(slot: number, next: number): void;
  /** Slots passed without a tick (the event loop was blocked past them). */
  onMissed(count: number): void;
}

/** Makes the tick source of a cron expression; injected so tests can drive cron schedules with a fake clock. */
export type CronDriver = (expression: string, handlers: TickHandlers) => TickSource;

/** The production driver: one node-cron task per distinct expression. */
export function nodeCronDriver(logger: Logger): CronDriver {
  const log = logger.child({ module: 'node-cron' });
  // node-cron prints its warnings to the console unless it has a logger.
  cron.setLogger({
    info: (m) => log.debug(String(m)),
    warn: (m) => log.warn(String(m)),
    error: (m, err) => log.error({ err: err ?? m }, 'node-cron error'),
    debug: (m) => log.trace({ detail: String(m) }, 'node-cron debug'),
  });
  return (expression, handlers) => {
    const task = cron.schedule(
      expression,
      (ctx) => {
        // Cron slots fall on whole seconds; node-cron's date may carry how late it woke up.
        const slot = Math.floor(ctx.date.getTime() / 1000) * 1000;
        const next = task.getNextRun()?.getTime() ?? slot + 60_000;
        handlers.onTick(slot, next);
      },
      { name: `vigil:${expression}`, suppressMissedWarning: true },
    );
    task.on('execution:missed', () => handlers.onMissed(1));
    return {
      stop: () => {
        void task.destroy();
      },
    };
  };
}

/** `every: 30s`: slots aligned to multiples of the interval since the epoch, timed on the injected clock. */
export function everyTicks(clock: Clock, intervalMs: number, handlers: TickHandlers): TickSource {
  let timer: TimerHandle | undefined;
  let stopped = false;
  let slot = Math.ceil(clock.now() / intervalMs) * intervalMs;
  const arm = () => {
    if (!stopped) timer = clock.setTimeout(fire, slot - clock.now());
  };
  const fire = () => {
    const now = clock.now();
    // The wall clock stepped back (timers count elapsed time, slots are wall-clock instants): the old
    // slots would come round again only after the step, so the slot that holds `now` is the one due.
    if (slot - now > intervalMs) slot = Math.floor(now / intervalMs) * intervalMs;
    const behind = Math.floor((now - slot) / intervalMs);
    if (behind >= 1) {
      handlers.onMissed(behind);
      slot += behind * intervalMs;
    }
    handlers.onTick(slot, slot + intervalMs);
    slot += intervalMs;
    arm();
  };
  arm();
  return {
    stop: () => {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
    },
  };
}
