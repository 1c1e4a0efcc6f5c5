import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** Runs a script in a fresh Node process inside the package, so 'express-sse-hub' resolves through package.json "exports". */
function run(args: string[]): unknown {
  const output = execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(output) as unknown;
}

describe('the built package', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
      throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)');
    }
  });

  describe("when loaded with require('express-sse-hub')", () => {
    it('exposes the public API', () => {
      const script = `
        const hub = require('express-sse-hub');
        console.log(JSON.stringify(Object.keys(hub).sort().concat(typeof hub.sse())));`;
      expect(run(['-e', script])).toEqual(['Channel', 'ChannelRegistry', 'DIAGNOSTICS', 'MemoryAdapter', 'RESET_EVENT', 'SseError', 'SseStream', 'sse', 'function']);
    });
  });

  describe("when loaded with import { sse } from 'express-sse-hub'", () => {
    it('gets the same named exports, the same classes as require()', () => {
      const script = `
        import { sse, SseError, SseStream } from 'express-sse-hub';
        import { createRequire } from 'node:module';
        const required = createRequire(process.cwd() + '/')('express-sse-hub');
        console.log(JSON.stringify([typeof sse, SseError === required.SseError, SseStream === required.SseStream]));`;
      expect(run(['--input-type=module', '-e', script])).toEqual(['function', true, true]);
    });
  });

  describe("when loaded as 'express-sse-hub/redis'", () => {
    it('exposes the Redis adapter to require() and import, sharing the core classes', () => {
      const cjs = `
        const redis = require('express-sse-hub/redis');
        console.log(JSON.stringify(Object.keys(redis).sort()));`;
      expect(run(['-e', cjs])).toEqual(['RedisAdapter', 'createRedisAdapter']);
      const esm = `
        import { RedisAdapter, createRedisAdapter } from 'express-sse-hub/redis';
        console.log(JSON.stringify([typeof RedisAdapter.connect, typeof createRedisAdapter]));`;
      expect(run(['--input-type=module', '-e', esm])).toEqual(['function', 'function']);
    });

    it('keeps ioredis out of the core entry point', () => {
      const script = `
        require('express-sse-hub');
        console.log(JSON.stringify(Object.keys(require.cache).some((f) => f.includes('/ioredis/'))));`;
      expect(run(['-e', script])).toBe(false);
    });
  });

  describe("when loaded as 'express-sse-hub/durable-streams'", () => {
    it('exposes the router to require() and import, without loading ioredis', () => {
      const cjs = `
        const ds = require('express-sse-hub/durable-streams');
        const keys = Object.keys(ds).sort();
        const router = ds.durableStreams();
        void router.close();
        console.log(JSON.stringify([keys, typeof router, Object.keys(require.cache).some((f) => f.includes('/ioredis/'))]));`;
      expect(run(['-e', cjs])).toEqual([['durableStreams'], 'function', false]);
      const esm = `
        import { durableStreams } from 'express-sse-hub/durable-streams';
        console.log(JSON.stringify(typeof durableStreams));`;
      expect(run(['--input-type=module', '-e', esm])).toBe('function');
    });
  });

  describe('when its package.json is asked for', () => {
    it('resolves through the exports map', () => {
      const script = `console.log(JSON.stringify(require('express-sse-hub/package.json').name));`;
      expect(run(['-e', script])).toBe('express-sse-hub');
    });
  });

  describe('when its internals are reached for', () => {
    it('refuses paths outside the exports map', () => {
      expect(() => run(['-e', "require('express-sse-hub/dist/stream.js')"])).toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
    });
  });

  describe('its declaration files', () => {
    it('carry the res.sse augmentation and no @internal members', () => {
      const index = fs.readFileSync(path.join(ROOT, 'dist', 'index.d.ts'), 'utf8');
      const express = fs.readFileSync(path.join(ROOT, 'dist', 'stream', 'express.d.ts'), 'utf8');
      const stream = fs.readFileSync(path.join(ROOT, 'dist', 'stream', 'stream.d.ts'), 'utf8');
      expect(index).toContain("import './stream/express';");
      expect(express).toMatch(/declare module 'express-serve-static-core' \{\s*interface Response<[^>]*>[^{]*\{[\s\S]*sse: SseStream<EventsOf<LocalsObj>>;/);
      expect(stream).not.toMatch(/writeFrame|onClose|beat\(\)/);
    });
  });
});
