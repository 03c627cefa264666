/** The test run's temporary files live under one private TMPDIR (test/global-tmp.ts), removed when the run ends. */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/lab.ts';

describe('temporary files', () => {
  it('every temp folder of this run, and of the processes it starts, is inside the private TMPDIR', () => {
    const root = process.env.TMPDIR!;
    expect(basename(root)).toMatch(/^blackout-test-/);
    expect(tmpdir()).toBe(root);
    expect(dirname(tempDir())).toBe(root);
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(require("node:os").tmpdir())'], { encoding: 'utf8' });
    expect(child.stdout).toBe(root);
  });
});
