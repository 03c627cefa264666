/**
 * vitest globalSetup: every test file, every CLI it starts and every server
 * those start get one private temporary folder (TMPDIR), removed when the run
 * ends, so a test run leaves nothing in /tmp, whatever a test forgot or a
 * killed process left behind.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const outer = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), 'blackout-test-'));
  // other users (the test PostgreSQL cluster's postgres, the lab's users) must reach the folders made
  // for them inside, without listing what else is there
  chmodSync(dir, 0o711);
  process.env.TMPDIR = dir;
  // the watchdog journal (injectors/remote.ts) of the runs the tests make stays inside too
  process.env.BLACKOUT_STATE_DIR = join(dir, 'state');
  return () => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.BLACKOUT_STATE_DIR;
    if (outer === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outer;
  };
}
