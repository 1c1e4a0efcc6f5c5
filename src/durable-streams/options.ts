// Options of `durableStreams()`, checked once when the router is made.
import type { Adapter } from '../adapters/adapter';
import { fieldError } from '../common/errors';
import { MAX_TIMER_MS, checkOptionNames, checkOptionsObject, isTimerMs } from '../common/checks';

/** Options of `durableStreams()`. */
export interface DurableStreamsOptions {
  /**
   * Where streams live: the adapter you give `ChannelRegistry` (`MemoryAdapter`, or a
   * `RedisAdapter` from `express-sse-hub/redis` to share streams between processes and machines,
   * on a single Redis or a Cluster). @default a new MemoryAdapter
   */
  readonly adapter?: Adapter;
  /** Largest request body (PUT, POST), in bytes; larger ones get 413. @default 4194304 (4 MiB) */
  readonly maxBodyBytes?: number;
  /** Most bytes one stream holds; an append past it gets 413. @default 67108864 (64 MiB) */
  readonly maxStreamBytes?: number;
  /** Most bytes of a stream one read returns (the client pages through the rest). @default 1048576 (1 MiB) */
  readonly maxReadBytes?: number;
  /** Most streams in memory (memory store only); a create past it gets 507. @default 100000 */
  readonly maxStreams?: number;
  /** Most bytes of all streams in memory together (memory store only); past it, 507. @default 536870912 (512 MiB) */
  readonly maxTotalBytes?: number;
  /** Longest stream URL (the path below the mount), in characters. @default 1024 */
  readonly maxPathLength?: number;
  /** Milliseconds a long-poll waits for data before 204. @default 20000 */
  readonly longPollTimeout?: number;
  /** Milliseconds an SSE response lasts before the server ends it (the client resumes). @default 60000 */
  readonly sseMaxDuration?: number;
  /** Milliseconds between keep-alive control events on a quiet SSE response. @default 15000 */
  readonly sseKeepAlive?: number;
  /** Milliseconds between looks at the store by a waiting live reader, should a wake-up be lost. @default 5000 */
  readonly recheckInterval?: number;
  /** Prefix of the Redis keys (Redis adapter only). Routers sharing streams use the same one. @default "ds" */
  readonly prefix?: string;
  /** `Access-Control-Allow-Origin` of every response; `false`: none (same origin only). @default "*" */
  readonly allowOrigin?: string | false;
  /**
   * Where runs (`registry.run()`) are served read-only as JSON streams: `<runsPath><run id>`
   * below the mount; `false`: not served. @default "/_runs/"
   */
  readonly runsPath?: string | false;
  /** Milliseconds between looks at a run's log by a live reader of it. @default 250 */
  readonly runPollInterval?: number;
  /** Where trouble with no request to answer goes (a wake-up that could not be sent). @default a process warning */
  readonly onError?: (error: Error) => void;
}

export interface DurableStreamsSettings {
  readonly maxBodyBytes: number;
  readonly maxStreamBytes: number;
  readonly maxReadBytes: number;
  readonly maxStreams: number;
  readonly maxTotalBytes: number;
  readonly maxPathLength: number;
  readonly longPollTimeout: number;
  readonly sseMaxDuration: number;
  readonly sseKeepAlive: number;
  readonly recheckInterval: number;
  readonly prefix: string;
  readonly allowOrigin: string | false;
  readonly runsPath: string | false;
  readonly runPollInterval: number;
}

const KNOWN = new Set([
  'adapter', 'maxBodyBytes', 'maxStreamBytes', 'maxReadBytes', 'maxStreams', 'maxTotalBytes', 'maxPathLength', 'longPollTimeout', 'sseMaxDuration',
  'sseKeepAlive', 'recheckInterval', 'prefix', 'allowOrigin', 'runsPath', 'runPollInterval', 'onError',
]);

function count(value: unknown, name: string, max: number = Number.MAX_SAFE_INTEGER): number {
  if (!(Number.isSafeInteger(value) && (value as number) > 0 && (value as number) <= max)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', `durableStreams ${name}`, `an integer from 1 to ${max}`, value);
  }
  return value as number;
}

function ms(value: unknown, name: string): number {
  if (!isTimerMs(value)) throw fieldError('ERR_SSE_INVALID_OPTION', `durableStreams ${name}`, `an integer from 1 to ${MAX_TIMER_MS} (ms)`, value);
  return value;
}

/** Checks the options; throws a TypeError naming the first one that is wrong. */
export function resolveDurableStreamsOptions(options: DurableStreamsOptions): DurableStreamsSettings {
  checkOptionsObject(options, 'durableStreams()');
  checkOptionNames(options, KNOWN, 'durableStreams()');
  const {
    maxBodyBytes = 4 * 1024 * 1024, maxStreamBytes = 64 * 1024 * 1024, maxReadBytes = 1024 * 1024, maxStreams = 100_000, maxTotalBytes = 512 * 1024 * 1024,
    maxPathLength = 1024,
    longPollTimeout = 20_000, sseMaxDuration = 60_000, sseKeepAlive = 15_000, recheckInterval = 5000, prefix = 'ds', allowOrigin = '*',
    runsPath = '/_runs/', runPollInterval = 250,
  } = options;
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'durableStreams prefix', '1 to 64 of A-Z a-z 0-9 _ . : -', prefix);
  }
  if (allowOrigin !== false && (typeof allowOrigin !== 'string' || !/^[\x21-\x7e]+$/.test(allowOrigin))) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'durableStreams allowOrigin', 'false or an origin ("*", "https://example.com")', allowOrigin);
  }
  if (runsPath !== false && (typeof runsPath !== 'string' || !/^\/[A-Za-z0-9_.~-]+\/$/.test(runsPath))) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'durableStreams runsPath', 'false or a path of one segment between slashes ("/_runs/")', runsPath);
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'durableStreams onError', 'a function', options.onError);
  }
  return {
    maxBodyBytes: count(maxBodyBytes, 'maxBodyBytes', 512 * 1024 * 1024),
    maxStreamBytes: count(maxStreamBytes, 'maxStreamBytes'),
    maxReadBytes: count(maxReadBytes, 'maxReadBytes', 512 * 1024 * 1024),
    maxStreams: count(maxStreams, 'maxStreams'),
    maxTotalBytes: count(maxTotalBytes, 'maxTotalBytes'),
    maxPathLength: count(maxPathLength, 'maxPathLength', 64 * 1024),
    longPollTimeout: ms(longPollTimeout, 'longPollTimeout'),
    sseMaxDuration: ms(sseMaxDuration, 'sseMaxDuration'),
    sseKeepAlive: ms(sseKeepAlive, 'sseKeepAlive'),
    recheckInterval: ms(recheckInterval, 'recheckInterval'),
    prefix,
    allowOrigin,
    runsPath,
    runPollInterval: ms(runPollInterval, 'runPollInterval'),
  };
}
