// What `import 'express-sse-hub/client'` loads in Node and in bundlers: the CommonJS build itself,
// re-exported, so that require() and import give the same EventSource class (`instanceof` holds
// across them). The standalone ES module for pages without a bundler is index.mjs.
import client from './index.js';

export const { EventSource } = client;
