/**
 * Keeps a test file's temporary files in one folder removed afterwards: TMPDIR
 * points into a fresh mkdtemp folder for the file's tests (os.tmpdir() reads it
 * at every call, and the CLI children inherit it), and afterAll removes it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export function useOwnTmp(prefix: string): void {
  let dir: string | null = null;
  const before = process.env.TMPDIR;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    process.env.TMPDIR = dir;
  });
  afterAll(() => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}
