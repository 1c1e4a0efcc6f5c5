// Load generator: holds N raw HTTP connections to an event stream, counts events cheaply and
// measures latency from the `t` (epoch ms, sub-ms precision) each event carries. Run as a child
// process (node --import tsx) so it does not share an event loop with the server it measures.
// Messages: parent → { url, clients, expect } ; child → { ready } then { latencies, counts, errors }.
import http from 'node:http';
import { onFrames } from './process';

interface Start {
  url: string;
  clients: number;
  expect: number;
  /** Collect one latency sample per delivery (default true). */
  latency?: boolean;
  /**
   * Spread clients over this many channels c0…: client i joins c(i), c(i+1), c(i+2) on one
   * connection, and receives every event of those channels, so its n values increase by gaps.
   */
  channels?: number;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

process.once('message', (message: Start) => {
  const { url, clients, expect, latency = true, channels = 0 } = message;
  const urlFor = (c: number): string =>
    channels === 0 ? url : `${url}?channels=${[0, 1, 2].map((k) => `c${(c + k) % channels}`).join(',')}`;
  const latencies: number[] = [];
  const counts = new Array<number>(clients).fill(0);
  const lastSeq = new Array<number>(clients).fill(-1);
  let errors = 0;
  let open = 0;
  let done = 0;
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  // Connect in batches: a burst of thousands of SYNs overflows the listen backlog.
  const BATCH = 200;
  const connect = (c: number): void => {
    const req = http.get(urlFor(c), { agent, headers: { accept: 'text/event-stream' } }, (res) => {
      open += 1;
      if (open === clients) process.send!({ ready: true });
      else if (open % BATCH === 0) for (let k = open; k < Math.min(open + BATCH, clients); k += 1) connect(k);
      onFrames(res, (frame) => {
        // Libraries differ in the fields around it; the payload is always a {"t":…,"n":…} object.
        const at = frame.indexOf('{"t":');
        if (at === -1) return;
        const { t, n } = JSON.parse(frame.slice(at, frame.indexOf('}', at) + 1)) as { t: number; n: number };
        if (latency) latencies.push(now() - t);
        // Lost, duplicated or out of order: consecutive on one channel, increasing across several.
        if (channels === 0 ? n !== lastSeq[c]! + 1 : n <= lastSeq[c]!) errors += 1;
        lastSeq[c] = n;
        counts[c]! += 1;
        if (counts[c] === expect && expect > 0) {
          done += 1;
          if (done === clients) {
            // Exit only once the message is flushed: a large one is cut off by an early exit.
            process.send!({ latencies, counts, errors }, undefined, {}, () => process.exit(0));
          }
        }
      });
    });
    req.on('error', (error) => {
      console.error(`client ${c}: ${error.message}`);
      errors += 1;
    });
  };
  for (let c = 0; c < Math.min(BATCH, clients); c += 1) connect(c);
});
