// Types of express-sse-hub/client: the event map types listeners (checked at compile time by
// `npm run typecheck` and ts-jest), and the published declarations compile in a browser-only
// project, a Node-only one and one with both, as ESM and as CommonJS, with skipLibCheck off.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventSource, type ResetData, type SseErrorEvent, type SseMessageEvent } from '../src/client';

const ROOT = path.join(__dirname, '..');

interface ChatEvents {
  chat: { user: string; text: string };
  presence: number;
  motd: string;
}

// Compile-time only: never called.
export function typedListeners(source: EventSource<ChatEvents>): void {
  source.addEventListener('chat', (event) => {
    const user: string = event.json().user;
    const raw: string = event.data;
    void [user, raw, event.lastEventId];
  });
  source.addEventListener('presence', (event) => {
    const count: number = event.json();
    void count;
  });
  source.addEventListener('presence', (event) => {
    // @ts-expect-error a presence event carries a number
    const count: string = event.json();
    void count;
  });
  source.addEventListener('chat', (event) => {
    // @ts-expect-error chat events have no `room`
    void event.json().room;
  });
  source.addEventListener('reset', (event) => {
    const reason: ResetData['reason'] = event.json().reason;
    void reason;
  });
  source.addEventListener('error', (event) => {
    const status: number | undefined = event.status;
    const next: number | undefined = event.reconnectIn;
    void [status, next];
  });
  source.addEventListener('open', function (event) {
    void [this satisfies EventSource<ChatEvents>, event.type];
  });
  // The standard's listener types still fit, for any name.
  source.addEventListener('other', (event: MessageEvent) => void event.data);
  source.addEventListener('other', { handleEvent: (event: SseMessageEvent) => void event.json() }, { once: true });
  const onChat = (event: SseMessageEvent<ChatEvents['chat']>): void => void event.json().text;
  source.addEventListener('chat', onChat);
  source.removeEventListener('chat', onChat);
  source.onmessage = (event) => void event.data;
  source.onerror = (event: SseErrorEvent) => void event.message;
  const target: EventTarget = source;
  void target;
}

export function initFields(): void {
  void new EventSource('http://localhost/', { headers: { Authorization: 'Bearer t' }, method: 'POST', body: '{}', credentials: 'include', shared: true });
  void new EventSource(new URL('http://localhost/'), { headers: () => Promise.resolve({ Authorization: 'Bearer t' }), fetch: (url, init) => fetch(url, init) });
  // @ts-expect-error headers are strings
  void new EventSource('http://localhost/', { headers: { 'X-Count': 1 } });
  // @ts-expect-error no such option
  void new EventSource('http://localhost/', { retries: 3 });
  void new EventSource('http://localhost/', { shared: true, shareKey: 'user-42', heartbeatTimeout: 45_000 });
  // @ts-expect-error heartbeatTimeout is a number of ms
  void new EventSource('http://localhost/', { heartbeatTimeout: '45s' });
}

// Compile-time only: async iteration yields message events.
export async function iterated(source: EventSource<ChatEvents>): Promise<string[]> {
  const seen: string[] = [];
  for await (const event of source) {
    const data: string = event.data;
    const id: string = event.lastEventId;
    seen.push(`${event.type} ${data} ${id}`, String(event.json()));
  }
  return seen;
}

interface Run {
  code: number | null;
  output: string;
}

function tsc(dir: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir, '--pretty', 'false'], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (typeof error.code === 'number' ? error.code : null), output: stdout + stderr });
    });
  });
}

const CONSUMER = `import { EventSource, type SseMessageEvent } from 'express-sse-hub/client';

interface ChatEvents { chat: { user: string } }
const onChat = (event: SseMessageEvent<ChatEvents['chat']>): void => console.log(event.json().user, event.data);

const source = new EventSource<ChatEvents>('http://localhost/chat', {
  headers: async () => ({ Authorization: 'Bearer t' }),
  shared: true,
});
source.addEventListener('chat', (event) => console.log(event.json().user));
source.addEventListener('chat', onChat, { once: true });
source.removeEventListener('chat', onChat);
source.addEventListener('reset', (event: SseMessageEvent<{ channel: string }>) => console.log(event.json().channel));
source.onerror = (event) => console.log(event.status, event.reconnectIn, source.readyState === EventSource.CLOSED);
const iterated = new EventSource('http://localhost/news', { shareKey: 'user-42', heartbeatTimeout: 45_000 });
void (async () => {
  for await (const event of iterated) console.log(event.type, event.data, event.lastEventId);
})();
source.close();
`;

const ENVIRONMENTS = [
  ['a browser-only project (lib DOM, no @types/node)', { lib: ['ES2022', 'DOM'], types: [] }],
  ['a Node-only project (@types/node, no DOM lib)', { lib: ['ES2022'], types: ['node'] }],
  ['a project with both', { lib: ['ES2022', 'DOM'], types: ['node'] }],
] as const;

describe('the published types of express-sse-hub/client', () => {
  let work: string;

  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'client', 'index.d.mts'))) {
      throw new Error('dist/client is missing: run `npm run build` (npm test does it for you)');
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'express-sse-hub-client-types-'));
    // The package as installed: resolved through its package.json "exports".
    fs.mkdirSync(path.join(work, 'node_modules', '@types'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(work, 'node_modules', 'express-sse-hub'), 'dir');
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(work, 'node_modules', '@types', 'node'), 'dir');
  });

  afterAll(() => {
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  });

  describe.each(ENVIRONMENTS)('in %s', (_name, environment) => {
    it.each(['module', 'commonjs'])('compile for a %s consumer with skipLibCheck off', async (type) => {
      const dir = fs.mkdtempSync(path.join(work, 'p-'));
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type }));
      fs.writeFileSync(path.join(dir, 'consumer.ts'), CONSUMER);
      const compilerOptions = {
        ...environment,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        noEmit: true,
        typeRoots: [path.join(work, 'node_modules', '@types')],
      };
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
      const run = await tsc(dir);
      expect(run.output).toBe('');
      expect(run.code).toBe(0);
    }, 60_000);
  });
});
