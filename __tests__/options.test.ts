import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChannelRegistry, sse } from 'express-sse-hub';
import { RedisAdapter, createRedisAdapter } from 'express-sse-hub/redis';

describe('sse(options)', () => {
  describe.each([
    ['heartbeat', { heartbeat: 0 }],
    ['heartbeat', { heartbeat: -5 }],
    ['heartbeat', { heartbeat: 1.5 }],
    ['heartbeat', { heartbeat: '1000' }],
    ['heartbeat', { heartbeat: true }],
    ['heartbeat', { heartbeat: 2 ** 31 }],
    ['retry', { retry: -1 }],
    ['retry', { retry: 10.5 }],
    ['retry', { retry: '3000' }],
    ['serialize', { serialize: 'json' }],
  ])('when %s is invalid (%p)', (field, options) => {
    it('throws a TypeError naming the option at creation', () => {
      expect(() => sse(options as never)).toThrow(TypeError);
      expect(() => sse(options as never)).toThrow(new RegExp(`^express-sse-hub: ${field} must be`));
      expect(() => sse(options as never)).toThrow(expect.objectContaining({ code: 'ERR_SSE_INVALID_OPTION' }) as Error);
    });
  });

  describe('when an option name is misspelt', () => {
    it('throws, naming the unknown option', () => {
      expect(() => sse({ hearbeat: 100 } as never)).toThrow(/sse\(\) option "hearbeat" must be one of heartbeat, retry, serialize/);
    });
  });

  describe('when options is not an object', () => {
    it('throws', () => {
      expect(() => sse('fast' as never)).toThrow(/sse\(\) options must be an object/);
    });
  });

  describe('when the options object is frozen', () => {
    it('accepts it and leaves it untouched', () => {
      const options = Object.freeze({ heartbeat: 1000, retry: 500 });
      expect(() => sse(options)).not.toThrow();
      expect(options).toEqual({ heartbeat: 1000, retry: 500 });
    });
  });

  describe('when heartbeat is false or retry is 0', () => {
    it('accepts them', () => {
      expect(() => sse({ heartbeat: false, retry: 0 })).not.toThrow();
    });
  });
});

describe('new ChannelRegistry(options)', () => {
  describe('when an option name is misspelt', () => {
    it.each([
      ['adaptor', 'adapter'],
      ['authorise', 'authorize'],
      ['authorizeTimout', 'authorizeTimeout'],
      ['histroy', 'history'],
      ['Runs', 'runs'],
    ])('lists every registry option and suggests %s → %s', (wrong, meant) => {
      const attempt = (): unknown => new ChannelRegistry({ [wrong]: 1 });
      expect(attempt).toThrow(TypeError);
      expect(attempt).toThrow(`ChannelRegistry option "${wrong}" must be one of adapter, authorize, authorizeTimeout, runs, history, historyTtl, maxBufferedBytes, serialize (did you mean "${meant}"?)`);
    });

    it('suggests nothing for a name far from every option', () => {
      expect(() => new ChannelRegistry({ colour: 'red' } as never)).toThrow(/option "colour" must be one of [a-zA-Z, ]+, received "colour"$/);
    });
  });
});

describe('RedisAdapter.connect(options) and createRedisAdapter(options)', () => {
  it('refuses a misspelt option before connecting, naming the nearest one', async () => {
    await expect(RedisAdapter.connect({ url: 'redis://127.0.0.1:1', commandTimout: 100 } as never)).rejects.toThrow(
      /RedisAdapter.connect\(\) option "commandTimout" must be one of .*\(did you mean "commandTimeout"\?\)/,
    );
    await expect(createRedisAdapter({ onUnavaliable: 'memory' } as never)).rejects.toThrow(/createRedisAdapter\(\) option "onUnavaliable" .*\(did you mean "onUnavailable"\?\)/);
  });
});

describe('an optional peer dependency that is not installed', () => {
  // The built package copied where neither ioredis nor prom-client can be found (no node_modules
  // above the temporary folder), loaded by a fresh Node process.
  const ROOT = path.join(__dirname, '..');
  let app: string;
  beforeAll(() => {
    app = fs.mkdtempSync(path.join(os.tmpdir(), 'express-sse-hub-peers-'));
    const pkg = path.join(app, 'node_modules', 'express-sse-hub');
    fs.mkdirSync(pkg, { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist'), path.join(pkg, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
  });
  afterAll(() => fs.rmSync(app, { recursive: true, force: true }));

  const load = (entry: string, how: 'require' | 'import'): string => {
    const script = how === 'require' ? `require('${entry}')` : `import('${entry}').catch((e) => { console.error(e.message); process.exit(1); })`;
    try {
      execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return '';
    } catch (error) {
      return String((error as { stderr?: string }).stderr);
    }
  };

  it.each([
    ['express-sse-hub/redis', 'ioredis'],
    ['express-sse-hub/metrics', 'prom-client'],
  ])('%s says to install %s, with require() and import()', (entry, peer) => {
    for (const how of ['require', 'import'] as const) {
      expect(load(entry, how)).toContain(`${entry} needs the "${peer}" package, which is not installed: npm install ${peer}`);
    }
  });

  it('leaves the core entry point loadable', () => {
    expect(load('express-sse-hub', 'require')).toBe('');
  });
});
