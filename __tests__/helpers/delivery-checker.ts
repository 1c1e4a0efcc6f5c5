// An independent delivery checker (issue #21), derived from the promise in the README ("The
// delivery guarantee, exactly"), not from the code. It sees only what a user of the library sees:
// - the broadcasts: channel, data, and how each ended (resolved with an id, or rejected);
// - each client's raw event stream, frame by frame (parsed with eventsource-parser), across every
//   connection the client made, and the Last-Event-ID it sent each time.
// It imports nothing from src/: the harness uses the public API (express-sse-hub,
// express-sse-hub/redis); the checker only reads bytes and results.
//
// What it checks, per client and channel, over all its connections:
// - every event was broadcast on that channel, and the client subscribed to it;
// - one broadcast is at one position for everybody, and an acknowledged one at the position its
//   broadcast() resolved with (never stored twice, never two events at one position);
// - the event at position n + 1 comes only right after the one at n (log order, once, no gap),
//   unless a `reset` for that channel came first;
// - every frame's id carries a position for every channel of the connection, equal to what the
//   client has in that channel (an id that moves a channel without an event is a lost event);
// - at the end (every client reconnected, a last event on every channel) every client got the last
//   event of each channel, and, in an episode that lost no data, every acknowledged event after
//   where it started, every acknowledged event whose broadcast began after a connection without an
//   id saw its response start (once that connection was told where it is: "every event published
//   after the client's open reaches it"), and no `reset` at all.
//
// Channels are told apart in ids by their epochs (`<offset>.<epoch>`): an acknowledged broadcast's
// id names the epoch of its channel; an event names its channel by its data; an epoch that neither
// names is found by elimination (the one position of an id not yet attributed belongs to the one
// channel of the connection that has none).
import http from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One frame (a block ended by a blank line) as the client received it. */
export interface Frame {
  /** Which connection of the client (1, 2, …). */
  readonly connection: number;
  /** `event`: dispatched (has data); `id-only`: an id and no data; `other`: comments, retry. */
  readonly kind: 'event' | 'id-only' | 'other';
  /** The event name (`message` when none), for `event` frames. */
  readonly event: string | undefined;
  readonly data: string | undefined;
  /** The `id:` field of this frame, if it had one. */
  readonly idField: string | undefined;
  /** The id a browser keeps after this frame (what it sends as Last-Event-ID next time). */
  readonly lastEventId: string;
}

interface Position {
  readonly epoch: string;
  readonly offset: number;
}

const key = (p: Position): string => `${p.offset}.${p.epoch}`;

function parseParts(id: string | undefined): Position[] {
  if (id === undefined || id === '') return [];
  return id.split(',').map((part) => {
    const dot = part.indexOf('.');
    return { offset: dot === -1 ? NaN : Number(part.slice(0, dot)), epoch: dot === -1 ? part : part.slice(dot + 1) };
  });
}

/** How a connection ended. */
export interface ConnectionEnd {
  readonly frames: number;
  /** True when the client cut it (cutAfter, or close()). */
  readonly cut: boolean;
  readonly status: number | undefined;
}

export interface ConnectOptions {
  /** Destroys the socket right after this many frames (counted from this connection's first). */
  readonly cutAfter?: number;
  /** Overrides the Last-Event-ID sent (default: the last id received, as a browser does). */
  readonly lastEventId?: string;
}

/**
 * A client as a browser's EventSource is, but under the test's control: it connects with the id of
 * the last frame received, reads frame by frame, and can be cut at any frame boundary.
 */
export class RecordingClient {
  readonly frames: Frame[] = [];
  /** The Last-Event-ID sent by each connection ('' for none). */
  readonly sent: string[] = [];
  /** When each connection's response headers arrived (performance.now(); NaN if they never did). */
  readonly openedAt: number[] = [];
  lastEventId = '';
  connections = 0;
  #request: http.ClientRequest | undefined;
  #live = false;
  #waiters = new Set<() => void>();
  #ended: Promise<ConnectionEnd> = Promise.resolve({ frames: 0, cut: false, status: undefined });

  constructor(
    readonly name: string,
    readonly channels: readonly string[],
  ) {}

  get connected(): boolean {
    return this.#live;
  }

