// Rejections nobody handled: under Node's default (`--unhandled-rejections=throw`) each one ends
// the process, so a test of a failure path asserts there were none.

/**
 * Runs `body` and returns the rejections nobody handled while it ran or in the `settleMs` after
 * it (Node reports one only once the microtasks after it have run). The wait only lets a late one
 * show; no result depends on it being long enough. (Under `npm test`'s
 * `--unhandled-rejections=strict` jest also fails the test on its own.)
 */
export async function unhandledDuring(body: () => Promise<void>, settleMs = 50): Promise<string[]> {
  const seen: string[] = [];
  const listener = (reason: unknown): void => void seen.push(reason instanceof Error ? (reason.stack ?? reason.message) : String(reason));
  process.on('unhandledRejection', listener);
  try {
    await body();
    await new Promise((resolve) => setTimeout(resolve, settleMs));
  } finally {
    process.off('unhandledRejection', listener);
  }
  return seen;
}
