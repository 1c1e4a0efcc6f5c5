// A TCP proxy for fault injection between a client (the Redis adapter, the browser client) and a
// real server (a redis-server, an Express app the test started): added latency, a frozen link,
// dropped connections, refused connections. Faults are injected on the wire, never by mocking
// the client.
import net from 'node:net';

/** Data held back by a paused or delayed link, in order. */
interface Pipe {
  readonly from: net.Socket;
  readonly to: net.Socket;
  /** Chunks waiting for their time (latency) or for resume(). */
  readonly queue: { at: number; data: Buffer }[];
  timer: NodeJS.Timeout | undefined;
}

interface Link {
  readonly client: net.Socket;
  readonly server: net.Socket;
  readonly up: Pipe;
  readonly down: Pipe;
  /** The client sent a (S)SUBSCRIBE: a Pub/Sub connection. */
  pubsub: boolean;
  /** The reply to what the client just sent is lost: the connection is cut when it comes. */
  losing: boolean;
  /** Redis stopped answering this link (see silenceAfter()): what it sends is held for good. */
  silent: boolean;
  /** Server bytes not yet split into whole RESP values (with `tamperable` only). */
  rest: Buffer;
  /** A Pub/Sub message held back by a swap, sent after the next one. */
  held: Buffer | undefined;
  heldTimer: NodeJS.Timeout | undefined;
}

/**
 * The end of the RESP value starting at `at` in `buf`, or -1 when it is not all there yet.
 * RESP2 and RESP3 types; an attribute (`|`) is a value of its own.
 */
function respEnd(buf: Buffer, at: number): number {
  if (at >= buf.length) return -1;
  const line = buf.indexOf('\r\n', at, 'latin1');
  if (line === -1) return -1;
  const type = String.fromCharCode(buf[at]!);
  const n = Number(buf.toString('latin1', at + 1, line));
  const next = line + 2;
  if ('$=!'.includes(type)) {
    if (n < 0) return next;
    return next + n + 2 <= buf.length ? next + n + 2 : -1;
  }
  if ('*~>%|'.includes(type)) {
    let end = next;
    const items = n < 0 ? 0 : '%|'.includes(type) ? 2 * n : n;
    for (let i = 0; i < items; i += 1) {
      end = respEnd(buf, end);
      if (end === -1) return -1;
    }
    return end;
  }
  return next; // + - : _ , # (
}

