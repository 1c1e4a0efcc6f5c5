// The README's "Everything exported" lists exactly what each entry point exports: read from the
// built declaration files with the TypeScript compiler, compared with the names in the README's
// tables. A name exported but not listed (or listed but gone) fails here.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.join(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const PACKAGE = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types?: string; require?: { types: string } }> };

/** Entry point → its declaration file, from package.json "exports". */
function entryPoints(): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [key, target] of Object.entries(PACKAGE.exports)) {
    if (key === './package.json') continue;
    const types = target.types ?? target.require?.types;
    if (types !== undefined) entries.set(key === '.' ? 'express-sse-hub' : `express-sse-hub/${key.slice(2)}`, path.join(ROOT, types));
  }
  return entries;
}

/** Every name a declaration file exports (values and types). */
function exportedNames(file: string): string[] {
  const program = ts.createProgram([file], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  const symbol = checker.getSymbolAtLocation(source)!;
  return checker.getExportsOfModule(symbol).map((s) => s.getName()).sort();
}

/** The names the README lists for an entry point: in its row of the other entry points' table, or the main table. */
function listedNames(entry: string): string[] {
  const section = README.slice(README.indexOf('### Everything exported'), README.indexOf('### `sse(options?)`'));
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split(' | ');
    if (entry === 'express-sse-hub' ? cells[0]!.startsWith('| `express-sse-hub/') : !cells[0]!.startsWith(`| \`${entry}\``)) continue;
    const cell = entry === 'express-sse-hub' ? cells[0]! : cells[1]!;
    for (const match of cell.matchAll(/`([A-Za-z_$][\w$]*)`/g)) names.add(match[1]!);
  }
  return [...names].sort();
}

describe('the README\'s list of exports', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'index.d.ts'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it for you)');
  });

  it.each([...entryPoints()])('is exactly what %s exports', (entry, file) => {
    expect(listedNames(entry)).toEqual(exportedNames(file));
  });
});
