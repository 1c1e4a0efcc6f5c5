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

/** Adds `member` to the heartbeat of period `ms`; the returned function removes it. */
export function joinHeartbeat(member: Beating, ms: number): () => void {
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
  const joined = group;
  joined.members.add(member);
  return () => {
    joined.members.delete(member);
    if (joined.members.size === 0 && groups.get(ms) === joined) {
      clearInterval(joined.timer);
      groups.delete(ms);
    }
  };
}

/** Number of live heartbeat timers; tests use it to prove none is left behind. */
export function activeHeartbeatTimers(): number {
  return groups.size;
}
