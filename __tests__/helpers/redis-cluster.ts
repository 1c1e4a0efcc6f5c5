// A real Redis Cluster for the tests: `masters` redis-server processes in cluster mode on free
// ports of 127.0.0.1, without persistence, in a temporary directory, joined by
// `redis-cli --cluster create`. Skipped (with a warning) only where redis-server or redis-cli is
// missing and CI is unset; under CI a missing binary throws, so there the tests always run.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { freePort } from './redis';

const execFileAsync = promisify(execFile);

/** Runs a command; a failure says what it printed (redis-cli prints its errors on stdout). */
async function run(file: string, args: readonly string[], timeout: number): Promise<void> {
  try {
    await execFileAsync(file, args, { timeout });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${(error as Error).message}\n${String(stdout).slice(-2000)}${String(stderr).slice(-1000)}`, { cause: error });
  }
}

export const HAS_REDIS_CLUSTER_BINARIES =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;

export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

export interface TestCluster {
  /** The masters, in the order they were given to `redis-cli --cluster create`. */
  readonly nodes: readonly ClusterNode[];
  /** Moves `slots` slots (the lowest the source owns) from one master to another, then waits until every node agrees again. */
  reshard(fromIndex: number, toIndex: number, slots: number): Promise<void>;
  /**
   * Moves one slot to master `toIndex` by hand, the way `redis-cli --cluster reshard` does, but
   * pausing `pauseMs` in each intermediate state so that traffic meets all of them: IMPORTING /
   * MIGRATING with the keys still on the source, then (after MIGRATE) on the target (ASK
   * redirections), then the target owning the slot while the source still migrates it. Then
   * waits until every node agrees again.
   */
  moveSlot(slot: number, toIndex: number, pauseMs: number): Promise<void>;
  /** The cluster node id (CLUSTER MYID) of master `index`. */
  nodeIdOf(index: number): string;
  /** Index of the master that owns `key`'s slot (asked with CLUSTER KEYSLOT and CLUSTER SLOTS). */
  slotOwner(key: string): Promise<number>;
  /** The slots master `index` owns, ascending. */
  ownedSlots(index: number): Promise<number[]>;
  /** Kills the processes it started (by pid) and removes its temporary directory. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  readonly masters?: number;
}

const SLOTS = 16384;

// CRC16/XMODEM, as Redis Cluster hashes keys.
const CRC_TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});

/** The slot of `key` (hash tags included), computed locally; the tests check it against CLUSTER KEYSLOT. */
export function keySlot(key: string): number {
  let hashed = key;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed)) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc % SLOTS;
}


const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The CLIENT SETNAME of the helper's admin connections, so that a fault can spare them. */
export const CLUSTER_ADMIN_NAME = 'test-cluster-admin';

/** An error that ends a pollUntil() at once. */
class Fatal extends Error {}

/** Polls `check` every 50 ms until it resolves true; throws after `timeoutMs`, or at once on a Fatal error. */
async function pollUntil(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof Fatal) throw error;
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})`}`);
    }
    await sleep(50);
  }
}

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  /** Output of the process, for the error when it fails to start. */
  readonly output: () => string;
}

function spawnNode(dir: string, port: number, busPort: number): Started {
  const child = spawn(
    'redis-server',
    [
      '--port', String(port),
      '--cluster-port', String(busPort),
      '--bind', '127.0.0.1',
      '--cluster-enabled', 'yes',
      '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '2000',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--loglevel', 'warning',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-2000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return { child, port, output: () => output };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    timer = setTimeout(resolve, 5000);
  });
  child.kill('SIGKILL');
  await exited;
  clearTimeout(timer);
}

/** Starts a Redis Cluster of `masters` masters (no replicas); `undefined` when it must be skipped. */
export async function startRedisCluster(options: StartClusterOptions = {}): Promise<TestCluster | undefined> {
  const { masters = 3 } = options;
  if (!HAS_REDIS_CLUSTER_BINARIES) {
    if (process.env.CI) throw new Error('CI must run the Redis Cluster tests, but redis-server or redis-cli is not on PATH');
    console.warn('Redis Cluster tests skipped: redis-server or redis-cli is not on PATH (apt-get install -y redis-server)');
    return undefined;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sse-redis-cluster-'));
  /** Every process spawned, to stop; `ready` the ones that answered, one per master. */
  const started: Started[] = [];
  const ready: Started[] = [];
  const admins: Redis[] = [];
  const stop = async (): Promise<void> => {
    for (const admin of admins) admin.disconnect();
    await Promise.all(started.map((node) => stopChild(node.child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i += 1) {
      // The cluster bus gets a port of its own: port + 10000 may be taken, or past 65535.
      let node: Started | undefined;
      for (let attempt = 1; node === undefined; attempt += 1) {
        const candidate = spawnNode(dir, await freePort(), await freePort());
        started.push(candidate);
        const admin = new Redis({ host: '127.0.0.1', port: candidate.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectionName: CLUSTER_ADMIN_NAME });
        admin.on('error', () => undefined);
        try {
          await pollUntil(
            async () => {
              if (candidate.child.exitCode !== null) throw new Fatal(`redis-server exited: ${candidate.output()}`);
              if (admin.status === 'wait' || admin.status === 'end') await admin.connect();
              return (await admin.ping()) === 'PONG';
            },
            `redis-server answers on port ${candidate.port}`,
            10_000,
          );
          admins.push(admin);
          ready.push(candidate);
          node = candidate;
        } catch (error) {
          admin.disconnect();
          await stopChild(candidate.child);
          if (attempt >= 3) throw error;
        }
      }
    }
    const nodes: ClusterNode[] = ready.map((s) => ({ host: '127.0.0.1', port: s.port }));
    // The admin connections break if a node dies: they then end rather than retry for ever.
    for (const admin of admins) admin.options.retryStrategy = (times: number) => (times > 20 ? null : 100);

    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], 30_000);
    const ids = await Promise.all(admins.map(async (admin) => String(await admin.call('CLUSTER', 'MYID'))));

    // What one node says about the slots, as redis-cli --cluster check compares it: every master
    // with its slots (from CLUSTER NODES), and whether any slot is still importing or migrating.
    const slotView = async (admin: Redis): Promise<{ signature: string; open: boolean; slots: number }> => {
      const lines = String(await admin.call('CLUSTER', 'NODES')).trim().split('\n');
      let open = false;
      let slots = 0;
      const masters: string[] = [];
      for (const line of lines) {
        const [id, , , , , , , , ...ranges] = line.split(' ');
        const owned = ranges.filter((range) => {
          if (range.startsWith('[')) {
            open = true;
            return false;
          }
          return true;
        });
        for (const range of owned) {
          const [first, last = first] = range.split('-').map(Number) as [number, number?];
          slots += last - first + 1;
        }
        if (owned.length > 0) masters.push(`${id}:${owned.sort().join(',')}`);
      }
      return { signature: masters.sort().join(' '), open, slots };
    };
    // Every node says cluster_state:ok, and they all report the same complete slot map, no slot
    // half-way between two masters.
    const settled = (): Promise<void> =>
      pollUntil(
        async () => {
          const infos = await Promise.all(admins.map(async (admin) => String(await admin.call('CLUSTER', 'INFO'))));
          if (!infos.every((info) => /cluster_state:ok/.test(info))) return false;
          const views = await Promise.all(admins.map(slotView));
          return views.every((view) => view.signature === views[0]!.signature && !view.open && view.slots === SLOTS);
        },
        'every cluster node is ok and agrees on the slots',
        20_000,
      );
    await settled();

    const indexOfPort = (port: number): number => {
      const index = nodes.findIndex((n) => n.port === port);
      if (index === -1) throw new Error(`no master of ours on port ${port}`);
      return index;
    };
    const ownerOfSlot = async (slot: number): Promise<number> => {
      const ranges = (await admins[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
      const range = ranges.find(([start, end]) => slot >= start && slot <= end);
      if (range === undefined) throw new Error(`slot ${slot} is not served`);
      return indexOfPort(range[2][1]);
    };
    const check = (index: number): void => {
      if (!Number.isInteger(index) || index < 0 || index >= nodes.length) throw new RangeError(`no master ${index}`);
    };

    return {
      nodes,
      nodeIdOf: (index) => {
        check(index);
        return ids[index]!;
      },
      slotOwner: async (key) => ownerOfSlot(Number(await admins[0]!.call('CLUSTER', 'KEYSLOT', key))),
      ownedSlots: async (index) => {
        check(index);
        const ranges = (await admins[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
        const slots: number[] = [];
        for (const [start, end, master] of ranges) {
          if (master[1] === nodes[index]!.port) for (let slot = start; slot <= end; slot += 1) slots.push(slot);
        }
        return slots.sort((a, b) => a - b);
      },
      moveSlot: async (slot, toIndex, pauseMs) => {
        check(toIndex);
        const fromIndex = await ownerOfSlot(slot);
        if (fromIndex === toIndex) throw new Error(`slot ${slot} is already on master ${toIndex}`);
        const source = admins[fromIndex]!;
        const target = admins[toIndex]!;
        await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids[fromIndex]!);
        await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids[toIndex]!);
        await sleep(pauseMs);
        for (let batch = 0; ; batch += 1) {
          if (batch > 1000) throw new Error(`slot ${slot} does not empty`);
          const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
          if (keys.length === 0) break;
          await source.call('MIGRATE', nodes[toIndex]!.host, nodes[toIndex]!.port, '', 0, 5000, 'KEYS', ...keys);
        }
        await sleep(pauseMs);
        // The target first, so that the slot always has an owner that serves it.
        await target.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[toIndex]!);
        await sleep(pauseMs);
        await source.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[toIndex]!);
        for (const [index, admin] of admins.entries()) {
          if (index !== fromIndex && index !== toIndex) await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids[toIndex]!);
        }
        await settled();
      },
      reshard: async (fromIndex, toIndex, slots) => {
        check(fromIndex);
        check(toIndex);
        const entry = nodes[fromIndex]!;
        await run(
          'redis-cli',
          [
            '--cluster', 'reshard', `${entry.host}:${entry.port}`,
            '--cluster-from', ids[fromIndex]!,
            '--cluster-to', ids[toIndex]!,
            '--cluster-slots', String(slots),
            '--cluster-yes',
          ],
          30_000,
        );
        await settled();
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
