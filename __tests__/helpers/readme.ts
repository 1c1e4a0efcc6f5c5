// Reads the TypeScript examples out of README.md, so a test can compile and run each one exactly
// as a reader would paste it, and what a consumer test needs around them.
import { builtinModules } from 'node:module';

export interface ReadmeBlock {
  /** 1-based position among the README's TypeScript blocks. */
  readonly index: number;
  /** 1-based README line of the block's first code line. */
  readonly line: number;
  /** The code, with the fence's indentation removed. */
  readonly code: string;
  /** e.g. `README block 3 (README.md:152: app.post('/ai/stream', …)`, for test names and failures. */
  readonly label: string;
  /** File name the consumer tests give it: `example-03.ts`. */
  readonly fileName: string;
}

const OPEN = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/;

/** Every fenced block tagged `ts` or `typescript`, in order (indented fences in lists included). */
export function extractTsBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const open = OPEN.exec(lines[i] ?? '');
    if (open === null) continue;
    const [, indent = '', fence = '```', lang = ''] = open;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end] ?? '')) end += 1;
    if (/^(ts|typescript)$/i.test(lang)) {
      const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
      const code = `${body.join('\n').trim()}\n`;
      const index = blocks.length + 1;
      const first = body.find((l) => l.trim() !== '')?.trim() ?? '';
      blocks.push({
        index,
        line: i + 2,
        code,
        label: `README block ${index} (README.md:${i + 2}: ${first.length > 60 ? `${first.slice(0, 60)}…` : first})`,
        fileName: `example-${String(index).padStart(2, '0')}.ts`,
      });
    }
    i = end; // skip the block's body, whatever its language
  }
  return blocks;
}

const BUILTINS = new Set(builtinModules);

/** Package names the code imports or requires (not `node:` or built-in modules, not relative paths). */
export function importedPackages(code: string): string[] {
  const specifiers = [
    ...code.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g),
    ...code.matchAll(/\bimport\s+['"]([^'"]+)['"]/g),
    ...code.matchAll(/\b(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] ?? '');
  const names = new Set<string>();
  for (const s of specifiers) {
    if (s === '' || s.startsWith('.') || s.startsWith('/') || s.startsWith('node:')) continue;
    const parts = s.split('/');
    const name = s.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? s);
    if (!BUILTINS.has(name)) names.add(name);
  }
  return [...names].sort();
}

/** The path of the first GET route the code registers (`app.get('/clock', …)`), params filled in; else `/`. */
export function firstGetPath(code: string): string {
  const match = /\b\w+\.get\(\s*(['"`])(\/[^'"`]*)\1/.exec(code);
  return match?.[2]?.replace(/:(\w+)/g, 'x') ?? '/';
}

/** Whether the code needs a Redis server (reads REDIS_URL or imports the Redis adapter). */
export function needsRedis(code: string): boolean {
  return /REDIS_URL|express-sse-hub\/redis/.test(code);
}

/** First line of a child's stdout that the preload below prints once a server listens. */
export const LISTENING_MARK = 'express-sse-hub-test:listening';

/**
 * A CommonJS preload (`node --require`) for running examples: every `server.listen(port)` listens on
 * a free port instead (port 0), and once listening prints one JSON line
 * `{"express-sse-hub-test:listening":{"port":…,"address":…,"requested":…}}` to stdout, so an example
 * that hard-codes `listen(3000)` runs as pasted without colliding with anything.
 */
export const LISTEN_PRELOAD = `'use strict';
const net = require('node:net');
const fs = require('node:fs');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  let requested;
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\\d+$/.test(first))) {
    requested = Number(first);
    args[0] = 0;
  } else if (first !== null && typeof first === 'object' && !Array.isArray(first) && 'port' in first) {
    requested = Number(first.port);
    args[0] = { ...first, port: 0 };
  }
  this.once('listening', () => {
    const address = this.address();
    if (address === null || typeof address === 'string') return;
    fs.writeSync(1, JSON.stringify({ ${JSON.stringify(LISTENING_MARK)}: { port: address.port, address: address.address, requested } }) + '\\n');
  });
  return listen.apply(this, args);
};
`;
