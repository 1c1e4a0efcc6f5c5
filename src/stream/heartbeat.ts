// Keep-alive comments, so proxies and load balancers do not close idle streams. One unref'd timer
// per sse() handler drives all its open streams (thousands of streams cost one timer), and it
// runs only while the handler has a stream open.
//
// No stream stays silent longer than the interval: the timer ticks four times per interval and a
// stream counts the ticks since it last wrote. At the fourth quiet tick it sends `:`, so the
// longest silence is between 3/4 of the interval and the interval itself. (A single tick per
// interval that skips streams which wrote "recently" allows almost twice the interval: a write
// just after one tick makes the next one skip the stream.)

//
// The same ticks find readers that stopped reading. Such a peer leaves everything sent to it in
// the kernel's send buffer (up to net.ipv4.tcp_wmem's maximum, 4 MiB on Linux) and then in the
// process (up to maxBufferedBytes), which a slow-client check at each write only sees once the
// kernel's share is full. A stream whose socket has something left to send but whose kernel took
// nothing more for STALL_INTERVALS whole intervals is dropped (a reset frees both buffers at once).

/** What the heartbeat needs from a stream. */
export interface Beating {
  /** Called on every tick (four per interval); the stream decides whether it needs a ping. */
  tick(): void;
  /**
   * Bytes the OS has taken from the stream's socket, while the socket still holds some to send;
   * undefined when it holds none (or cannot tell).
   */
  readonly taken: number | undefined;
  /** Its socket took nothing for STALL_INTERVALS intervals: drop it. */
  stall(): void;
}

/** Ticks per interval. */
export const TICKS_PER_INTERVAL = 4;
/** Heartbeat intervals a stream's socket may take nothing of what it holds before it is dropped. */
export const STALL_INTERVALS = 2;
const STALL_TICKS = STALL_INTERVALS * TICKS_PER_INTERVAL;

let activeTimers = 0;

export class Heartbeat {
  readonly #members: ReadonlySet<Beating>;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** Streams whose socket holds something to send: what the OS had taken, ticks since it took more. */
  readonly #backedUp = new Map<Beating, { taken: number; ticks: number }>();

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
      for (const member of this.#members) {
        member.tick();
        this.#watch(member);
      }
    }, this.#tickMs);
    this.#timer.unref();
  }

  /** A member left. */
  forget(member: Beating): void {
    this.#backedUp.delete(member);
  }

  #watch(member: Beating): void {
    const taken = member.taken;
    if (taken === undefined) {
      if (this.#backedUp.size > 0) this.#backedUp.delete(member);
      return;
    }
    const seen = this.#backedUp.get(member);
    if (seen === undefined || seen.taken !== taken) {
      this.#backedUp.set(member, { taken, ticks: 0 });
      return;
    }
    seen.ticks += 1;
    if (seen.ticks < STALL_TICKS) return;
    this.#backedUp.delete(member);
    member.stall();
  }

  /** Stops the timer; call it when the last member leaves. */
  stop(): void {
    this.#backedUp.clear();
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
