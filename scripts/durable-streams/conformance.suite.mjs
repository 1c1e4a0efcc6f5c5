// Loaded by vitest from conformance.mjs: the protocol's own suite, against the server named by
// DURABLE_STREAMS_URL. Kept as a file of its own because vitest only runs tests from files.
import { runConformanceTests } from '@durable-streams/server-conformance-tests';

const baseUrl = process.env.DURABLE_STREAMS_URL;
if (!baseUrl) throw new Error('express-sse-hub: DURABLE_STREAMS_URL must name the server under test');
runConformanceTests({ baseUrl, longPollTimeoutMs: Number(process.env.DURABLE_STREAMS_LONG_POLL_MS ?? 20000) });
