// Figures a test measures (runs searched, memory growth, conformance counts): appended to
// __tests__/artifacts/report.txt, and printed only when SSE_TEST_REPORT=1 (npm run test:long sets
// it), so a green `npm test` prints nothing.
import fs from 'node:fs';
import path from 'node:path';

const FILE = path.join(__dirname, '..', 'artifacts', 'report.txt');

export function report(line: string): void {
  fs.mkdirSync(path.dirname(FILE), { recursive: true });
  fs.appendFileSync(FILE, `${new Date().toISOString()} ${line}\n`);
  if (process.env.SSE_TEST_REPORT === '1') process.stdout.write(`${line}\n`);
}
