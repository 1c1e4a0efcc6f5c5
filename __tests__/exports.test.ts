import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

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
    it('carry the res.sse augmentation', () => {
      const index = fs.readFileSync(path.join(ROOT, 'dist', 'index.d.ts'), 'utf8');
      const express = fs.readFileSync(path.join(ROOT, 'dist', 'stream', 'express.d.ts'), 'utf8');
      expect(index).toContain("import './stream/express';");
      expect(express).toMatch(/declare module 'express-serve-static-core' \{\s*interface Response<[^>]*>[^{]*\{[\s\S]*sse: SseStream<EventsOf<LocalsObj>>;/);
    });

    it('show users no internal type: nothing reachable from an entry point is declared in an internal module', () => {
      // Every type a user can reach from what an entry point exports (members, parameters,
      // results, event payloads, recursively) must be declared in a public module. An internal
      // class showing through (the registry's 'client-dropped' once handed out the internal
      // Stream; new Channel() once took the registry's hooks) fails this.
      expect(internalTypesReachable()).toEqual([]);
      expect(INTERNAL_MODULES.every((file) => fs.existsSync(path.join(ROOT, 'dist', file)))).toBe(true);
    });
  });
});

/** Declaration files of modules users must never see a type of (see README, Architecture). */
const INTERNAL_MODULES = ['stream/stream.d.ts', 'stream/connection.d.ts', 'stream/transport.d.ts', 'stream/stream-set.d.ts', 'stream/flusher.d.ts', 'stream/heartbeat.d.ts', 'channels/fan-out.d.ts', 'channels/subscription.d.ts', 'log/memory-log.d.ts'];
/** Plain data types that internal modules declare and public ones hand out on purpose. */
const DATA_TYPES = new Set(['ChannelEvent', 'Filter', 'PipeOptions', 'SendOptions', 'ChannelStats', 'DropReason', 'ResetReason', 'SubscribeOptions', 'Authorize', 'AuthorizeContext', 'ClientPosition']);

const NAMED_TYPE = ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Enum;

/** `file: Type` for every type declared in an internal module that a user can reach. */
function internalTypesReachable(): string[] {
  const dist = path.join(ROOT, 'dist');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string; require?: { types: string } } | string> };
  const entries = Object.values(pkg.exports)
    .map((entry) => (typeof entry === 'string' ? undefined : (entry.types ?? entry.require?.types)))
    .filter((file): file is string => file !== undefined)
    .map((file) => path.join(ROOT, file));
  const program = ts.createProgram(entries, { strict: true, noEmit: true, skipLibCheck: true, module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 });
  const checker = program.getTypeChecker();
  const internal = new Set(INTERNAL_MODULES.map((file) => path.join(dist, file)));
  const found = new Set<string>();
  const seenTypes = new Set<ts.Type>();
  const seenSymbols = new Set<ts.Symbol>();

  const visitSymbol = (symbol: ts.Symbol): void => {
    if (seenSymbols.has(symbol)) return;
    seenSymbols.add(symbol);
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    for (const declaration of target.declarations ?? []) {
      const file = declaration.getSourceFile().fileName;
      if (!file.startsWith(dist)) continue;
      if (internal.has(file) && target.flags & NAMED_TYPE && !DATA_TYPES.has(target.name)) found.add(`${path.relative(dist, file)}: ${target.name}`);
      // Private members (`#private`, `private x`) are not the user's to reach.
      if (ts.getCombinedModifierFlags(declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      visitType(checker.getTypeOfSymbolAtLocation(target, declaration));
      if (target.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Enum)) visitType(checker.getDeclaredTypeOfSymbol(target));
    }
  };
  const visitSignature = (signature: ts.Signature): void => {
    for (const parameter of signature.getParameters()) visitSymbol(parameter);
    visitType(signature.getReturnType());
    for (const parameter of signature.getTypeParameters() ?? []) {
      const constraint = parameter.getConstraint();
      if (constraint) visitType(constraint);
    }
  };
  const visitType = (type: ts.Type): void => {
    if (seenTypes.has(type)) return;
    seenTypes.add(type);
    const symbol = type.aliasSymbol ?? type.getSymbol();
    if (symbol) {
      const file = symbol.declarations?.[0]?.getSourceFile().fileName ?? '';
      if (!file.startsWith(dist)) return; // Node's, Express's, the DOM's: not ours to walk.
      if (internal.has(file) && symbol.flags & NAMED_TYPE && !DATA_TYPES.has(symbol.name)) found.add(`${path.relative(dist, file)}: ${symbol.name}`);
    }
    for (const argument of type.aliasTypeArguments ?? []) visitType(argument);
    if (type.isUnionOrIntersection()) for (const part of type.types) visitType(part);
    if (type.flags & ts.TypeFlags.Object && (type as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference) {
      for (const argument of checker.getTypeArguments(type as ts.TypeReference)) visitType(argument);
    }
    for (const property of type.getProperties()) visitSymbol(property);
    for (const signature of [...type.getCallSignatures(), ...type.getConstructSignatures()]) visitSignature(signature);
    for (const base of type.getBaseTypes?.() ?? []) visitType(base);
    const constructor = type.getSymbol()?.valueDeclaration;
    if (constructor && ts.isClassDeclaration(constructor)) {
      for (const member of constructor.members) {
        if (ts.isConstructorDeclaration(member) && !(ts.getCombinedModifierFlags(member) & ts.ModifierFlags.Private)) {
          const signature = checker.getSignatureFromDeclaration(member);
          if (signature) visitSignature(signature);
        }
      }
    }
  };

  for (const entry of entries) {
    const source = program.getSourceFile(entry);
    const module = source && checker.getSymbolAtLocation(source);
    for (const exported of module ? checker.getExportsOfModule(module) : []) visitSymbol(exported);
  }
  return [...found].sort();
}
