// A run: a generation (an LLM answer, a long export) decoupled from the request that started it.
// What it produces is appended to a log of its own, a channel of the registry under a reserved
// name, so it inherits exact replay and the adapter's scale-out: any number of clients follow
// it, from the start or from a Last-Event-ID, on any process, while it runs and after it ended.
//
// The log holds the run's chunks as events (`token` by default), then exactly one end: a plain
// `[DONE]` message when the source finished, an `end` event `{"reason": …}` otherwise (stopped,
// failed, out of time, shut down). The end seals the log (the adapter refuses anything after it),
// so there is one end, whoever writes it: the producer, a stop from a process that found the
// producer gone, or a follower's watchdog. Chunks never use the end's names, so a follower
// recognises the end by its name alone.
import { SseError, fieldError } from '../common/errors';
import { kindOf, type PublishedEvent } from '../log/entry';
import { MAX_TIMER_MS, checkOptionNames, checkOptionsObject, isTimerMs } from '../common/checks';
import { serializeData, validateEvent, type Serializer } from '../stream/serializer';
import { iterate, type PipeSource } from '../stream/source';

/** What a run reads: an async iterable (a Node readable, an async generator) or a web stream. */
export type RunSource = PipeSource | ((signal: AbortSignal) => PipeSource | Promise<PipeSource>);

/** Why a run ended. */
export type RunEndReason =
  /** The source finished. */
  | 'done'
  /** `run.stop()` or `registry.stopRun()`, on any process. */
  | 'stopped'
  /** The source threw, or its output could not be stored. */
  | 'error'
  /** It ran longer than `maxDuration`. */
  | 'timeout'
  /** `registry.close()` ended it. */
  | 'shutdown';

/** How a run ended. */
export interface RunEnd {
  readonly reason: RunEndReason;
  /** Chunks stored in its log. */
  readonly chunks: number;
}

/** Options of `registry.run()`. */
export interface RunOptions {
  /**
   * Event name of every chunk (not `end` or `message`, which mark the end).
   * @default 'token'
   */
  readonly event?: string;
  /**
   * Milliseconds the generation may take; then its signal aborts and the run ends with reason
   * `'timeout'`. It goes on meanwhile whether or not anyone follows it. At most the registry's
   * `runs.maxDuration`, which every process knows (see RunDefaults.maxDuration).
   * @default the registry's `runs.maxDuration` (10 minutes)
   */
  readonly maxDuration?: number;
}

/** A run started by this process: `registry.run()` returns it. */
export interface Run {
  readonly id: string;
  /**
   * Pass it to the model call. Aborted when the run ends: stopped (here or from any process),
   * out of time, shut down, failed, or finished.
   */
  readonly signal: AbortSignal;
  /** Settles when the run's end is stored; never rejects. */
  readonly done: Promise<RunEnd>;
  /** Stops the generation; its followers get the end. Same as `registry.stopRun(id)` on any process. */
  stop(): void;
}

/** Registry-wide settings of runs: `new ChannelRegistry({ runs: { … } })`. */
export interface RunDefaults {
  /**
   * Chunks a run's log keeps; a follower of a longer run that starts from the beginning gets a
   * `reset` and the newest ones.
   * @default 10000
   */
  readonly history?: number;
  /**
   * Milliseconds a run's log is kept after its last event (its end), then freed, in memory and in
   * Redis; a later follow answers 404.
   * @default 3600000 (1 hour)
   */
  readonly ttl?: number;
  /**
   * The longest a run may take (and the default of `RunOptions.maxDuration`). It also bounds
   * every follower's wait: a run whose log gets no event for this long, because the process
   * producing it died, is ended (reason `'timeout'`) by a process following it. Every process
   * sharing runs should agree on it.
   * @default 600000 (10 minutes)
   */
  readonly maxDuration?: number;
}

export interface RunSettings {
  readonly history: number;
  readonly ttl: number;
  readonly maxDuration: number;
}

/** Prefix of every channel runs use: reserved, `registry.channel()` refuses it. */
export const RESERVED_PREFIX = '\u0000run';
/** Prefix of the channels that hold runs. */
export const RUN_PREFIX = `${RESERVED_PREFIX}:`;
/** Where stop requests travel between processes (no history). */
export const RUN_CONTROL_CHANNEL = `${RESERVED_PREFIX}s`;
/** Data of the end of a run that finished: what OpenAI-style clients wait for. */
export const DONE = '[DONE]';
/** Event name of the end of a run that did not finish. */
export const END_EVENT = 'end';

const RUN_ID = /^[A-Za-z0-9_.:~-]{1,128}$/;
const KNOWN_RUN_OPTIONS = new Set(['event', 'maxDuration']);
const KNOWN_DEFAULTS = new Set(['history', 'ttl', 'maxDuration']);

/** True for an id a run may have: 1 to 128 of `A-Z a-z 0-9 _ . : ~ -` (safe in URLs and keys). */
export function isRunId(id: unknown): id is string {
  return typeof id === 'string' && RUN_ID.test(id);
}

