/** Waiting for a server's unix socket: it answers only once the server listens on it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitForUnixSocket } from '../../src/lab/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'wait-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('waitForUnixSocket', () => {
  it('resolves once a server listens on the path, not before', async () => {
    const path = join(dir, 'late.sock');
    const server = createServer((c) => c.end());
    let listening = false;
    setTimeout(() => server.listen(path, () => (listening = true)), 400);
    await waitForUnixSocket(path, 5000);
    expect(listening).toBe(true);
    await new Promise((r) => server.close(r));
  });

  it('names the path when nothing listens there', async () => {
    await expect(waitForUnixSocket(join(dir, 'none.sock'), 300)).rejects.toThrow(/none\.sock did not answer within 300 ms/);
  });
});
