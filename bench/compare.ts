// Compares the fan-out engine of two commits in one run: the working tree (its dist/) against
// <git-ref>, built in a temporary worktree. Both load in the same bench server (bench/server.ts,
// SSE_HUB_DIST), alternately, round after round, so drift of a busy machine hits both alike.
//
//   npm run bench:compare -- <git-ref> [--sizes 1000,5000,10000] [--rounds 5] [--events 200]
//                                      [--steady] [--fail-above 1.15]
//
// Prints, per size, the median server CPU per delivery of each side and their ratio (working
// tree / ref; below 1 is faster), with each side's spread; with --steady also p99 latency.
// --fail-above R exits 1 when a CPU ratio is above R (CI's regression guard). Comparing a commit
// with itself measures the noise: `npm run bench:compare -- HEAD`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { option } from './process';
import { burst, failures, median, steady, type Scenario } from './scenarios';

const ROOT = path.join(__dirname, '..');
const ref = process.argv.slice(2).find((a, i, all) => !a.startsWith('--') && (i === 0 || !all[i - 1]!.startsWith('--')));
if (ref === undefined) {
  console.error('usage: npm run bench:compare -- <git-ref> [--sizes 1000,5000,10000] [--rounds 5] [--events 200] [--steady] [--fail-above 1.15]');
  process.exit(2);
}
const SIZES = (option('sizes') ?? '1000,5000,10000').split(',').map(Number);
const ROUNDS = Number(option('rounds') ?? 5);
const EVENTS = Number(option('events') ?? 200);
const STEADY = process.argv.includes('--steady');
const FAIL_ABOVE = option('fail-above') === undefined ? undefined : Number(option('fail-above'));

const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();

/** The ref's build: a worktree of its own, built once per commit and kept in the temp folder. */
function buildRef(): { sha: string; dist: string } {
  const sha = git('rev-parse', '--verify', `${ref}^{commit}`);
  const dir = path.join(os.tmpdir(), `express-sse-hub-bench-${sha.slice(0, 12)}`);
  const dist = path.join(dir, 'dist');
  if (!fs.existsSync(path.join(dist, 'index.js'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    git('worktree', 'prune');
    git('worktree', 'add', '--detach', dir, sha);
    // The ref builds with this checkout's tools (TypeScript, types); only its src/ differs.
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  }
  return { sha, dist };
}

interface Side {
  readonly name: string;
  readonly scenario: Scenario;
  readonly cpu: number[];
  readonly rate: number[];
  readonly p99: number[];
}

function side(name: string, dist: string): Side {
  return {
    name,
    scenario: { burstEvents: EVENTS, steadyEvents: 50, steadyIntervalMs: 20, multiChannels: 10, env: { ...process.env, SSE_HUB_DIST: dist } },
    cpu: [],
    rate: [],
    p99: [],
  };
}

const fixed = (n: number, digits = 2): string => (Number.isNaN(n) ? 'n/a' : n.toFixed(digits));
const spread = (values: number[]): string => `${fixed(Math.min(...values))} – ${fixed(Math.max(...values))}`;

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first (npm run bench:compare does)');
  const built = buildRef();
  const head = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no', 'src') === '' ? '' : ' + changes';
  console.log(`# bench:compare: working tree (${head}${dirty}) against ${ref} (${built.sha.slice(0, 7)})`);
  console.log(`${os.cpus().length} cores, Node ${process.version}; ${ROUNDS} rounds, sides alternating; burst of ${EVENTS} events; medians, spread min – max\n`);
  console.log('| N | CPU µs/delivery, ref | this | this / ref | spread ref | spread this | deliveries/s this / ref' + (STEADY ? ' | p99 ms ref | this | this / ref' : '') + ' |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---:' + (STEADY ? ' | ---: | ---: | ---:' : '') + ' |');
  let worst = 0;
  for (const clients of SIZES) {
    const base = side('ref', built.dist);
    const mine = side('this', path.join(ROOT, 'dist'));
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const s of round % 2 === 0 ? [base, mine] : [mine, base]) {
        const b = await burst('express-sse-hub', s.scenario, clients);
        s.cpu.push(b.cpu);
        s.rate.push(b.rate);
        if (STEADY) s.p99.push((await steady('express-sse-hub', s.scenario, clients)).p99);
      }
    }
    const cpuRatio = median(mine.cpu) / median(base.cpu);
    worst = Math.max(worst, cpuRatio);
    const cells = [
      clients.toLocaleString('en-US'),
      fixed(median(base.cpu)),
      fixed(median(mine.cpu)),
      fixed(cpuRatio),
      spread(base.cpu),
      spread(mine.cpu),
      fixed(median(mine.rate) / median(base.rate)),
    ];
    if (STEADY) cells.push(fixed(median(base.p99), 1), fixed(median(mine.p99), 1), fixed(median(mine.p99) / median(base.p99)));
    console.log(`| ${cells.join(' | ')} |`);
  }
  if (failures.length > 0) {
    console.error(`${failures.length} run(s) lost, duplicated or reordered events`);
    process.exit(1);
  }
  console.log(`\nWorst CPU ratio ${fixed(worst)}${FAIL_ABOVE === undefined ? '' : ` (allowed up to ${fixed(FAIL_ABOVE)})`}.`);
  if (FAIL_ABOVE !== undefined && worst > FAIL_ABOVE) {
    console.error(`bench:compare: CPU per delivery is ${fixed(worst)}× ${ref}'s, above ${fixed(FAIL_ABOVE)}×`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