export function validateRunId(id: unknown): string {
  if (!isRunId(id)) throw fieldError('ERR_SSE_INVALID_ARGUMENT', 'run id', '1 to 128 of A-Z a-z 0-9 _ . : ~ -', id);
  return id;
}

export function runChannelName(id: string): string {
  return RUN_PREFIX + id;
}

/** A run's end as a follower sees it (chunks never use these names). */
export function isEndEvent(event: string | undefined, data: unknown): boolean {
  return event === END_EVENT || (event === undefined && data === DONE);
}

/** The entry that ends a run (appended with `seal`). */
export function endEntry(reason: RunEndReason, origin: string): PublishedEvent {
  if (reason === 'done') return { event: undefined, text: DONE, kind: 'text', id: undefined, origin };
  return { event: END_EVENT, text: JSON.stringify({ reason }), kind: 'json', id: undefined, origin };
}

function positiveMs(value: unknown, name: string, max = MAX_TIMER_MS): number {
  if (!(isTimerMs(value) && value <= max)) throw fieldError('ERR_SSE_INVALID_OPTION', name, `an integer from 1 to ${max} (ms)`, value);
  return value;
}

/** A run's options, checked (before anything is stored). */
export interface RunConfig {
  readonly event: string;
  readonly maxDuration: number;
}

/** Checks what `registry.run()` was given; throws a TypeError naming what is wrong. */
export function resolveRunOptions(source: unknown, options: RunOptions, settings: RunSettings): RunConfig {
  checkOptionsObject(options, 'run()');
  checkOptionNames(options, KNOWN_RUN_OPTIONS, 'run()');
  const { event = 'token', maxDuration = settings.maxDuration } = options;
  validateEvent(event);
  if (event === END_EVENT || event === 'message') {
    throw fieldError('ERR_SSE_INVALID_EVENT', 'event', `a name other than "${END_EVENT}" and "message" (they mark a run's end)`, event);
  }
  if (typeof source !== 'function' && (source === null || typeof source !== 'object')) {
    throw fieldError('ERR_SSE_INVALID_ARGUMENT', 'run source', 'an async iterable, a ReadableStream or a function (signal) => one of them', source);
  }
  return { event, maxDuration: positiveMs(maxDuration, 'maxDuration', settings.maxDuration) };
}

export function resolveRunDefaults(options: RunDefaults = {}): RunSettings {
  checkOptionsObject(options, 'runs');
  checkOptionNames(options, KNOWN_DEFAULTS, 'runs');
  const { history = 10_000, ttl = 3_600_000, maxDuration = 600_000 } = options;
  if (!(Number.isSafeInteger(history) && history > 0)) throw fieldError('ERR_SSE_INVALID_OPTION', 'runs.history', 'a positive integer (chunks)', history);
  return { history, ttl: positiveMs(ttl, 'runs.ttl'), maxDuration: positiveMs(maxDuration, 'runs.maxDuration') };
}

/** What a run needs from the registry. */
export interface RunHooks {
  /** Appends to this run's log; `end` seals it. Rejects with `ERR_SSE_LOG_SEALED` once sealed. */
  append(event: PublishedEvent, end: boolean): Promise<unknown>;
  nextOrigin(): string;
  onError(error: Error): void;
  serialize: Serializer;
}

/** Milliseconds a producer may keep the event loop before it lets timers and sockets run. */
const YIELD_AFTER_MS = 5;

/** Attempts, and the waits between them, to store a run's end before its followers are left to their watchdog. */
const END_RETRIES_MS = [0, 250, 1000, 4000];

function isSealed(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_SSE_LOG_SEALED';
}

function noop(): void {}

interface Step<T> {
  readonly aborted: boolean;
  readonly value?: T;
}

/** Ends a run produced here for `reason` (a shutdown); set by RunProducer's static block. */
export let abortRun: (run: RunProducer, reason: Exclude<RunEndReason, 'done' | 'error'>) => void;

/** The producing side of a run, in the process that started it. */
export class RunProducer implements Run {
  readonly id: string;
  readonly done: Promise<RunEnd>;
  readonly #controller = new AbortController();
  readonly #hooks: RunHooks;
  readonly #event: string;
  #reason: RunEndReason | undefined;
  /** Wakes the step in flight when the run is aborted. */
  #wake: ((step: Step<never>) => void) | undefined;

  constructor(id: string, source: RunSource, config: RunConfig, hooks: RunHooks) {
    this.id = id;
    this.#hooks = hooks;
    this.#event = config.event;
    this.done = this.#produce(source, config.maxDuration);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  stop(): void {
    this.#abort('stopped');
  }

  static {
    abortRun = (run, reason) => run.#abort(reason);
  }

