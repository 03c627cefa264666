/**
 * The lab target's TCP echo service (port 7), asked from the test itself: the
 * kill -9 tests use it to see when the target is reachable again without the
 * harness that cut it.
 */
import { connect } from 'node:net';
import { sleep } from '../../src/core/clock.ts';

/** one echo round trip with a short timeout: true when the target's echo service answers */
export function echoOnce(host: string, timeoutMs: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port: 7 });
    const timer = setTimeout(() => {
      s.destroy();
      res(false);
    }, timeoutMs);
    s.on('connect', () => s.write('x\n'));
    s.on('data', () => {
      clearTimeout(timer);
      s.destroy();
      res(true);
    });
    s.on('error', () => {
      clearTimeout(timer);
      res(false);
    });
  });
}

/**
 * Asks the echo service every `pollMs` (each try given `timeoutMs`) until it
 * answers or the wall clock passes `untilWall`. Returns the first answered try:
 * when it was started and when its answer came (Date.now()), or null if none was.
 */
export async function echoBackAt(host: string, untilWall: number, opts: { timeoutMs: number; pollMs: number }): Promise<{ attemptAt: number; answeredAt: number } | null> {
  while (Date.now() < untilWall) {
    const attemptAt = Date.now();
    if (await echoOnce(host, opts.timeoutMs)) return { attemptAt, answeredAt: Date.now() };
    await sleep(opts.pollMs);
  }
  return null;
}
