// Load generator of the reconnect storm (bench/storm.ts): opens every connection at once, each
// with the same Last-Event-ID, and reports when each has received `expect` events. Runs in its
// own process so the server's memory and event loop are measured alone.
// Messages: parent → { url, clients, expect, lastEventId } ; child → { done: Result }.
import http from 'node:http';

interface Start {
  url: string;
  clients: number;
  expect: number;
  lastEventId: string;
}

export interface StormResult {
  /** Milliseconds from the first request to each client's last expected event, sorted. */
  caughtUp: number[];
  errors: number;
  resets: number;
  /** Clients that did not catch up before the deadline. */
  missing: number;
}

process.once('message', ({ url, clients, expect, lastEventId }: Start) => {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const caughtUp: number[] = [];
  let errors = 0;
  let resets = 0;
  let finished = false;
  const started = performance.now();
  const finish = (): void => {
    if (finished) return;
    finished = true;
    caughtUp.sort((a, b) => a - b);
    const result: StormResult = { caughtUp, errors, resets, missing: clients - caughtUp.length };
    process.send!({ done: result }, undefined, {}, () => process.exit(0));
  };
  // Bounded: a storm that has not caught up in 120 s is reported as such.
  setTimeout(finish, 120_000).unref();
  for (let c = 0; c < clients; c += 1) {
    const req = http.get(url, { agent, headers: { accept: 'text/event-stream', 'last-event-id': lastEventId } }, (res) => {
      res.setEncoding('utf8');
      let events = 0;
      let tail = '';
      res.on('data', (chunk: string) => {
        const text = tail + chunk;
        // Count complete "data:" lines; keep a partial last line for the next chunk.
        const cut = text.lastIndexOf('\n');
        tail = text.slice(cut + 1);
        const lines = text.slice(0, cut + 1);
        events += lines.split('\ndata:').length - 1 + (lines.startsWith('data:') ? 1 : 0);
        if (lines.includes('event: reset')) resets += 1;
        if (events >= expect) {
          caughtUp.push(performance.now() - started);
          req.destroy();
          if (caughtUp.length === clients) finish();
        }
      });
    });
    req.on('error', () => {
      errors += 1;
    });
  }
});
