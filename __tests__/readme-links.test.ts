// README.md is read in three places: on the repository, on the registry, and from
// node_modules/express-sse-hub after an install. Every relative link and image must resolve in the
// published package (the files `npm pack` ships), and every #anchor to a heading that exists. The
// same goes for source maps: shipped only with the sources they point at.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.join(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The files `npm pack` would publish (scripts skipped: nothing is built for the listing). */
function packedFiles(): Set<string> {
  const output = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], { cwd: ROOT, encoding: 'utf8' });
  const [info] = JSON.parse(output) as { files: { path: string }[] }[];
  return new Set(info!.files.map((f) => f.path));
}

/** Markdown outside fenced code blocks and inline code. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Link and image targets: `[text](target)`, `![alt](target)`, `<img src="target">`. */
function targets(markdown: string): string[] {
  const text = prose(markdown);
  const found = [...text.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
  for (const m of text.matchAll(/<img\s[^>]*src="([^"]+)"/g)) found.push(m[1]!);
  return found;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const m of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

const isAbsolute = (target: string): boolean => /^[a-z][a-z0-9+.-]*:/i.test(target);

describe('README.md', () => {
  const links = targets(README);

  it('has links to check', () => {
    expect(links.length).toBeGreaterThan(10);
  });

  it('links only to files the published package ships (or to absolute addresses)', () => {
    const shipped = packedFiles();
    const missing = links
      .filter((target) => !isAbsolute(target) && !target.startsWith('#'))
      .map((target) => decodeURI(target.split('#')[0]!).replace(/^\.\//, ''))
      .filter((file) => !shipped.has(file));
    expect(missing).toEqual([]);
  });

  it('ships no source map whose sources are not in the package', () => {
    const shipped = packedFiles();
    const dangling: string[] = [];
    for (const file of shipped) {
      if (!file.endsWith('.map')) continue;
      const map = JSON.parse(fs.readFileSync(path.join(ROOT, file), 'utf8')) as { sources: string[] };
      for (const source of map.sources) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), source));
        if (!shipped.has(target)) dangling.push(`${file} → ${target}`);
      }
    }
    expect(dangling).toEqual([]);
  });

  it('points every #anchor at a heading that exists, in the README or in the file it names', () => {
    const broken: string[] = [];
    for (const target of links) {
      if (isAbsolute(target) || !target.includes('#')) continue;
      const [file, anchor] = target.split('#') as [string, string];
      const markdown = file === '' ? README : fs.readFileSync(path.join(ROOT, file), 'utf8');
      if (!anchors(markdown).has(anchor)) broken.push(target);
    }
    expect(broken).toEqual([]);
  });
});
