import { connect } from 'node:net';
import { sleep } from '../core/clock.ts';

/** Resolves when a TCP connect to host:port succeeds; rejects after timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port, timeout: 1000 });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('timeout', () => {
        last = 'timeout';
        s.destroy();
        resolve(false);
      });
      s.once('error', (e) => {
        last = e.message;
        resolve(false);
      });
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${host}:${port} did not answer within ${timeoutMs} ms (${last})`);
}
