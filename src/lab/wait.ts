import { connect, type NetConnectOpts } from 'node:net';
import { sleep } from '../core/clock.ts';

/** Resolves when a TCP connect to host:port succeeds; rejects after timeoutMs. */
export function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  return waitForConnect({ host, port }, `${host}:${port}`, timeoutMs);
}

/**
 * Resolves when a connect to a unix socket succeeds. A server that opens a
 * TCP port and a socket file does not open both at once: MariaDB binds its
 * socket after its port, and a client in between is refused (seen once, under load).
 */
export function waitForUnixSocket(path: string, timeoutMs: number): Promise<void> {
  return waitForConnect({ path }, path, timeoutMs);
}

async function waitForConnect(to: NetConnectOpts, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ ...to, timeout: 1000 });
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
  throw new Error(`${what} did not answer within ${timeoutMs} ms (${last})`);
}
