// The demo's presence channel when a crowd leaves at once (#16): `--clients` (default 9 000) join
// /subscribe, then all disconnect in the same instant (the load generator process exits). Prints
// the server's RSS before the leave and its peak during the next seconds, and how many presence
// events went out. Each leave used to broadcast the head count to everyone still connected.
//   node --expose-gc --import tsx bench/presence-leave.ts [--clients 9000]
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createDemoApp } from '../demo/app';

const i = process.argv.indexOf('--clients');
const clients = i === -1 ? 9000 : Number(process.argv[i + 1]);
const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(0)} MB`;

async function main(): Promise<void> {
  const demo = createDemoApp({ clockIntervalMs: 60_000, streamLimits: { max: clients + 100, perIp: clients + 100 } });
  const server = http.createServer(demo.app);
  server.maxConnections = clients + 100;
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 65535 }, resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/subscribe?channels=news`;
  // The load generator of bench/storm.ts, asked for an event count nobody reaches: clients stay.
  const loader = fork(path.join(__dirname, 'storm-clients.ts'), [], { execArgv: ['--import', 'tsx'] });
  loader.send({ url, clients, expect: Number.MAX_SAFE_INTEGER, lastEventId: '' });
  const deadline = Date.now() + 120_000;
  while (demo.registry.stats().connections < clients && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setTimeout(r, 1000));
  global.gc?.();
  const before = process.memoryUsage.rss();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
  const presenceBefore = (await demo.prometheus.getSingleMetricAsString('sse_events_total')).match(/ (\d+)$/m)?.[1];
  loader.kill('SIGKILL');
  const deadline2 = Date.now() + 60_000;
  while (demo.registry.stats().connections > 0 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 2000));
  clearInterval(sampler);
  const presenceAfter = (await demo.prometheus.getSingleMetricAsString('sse_events_total')).match(/ (\d+)$/m)?.[1];
  console.log(`${clients} clients left at once: RSS ${mb(before)} before, peak ${mb(peak)} after; events broadcast meanwhile (presence): ${Number(presenceAfter) - Number(presenceBefore)}`);
  await demo.close();
  server.closeAllConnections();
  server.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
