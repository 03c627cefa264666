/**
 * Static shards on the real lab: the same short cable-pull sweep run whole and
 * as --shard 1/3, 2/3, 3/3 (one of them through JOB_COMPLETION_INDEX, as a
 * Kubernetes Indexed Job runs it); `blackout merge` of the three shard
 * folders gives the same matrix (each trial's length and every probe's
 * outcome) as the unsharded run, and every reporter's file.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labName, runCli, tempDir, useLab, writeSuite } from '../helpers/lab.ts';
import { readEvents } from '../../src/core/event-log.ts';
import { readSummary } from '../helpers/run-dir.ts';
import { parseShard, resolveShard, shardTrials, ShardError } from '../../src/fleet/shard.ts';

const LAB = labName('tshard');
useLab(LAB);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface MatrixRow {
  trial: number;
  requestedMs: number;
  outcomes: Record<string, string>;
}
function matrix(dir: string): MatrixRow[] {
  const s = readSummary<{ trials: Array<{ index: number; requestedMs: number; probes: Record<string, { outcome: string }> }> }>(dir);
  return s.trials.map((t) => ({ trial: t.index, requestedMs: t.requestedMs, outcomes: Object.fromEntries(Object.entries(t.probes).map(([k, v]) => [k, v.outcome])) }));
}

describe('shard arithmetic', () => {
  it('splits a plan round robin, every trial in exactly one shard', () => {
    const all = [1, 2, 3, 4].flatMap((i) => shardTrials({ index: i, total: 4 }, 10));
    expect(all.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(shardTrials({ index: 2, total: 3 }, 7)).toEqual([1, 4]);
  });
  it('reads i/n, and JOB_COMPLETION_INDEX with a shard count; names the field when wrong', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, total: 3 });
    expect(() => parseShard('4/3')).toThrow(/--shard: the shard index must be 1…3/);
    expect(() => parseShard('x')).toThrow(ShardError);
    expect(resolveShard({}, { JOB_COMPLETION_INDEX: '0', BLACKOUT_SHARD_COUNT: '3' })).toEqual({ index: 1, total: 3 });
    expect(resolveShard({ shardCount: '5' }, { JOB_COMPLETION_INDEX: '4' })).toEqual({ index: 5, total: 5 });
    expect(() => resolveShard({}, { JOB_COMPLETION_INDEX: '1' })).toThrow(/--shard-count/);
    expect(resolveShard({}, {})).toBeNull();
  });
});

describe('shards on the lab', () => {
  it('--shard 1/3, 2/3, 3/3 then merge: the same matrix as the unsharded run', async () => {
    const suite = writeSuite({
      name: 'shard sweep',
      target: { lab: LAB },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '20ms' },
        { name: 'echo', kind: 'tcp', interval: '100ms' },
        { name: 'echo-ut1s', kind: 'tcp', interval: '100ms', userTimeout: '1s' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['300ms', '2s', '600ms'],
      warmup: '1s',
      recovery: '8s',
    });
    dirs.push(join(suite, '..'));
    const whole = tempDir();
    dirs.push(whole);
    const r0 = await runCli(['run', suite, '--out', whole, '--no-live']);
    expect(r0.code, r0.stderr + r0.stdout).toBe(0);

    const shards: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const out = tempDir();
      dirs.push(out);
      shards.push(out);
      // shard 3 as a Kubernetes Indexed Job pod would run it
      const r =
        i === 3
          ? await runCli(['run', suite, '--out', out, '--no-live', '--shard-count', '3'], { env: { JOB_COMPLETION_INDEX: '2' } })
          : await runCli(['run', suite, '--out', out, '--no-live', '--shard', `${i}/3`]);
      expect(r.code, r.stderr + r.stdout).toBe(0);
      const ev = readEvents(join(out, 'events.jsonl')).events;
      const start = ev[0]!;
      expect(start.type === 'run-start' && start.shard).toEqual({ index: i, total: 3 });
      // its share only, under the planned trial number
      expect(ev.filter((e) => e.type === 'trial-start').map((e) => (e as { trial: number }).trial)).toEqual([i - 1]);
    }
    const merged = join(tempDir(), 'merged');
    dirs.push(join(merged, '..'));
    // shard order on the command line does not matter
    const m = await runCli(['merge', shards[2]!, shards[0]!, shards[1]!, '--out', merged]);
    expect(m.code, m.stderr + m.stdout).toBe(0);
    for (const f of ['summary.json', 'junit.xml', 'summary.md', 'report.html', 'allure-results']) expect(existsSync(join(merged, f)), f).toBe(true);

    const a = matrix(whole);
    const b = matrix(merged);
    expect(b.map((r) => [r.trial, r.requestedMs])).toEqual([
      [0, 300],
      [1, 2000],
      [2, 600],
    ]);
    expect(b).toEqual(a);
    // and what the matrix says is real: the user-timeout session did not survive 2 s, the plain one did
    expect(b[1]!.outcomes['echo-ut1s']).toBe('failed');
    expect(b[1]!.outcomes.echo).toBe('stalled');
    const sm = readSummary<{ complete: boolean }>(merged);
    expect(sm.complete).toBe(true);

    // a shard given twice, and a folder of another suite, are refused (exit 2)
    const dup = await runCli(['merge', shards[0]!, shards[0]!, '--out', join(merged, '..', 'dup')]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/shard 1\/3 is also/);
  }, 240_000);

  it('refuses a bad --shard with exit 2 before touching anything', async () => {
    const suite = writeSuite({ name: 'x', target: { lab: LAB }, probes: [{ name: 'p', kind: 'icmp', interval: '20ms' }], injector: { kind: 'cable-pull' }, blackouts: ['1s'] });
    dirs.push(join(suite, '..'));
    const out = tempDir();
    dirs.push(out);
    const r = await runCli(['run', suite, '--out', out, '--shard', '0/2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--shard: the shard index/);
    expect(existsSync(join(out, 'events.jsonl'))).toBe(false);
  });
});
