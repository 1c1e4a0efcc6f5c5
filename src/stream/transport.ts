// How a connection's bytes reach the socket. The only module that knows Node's HTTP internals.
//
// - SocketTransport, the HTTP/1.1 fast path: frames each chunk of the chunked body itself
//   (`<size hex>\r\n<data>\r\n`) and writes it to the socket in one call. `res.write` would make
//   four buffered writes, a cork and a nextTick uncork of them; on a busy server that is most of
//   the cost of fan-out. It relies on these internals of Node's OutgoingMessage, checked once per
//   process (see probe()) and again per response:
//     `res.chunkedEncoding`  true when Node frames the body as chunks (it will end it with 0\r\n\r\n)
//     `res.outputData`       Node's queue of unsent writes; must be empty (headers already on the socket)
//     `res.write`            must be Node's own: compression() and the like wrap it, and need it called
// - ResponseTransport, the fallback that works everywhere: `res.write` (HTTP/1.0, HEAD, HTTP/2's
//   compatibility API, compression(), anything wrapped), then `res.flush()` where something
//   buffers (compression()).
//
// res.end() always goes through Node, which sends the last chunk after whatever was written.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { debug } from '../common/debug';

// The members used of http1's ServerResponse and http2's compatibility response alike; their
// own typings have incompatible overloads, so one narrow shape serves both.
export interface ResponseLike {
  statusCode: number;
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  readonly writableLength: number;
  readonly writableHighWaterMark: number;
  readonly socket?: Socket | null;
  readonly chunkedEncoding?: boolean;
  setHeader(name: string, value: string): unknown;
  getHeader(name: string): unknown;
  writeHead(status: number): unknown;
  flushHeaders?: () => void;
  /** Added by compression(): pushes buffered output out. */
  flush?: () => void;
  setTimeout(ms: number): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  end(chunk: string): unknown;
  destroy(): unknown;
  on(event: 'close' | 'drain', listener: () => void): unknown;
  off(event: 'close' | 'drain', listener: () => void): unknown;
}

/**
 * A frame many connections write as it is (a channel's broadcast): the same object for all, so
 * its bytes are encoded once per flush, not once per connection.
 */
export interface SharedText {
  readonly text: string;
  /** UTF-8 bytes of `text`. */
  readonly bytes: number;
}

/** What a connection needs to get its bytes out. */
export interface Transport {
  /** Writes `text` now. Returns false when the socket's buffer is past its high-water mark. */
  write(text: string): boolean;
  /** Writes a shared frame now (see SharedText); the same as write(frame.text). */
  writeShared(frame: SharedText): boolean;
  /** Bytes written that the socket has not handed to the kernel yet. */
  readonly backlog: number;
  /** Backlog at which a write reports false and a 'drain' follows (16 KiB on Node 20, 64 KiB from Node 22). */
  readonly highWaterMark: number;
  /** True once the connection is gone (destroyed), even before its 'close' event ran. */
  readonly gone: boolean;
  /**
   * Bytes the operating system has taken from the socket so far (it grows while the peer reads);
   * undefined where the transport cannot tell (HTTP/2 shares one socket between streams).
   */
  readonly taken: number | undefined;
  /** Where 'drain' is emitted when the backlog clears. */
  readonly drainEmitter: { on(event: 'drain', listener: () => void): unknown; off(event: 'drain', listener: () => void): unknown };
  /** Drops the connection at once, discarding the backlog: a TCP reset where possible. */
  reset(): void;
}

/** Characters per write of a large flush (at most 192 KiB of UTF-8). */
const WRITE_SLICE = 64 * 1024;

// The last shared frame written, as a whole HTTP chunk in UTF-8. A flush writes one broadcast to
// thousands of connections one after the other: encoding it once and handing every socket the
// same Buffer (which nobody changes; each write keeps a reference until it is done) saves the
// encoding per connection, most of a fan-out's CPU besides the syscall. Per process on purpose,
// like the flusher: it describes the flush under way, whoever's connections it writes.
let lastShared: SharedText | undefined;
let lastChunk: Buffer | undefined;

