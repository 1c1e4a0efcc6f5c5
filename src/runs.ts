// The runs of a registry: starting them here, stopping them from any process, following them.
//
// - Starting creates the run's log at once (so a follower asking a moment later finds it, even
//   before the first chunk) and produces into it here (run.ts).
// - Stopping a run this process produces aborts it; any other process asks every process over
//   one control channel, waits for the run's end to appear in its log, and writes the end itself
//   when none does within a bound (the producing process is gone).
// - Following reads the run's log once to answer 404 (unknown or expired) or 204 (the client
//   already has the end); otherwise it subscribes the connection to the run's channel from the
//   client's position, or from the start, and closes the stream after the end (run-views.ts).
import type { Response } from 'express';
import type { Adapter, LogEntry, ReadOptions, ReadResult } from './adapters/adapter';
import { Channel, streamOf } from './channel';
import { debug } from './debug';
import { SseError, fieldError } from './errors';
import { checkOptionNames, checkOptionsObject } from './options';
import { parseLastEventId, type ClientPosition, type Position } from './position';
import {
  RUN_CONTROL_CHANNEL,
  RunProducer,
  endEntry,
  isEndOrigin,
  isRunId,
  runChannelName,
  validateRunId,
  type Run,
  type RunOptions,
  type RunSettings,
  type RunSource,
} from './run';
import { UI_MESSAGE_STREAM_HEADER, runView, type RunFormat } from './run-views';
import type { Serializer } from './serializer';
import type { SseStream } from './stream';

/** Options of `registry.followRun()`. */
export interface FollowOptions {
  /** @default 'sse' */
  readonly format?: RunFormat;
}

/** What `registry.followRun()` answered. */
export type FollowOutcome =
  /** The run streams to the client (until its end, or until the client leaves). */
  | 'streaming'
  /** 204: the run ended and the client has its end (`ai-sdk`: the run ended). */
  | 'finished'
  /** 404 with a JSON `{ error }`: no such run here, or it expired. */
  | 'not-found'
  /** 503 with `Retry-After`: its log could not be read (the adapter is unavailable). */
  | 'unavailable'
  /** The client left, or the stream was closed, before anything was answered. */
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
/** How long `close()` waits for the ends of the runs it stops. */
const CLOSE_WAIT_MS = 5000;

export class Runs {
  readonly #settings: RunSettings;
  readonly #hooks: RunsHooks;
  readonly #local = new Map<string, RunProducer>();
  /** The subscription to stop requests, from the first run on. */
  #control: Promise<void> | undefined;

  constructor(settings: RunSettings, hooks: RunsHooks) {
    this.#settings = settings;
    this.#hooks = hooks;
  }

  /** Runs this process produces now. */
  get size(): number {
    return this.#local.size;
  }

  get #log(): ReadOptions {
    return { history: this.#settings.history, ttl: this.#settings.ttl };
  }

