// Ending many connections at once, within a bound: what registry.close() and an sse() handler's
// close() share. Each connection is ended (its queue, a last event included, is written first);
// the call resolves when every response has let go of its socket, and resets whatever still holds
// on when the timeout expires (a peer that stopped reading never takes the last bytes), so
// server.close() can finish.
import type { Connection } from './connection';
import { debug } from '../common/debug';
import { fieldError } from '../common/errors';
import { checkOptionNames, checkOptionsObject } from '../common/checks';
import { formatEvent, formatRetry, serializeData, type Serializer } from './serializer';

/** Default milliseconds a shutdown waits for connections to finish before resetting them. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 1000;

/** Ends each connection with `end(connection)` and waits, at most `timeoutMs`, until all let go. */
export async function endAll<C extends Connection>(connections: Iterable<C>, end: (connection: C) => void, timeoutMs: number): Promise<void> {
  const waiting: Promise<void>[] = [];
  const ended: C[] = [];
  for (const connection of connections) {
    ended.push(connection);
    if (!connection.isReleased) {
      waiting.push(new Promise<void>((resolve) => connection.res.on('close', resolve)));
    }
    end(connection);
  }
  if (waiting.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, true);
  });
  const timedOut = await Promise.race([Promise.all(waiting).then(() => false), expired]);
  clearTimeout(timer);
  if (!timedOut) return;
  let reset = 0;
  for (const connection of ended) {
    if (connection.isReleased) continue;
    reset += 1;
    connection.forceReset();
  }
  debug('shutdown: reset %d connection(s) still open after %d ms', reset, timeoutMs);
}

/** Options of a graceful close: `registry.close()` and an `sse()` handler's `close()`. */
export interface CloseOptions {
  /** Name of a last event sent to every connection before it is ended. */
  readonly event?: string;
  /** Data of that last event; without `event` a plain message. Nothing is sent when both are omitted. */
  readonly data?: unknown;
  /**
   * Milliseconds to wait for connections to finish before resetting them.
   * @default 1000
   */
  readonly timeout?: number;
  /**
   * Milliseconds over which the clients' reconnections are spread: each connection is sent
   * `retry: n` before it is ended, `n` drawn at random from 1000 (or `retryJitter`, if smaller) to
   * `retryJitter`, so that a rolling restart of a server with 10 000 clients does not bring all of
   * them back in the same instant (nor any of them straight back to the process going away).
   * `0` sends no `retry:` (clients use the delay they had).
   * @default 0
   */
  readonly retryJitter?: number;
}

/** What a close sends each connection before ending it. */
export interface ResolvedClose {
  /** The last event, if any. */
  readonly frame: string | undefined;
  readonly timeout: number;
  /** A `retry:` frame for one connection (a new draw each call), or undefined without jitter. */
  readonly retry: () => string | undefined;
}

const KNOWN_CLOSE_OPTIONS = new Set(['event', 'data', 'timeout', 'retryJitter']);
// setTimeout (which EventSource uses for the delay) clamps anything above 2^31-1 ms to 1 ms.
const MAX_RETRY_JITTER_MS = 2 ** 31 - 1;
/** The shortest `retry:` a jittered close sends. */
const MIN_RETRY_MS = 1000;
const noRetry = (): undefined => undefined;

/** Validates close options; returns the last frame (if any), the timeout and the retry draw. */
export function resolveCloseOptions(options: CloseOptions, serialize: Serializer): ResolvedClose {
  checkOptionsObject(options, 'close()');
  checkOptionNames(options, KNOWN_CLOSE_OPTIONS, 'close()');
  const { event, data, timeout = DEFAULT_SHUTDOWN_TIMEOUT_MS, retryJitter = 0 } = options;
  if (!(Number.isSafeInteger(timeout) && timeout >= 0)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'timeout', 'a non-negative integer (ms)', timeout);
  }
  if (!(Number.isSafeInteger(retryJitter) && retryJitter >= 0 && retryJitter <= MAX_RETRY_JITTER_MS)) {
    throw fieldError('ERR_SSE_INVALID_OPTION', 'retryJitter', `an integer from 0 to ${MAX_RETRY_JITTER_MS} (ms)`, retryJitter);
  }
  // Never below a second (or the whole window, if shorter): a client told `retry: 0` would come
  // straight back to the process that is going away, and keep that delay for good.
  const floor = Math.min(MIN_RETRY_MS, retryJitter);
  const retry = retryJitter === 0 ? noRetry : (): string => formatRetry(floor + Math.floor(Math.random() * (retryJitter - floor + 1)));
  const frame = event === undefined && data === undefined ? undefined : formatEvent(serializeData(data ?? '', serialize), { event });
  return { frame, timeout, retry };
}