// Broadcasts coalesced into one flush reach every connection of a channel in the same order:
// joined once, as one shared frame, they are still encoded once for all. (One entry: the join of
// the last pair. Connections whose queues differ join their own, as text.)
let joinedFirst: SharedText | undefined;
let joinedNext: SharedText | undefined;
let joinedBoth: SharedText | undefined;

/** `first` then `next`, as one shared frame: the same object for every connection that queued both. */
export function joinShared(first: SharedText, next: SharedText): SharedText {
  if (first !== joinedFirst || next !== joinedNext) {
    joinedBoth = { text: first.text + next.text, bytes: first.bytes + next.bytes };
    joinedFirst = first;
    joinedNext = next;
  }
  return joinedBoth!;
}

function chunkOf(frame: SharedText): Buffer {
  if (frame !== lastShared) {
    lastChunk = Buffer.from(`${frame.bytes.toString(16)}\r\n${frame.text}\r\n`, 'utf8');
    lastShared = frame;
  }
  return lastChunk!;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

// What a socket holds that the kernel has not taken yet. Node hands everything its socket buffered
// to libuv as one request (a writev of every queued write) and counts all of it as unwritten
// (writableLength) until the kernel took the last byte: for a slow reader, megabytes that go out
// over seconds with no sign of progress, which the heartbeat would take for a stalled reader (and
// the slow-client limit for a larger backlog than there is). libuv's live count of what is left to
// write (`_handle.writeQueueSize`) against the size of the request in flight
// (`_writableState.writelen`) shows the progress within it. Where either is missing or they do not
// fit (another Node, TLS counting encrypted bytes), progress shows per request, as before.
function pendingIn(socket: Socket): number {
  const length = socket.writableLength;
  if (length === 0) return 0;
  const internals = socket as unknown as { _handle?: { writeQueueSize?: unknown } | null; _writableState?: { writelen?: unknown } };
  const left = internals._handle?.writeQueueSize;
  const inFlight = internals._writableState?.writelen;
  if (typeof left !== 'number' || typeof inFlight !== 'number' || left > inFlight || inFlight > length) return length;
  return length - (inFlight - left);
}

// bytesWritten counts what was written to the socket, its own buffer included.
function takenFrom(socket: Socket): number {
  return socket.bytesWritten - pendingIn(socket);
}

// A stalled peer keeps a destroyed-but-unflushed socket in FIN-WAIT-1, with its send buffer,
// for as long as it lives. A reset frees it at once. resetAndDestroy() exists since Node 16.17
// and works on plain TCP handles only (a TLS socket throws), hence the fallback.
function resetSocket(socket: Socket | null | undefined, fallback: () => void): void {
  if (socket !== null && socket !== undefined && typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
      return;
    } catch (error) {
      debug('reset not possible (%s); destroying the socket instead', (error as Error).message);
    }
  }
  fallback();
}