  /** Resolves when the current connection ends (at once when none is open). */
  get ended(): Promise<ConnectionEnd> {
    return this.#ended;
  }

  /**
   * Opens a connection; resolves once the response headers arrived (or the request failed).
   * Frames are recorded as they come.
   */
  connect(url: string, options: ConnectOptions = {}): Promise<number | undefined> {
    this.close();
    this.connections += 1;
    const connection = this.connections;
    const lastEventId = options.lastEventId ?? this.lastEventId;
    this.sent.push(lastEventId);
    this.openedAt.push(Number.NaN);
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== '') headers['last-event-id'] = lastEventId;
    const request = http.request(url, { headers, agent: false });
    this.#request = request;
    this.#live = true;
    let frames = 0;
    let cut = false;
    let status: number | undefined;
    let finish!: (end: ConnectionEnd) => void;
    this.#ended = new Promise<ConnectionEnd>((resolve) => (finish = resolve));
    const done = (): void => {
      if (this.#request === request) this.#live = false;
      finish({ frames, cut, status });
      this.#notify();
    };
    return new Promise((resolve) => {
      request.on('error', () => {
        resolve(undefined);
        done();
      });
      request.on('close', done);
      request.on('response', (response) => {
        status = response.statusCode;
        if (status === 200) this.openedAt[connection - 1] = performance.now();
        resolve(status);
        if (status !== 200) {
          response.resume();
          response.on('end', done);
          return;
        }
        response.setEncoding('utf8');
        // The frame splitter: lines, and a block at each blank line; the block is then parsed by
        // eventsource-parser (events) and by the standard's rule for the last event id.
        let rest = '';
        let block: string[] = [];
        let idBuffer = lastEventId;
        const parser = createParser({ onEvent: (message) => parsed.push(message) });
        const parsed: EventSourceMessage[] = [];
        response.on('data', (chunk: string) => {
          if (cut) return;
          const text = rest + chunk;
          let start = 0;
          const breaks = /\r\n|\r|\n/g;
          for (let match = breaks.exec(text); match !== null; match = breaks.exec(text)) {
            if (match[0] === '\r' && match.index === text.length - 1) break;
            const line = text.slice(start, match.index);
            start = breaks.lastIndex;
            if (line !== '') {
              block.push(line);
              continue;
            }
            if (block.length === 0) continue;
            const lines = block;
            block = [];
            let idField: string | undefined;
            for (const l of lines) {
              const colon = l.indexOf(':');
              if ((colon === -1 ? l : l.slice(0, colon)) !== 'id') continue;
              let value = colon === -1 ? '' : l.slice(colon + 1);
              if (value.startsWith(' ')) value = value.slice(1);
              if (!value.includes('\0')) idField = value;
            }
            if (idField !== undefined) idBuffer = idField;
            parsed.length = 0;
            parser.feed(`${lines.join('\n')}\n\n`);
            const message = parsed[0];
            this.lastEventId = idBuffer;
            const frame: Frame =
              message !== undefined
                ? { connection, kind: 'event', event: message.event ?? 'message', data: message.data, idField, lastEventId: idBuffer }
                : { connection, kind: idField !== undefined ? 'id-only' : 'other', event: undefined, data: undefined, idField, lastEventId: idBuffer };
            this.frames.push(frame);
            frames += 1;
            if (options.cutAfter !== undefined && frames >= options.cutAfter) {
              cut = true;
              request.destroy();
              this.#notify();
              return;
            }
          }
          rest = text.slice(start);
          this.#notify();
        });
        response.on('end', done);
      });
      request.end();
    });
  }

  /** Cuts the current connection (as a reload or a network failure). */
  close(): void {
    const request = this.#request;
    this.#request = undefined;
    this.#live = false;
    request?.destroy();
  }

