// The runs of a registry: starting them here, stopping them from any process, following them.
//
// - Starting checks everything, then creates the run's log at once, atomically (a second start of
//   the same id, here or on another process, is refused), so a follower asking a moment later
//   finds it before its first chunk; the run produces into it here (run.ts).
// - Stopping a run this process produces aborts it. Any other process asks every process over one
//   control channel, waits for the run's end to appear in its log, and writes the end itself when
//   none does within a bound (the producing process is gone, or the request was lost). The end
//   seals the log, so a producer still running finds out at its next chunk and stops.
// - Following reads the run's log once to answer 404 (unknown or expired) or 204 (the client
//   already has the end); otherwise it subscribes the connection to the run's channel from the
//   client's position, or from the start, and closes the stream after the end (run-views.ts).
//   A process with followers also keeps a watchdog per run: a log that gets no event for
//   `runs.maxDuration` belongs to a dead producer, and the watchdog ends it.
import type { Adapter, PublishOptions, PublishedEvent, ReadOptions, ReadResult } from '../adapters/adapter';
import { subscribeAll, streamOf, type Channel } from '../channels/channel';
import { debug } from '../common/debug';
import * as diagnostics from '../common/diagnostics';
import { SseError, fieldError } from '../common/errors';
import { checkOptionNames, checkOptionsObject } from '../common/checks';
import { parseLastEventId, type ClientPosition, type Position } from '../log/position';
import {
  RUN_CONTROL_CHANNEL,
  RunProducer,
  abortRun,
  endEntry,
  isRunId,
  resolveRunOptions,
  runChannelName,
  validateRunId,
  type Run,
  type RunEndReason,
  type RunOptions,
  type RunSettings,
  type RunSource,
} from './run';
import { UI_MESSAGE_STREAM_HEADER, runView, type RunFormat } from './run-views';
import type { Serializer } from '../stream/serializer';
import type { StreamTarget } from '../stream/sse-stream';
import type { Stream } from '../stream/stream';

/** Options of `registry.followRun()`. */
export interface FollowOptions {
  /** @default 'sse' */
  readonly format?: RunFormat;
}

/** What `registry.followRun()` answered. */
export type FollowOutcome =
  /** The run streams to the client (until its end, or until the client leaves). */
  | 'streaming'
  /** 204: the client has the run's end (`ai-sdk`: the run ended, or there is none). */
  | 'finished'
  /** 404 with a JSON `{ error }`: no such run here, or it expired. */
  | 'not-found'
  /** 503 with `Retry-After`: the run's log could not be read, or the registry is closing. */
  | 'unavailable'
  /** Nothing to answer: the client left, or the `sse()` handler refused the stream (its limits, its shutdown). */
  | 'closed';

/** What runs need from their registry. */
export interface RunsHooks {
  readonly adapter: Adapter;
  readonly serialize: Serializer;
  /** The registry's channel that holds a run's log. */
  channel(name: string): Channel;
  nextOrigin(): string;
  onError(error: Error): void;
}

const KNOWN_FOLLOW_OPTIONS = new Set(['format']);

/** How long a stop from another process waits for the producer to write the end. */
export const STOP_WAIT_MS = 2000;
const STOP_POLL_MS = 50;
/** Past `runs.maxDuration` of silence, how long (at most) a watchdog still leaves the producer to end its run. */
const WATCHDOG_GRACE_MS = 5000;

function noop(): void {}

function isSealed(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_SSE_LOG_SEALED';
}

export class Runs {
  readonly #settings: RunSettings;
  readonly #hooks: RunsHooks;
  readonly #local = new Map<string, RunProducer>();
  /** Watchdogs of the runs followed here, by id. */
  readonly #watchdogs = new Map<string, NodeJS.Timeout>();
  /** The subscription to stop requests, from the first run on. */
  #control: Promise<void> | undefined;
  /** Past runs.maxDuration of silence, how long a watchdog still leaves the producer. */
  readonly #grace: number;
  // How a run's log is kept: long while it runs (it outlives any pause of its producer), `ttl`
  // once ended (see run.ts). Built once: a chunk's append allocates no options.
  readonly #running: PublishOptions;
  readonly #ended: PublishOptions;
  /** The end of a run whose log was lost mid-answer: it starts a new log (see #append). */
  readonly #endedAnew: PublishOptions;
  readonly #lookup: ReadOptions;
  #closed = false;

