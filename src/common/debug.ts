// Decisions a user debugging production needs to see (a client dropped, a subscription refused,
// a replay reset, the fast path not taken) go here. Silent unless the process runs with
// NODE_DEBUG=express-sse-hub; no dependency, and a no-op call when disabled.
import { debuglog } from 'node:util';

/** `util.debuglog('express-sse-hub')`: printf-style, to stderr, only under NODE_DEBUG=express-sse-hub. */
export const debug = debuglog('express-sse-hub');
