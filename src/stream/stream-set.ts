// The streams of one sse() handler: which are open (or about to be), their heartbeat, their
// connection limits, and ending them all on shutdown, however they were opened.
import type { Connection } from './connection';
import { Heartbeat } from './heartbeat';
import { ConnectionLimiter } from './limits';
import type { SseSettings } from './options';
import { endAll, resolveCloseOptions, type CloseOptions } from './shutdown';

/** What the set needs of a stream. */
export interface Member extends Connection {
  /**
   * Ends the stream for a shutdown: with `retry` (a `retry:` frame) and `frame` last if it is
   * open, with a 503 if not yet.
   */
  terminate(frame: string | undefined, retry?: string): void;
}

export class StreamSet<S extends Member = Member> {
  readonly settings: SseSettings;
  readonly limiter: ConnectionLimiter;
  readonly #members = new Set<S>();
  readonly #heartbeat: Heartbeat | undefined;
  #closing = false;

  constructor(settings: SseSettings) {
    this.settings = settings;
    this.limiter = new ConnectionLimiter(settings.limits);
    this.#heartbeat = settings.heartbeat === false ? undefined : new Heartbeat(this.#members, settings.heartbeat);
  }

  /** True once close() was called: new streams are refused. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Streams open or being opened. */
  get size(): number {
    return this.#members.size;
  }

  add(stream: S): void {
    this.#members.add(stream);
    if (this.#members.size === 1) this.#heartbeat?.start();
  }

  delete(stream: S): void {
    if (!this.#members.delete(stream)) return;
    this.#heartbeat?.forget(stream);
    if (this.#members.size === 0) this.#heartbeat?.stop();
  }

  /** Ends every stream (see Member.terminate), resetting those still open after the timeout. */
  async close(options: CloseOptions = {}): Promise<void> {
    const { frame, timeout, retry } = resolveCloseOptions(options, this.settings.serialize);
    this.#closing = true;
    await endAll([...this.#members], (stream) => stream.terminate(frame, retry()), timeout);
  }
}
