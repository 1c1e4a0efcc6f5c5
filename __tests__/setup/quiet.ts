// A green run prints nothing: output a test did not ask for (console.*, process warnings) fails
// that test, with the text. A test that expects output spies on it (jest.spyOn(console, 'warn')
// .mockImplementation(...), or on process.emitWarning), which replaces these recorders.
import { format } from 'node:util';

const heard: string[] = [];
const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
for (const method of methods) {
  console[method] = (...args: unknown[]): void => void heard.push(`console.${method}: ${format(...args)}`);
}
process.emitWarning = ((warning: string | Error, ...rest: unknown[]): void => {
  const type = typeof rest[0] === 'string' ? rest[0] : ((rest[0] as { type?: string } | undefined)?.type ?? (warning as Error).name ?? 'Warning');
  heard.push(`process warning (${type}): ${warning instanceof Error ? warning.message : warning}`);
});

function check(): void {
  if (heard.length === 0) return;
  const said = heard.splice(0);
  throw new Error(`unexpected output (expect it with a spy, or remove it):\n${said.map((line) => `  ${line.slice(0, 2000)}`).join('\n')}`);
}

afterEach(check);
// What hooks print (beforeAll, afterAll) is heard here.
afterAll(check);
