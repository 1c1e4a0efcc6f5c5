// One shared timer per interval drives every open stream's keep-alive, rather than a timer per
// connection: thousands of streams cost one timer. The timer is unref'd so it never keeps the
// process alive and is cleared as soon as its last stream closes.

/** What the heartbeat needs from a stream. */
export interface Beating {
  /** Called on every tick; the stream decides whether it needs a ping. */
  beat(): void;
}

interface Group {
  readonly timer: NodeJS.Timeout;
  readonly members: Set<Beating>;
}

const groups = new Map<number, Group>();

/** Adds `member` to the heartbeat of period `ms`; `leaveHeartbeat(member, ms)` removes it. */
export function joinHeartbeat(member: Beating, ms: number): void {
  let group = groups.get(ms);
  if (group === undefined) {
    const members = new Set<Beating>();
    const timer = setInterval(() => {
      for (const m of members) m.beat();
    }, ms);
    timer.unref();
    group = { timer, members };
    groups.set(ms, group);
  }
  group.members.add(member);
}

// A function (the caller knows its period) rather than a closure returned by joinHeartbeat: that
// closure would be one more object per open stream.
/** Removes `member` from the heartbeat of period `ms`; the timer stops with its last member. */
export function leaveHeartbeat(member: Beating, ms: number): void {
  const group = groups.get(ms);
  if (group === undefined || !group.members.delete(member)) return;
  if (group.members.size === 0) {
    clearInterval(group.timer);
    groups.delete(ms);
  }
}

/** Number of live heartbeat timers; tests use it to prove none is left behind. */
export function activeHeartbeatTimers(): number {
  return groups.size;
}
