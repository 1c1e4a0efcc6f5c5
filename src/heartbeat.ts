// Keep-alive comments, so proxies and load balancers do not close idle streams. One unref'd timer
// per sse() handler drives all its open streams (thousands of streams cost one timer), and it
// runs only while the handler has a stream open.
//
// No stream stays silent longer than the interval: the timer ticks four times per interval and a
// stream counts the ticks since it last wrote. At the fourth quiet tick it sends `:`, so the
// longest silence is between 3/4 of the interval and the interval itself. (A single tick per
// interval that skips streams which wrote "recently" allows almost twice the interval: a write
// just after one tick makes the next one skip the stream.)

/** What the heartbeat needs from a stream. */
export interface Beating {
  /** Called on every tick (four per interval); the stream decides whether it needs a ping. */
  tick(): void;
}

/** Ticks per interval. */
export const TICKS_PER_INTERVAL = 4;

let activeTimers = 0;

export class Heartbeat {
  readonly #members: ReadonlySet<Beating>;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;

  /** Drives `members` (a set its owner keeps) every `intervalMs`. */
  constructor(members: ReadonlySet<Beating>, intervalMs: number) {
    this.#members = members;
    this.#tickMs = Math.max(1, Math.floor(intervalMs / TICKS_PER_INTERVAL));
  }

  /** Starts the timer if it is not running. */
  start(): void {
    if (this.#timer !== undefined) return;
    activeTimers += 1;
    this.#timer = setInterval(() => {
      for (const member of this.#members) member.tick();
    }, this.#tickMs);
    this.#timer.unref();
  }

  /** Stops the timer; call it when the last member leaves. */
  stop(): void {
    if (this.#timer === undefined) return;
    activeTimers -= 1;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Number of heartbeat timers running in this process; tests use it to prove none is left behind. */
export function activeHeartbeatTimers(): number {
  return activeTimers;
}