  /** Resolves when `check` holds (checked after every frame and at every connection end). */
  waitFor(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const attempt = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.#waiters.delete(attempt);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(attempt);
        reject(new Error(`${this.name}: timed out waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(attempt);
      attempt();
    });
  }

  /** The data of the events received (all connections), for `channel` when given via `channelOf`. */
  eventData(): string[] {
    return this.frames.filter((f) => f.kind === 'event' && f.event === 'message').map((f) => f.data!);
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

interface Broadcast {
  readonly channel: string;
  readonly data: string;
  /** When broadcast() was called (performance.now()). */
  readonly startedAt: number;
  status: 'pending' | 'acked' | 'rejected';
  id?: string;
  error?: string;
}

export interface Violation {
  readonly client: string | undefined;
  readonly channel: string | undefined;
  readonly message: string;
}

/** The figures of one checked episode. */
export interface CheckStats {
  readonly frames: number;
  readonly events: number;
  readonly resets: number;
  readonly acked: number;
  readonly rejected: number;
  /** Frames whose id had a position the checker could not attribute to a channel. */
  readonly unattributed: number;
}

/** The oracle for one episode: record broadcasts and clients, then check(). */
export class DeliveryChecker {
  readonly clients: RecordingClient[] = [];
  /** What the harness did, in order, for the trace. */
  readonly log: string[] = [];
  /** Why this episode may rightly cost clients events (they may then get a `reset`). */
  readonly losses: string[] = [];
  /** The last event broadcast on each channel at the end of the episode. */
  readonly last = new Map<string, string>();
  readonly #broadcasts = new Map<string, Broadcast>();
  readonly #start = Date.now();
  readonly #problems: string[] = [];

  constructor(readonly label: string) {}

  note(text: string): void {
    this.log.push(`${((Date.now() - this.#start) / 1000).toFixed(3)} ${text}`);
  }

  /** A failure the harness saw (a broadcast that never succeeded after every fault healed…): a violation. */
  problem(text: string): void {
    this.#problems.push(text);
    this.note(`PROBLEM: ${text}`);
  }

  /** Something happened that may rightly lose data (a reset is allowed from now on). */
  lossy(reason: string): void {
    this.losses.push(reason);
    this.note(`(may lose data: ${reason})`);
  }

  client(name: string, channels: readonly string[]): RecordingClient {
    const client = new RecordingClient(name, channels);
    this.clients.push(client);
    return client;
  }

  /**
   * Runs one broadcast and records how it ended: `send` must broadcast `data` on `channel` and
   * resolve with the id broadcast() resolved with. Resolves with that id, or undefined if it
   * rejected (the checker then allows it to have been stored, once).
   */
  async broadcast(channel: string, data: string, send: () => Promise<{ id: string | undefined }>): Promise<string | undefined> {
    if (this.#broadcasts.has(data)) throw new Error(`the harness broadcast ${data} twice`);
    const record: Broadcast = { channel, data, startedAt: performance.now(), status: 'pending' };
    this.#broadcasts.set(data, record);
    try {
      const { id } = await send();
      if (id === undefined) {
        record.status = 'rejected';
        record.error = 'resolved without an id';
        return undefined;
      }
      record.status = 'acked';
      record.id = id;
      return id;
    } catch (error) {
      record.status = 'rejected';
      record.error = (error as Error).message;
      return undefined;
    }
  }

  get acked(): number {
    return [...this.#broadcasts.values()].filter((b) => b.status === 'acked').length;
  }

  get rejected(): number {
    return [...this.#broadcasts.values()].filter((b) => b.status !== 'acked').length;
  }

  /** Whether `client` has the last event of every one of its channels. */
  hasLast(client: RecordingClient): boolean {
    const got = new Set(client.eventData());
    return client.channels.every((channel) => this.last.has(channel) && got.has(this.last.get(channel)!));
  }

  /** Checks everything recorded; returns the violations (empty: the promise held). */
  check(options: { complete?: boolean } = {}): { violations: Violation[]; stats: CheckStats } {
    const complete = options.complete ?? true;
    const violations: Violation[] = [];
    const seen = new Set<string>();
    const violate = (client: string | undefined, channel: string | undefined, message: string): void => {
      const text = `${client ?? '-'}/${channel ?? '-'}: ${message}`;
      if (seen.has(text)) return;
      seen.add(text);
      violations.push({ client, channel, message });
    };

    for (const problem of this.#problems) violate(undefined, undefined, problem);
    if (complete) for (const channel of new Set(this.clients.flatMap((c) => c.channels))) if (!this.last.has(channel)) violate(undefined, channel, 'no last event was broadcast on it: nothing says its clients caught up');

    // Epochs → channels, from what users see.
    const epochOf = new Map<string, string>();
    const attribute = (epoch: string, channel: string, why: string): boolean => {
      const had = epochOf.get(epoch);
      if (had === undefined) {
        epochOf.set(epoch, channel);
        return true;
      }
      if (had !== channel) violate(undefined, channel, `epoch ${epoch} is in ${had} and in ${channel} (${why})`);
      return false;
    };
    const ackedAt = new Map<string, Broadcast>();
    for (const b of this.#broadcasts.values()) {
      if (b.status !== 'acked') continue;
      const parts = parseParts(b.id);
      if (parts.length !== 1 || !Number.isInteger(parts[0]!.offset)) {
        violate(undefined, b.channel, `broadcast ${b.data} resolved with id "${b.id}", not one position`);
        continue;
      }
      attribute(parts[0]!.epoch, b.channel, `the id of broadcast ${b.data}`);
      const at = `${b.channel}|${key(parts[0]!)}`;
      const other = ackedAt.get(at);
      if (other !== undefined) violate(undefined, b.channel, `broadcasts ${other.data} and ${b.data} both resolved with id ${b.id}`);
      ackedAt.set(at, b);
    }
    for (let progress = true; progress; ) {
      progress = false;
      for (const client of this.clients) {
        for (const frame of client.frames) {
          const parts = parseParts(frame.idField);
          if (parts.length === 0) continue;
          if (frame.kind === 'event' && frame.event === 'message') {
            const b = this.#broadcasts.get(frame.data!);
            if (b !== undefined) {
              const own = parts.filter((p) => epochOf.get(p.epoch) === b.channel);
              const unknown = parts.filter((p) => !epochOf.has(p.epoch));
              if (own.length === 0 && unknown.length === 1) progress = attribute(unknown[0]!.epoch, b.channel, `an event of ${b.channel}`) || progress;
            }
          }
          const unknown = parts.filter((p) => !epochOf.has(p.epoch));
          const missing = client.channels.filter((c) => !parts.some((p) => epochOf.get(p.epoch) === c));
          if (unknown.length === 1 && missing.length === 1) progress = attribute(unknown[0]!.epoch, missing[0]!, 'the one position left in an id') || progress;
        }
      }
    }

    // One broadcast at one position, for everybody.
    const dataAt = new Map<string, string>();
    const positionOf = new Map<string, string>();
    let frames = 0;
    let events = 0;
    let resets = 0;
    let unattributed = 0;
    for (const client of this.clients) {
      const cursor = new Map<string, Position>();
      const start = new Map<string, Position>();
      const resetPending = new Set<string>();
      const received = new Map<string, Set<string>>(client.channels.map((c) => [c, new Set<string>()]));
      const at = (frame: Frame, index: number): string => {
        const from = Math.max(0, index - 30);
        const lines = client.frames.slice(from, index + 3).map((f, i) => {
          const mark = from + i === index ? '>>' : '  ';
          return `${mark} [conn ${f.connection}, sent "${client.sent[f.connection - 1] ?? ''}"] ${f.kind === 'event' ? `${f.event} ${f.data}` : f.kind} id=${f.idField ?? '(none)'}`;
        });
        return `\n  frame ${index} of ${client.frames.length}:\n${lines.join('\n')}`;
      };
      let connection = 0;
      client.frames.forEach((frame, index) => {
        frames += 1;
        if (frame.connection !== connection) {
          // A connection that sent an id starts where that id says (for channels not known yet:
          // an id the harness gave, not one this client received).
          connection = frame.connection;
          for (const p of parseParts(client.sent[connection - 1])) {
            const channel = epochOf.get(p.epoch);
            if (channel === undefined || !client.channels.includes(channel) || cursor.has(channel)) continue;
            cursor.set(channel, p);
            start.set(channel, p);
          }
        }
        const parts = parseParts(frame.idField);
        const byChannel = new Map<string, Position>();
        let unknown = 0;
        for (const p of parts) {
          const channel = epochOf.get(p.epoch);
          if (channel === undefined) {
            unknown += 1;
            continue;
          }
          if (!client.channels.includes(channel)) violate(client.name, channel, `an id with a position in ${channel}, which it is not in: ${frame.idField}${at(frame, index)}`);
          if (byChannel.has(channel)) violate(client.name, channel, `an id with two positions in ${channel}: ${frame.idField}${at(frame, index)}`);
          if (!Number.isInteger(p.offset) || p.offset < 0) violate(client.name, channel, `an id with a malformed position: ${frame.idField}${at(frame, index)}`);
          byChannel.set(channel, p);
        }
        if (unknown > 0) unattributed += 1;
        if (frame.kind === 'event' && frame.event === 'reset') {
          resets += 1;
          let channel: string | undefined;
          try {
            channel = (JSON.parse(frame.data!) as { channel?: string }).channel;
          } catch {
            // reported below
          }
          if (channel === undefined || !client.channels.includes(channel)) {
            violate(client.name, channel, `a reset that names no channel of the client: ${frame.data}${at(frame, index)}`);
            return;
          }
          if (complete && this.losses.length === 0) violate(client.name, channel, `a reset (${frame.data}) in an episode that lost no data${at(frame, index)}`);
          resetPending.add(channel);
          return;
        }
        if (frame.kind === 'event' && frame.event === 'message') {
          events += 1;
          const b = this.#broadcasts.get(frame.data!);
          if (b === undefined) {
            violate(client.name, undefined, `an event that was never broadcast: ${frame.data}${at(frame, index)}`);
            return;
          }
          const channel = b.channel;
          if (!client.channels.includes(channel)) {
            violate(client.name, channel, `an event of ${channel}, which it is not in${at(frame, index)}`);
            return;
          }
          const p = byChannel.get(channel);
          if (p === undefined) {
            violate(client.name, channel, `an event of ${channel} whose id has no position in ${channel}: ${frame.idField}${at(frame, index)}`);
            return;
          }
          const here = `${channel}|${key(p)}`;
          const was = dataAt.get(here);
          if (was !== undefined && was !== b.data) violate(client.name, channel, `position ${key(p)} carried ${was} and ${b.data}${at(frame, index)}`);
          dataAt.set(here, b.data);
          const where = positionOf.get(b.data);
          if (where !== undefined && where !== here) violate(client.name, channel, `broadcast ${b.data} is at two positions, ${where} and ${here} (stored twice)${at(frame, index)}`);
          positionOf.set(b.data, here);
          if (b.status === 'acked' && b.id !== key(p)) violate(client.name, channel, `broadcast ${b.data} resolved with ${b.id} but came at ${key(p)}${at(frame, index)}`);
          const got = received.get(channel)!;
          if (got.has(b.data)) violate(client.name, channel, `${b.data} received twice${at(frame, index)}`);
          got.add(b.data);
          const had = cursor.get(channel);
          if (had === undefined) {
            // A connection without an id starts "from now": its first frame may be an event whose id
            // says where it is (no id-only frame is needed then); it starts there.
            if (client.sent[frame.connection - 1] !== '') violate(client.name, channel, `an event of ${channel} before the client was told where it is${at(frame, index)}`);
          } else if (resetPending.has(channel)) {
            if (p.epoch === had.epoch && p.offset <= had.offset) violate(client.name, channel, `after a reset, ${key(p)} which it had (at ${key(had)})${at(frame, index)}`);
            resetPending.delete(channel);
          } else if (p.epoch !== had.epoch) {
            violate(client.name, channel, `moved from epoch ${had.epoch} to ${p.epoch} without a reset${at(frame, index)}`);
          } else if (p.offset <= had.offset) {
            violate(client.name, channel, `${key(p)} after ${key(had)}: a duplicate or a reorder${at(frame, index)}`);
          } else if (p.offset > had.offset + 1) {
            violate(client.name, channel, `${key(p)} after ${key(had)}: a gap of ${p.offset - had.offset - 1} without a reset${at(frame, index)}`);
          }
          cursor.set(channel, p);
          if (!start.has(channel)) start.set(channel, p);
        }
        if (frame.idField === undefined) return;
        // Every frame's id says where the connection is in each of its channels.
        for (const channel of client.channels) {
          const p = byChannel.get(channel);
          if (p === undefined) {
            if (unknown === 0) violate(client.name, channel, `an id without a position in ${channel}: "${frame.idField}"${at(frame, index)}`);
            continue;
          }
          const had = cursor.get(channel);
          if (had === undefined) {
            cursor.set(channel, p);
            start.set(channel, p);
          } else if (resetPending.has(channel)) {
            if (p.epoch === had.epoch && p.offset < had.offset) violate(client.name, channel, `after a reset, the id went back from ${key(had)} to ${key(p)}${at(frame, index)}`);
            cursor.set(channel, p);
          } else if (p.epoch !== had.epoch || p.offset !== had.offset) {
            violate(client.name, channel, `the id moved ${channel} from ${key(had)} to ${key(p)} without an event of ${channel} (events in between are lost)${at(frame, index)}`);
            cursor.set(channel, p);
          }
        }
      });
      if (!complete) continue;
      // The client's last connection without an id (a reload starts a new client; every later
      // connection resumes), if it was told where it is: from the moment its response started,
      // every event published is one the client gets.
      const fresh = client.sent.lastIndexOf('');
      const told = fresh !== -1 && client.frames.some((f) => f.connection === fresh + 1 && f.idField !== undefined && f.idField !== '');
      const opened = told && Number.isFinite(client.openedAt[fresh]) ? [client.openedAt[fresh]!] : [];
      for (const channel of client.channels) {
        const got = received.get(channel)!;
        const last = this.last.get(channel);
        if (last !== undefined && !got.has(last)) violate(client.name, channel, `never got the last event of ${channel} (${last})`);
        if (this.losses.length > 0) continue;
        for (const b of this.#broadcasts.values()) {
          if (b.channel !== channel || b.status !== 'acked' || got.has(b.data)) continue;
          const after = opened.find((t) => b.startedAt > t);
          if (after !== undefined) {
            violate(client.name, channel, `acknowledged broadcast ${b.data} (id ${b.id}) began ${(b.startedAt - after).toFixed(1)} ms after connection ${fresh + 1} (without an id) saw its response start, and never reached it`);
          }
        }
        const from = start.get(channel);
        for (const b of this.#broadcasts.values()) {
          if (b.channel !== channel || b.status !== 'acked' || got.has(b.data)) continue;
          const p = parseParts(b.id)[0]!;
          if (from === undefined || (p.epoch === from.epoch && p.offset > from.offset) || p.epoch !== from.epoch) {
            violate(client.name, channel, `acknowledged broadcast ${b.data} (id ${b.id}) never reached it (it started at ${from === undefined ? 'nowhere' : key(from)})`);
          }
        }
      }
    }
    return {
      violations,
      stats: { frames, events, resets, acked: this.acked, rejected: this.rejected, unattributed },
    };
  }

  /** A readable report of the violations, with the harness's log. */
  report(violations: readonly Violation[]): string {
    const head = `${this.label}: ${violations.length} violation(s) of the delivery guarantee`;
    const list = violations.slice(0, 5).map((v, i) => `(${i + 1}) ${v.client ?? '-'} in ${v.channel ?? '-'}: ${v.message}`);
    // The streams of the clients involved, when the violation points at no frame.
    for (const name of new Set(violations.slice(0, 5).filter((v) => v.client !== undefined && !v.message.includes('\n')).map((v) => v.client!))) {
      const client = this.clients.find((c) => c.name === name)!;
      list.push(`${name} (${client.channels.join(',')}), its last frames:`);
      for (const f of client.frames.slice(-25)) {
        list.push(`   [conn ${f.connection}, sent "${client.sent[f.connection - 1] ?? ''}"] ${f.kind === 'event' ? `${f.event} ${f.data}` : f.kind} id=${f.idField ?? '(none)'}`);
      }
      list.push(`   connections: ${client.sent.map((id, i) => `${i + 1}:"${id}"`).join(' ')}${client.connected ? ' (the last one still open)' : ''}`);
    }
    const broadcasts = [...this.#broadcasts.values()].map((b) => `  ${b.channel} ${b.data}: ${b.status}${b.id === undefined ? '' : ` ${b.id}`}${b.error === undefined ? '' : ` (${b.error})`}`);
    return [head, ...list, 'episode:', ...this.log.slice(-80).map((l) => `  ${l}`), 'broadcasts:', ...broadcasts.slice(-60)].join('\n');
  }
}