  // Ends the generation for `reason` (the first reason wins).
  #abort(reason: Exclude<RunEndReason, 'done' | 'error'>): void {
    if (this.#controller.signal.aborted || this.#reason !== undefined) return;
    this.#reason = reason;
    this.#controller.abort(new SseError('ERR_SSE_RUN_STOPPED', `run "${this.id}" ended: ${reason}`));
    this.#wake?.({ aborted: true });
  }

  // Waits for `promise` unless the run is aborted first: one wake-up per wait, not one
  // long-lived promise raced on every chunk (a promise raced a million times keeps a million
  // reactions).
  #untilAborted<T>(promise: Promise<T>): Promise<Step<T>> {
    if (this.#controller.signal.aborted) {
      // Nobody waits for it now: a source stopped by the abort rejects it (a destroyed Readable,
      // a fetch body), which must not be an unhandled rejection (Node's default ends the process).
      promise.then(undefined, noop);
      return Promise.resolve({ aborted: true });
    }
    // A wake-up left over from a settled step resolves nothing: it needs no clearing.
    return new Promise<Step<T>>((resolve, reject) => {
      this.#wake = resolve;
      promise.then((value) => resolve({ aborted: false, value }), reject);
    });
  }

  async #produce(source: RunSource, maxDuration: number): Promise<RunEnd> {
    // The source is called on the next turn: run() returns before any chunk is read.
    await Promise.resolve();
    const timer = setTimeout(() => this.#abort('timeout'), maxDuration);
    timer.unref();
    let stopSource: (() => void) | undefined;
    const onAbort = (): void => stopSource?.();
    this.signal.addEventListener('abort', onAbort, { once: true });
    const hooks = this.#hooks;
    let chunks = 0;
    let failed = false;
    let sealed = false;
    try {
      let opened: Step<PipeSource> = { aborted: false, value: source as PipeSource };
      if (typeof source === 'function') {
        const opening = Promise.resolve().then(() => source(this.signal));
        opened = await this.#untilAborted(opening);
        // Aborted while the source was being made: stop it once it exists.
        if (opened.aborted) opening.then((late) => stopLate(late), noop);
      }
      if (!opened.aborted) {
        const { iterator, stop } = iterate(opened.value!);
        stopSource = stop;
        if (this.signal.aborted) stop();
        let turn = performance.now();
        for (;;) {
          const step = await this.#untilAborted(iterator.next());
          if (step.aborted || step.value!.done === true) break;
          const chunk: unknown = step.value!.value;
          const text = serializeData(chunk, hooks.serialize);
          // No origin: nobody waits for a chunk to come back, and a run's log holds thousands.
          await hooks.append({ event: this.#event, text, kind: kindOf(chunk, hooks.serialize), id: undefined, origin: undefined }, false);
          chunks += 1;
          if (this.signal.aborted) break;
          // A source whose chunks are ready at once, stored at once (in memory), would keep this
          // loop in microtasks for good: no timer (maxDuration included), socket or request
          // would run. It gives way to them every YIELD_AFTER_MS.
          if (performance.now() - turn > YIELD_AFTER_MS) {
            await new Promise((resolve) => setImmediate(resolve));
            turn = performance.now();
          }
        }
      }
    } catch (cause) {
      if (isSealed(cause)) {
        // Ended elsewhere: a stop whose request never reached this process wrote the end.
        sealed = true;
        this.#abort('stopped');
      } else if (!this.signal.aborted) {
        failed = true;
        hooks.onError(new SseError('ERR_SSE_RUN_FAILED', `run "${this.id}" failed after ${chunks} chunk(s); its followers get an end with reason "error"`, { cause }));
      }
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener('abort', onAbort);
    }
    const reason: RunEndReason = failed ? 'error' : (this.#reason ?? 'done');
    // Whatever happens next, the generation is over: anything still listening stops.
    if (!this.signal.aborted) {
      this.#reason = reason;
      this.#controller.abort(new SseError('ERR_SSE_RUN_STOPPED', `run "${this.id}" ended: ${reason}`));
    }
    if (!sealed) await this.#storeEnd(reason);
    return { reason, chunks };
  }

  // The end, sealed; retried, since followers otherwise wait for their watchdog (runs.maxDuration).
  async #storeEnd(reason: RunEndReason): Promise<void> {
    const hooks = this.#hooks;
    let last: unknown;
    for (const wait of END_RETRIES_MS) {
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait).unref());
      try {
        await hooks.append(endEntry(reason, hooks.nextOrigin()), true);
        return;
      } catch (cause) {
        if (isSealed(cause)) return; // another process ended it
        last = cause;
      }
    }
    hooks.onError(new SseError('ERR_SSE_RUN_FAILED', `the end of run "${this.id}" could not be stored; its followers get one from their watchdog`, { cause: last }));
  }
}

// A source made after its run was aborted is stopped at once. Whatever the source function
// returned (nothing, after seeing the signal aborted; a locked stream), nothing is thrown: there
// is no caller left to tell.
function stopLate(late: PipeSource): void {
  try {
    iterate(late).stop();
  } catch {
    // Not a source: nothing to stop.
  }
}
