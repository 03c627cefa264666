/**
 * One exit code for several runs: merged shards take the most serious of their
 * runs' codes (worstExit; its own cases are in fleet-shards.test.ts). A shard
 * whose restore failed (exit 4) must never turn into a merged run that passed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/run/exit-codes.ts';
import { mergeRunDirs } from '../../src/fleet/merge.ts';
import { FIXTURES } from '../helpers/fixtures.ts';

describe('merge: the merged run-end', () => {
  const root = mkdtempSync(join(tmpdir(), 'blackout-merge-exit-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const lines = readFileSync(join(FIXTURES, 'list-run.jsonl'), 'utf8').trim().split('\n');
  /** a run folder with the fixture's events of the given trials, ending with `end` (no run-end when null) */
  const shard = (name: string, trials: number[], end: number | null): string => {
    const dir = join(root, name);
    mkdirSync(dir);
    const kept = lines.filter((l) => {
      const e = JSON.parse(l) as { type: string; trial?: number };
      if (e.type === 'run-end') return false;
      return e.trial === undefined || e.type === 'injector-info' || trials.includes(e.trial);
    });
    if (end !== null) kept.push(JSON.stringify({ type: 'run-end', t: 40_000, exitCode: end, reason: end ? `exit ${end}` : 'completed' }));
    writeFileSync(join(dir, 'events.jsonl'), kept.join('\n') + '\n');
    return dir;
  };
  const mergedEnd = (dirs: string[], out: string) => {
    mergeRunDirs(dirs, join(root, out));
    const last = readFileSync(join(root, out, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .at(-1)!;
    return JSON.parse(last) as { type: string; exitCode: number; reason: string };
  };

  it('a shard whose restore failed makes the merged run exit 4, not 0', () => {
    const end = mergedEnd([shard('a1', [0, 1], 0), shard('b1', [2, 3], EXIT.restoreFailed)], 'm1');
    expect(end.type).toBe('run-end');
    expect(end.exitCode).toBe(EXIT.restoreFailed);
  });

  it('a shard that did not finish makes the merged run interrupted; a failed expectation alone stays 1', () => {
    expect(mergedEnd([shard('a2', [0, 1], 1), shard('b2', [2, 3], null)], 'm2').exitCode).toBe(EXIT.interrupted);
    expect(mergedEnd([shard('a3', [0, 1], 1), shard('b3', [2, 3], 0)], 'm3').exitCode).toBe(EXIT.expectationFailed);
    expect(mergedEnd([shard('a4', [0, 1], 0), shard('b4', [2, 3], 0)], 'm4').exitCode).toBe(EXIT.ok);
  });
});
