// A TCP proxy for fault injection between a client (the Redis adapter) and a real server (a
// redis-server the test started): added latency, a frozen link, dropped connections, refused
// connections. Faults are injected on the wire, never by mocking the client.
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
}

export class FaultProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  /** Milliseconds added to every chunk, both ways, on every connection. */
  latency = 0;
  /** Milliseconds added to every chunk, both ways, on Pub/Sub connections only. */
  pubsubLatency = 0;
  /** New connections are closed at once (Redis looks down). */
  refusing = false;
  /** Replies are held (commands still reach Redis): with dropAll(), a reply lost on the way back. */
  holdReplies = false;
  #paused = false;
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
    };
    this.#links.add(link);
    const end = (): void => {
      if (!this.#links.delete(link)) return;
      clearTimeout(link.up.timer);
      clearTimeout(link.down.timer);
      client.destroy();
      server.destroy();
    };
    for (const socket of [client, server]) {
      socket.on('error', end);
      socket.on('close', end);
    }
    client.on('data', (data: Buffer) => {
      if (!link.pubsub && /SUBSCRIBE/i.test(data.toString('latin1'))) link.pubsub = true;
      this.#push(link, link.up, data);
    });
    server.on('data', (data: Buffer) => this.#push(link, link.down, data));
  }

  #push(link: Link, pipe: Pipe, data: Buffer): void {
    const delay = this.latency + (link.pubsub ? this.pubsubLatency : 0);
    pipe.queue.push({ at: performance.now() + delay, data });
    this.#pump(link, pipe);
  }

  // Sends what is due, in order; waits for the first chunk that is not.
  #pump(link: Link, pipe: Pipe): void {
    if (this.#paused || (this.holdReplies && pipe === link.down) || pipe.timer !== undefined || !this.#links.has(link)) return;
    while (pipe.queue.length > 0) {
      const wait = pipe.queue[0]!.at - performance.now();
      if (wait > 0) {
        pipe.timer = setTimeout(() => {
          pipe.timer = undefined;
          this.#pump(link, pipe);
        }, wait);
        return;
      }
      pipe.to.write(pipe.queue.shift()!.data);
    }
  }
}
