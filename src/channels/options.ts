// The options of a channel, checked and resolved once when it is created.
import { MAX_TIMER_MS, checkOptionNames, checkOptionsObject, isTimerMs } from '../common/checks';
import { fieldError } from '../common/errors';
import type { Serializer } from '../stream/serializer';

/** Options of a channel. Read once when the channel is created. */
export interface ChannelOptions {
  /**
   * How many past events to keep for `Last-Event-ID` replay. Every event then gets an id that is
   * its position in the channel's log. `false` or `0` keeps none.
   * @default false
   */
  readonly history?: number | false;
  /**
   * Milliseconds a channel's history is kept after its last event while nobody is subscribed
   * (then it is freed, in memory and in Redis). `false` keeps it as long as the adapter lives.
   * @default 86400000 (24 hours)
   */
  readonly historyTtl?: number | false;
  /**
   * Largest number of bytes a connection's socket may still hold from earlier writes when the
   * next write is due. A client past it is disconnected at once (its buffers freed); it
   * reconnects and replays from history. `false` drops nobody below 1 GiB.
   * @default 1048576 (1 MiB)
   */
  readonly maxBufferedBytes?: number | false;
  /**
   * Turns non-string data into text, once per broadcast. Strings are sent as they are.
   * @default JSON.stringify
   */
  readonly serialize?: Serializer;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const DEFAULT_HISTORY_TTL_MS = 24 * 60 * 60 * 1000;

/** A channel's options, resolved. */
export interface ChannelSettings {
  readonly history: number;
  readonly historyTtl: number;
  readonly maxBufferedBytes: number;
  readonly serialize: Serializer;
}

/** The option names of a channel (the registry takes them too, as defaults). */
export const CHANNEL_OPTION_NAMES: readonly string[] = ['history', 'historyTtl', 'maxBufferedBytes', 'serialize'];
const KNOWN_OPTIONS = new Set(CHANNEL_OPTION_NAMES);

export function resolveChannelOptions(options: ChannelOptions = {}, what = 'channel'): ChannelSettings {
  checkOptionsObject(options, what);
  checkOptionNames(options, KNOWN_OPTIONS, what);
  const {
    history = false,
    historyTtl = DEFAULT_HISTORY_TTL_MS,
    maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
    serialize = JSON.stringify,
  } = options;
  if (history !== false && !(Number.isSafeInteger(history) && history >= 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'history', 'false or a non-negative integer (events)', history);
  }
  if (historyTtl !== false && !isTimerMs(historyTtl)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'historyTtl', `false or an integer from 1 to ${MAX_TIMER_MS} (ms)`, historyTtl);
  }
  if (maxBufferedBytes !== false && !(Number.isSafeInteger(maxBufferedBytes) && maxBufferedBytes > 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'maxBufferedBytes', 'false or a positive integer (bytes)', maxBufferedBytes);
  }
  if (typeof serialize !== 'function') throw fieldError('ERR_SSE_INVALID_OPTION', 'serialize', 'a function', serialize);
  return {
    history: history === false ? 0 : history,
    historyTtl: historyTtl === false ? 0 : historyTtl,
    maxBufferedBytes: maxBufferedBytes === false ? Number.POSITIVE_INFINITY : maxBufferedBytes,
    serialize,
  };
}

export function validateChannelName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || name.length > 256) {
    throw fieldError('ERR_SSE_INVALID_CHANNEL', 'channel name', 'a string of 1 to 256 characters', name);
  }
  return name;
}

