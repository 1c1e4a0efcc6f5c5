// A run: a generation (an LLM answer, a long export) decoupled from the request that started it.
// What it produces is appended to a log of its own, a channel of the registry under a reserved
// name, so it inherits exact replay and the adapter's scale-out: any number of clients follow
// it, from the start or from a Last-Event-ID, on any process, while it runs and after it ended.
//
// The log holds the run's chunks as events (`token` by default), then exactly one end: a plain
// `[DONE]` message when the source finished, an `end` event `{"reason": …}` otherwise (stopped,
// failed, out of time, shut down). Ends are recognised by who published them (an origin ending
// in ":end"), so a follower that already has the end is told so with a 204.
import { SseError, fieldError } from './errors';
import type { PublishedEvent } from './log';
import { checkOptionNames, checkOptionsObject } from './options';
import { serializeData, validateEvent, type Serializer } from './serializer';
import { iterate, type PipeSource } from './source';

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
   * `'timeout'`. It goes on meanwhile whether or not anyone follows it.
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
  /** Default of `RunOptions.maxDuration`. @default 600000 (10 minutes) */
  readonly maxDuration?: number;
}

export interface RunSettings {
  readonly history: number;
  readonly ttl: number;
  readonly maxDuration: number;
}

/** Prefix of the channels that hold runs: reserved, `registry.channel()` refuses it. */
export const RUN_PREFIX = '\u0000run:';
/** Where stop requests travel between processes (no history). */
export const RUN_CONTROL_CHANNEL = '\u0000runs';
/** Data of the end of a run that finished: what OpenAI-style clients wait for. */
export const DONE = '[DONE]';
/** Event name of the end of a run that did not finish. */
export const END_EVENT = 'end';

const MAX_TIMER_MS = 2 ** 31 - 1;
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

/** An entry with this origin is a run's end. */
export function isEndOrigin(origin: string | undefined): boolean {
  return origin !== undefined && origin.endsWith(':end');
}

/** A run's end as a follower sees it (chunks never use these names). */
export function isEndEvent(event: string | undefined, data: unknown): boolean {
  return event === END_EVENT || (event === undefined && data === DONE);
}

/** The entry that ends a run. */
export function endEntry(reason: RunEndReason, origin: string): PublishedEvent {
  const end = `${origin}:end`;
  if (reason === 'done') return { event: undefined, text: DONE, kind: 'text', id: undefined, origin: end };
  return { event: END_EVENT, text: JSON.stringify({ reason }), kind: 'json', id: undefined, origin: end };
}

function positiveMs(value: unknown, name: string): number {
  if (!(Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= MAX_TIMER_MS)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', name, `an integer from 1 to ${MAX_TIMER_MS} (ms)`, value);
  }
  return value as number;
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
  /** Appends to this run's log. */
  append(event: PublishedEvent): Promise<unknown>;
  nextOrigin(): string;
  onError(error: Error): void;
  serialize: Serializer;
}

interface Step<T> {
  readonly aborted: boolean;
  readonly value?: T;
}

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

  constructor(id: string, source: RunSource, options: RunOptions, settings: RunSettings, hooks: RunHooks) {
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
    this.id = id;
    this.#hooks = hooks;
    this.#event = event;
    this.done = this.#produce(source, positiveMs(maxDuration, 'maxDuration'));
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  stop(): void {
    this.abort('stopped');
  }

  /** @internal Ends the generation for `reason` (the first reason wins). */
  abort(reason: Exclude<RunEndReason, 'done' | 'error'>): void {
    if (this.#controller.signal.aborted || this.#reason !== undefined) return;
    this.#reason = reason;
    this.#controller.abort(new SseError('ERR_SSE_RUN_STOPPED', `run "${this.id}" ended: ${reason}`));
    this.#wake?.({ aborted: true });
  }

  // Waits for `promise` unless the run is aborted first: one wake-up per wait, not one
  // long-lived promise raced on every chunk (a promise raced a million times keeps a million
  // reactions).
  #untilAborted<T>(promise: Promise<T>): Promise<Step<T>> {
    if (this.#controller.signal.aborted) return Promise.resolve({ aborted: true });
    return new Promise<Step<T>>((resolve, reject) => {
      this.#wake = resolve;
      promise.then((value) => resolve({ aborted: false, value }), reject);
    }).finally(() => (this.#wake = undefined));
  }

  async #produce(source: RunSource, maxDuration: number): Promise<RunEnd> {
    // The source is called on the next turn: run() returns before any chunk is read.
    await Promise.resolve();
    const timer = setTimeout(() => this.abort('timeout'), maxDuration);
    timer.unref();
    let stopSource: (() => void) | undefined;
    const onAbort = (): void => stopSource?.();
    this.signal.addEventListener('abort', onAbort, { once: true });
    const hooks = this.#hooks;
    let chunks = 0;
    let failed = false;
    try {
      const opened = typeof source === 'function' ? await this.#untilAborted(Promise.resolve().then(() => source(this.signal))) : { aborted: false, value: source };
      if (!opened.aborted) {
        const { iterator, stop } = iterate(opened.value!);
        stopSource = stop;
        if (this.signal.aborted) stop();
        for (;;) {
          const step = await this.#untilAborted(iterator.next());
          if (step.aborted || step.value!.done === true) break;
          const chunk: unknown = step.value!.value;
          const text = serializeData(chunk, hooks.serialize);
          const kind = typeof chunk === 'string' ? 'text' : hooks.serialize === JSON.stringify ? 'json' : 'other';
          await hooks.append({ event: this.#event, text, kind, id: undefined, origin: hooks.nextOrigin() });
          chunks += 1;
          if (this.signal.aborted) break;
        }
      }
    } catch (cause) {
      if (!this.signal.aborted) {
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
    try {
      await hooks.append(endEntry(reason, hooks.nextOrigin()));
    } catch (cause) {
      hooks.onError(new SseError('ERR_SSE_RUN_FAILED', `the end of run "${this.id}" could not be stored; its followers wait until they reconnect`, { cause }));
    }
    return { reason, chunks };
  }
}
