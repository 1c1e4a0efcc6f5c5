// Optional peer dependencies (ioredis for express-sse-hub/redis, prom-client for
// express-sse-hub/metrics) are loaded here, so that a missing one says what to install instead of
// Node's bare "Cannot find module".
import { SseError } from './errors';

/** Loads `name` for the entry point `entry`; throws `ERR_SSE_MISSING_PEER` naming the package if it is not installed. */
export function requirePeer<T>(name: string, entry: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (error) {
    // Only the package itself missing: a module missing inside it is its own problem, reported as is.
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === 'MODULE_NOT_FOUND' && typeof message === 'string' && message.startsWith(`Cannot find module '${name}'`)) {
      throw new SseError('ERR_SSE_MISSING_PEER', `${entry} needs the "${name}" package, which is not installed: npm install ${name}`, { cause: error });
    }
    throw error;
  }
}