/** Whether a RESP value is a Pub/Sub message push (message, smessage or pmessage). */
function isPubsubMessage(value: Buffer): boolean {
  const head = value.toString('latin1', 0, 24);
  return /^[*>][34]\r\n\$[78]\r\n[sp]?message\r\n/.test(head);
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  /** Milliseconds added to every chunk, both ways, on every connection. */
  latency = 0;
  /** Milliseconds added to every chunk, both ways, on Pub/Sub connections only. */
  pubsubLatency = 0;
  /** Milliseconds added to every chunk, both ways, on connections that are not Pub/Sub (commands). */
  commandLatency = 0;
  /** New connections are closed at once (Redis looks down). */
  refusing = false;
  /** Bytes passed on from the server to clients, all connections together. */
  bytesDown = 0;
  /** Replies are held (commands still reach Redis): with dropAll(), a reply lost on the way back. */
  holdReplies = false;
  /**
   * Splits what Redis sends into whole RESP values, so that Pub/Sub messages can be tampered
   * with (duplicatePubsub(), swapPubsub()). Set before the connections to tamper with are made.
   */
  tamperable = false;
  /** Pub/Sub messages to send twice, then to swap with the next, counted on all links. */
  #duplicates = 0;
  #swaps = 0;
  /** Pub/Sub messages duplicated and pairs swapped so far. */
  duplicated = 0;
  swapped = 0;
  #paused = false;
  /** Armed by loseNextReply(): which command's reply to lose, and who waits for it. */
  #lose: { pattern: RegExp; lost: () => void } | undefined;
  /** Armed by silenceAfter(): which command silences its link, and who waits for it. */
  #silence: { pattern: RegExp; silenced: () => void } | undefined;
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Starts a proxy on 127.0.0.1 (a free port) in front of `target`. */
  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.#server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** The proxy as an HTTP origin. */
  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The proxy as a Redis URL. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#links.size;
  }

  /** Freezes every link (as a SIGSTOP'd server would look): data is held, not lost. */
  pause(): void {
    this.#paused = true;
  }

  /** Lets held data through, in order. */
  resume(): void {
    this.#paused = false;
    for (const link of this.#links) {
      this.#pump(link, link.up);
      this.#pump(link, link.down);
    }
  }

  /**
   * The next command matching `pattern` reaches Redis, which runs it; its reply is lost and the
   * connection cut, as when a network fails between the two. Resolves once that happened.
   */
  loseNextReply(pattern: RegExp): Promise<void> {
    return new Promise((lost) => (this.#lose = { pattern, lost }));
  }

  /**
   * The next command matching `pattern` (on any link) reaches Redis, which runs it; from then on
   * that link hears nothing back, neither that reply nor any later one, and stays open: a Redis
   * that stopped answering one connection. Resolves once a link went silent.
   */
  silenceAfter(pattern: RegExp): Promise<void> {
    return new Promise((silenced) => (this.#silence = { pattern, silenced }));
  }

  /** The next `count` Pub/Sub messages (on any link) are each delivered twice (needs `tamperable`). */
  duplicatePubsub(count = 1): void {
    this.#duplicates += count;
  }

  /**
   * The next `count` Pub/Sub messages are each held and sent after the message that follows it on
   * its link (or after 100 ms if none does): reordered delivery (needs `tamperable`).
   */
  swapPubsub(count = 1): void {
    this.#swaps += count;
  }

  /** Stops tampering: what is armed is disarmed, what is held is sent. */
  stopTampering(): void {
    this.#duplicates = 0;
    this.#swaps = 0;
    for (const link of this.#links) this.#release(link);
  }

  /** Cuts every open connection at once (both sides), like a network failure. */
  dropAll(filter: (pubsub: boolean) => boolean = () => true): void {
    for (const link of [...this.#links]) {
      if (!filter(link.pubsub)) continue;
      link.client.destroy();
      link.server.destroy();
    }
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const server = net.connect(this.#target.port, this.#target.host);
    const link: Link = {
      client,
      server,
      up: { from: client, to: server, queue: [], timer: undefined },
      down: { from: server, to: client, queue: [], timer: undefined },
      pubsub: false,
      losing: false,
      silent: false,
      rest: Buffer.alloc(0),
      held: undefined,
      heldTimer: undefined,
    };
    this.#links.add(link);
    const end = (): void => {
      if (!this.#links.delete(link)) return;
      clearTimeout(link.up.timer);
      clearTimeout(link.down.timer);
      clearTimeout(link.heldTimer);
      client.destroy();
      server.destroy();
    };
    for (const socket of [client, server]) {
      socket.on('error', end);
      socket.on('close', end);
    }
    client.on('data', (data: Buffer) => {
      const text = data.toString('latin1');
      if (!link.pubsub && /SUBSCRIBE/i.test(text)) link.pubsub = true;
      if (this.#lose !== undefined && !link.pubsub && this.#lose.pattern.test(text)) link.losing = true;
      if (this.#silence !== undefined && this.#silence.pattern.test(text)) {
        link.silent = true;
        this.#silence.silenced();
        this.#silence = undefined;
      }
      this.#push(link, link.up, data);
    });
    server.on('data', (data: Buffer) => {
      if (link.losing) {
        const { lost } = this.#lose!;
        this.#lose = undefined;
        client.destroy();
        server.destroy();
        lost();
        return;
      }
      if (this.tamperable) this.#split(link, data);
      else this.#push(link, link.down, data);
    });
  }

  // Passes on whole RESP values, tampering with Pub/Sub messages when armed.
  #split(link: Link, data: Buffer): void {
    const buf = link.rest.length === 0 ? data : Buffer.concat([link.rest, data]);
    let at = 0;
    for (let end = respEnd(buf, at); end !== -1; end = respEnd(buf, at)) {
      const value = buf.subarray(at, end);
      at = end;
      if (!link.pubsub || !isPubsubMessage(value)) {
        this.#push(link, link.down, value);
        continue;
      }
      const copy = Buffer.from(value);
      if (link.held !== undefined) {
        this.#push(link, link.down, copy);
        this.#release(link);
        this.swapped += 1;
      } else if (this.#swaps > 0) {
        this.#swaps -= 1;
        link.held = copy;
        link.heldTimer = setTimeout(() => this.#release(link), 100);
      } else {
        this.#push(link, link.down, copy);
        if (this.#duplicates > 0) {
          this.#duplicates -= 1;
          this.duplicated += 1;
          this.#push(link, link.down, copy);
        }
      }
    }
    link.rest = Buffer.from(buf.subarray(at));
  }

  #release(link: Link): void {
    clearTimeout(link.heldTimer);
    link.heldTimer = undefined;
    const held = link.held;
    link.held = undefined;
    if (held !== undefined && this.#links.has(link)) this.#push(link, link.down, held);
  }

  #push(link: Link, pipe: Pipe, data: Buffer): void {
    const delay = this.latency + (link.pubsub ? this.pubsubLatency : this.commandLatency);
    pipe.queue.push({ at: performance.now() + delay, data });
    this.#pump(link, pipe);
  }

  // Sends what is due, in order; waits for the first chunk that is not.
  #pump(link: Link, pipe: Pipe): void {
    if (this.#paused || ((this.holdReplies || link.silent) && pipe === link.down) || pipe.timer !== undefined || !this.#links.has(link)) return;
    while (pipe.queue.length > 0) {
      const wait = pipe.queue[0]!.at - performance.now();
      if (wait > 0) {
        pipe.timer = setTimeout(() => {
          pipe.timer = undefined;
          this.#pump(link, pipe);
        }, wait);
        return;
      }
      const { data } = pipe.queue.shift()!;
      if (pipe === link.down) this.bytesDown += data.length;
      pipe.to.write(data);
    }
  }
}
