// Runs the Durable Streams conformance suite against express-sse-hub's router on one backend,
// starting what it needs (a redis-server, a 3-master Redis Cluster) and stopping it after:
//
//   node --import tsx scripts/durable-streams/conformance-run.ts memory|redis|cluster|reference
//
// `reference` runs it against @durable-streams/server instead. The last line printed is JSON:
// { backend, total, blocks, failed } (failed: the full names of the failing tests).
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BACKENDS, startBackend, type Backend } from './backends';

/** What conformance.mjs reports. */
export interface ConformanceReport {
  readonly backend: string;
  readonly total: { passed: number; failed: number; skipped: number };
  readonly blocks: Record<string, { passed: number; failed: number; skipped: number }>;
  readonly passed: readonly string[];
  readonly failed: readonly { name: string; error: string }[];
}

export type { Backend } from './backends';

// vitest's own report (every failing fork test, in colour) is kept back: the JSON report says
// the same, and a test log full of FAIL lines that are expected reads as a failure. It is shown
// when the suite itself could not run.
function runSuite(base: string, jsonFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'conformance.mjs'), base, '--json', jsonFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      log = (log + chunk).slice(-20_000);
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the conformance suite exited with ${code}:\n${log}`))));
  });
}

/** Starts the backend and a server on it, runs the suite, stops everything. */
export async function runConformance(backend: Backend): Promise<ConformanceReport> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ds-conformance-'));
  const server = await startBackend(backend);
  try {
    const jsonFile = path.join(dir, 'report.json');
    await runSuite(server.base, jsonFile);
    const report = JSON.parse(readFileSync(jsonFile, 'utf8')) as Omit<ConformanceReport, 'backend'>;
    return { backend, ...report };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Tests that count towards the target: all but forks and the opt-in subscriptions. */
export function isTargeted(name: string): boolean {
  return !name.startsWith('Fork - ') && !name.startsWith('Reserved subscription APIs');
}

async function main(): Promise<void> {
  const backend = process.argv[2] as Backend;
  if (!BACKENDS.includes(backend)) {
    console.error(`express-sse-hub: usage: conformance-run.ts ${BACKENDS.join('|')}, got ${JSON.stringify(process.argv[2])}`);
    process.exit(2);
  }
  const report = await runConformance(backend);
  const targeted = [...report.passed, ...report.failed.map((f) => f.name)].filter(isTargeted);
  const failedTargeted = report.failed.filter((f) => isTargeted(f.name));
  const all = report.total.passed + report.total.failed + report.total.skipped;
  console.log(`${backend}: ${report.total.passed} of ${all} tests pass (${report.total.failed} fail, ${report.total.skipped} skipped); ` +
    `without forks and subscriptions: ${targeted.length - failedTargeted.length} of ${targeted.length}`);
  for (const failure of failedTargeted) console.log(`  failed: ${failure.name} (${failure.error})`);
  console.log(JSON.stringify({ backend, total: report.total, blocks: report.blocks, failed: report.failed.map((f) => f.name) }));
}

if (require.main === module) void main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