  async start(id: string, source: RunSource, options: RunOptions = {}): Promise<Run> {
    validateRunId(id);
    const name = runChannelName(id);
    const hooks = this.#hooks;
    if (this.#local.has(id) || (await this.#read(id, undefined, false)).head.epoch !== '') {
      throw new SseError('ERR_SSE_RUN_EXISTS', `a run "${id}" exists already (running or kept after its end)`);
    }
    // The log exists from now on: a follower finds the run before its first chunk.
    await Promise.all([this.#read(id, undefined, true), this.#listenForStops()]);
    if (this.#local.has(id)) throw new SseError('ERR_SSE_RUN_EXISTS', `a run "${id}" exists already (running or kept after its end)`);
    const log = this.#log;
    const run = new RunProducer(id, source, options, this.#settings, {
      append: (event) => hooks.adapter.publish(name, event, log),
      nextOrigin: () => hooks.nextOrigin(),
      onError: (error) => hooks.onError(error),
      serialize: hooks.serialize,
    });
    this.#local.set(id, run);
    void run.done.then(() => this.#local.delete(id));
    return run;
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
      local.stop();
      await local.done;
      return true;
    }
    if (!isRunId(id) || (await this.#state(id)) !== 'running') return false;
    const hooks = this.#hooks;
    await hooks.adapter.publish(RUN_CONTROL_CHANNEL, { event: 'stop', text: JSON.stringify({ run: id }), kind: 'json', id: undefined, origin: undefined }, { history: 0, ttl: 0 });
    const deadline = performance.now() + STOP_WAIT_MS;
    while (performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, STOP_POLL_MS));
      if ((await this.#state(id)) !== 'running') return true;
    }
    // Nobody wrote the end: the process producing the run is gone (or stuck). End it here, so its
    // followers are not left waiting.
    debug('run "%s": no process ended it within %d ms; ending it here', id, STOP_WAIT_MS);
    await hooks.adapter.publish(runChannelName(id), endEntry('stopped', hooks.nextOrigin()), this.#log);
    return true;
  }

  /**
   * Answers the request with the run `id`: 404 (JSON) when there is none, 204 when the client has
   * its end already, else its stream from the client's Last-Event-ID (or from the start), ending
   * after the run's end.
   */
  async follow(target: Response | SseStream, id: string, options: FollowOptions = {}): Promise<FollowOutcome> {
    const stream = streamOf(target);
    checkOptionsObject(options, 'followRun()');
    checkOptionNames(options, KNOWN_FOLLOW_OPTIONS, 'followRun()');
    const format = options.format ?? 'sse';
    if (format !== 'sse' && format !== 'ai-sdk') throw fieldError('ERR_SSE_INVALID_OPTION', 'format', '"sse" or "ai-sdk"', format);
    if (stream.closed) return 'closed';
    if (!isRunId(id)) return this.#answer(stream, 'not-found');
    // A route-mounted sse() must not open the stream while the log is read.
    stream.claim();
    // An AI SDK client resumes by reading the whole run again; it sends no Last-Event-ID.
    const client = format === 'sse' ? parseLastEventId(stream.lastEventId) : undefined;
    let result: ReadResult;
    try {
      result = await this.#read(id, client === undefined || !client.valid ? [] : client.positions, false);
    } catch (cause) {
      this.#hooks.onError(new SseError('ERR_SSE_ADAPTER_UNAVAILABLE', `could not read run "${id}"; answered 503`, { cause }));
      stream.refuse(503, 'express-sse-hub: the run could not be read; retry later\n', stream.retryAfter);
      return 'unavailable';
    }
    if (stream.closed) return 'closed';
    if (result.head.epoch === '') return this.#answer(stream, 'not-found');
    const finished =
      format === 'sse' ? result.matched >= 0 && !result.evicted && isEndOrigin(result.matchedOrigin) : result.events.some((entry: LogEntry) => isEndOrigin(entry.origin));
    if (finished) return this.#answer(stream, 'finished');
    if (format === 'ai-sdk') stream.res.setHeader(UI_MESSAGE_STREAM_HEADER, 'v1');
    const view = runView(format, stream, id);
    // No position from the client: the whole run, from before its first chunk.
    const from: ClientPosition = client ?? { positions: [{ epoch: result.head.epoch, offset: 0 }], valid: true };
    Channel.subscribeAll([this.#hooks.channel(runChannelName(id))], stream, { filter: view.filter }, from);
    if (!stream.opened) return 'closed'; // refused by a connection limit or a shutdown
    view.begin();
    return 'streaming';
  }

  /** Stops every run produced here (reason `shutdown`) and waits, boundedly, for their ends. */
  async close(): Promise<void> {
    const runs = [...this.#local.values()];
    for (const run of runs) run.abort('shutdown');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(runs.map((run) => run.done)), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    if (this.#control !== undefined) this.#hooks.adapter.unsubscribe(RUN_CONTROL_CHANNEL);
  }

  // 404 (JSON) or 204. A stream that went out already (the route awaited before following, with
  // a route-mounted sse()) can only be ended: the client saw 200 and will ask again, so say why.
  #answer<T extends 'not-found' | 'finished'>(stream: SseStream, outcome: T): T {
    if (stream.opened) {
      this.#hooks.onError(
        new SseError('ERR_SSE_HEADERS_SENT', `followRun() answered a stream that was open already, so the client got 200, not ${outcome === 'finished' ? 204 : 404}; call it before awaiting anything, or mount sse() app-wide`),
      );
    }
    if (outcome === 'finished') stream.answer(204, undefined);
    else stream.answer(404, { type: 'application/json; charset=utf-8', text: '{"error":"no such run (it may have expired)"}' });
    return outcome;
  }

  #read(id: string, after: readonly Position[] | undefined, create: boolean): Promise<ReadResult> {
    return this.#hooks.adapter.read(runChannelName(id), after, { ...this.#log, create });
  }

  // 'missing', 'ended' (its newest event is its end) or 'running'.
  async #state(id: string): Promise<'missing' | 'ended' | 'running'> {
    const { head } = await this.#read(id, undefined, false);
    if (head.epoch === '') return 'missing';
    if (head.offset === 0) return 'running';
    const result = await this.#read(id, [head], false);
    return isEndOrigin(result.matchedOrigin) ? 'ended' : 'running';
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