  constructor(settings: RunSettings, hooks: RunsHooks) {
    this.#settings = settings;
    this.#hooks = hooks;
    const { history, ttl, maxDuration } = settings;
    this.#grace = Math.min(WATCHDOG_GRACE_MS, maxDuration);
    // Chunks and ends append only to the log the start created: a log lost mid-answer (Redis lost
    // its data) must not start again from the middle, which later followers would take for the
    // whole answer.
    this.#running = { history, ttl: maxDuration + this.#grace + ttl, create: false };
    this.#ended = { history, ttl, seal: true, create: false };
    this.#endedAnew = { ...this.#ended, create: true };
    this.#lookup = { ...this.#running, create: false };
  }

  /** Runs this process produces now. */
  get size(): number {
    return this.#local.size;
  }

  async start(id: string, source: RunSource, options: RunOptions = {}): Promise<Run> {
    validateRunId(id);
    const config = resolveRunOptions(source, options, this.#settings);
    const exists = (): SseError => new SseError('ERR_SSE_RUN_EXISTS', `a run "${id}" exists already (running, or kept after its end)`);
    if (this.#local.has(id)) throw exists();
    await this.#listenForStops();
    this.#refuseIfClosed();
    const name = runChannelName(id);
    const hooks = this.#hooks;
    // Created here, or refused: only one start of an id wins, on any process.
    const { created } = await hooks.adapter.read(name, undefined, { ...this.#running, create: true });
    if (created !== true || this.#local.has(id)) throw exists();
    if (this.#closed) {
      // close() came while the log was created: end it, so nobody waits for a run that never starts.
      await this.#end(id, 'shutdown').catch(noop);
      this.#refuseIfClosed();
    }
    const run = new RunProducer(id, source, config, {
      append: (event, end) => this.#append(name, event, end),
      nextOrigin: () => hooks.nextOrigin(),
      onError: (error) => hooks.onError(error),
      serialize: hooks.serialize,
    });
    this.#local.set(id, run);
    if (diagnostics.runStart.hasSubscribers) diagnostics.runStart.publish({ id });
    void run.done.then((end) => {
      this.#local.delete(id);
      if (diagnostics.runEnd.hasSubscribers) diagnostics.runEnd.publish({ id, ...end });
    });
    return run;
  }

  #refuseIfClosed(): void {
    if (this.#closed) throw new SseError('ERR_SSE_REGISTRY_CLOSED', 'the registry is closed');
  }

  // A chunk, or the end. When the log was lost mid-answer, the end starts a new log holding only
  // itself: followers learn that the answer ended, and why ("error"), instead of waiting for their
  // watchdog; none of them takes the part before for the whole answer.
  async #append(name: string, event: PublishedEvent, end: boolean): Promise<unknown> {
    const adapter = this.#hooks.adapter;
    if (!end) return adapter.publish(name, event, this.#running);
    try {
      return await adapter.publish(name, event, this.#ended);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_SSE_LOG_LOST') throw error;
      return adapter.publish(name, event, this.#endedAnew);
    }
  }

  /** The run `id` produced by this process, if it is running here. */
  get(id: string): Run | undefined {
    return this.#local.get(id);
  }

  /**
   * Stops the run `id`, wherever it is produced. Resolves `true` once its end is in its log,
   * `false` when there is no such run or it had ended already.
   */
  async stop(id: string): Promise<boolean> {
    const local = this.#local.get(id);
    if (local !== undefined) {
      const running = !local.signal.aborted;
      local.stop();
      await local.done;
      return running;
    }
    if (!isRunId(id) || (await this.#state(id)) !== 'running') return false;
    const hooks = this.#hooks;
    await hooks.adapter.publish(RUN_CONTROL_CHANNEL, { event: 'stop', text: JSON.stringify({ run: id }), kind: 'json', id: undefined, origin: undefined }, { history: 0, ttl: 0 });
    const deadline = performance.now() + STOP_WAIT_MS;
    while (performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, STOP_POLL_MS));
      if ((await this.#state(id)) !== 'running') return true;
    }
    // Nobody wrote the end: the process producing the run is gone, or never got the request. End
    // it here; a producer still running finds the log sealed at its next chunk and stops.
    debug('run "%s": no process ended it within %d ms; ending it here', id, STOP_WAIT_MS);
    await this.#end(id, 'stopped');
    return true;
  }

  /**
   * Answers the request with the run `id`: 404 (JSON) when there is none, 204 when the client has
   * its end already, else its stream from the client's Last-Event-ID (or from the start), ending
   * after the run's end. Never rejects for what happens at run time (it answers 503 instead).
   */
  async follow(target: StreamTarget, id: string, options: FollowOptions = {}): Promise<FollowOutcome> {
    const stream = streamOf(target);
    checkOptionsObject(options, 'followRun()');
    checkOptionNames(options, KNOWN_FOLLOW_OPTIONS, 'followRun()');
    const format = options.format ?? 'sse';
    if (format !== 'sse' && format !== 'ai-sdk') throw fieldError('ERR_SSE_INVALID_OPTION', 'format', '"sse" or "ai-sdk"', format);
    if (stream.closed) return 'closed';
    // An AI SDK client asks for the active stream of a chat: none is a 204, not an error.
    const missing = format === 'ai-sdk' ? 'finished' : 'not-found';
    if (!isRunId(id)) return this.#answer(stream, missing);
    // A route-mounted sse() must not open the stream while the log is read.
    stream.claim();
    try {
      return await this.#follow(stream, id, format, missing);
    } catch (cause) {
      this.#hooks.onError(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not follow run "${id}"; answered 503`, { cause }));
      stream.refuse(503, 'express-sse-hub: the run could not be read; retry later\n', stream.retryAfter);
      return 'unavailable';
    }
  }

  async #follow(stream: Stream, id: string, format: RunFormat, missing: 'finished' | 'not-found'): Promise<FollowOutcome> {
    // An AI SDK client resumes by reading the whole run again; it sends no Last-Event-ID.
    const client = format === 'sse' ? parseLastEventId(stream.lastEventId) : undefined;
    const result = await this.#read(id, client?.valid === true ? client.positions : undefined);
    if (stream.closed) return 'closed';
    // close() came while the log was read: nothing of this registry may start now (a watchdog
    // made after close() would call into it later).
    if (this.#closed) {
      stream.refuse(503, 'express-sse-hub: the server is shutting down; retry later\n', stream.retryAfter);
      return 'unavailable';
    }
    if (result.head.epoch === '') return this.#answer(stream, missing);
    const finished =
      format === 'sse' ? result.sealed === true && result.matched >= 0 && !result.evicted && result.events.length === 0 : result.sealed === true;
    if (finished) return this.#answer(stream, 'finished');
    if (format === 'ai-sdk') stream.res.setHeader(UI_MESSAGE_STREAM_HEADER, 'v1');
    const watchdog = this.#watch(id);
    const view = runView(format, stream, id, watchdog);
    // No position from the client: the whole run, from before its first chunk.
    const from: ClientPosition = client ?? { positions: [{ epoch: result.head.epoch, offset: 0 }], valid: true };
    subscribeAll([this.#hooks.channel(runChannelName(id))], stream, { filter: view.filter }, from);
    if (!stream.opened) return 'closed'; // refused by a connection limit or a shutdown
    view.begin();
    return 'streaming';
  }

  /** Stops every run produced here (reason `shutdown`) and waits for their ends, at most `timeout` ms. */
  async close(timeout: number): Promise<void> {
    this.#closed = true;
    for (const timer of this.#watchdogs.values()) clearTimeout(timer);
    this.#watchdogs.clear();
    const runs = [...this.#local.values()];
    for (const run of runs) abortRun(run, 'shutdown');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(runs.map((run) => run.done)), new Promise((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
    if (this.#control !== undefined) this.#hooks.adapter.unsubscribe(RUN_CONTROL_CHANNEL);
  }

  // 404 (JSON) or 204. A stream that went out already (the route awaited before following, with
  // a route-mounted sse()) can only be ended: the client saw 200 and will ask again, so say why.
  #answer<T extends 'not-found' | 'finished'>(stream: Stream, outcome: T): T {
    if (stream.opened) {
      this.#hooks.onError(
        new SseError('ERR_SSE_HEADERS_SENT', `followRun() answered a stream that was open already, so the client got 200, not ${outcome === 'finished' ? 204 : 404}; call it before awaiting anything, or mount sse() app-wide`),
      );
    }
    if (outcome === 'finished') stream.answer(204, undefined);
    else stream.answer(404, { type: 'application/json; charset=utf-8', text: '{"error":"no such run (it may have expired)"}' });
    return outcome;
  }

  // Reads without creating (a made-up id leaves nothing behind) and without keeping the log longer.
  #read(id: string, after: readonly Position[] | undefined): Promise<ReadResult> {
    return this.#hooks.adapter.read(runChannelName(id), after, this.#lookup);
  }

  async #state(id: string): Promise<'missing' | 'ended' | 'running'> {
    const { head, sealed } = await this.#read(id, undefined);
    if (head.epoch === '') return 'missing';
    return sealed === true ? 'ended' : 'running';
  }

  // Appends the end (sealed) unless the run has one already.
  async #end(id: string, reason: RunEndReason): Promise<void> {
    try {
      await this.#hooks.adapter.publish(runChannelName(id), endEntry(reason, this.#hooks.nextOrigin()), this.#ended);
    } catch (error) {
      // Sealed: it has its end. Lost: there is no run left to end.
      if (!isSealed(error) && (error as { code?: unknown }).code !== 'ERR_SSE_LOG_LOST') throw error;
    }
  }

  // The watchdog of a run followed here: refreshed by every event its followers see; fired after
  // runs.maxDuration (and a grace) without one, it ends the run if anyone here still follows it.
  // Returns what followers call on each event (`ended`: the run's end went by).
  #watch(id: string): (ended: boolean) => void {
    let timer = this.#watchdogs.get(id);
    if (timer === undefined && !this.#closed) {
      timer = setTimeout(() => {
        this.#watchdogs.delete(id);
        if (this.#closed) return;
        const channel = this.#hooks.channel(runChannelName(id));
        if (channel.size === 0 || this.#local.has(id)) return;
        debug('run "%s": no event for %d ms; its producer is gone, ending it', id, this.#settings.maxDuration);
        this.#end(id, 'timeout').catch((cause: unknown) => this.#hooks.onError(new SseError('ERR_SSE_RUN_FAILED', `could not end the abandoned run "${id}"`, { cause })));
      }, this.#settings.maxDuration + this.#grace);
      timer.unref();
      this.#watchdogs.set(id, timer);
    }
    return (ended) => {
      const current = this.#watchdogs.get(id);
      if (current === undefined) return;
      if (ended) {
        clearTimeout(current);
        this.#watchdogs.delete(id);
      } else {
        current.refresh();
      }
    };
  }

  #listenForStops(): Promise<void> {
    this.#control ??= this.#hooks.adapter.subscribe(RUN_CONTROL_CHANNEL, (entry) => {
      let request: { run?: unknown };
      try {
        request = JSON.parse(entry.text) as { run?: unknown };
      } catch {
        return;
      }
      const run = typeof request.run === 'string' ? this.#local.get(request.run) : undefined;
      if (run !== undefined) {
        debug('run "%s" stopped from another process', run.id);
        run.stop();
      }
    });
    // Not subscribed (the adapter is away): the next run tries again.
    this.#control.catch(() => (this.#control = undefined));
    return this.#control;
  }
}