class SocketTransport implements Transport {
  readonly #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  write(text: string): boolean {
    if (text.length <= WRITE_SLICE) return this.#chunk(text);
    // A large flush goes out in slices of at most 64 Ki characters, so that no one string is
    // encoded whole, however much a slow reader has queued. Each slice ends where a frame ends
    // when one ends in it: a client that (wrongly) reads a chunk as whole events still gets whole
    // events, unless a single frame is longer than a slice.
    let ok = true;
    for (let at = 0; at < text.length; ) {
      let end = Math.min(at + WRITE_SLICE, text.length);
      if (end < text.length) {
        const frameEnd = text.lastIndexOf('\n\n', end - 2);
        if (frameEnd >= at) end = frameEnd + 2;
        // Never between the two halves of a surrogate pair (each would go out as U+FFFD).
        else if (isLowSurrogate(text.charCodeAt(end))) end -= 1;
      }
      ok = this.#chunk(text.slice(at, end));
      at = end;
    }
    return ok;
  }

  writeShared(frame: SharedText): boolean {
    if (frame.text.length > WRITE_SLICE) return this.write(frame.text);
    return this.#socket.write(chunkOf(frame));
  }

  #chunk(text: string): boolean {
    return this.#socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
  }

  get backlog(): number {
    return pendingIn(this.#socket);
  }

  get highWaterMark(): number {
    return this.#socket.writableHighWaterMark;
  }

  get gone(): boolean {
    return this.#socket.destroyed;
  }

  get taken(): number {
    return takenFrom(this.#socket);
  }

  get drainEmitter(): Socket {
    return this.#socket;
  }

  reset(): void {
    resetSocket(this.#socket, () => this.#socket.destroy());
  }
}

class ResponseTransport implements Transport {
  readonly #res: ResponseLike;
  readonly #flushes: boolean;

  constructor(res: ResponseLike) {
    this.#res = res;
    this.#flushes = typeof res.flush === 'function';
  }

  write(text: string): boolean {
    const res = this.#res;
    const ok = res.write(text);
    // compression() holds output back until flushed; events must not wait.
    if (this.#flushes) res.flush!();
    return ok;
  }

  writeShared(frame: SharedText): boolean {
    return this.write(frame.text);
  }

  get backlog(): number {
    const res = this.#res;
    const socket = res.socket;
    // http1's writableLength is its own buffer plus its socket's.
    return socket instanceof Socket ? res.writableLength - (socket.writableLength - pendingIn(socket)) : res.writableLength;
  }

  get highWaterMark(): number {
    return this.#res.writableHighWaterMark;
  }

  get gone(): boolean {
    const res = this.#res;
    return res.destroyed || res.writableEnded || res.socket?.destroyed === true;
  }

  get drainEmitter(): ResponseLike {
    return this.#res;
  }

  get taken(): number | undefined {
    const socket = this.#res.socket;
    return socket instanceof Socket ? takenFrom(socket) : undefined;
  }

  reset(): void {
    const res = this.#res;
    // http2's compatibility response has no net.Socket of its own: destroying it resets the stream.
    resetSocket(res.socket instanceof Socket ? res.socket : undefined, () => res.destroy());
  }
}

let probed: boolean | undefined;

/**
 * Whether this Node still has the OutgoingMessage fields the fast path reads. Checked once, on a
 * response that is never sent; a Node that changed them gets the fallback, logged once.
 */
function probe(): boolean {
  if (probed !== undefined) return probed;
  try {
    const res = new ServerResponse(new IncomingMessage(new Socket())) as unknown as Record<string, unknown>;
    probed = typeof res.chunkedEncoding === 'boolean' && Array.isArray(res.outputData) && typeof ServerResponse.prototype.write === 'function';
  } catch {
    probed = false;
  }
  if (!probed) debug('fast path disabled: this Node (%s) lacks the ServerResponse internals it relies on', process.version);
  return probed;
}

interface RequestLike {
  readonly httpVersionMajor: number;
  readonly method?: string | undefined;
}

/**
 * The transport for a response whose headers were just flushed: the direct one where it writes
 * exactly what `res.write` would (HTTP/1.1, chunked body, headers already on the socket,
 * `write` not wrapped, not a HEAD), the generic one otherwise.
 */
export function createTransport(req: RequestLike, res: ResponseLike): Transport {
  const reason = fastPathRefusal(req, res);
  if (reason === undefined) return new SocketTransport(res.socket!);
  debug('fast path not taken: %s', reason);
  return new ResponseTransport(res);
}

function fastPathRefusal(req: RequestLike, res: ResponseLike): string | undefined {
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersionMajor}`;
  if (req.method === 'HEAD') return 'a HEAD request';
  if (!probe()) return 'Node internals missing';
  const socket = res.socket;
  if (socket === null || socket === undefined || socket.destroyed) return 'no socket';
  if (res.chunkedEncoding !== true) return 'the body is not chunked (HTTP/1.0 or a Content-Length)';
  if (res.write !== ServerResponse.prototype.write) return 'res.write is wrapped (compression() or similar)';
  const pending = (res as unknown as { outputData?: unknown[] }).outputData;
  if (!Array.isArray(pending) || pending.length !== 0) return 'the headers are still queued in Node';
  return undefined;
}
