// What a TypeScript user reads when a typed stream is used wrongly: the compiler's own message,
// for the mistakes people make (an unknown event name, a wrong payload, a plain send on a map
// without `message`). types.test-d.ts proves each is an error; this proves the error says why.
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.join(__dirname, '..');

/** Compiles `code` as a file of this project (paths resolve 'express-sse-hub' to src/) and returns its errors. */
function errorsOf(code: string): string[] {
  const file = path.join(ROOT, '__tests__', '__typed-events-probe.ts');
  const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (config === undefined) throw new Error('tsconfig.json could not be read');
  const host = ts.createCompilerHost(config.options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (name) => (path.resolve(name) === file ? code : readFile(name));
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram({ rootNames: [file], options: { ...config.options, noEmit: true }, host });
  return ts
    .getPreEmitDiagnostics(program, program.getSourceFile(file))
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

const PRELUDE = `
import express from 'express';
import { sse } from 'express-sse-hub';
interface ChatEvents { chat: { user: string; text: string }; presence: number }
const app = express();
`;

describe('sse<Events>() in a route', () => {
  it('names the allowed events when the event is not in the map', () => {
    const errors = errorsOf(`${PRELUDE}app.get('/c', sse<ChatEvents>(), (_req, res) => { res.sse.send(1, { event: 'typo' }); });`);
    expect(errors.join('\n')).toContain(`Type '"typo"' is not assignable to type '"chat" | "presence"'`);
  });

  it("names the event's payload type when the data does not fit", () => {
    const errors = errorsOf(`${PRELUDE}app.get('/c', sse<ChatEvents>(), (_req, res) => { res.sse.send('three', { event: 'presence' }); });`);
    expect(errors.join('\n')).toContain(`Argument of type 'string' is not assignable to parameter of type 'number'`);
  });

  it('says to pass an event name when the map has no message event', () => {
    const errors = errorsOf(`${PRELUDE}app.get('/c', sse<ChatEvents>(), (_req, res) => { res.sse.send({ user: 'a', text: 'b' }); });`);
    expect(errors.join('\n')).toContain(`this stream's event map has no 'message' event; pass { event } with one of its names`);
  });

  it('compiles the right calls without errors', () => {
    const errors = errorsOf(`${PRELUDE}app.get('/c/:room', sse<ChatEvents>(), (req, res) => {
      const room: string = req.params.room;
      res.sse.send({ user: room, text: 'hi' }, { event: 'chat' });
      res.sse.send(2, { event: 'presence', id: 1 });
    });`);
    expect(errors).toEqual([]);
  });
});
