// Debian's Chromium for the browser tests, driven by playwright-core (never a downloaded browser).
import fs from 'node:fs';
import zlib from 'node:zlib';
import { chromium, type Browser, type LaunchOptions, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAS_CHROMIUM && process.env.CI) throw new Error(`CI must run the browser tests, but Chromium is missing at ${CHROMIUM}`);

/** `describe` where Chromium exists (always in CI), else `describe.skip` with a message. */
export function describeBrowser(name: string, body: () => void): void {
  if (HAS_CHROMIUM) describe(name, body);
  else describe.skip(`${name} (skipped: no Chromium at ${CHROMIUM}; apt-get install -y chromium, or set CHROMIUM_PATH)`, body);
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, ...options });
}

/** Opens the demo page at `url` (`query` appended) in `page` and waits until its stream is open; page errors fail the test. */
export async function openDemoPage(page: Page, url: string, query = ''): Promise<Page> {
  page.on('pageerror', (error) => {
    throw error;
  });
  await page.goto(`${url}/${query}`);
  await page.waitForSelector('#state[data-state="open"]');
  return page;
}

/**
 * What a saved PNG screenshot shows, read from the file: its size in pixels and how many
 * distinct colours its pixels use (a blank or single-colour capture has one or two).
 */
export function pngInfo(file: string): { width: number; height: number; colours: number } {
  const png = fs.readFileSync(file);
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error(`${file} is not a PNG`);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const [bitDepth, colourType] = [png[24]!, png[25]!];
  if (bitDepth !== 8 || (colourType !== 2 && colourType !== 6)) throw new Error(`${file}: expected 8-bit RGB or RGBA, got depth ${bitDepth} type ${colourType}`);
  const channels = colourType === 6 ? 4 : 3;
  const chunks: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') chunks.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(chunks));
  // Undo the per-row filters (PNG spec, section 9) to get the pixels.
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)]!;
    const row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x += 1) {
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      if (predictor === undefined) throw new Error(`${file}: unknown PNG filter ${filter}`);
      pixels[y * stride + x] = (row[x]! + predictor) & 0xff;
    }
  }
  const colours = new Set<number>();
  for (let i = 0; i < pixels.length && colours.size < 1000; i += channels) colours.add(pixels.readUIntBE(i, 3));
  return { width, height, colours: colours.size };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}
