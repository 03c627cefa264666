/**
 * Static shards on the real lab: the same short cable-pull sweep run whole and
 * as --shard 1/3, 2/3, 3/3 (one of them through JOB_COMPLETION_INDEX, as a
 * Kubernetes Indexed Job runs it); `blackout merge` of the three shard
 * folders gives the same matrix (each trial's length and every probe's
 * outcome) as the unsharded run, and every reporter's file.
 *
 * And a fleet's shards, with no database: a fleet file of 2 lab targets × 2
 * suite templates run as --shard 1/2 and (through JOB_COMPLETION_INDEX) 2/2 at
 * once; a target's jobs all run in one shard, and `blackout merge` of the two
 * folders gives the fleet report: every application, each job once with the
 * verdict its own run report gives. A merge with a shard missing names it.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { labName, runCli, tempDir, useLab, writeSuite } from '../helpers/lab.ts';
import { readEvents } from '../../src/core/event-log.ts';
import { readSummary } from '../helpers/run-dir.ts';
import { fleetSuiteTemplate as suiteTemplate } from '../helpers/fleet.ts';
import { parseShard, resolveShard, shardTrials, ShardError } from '../../src/fleet/shard.ts';
import { readManifest, type FleetShardManifest } from '../../src/fleet/fleet-shard.ts';
import type { FleetReport } from '../../src/fleet/fleet-report.ts';

const LAB = labName('tshard');
useLab(LAB);
// the fleet's second target
const LAB2 = labName('tshard2');
useLab(LAB2);
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

interface OwnSummary {
  verdict: { headline: string; quickMigration: Array<{ link: string; safeUpToBytes: number }> };
  probes: Record<string, { maxSurvivedMs: number | null }>;
}

describe("a fleet's shards on the lab", () => {
  it('2 targets × 2 suites as --shard 1/2 and 2/2 (JOB_COMPLETION_INDEX), then merge: each job once with its own verdict, a target on one shard', async () => {
    const fleetDir = tempDir('blackout-fleet-');
    dirs.push(fleetDir);
    const fleet = join(fleetDir, 'fleet.yaml');
    writeFileSync(
      fleet,
      stringify({
        campaign: 'shard-fleet',
        targets: [
          { name: 'f1', application: 'app-1', target: { lab: LAB } },
          { name: 'f2', application: 'app-2', target: { lab: LAB2 } },
        ],
        // the user-timeout session survives the short blackout, not the long one: the suites' verdicts differ
        suites: [{ template: suiteTemplate('short', ['600ms']) }, { template: suiteTemplate('long', ['600ms', '1500ms']) }],
      }),
    );
    const s1 = tempDir();
    const s2 = tempDir();
    dirs.push(s1, s2);
    // both shards at once, the second as a Kubernetes Indexed Job's pod runs it
    const t0 = Date.now();
    const [r1, r2] = await Promise.all([
      runCli(['run', fleet, '--shard', '1/2', '--out', s1, '--no-live']),
      runCli(['run', fleet, '--shard-count', '2', '--out', s2, '--no-live'], { env: { JOB_COMPLETION_INDEX: '1' } }),
    ]);
    const shardsMs = Date.now() - t0;
    expect(r1.code, r1.stderr + r1.stdout).toBe(0);
    expect(r2.code, r2.stderr + r2.stdout).toBe(0);
    expect(r1.stdout).toMatch(/\[shard 1\/2\] job 1\/2 f1\/app-1-short/);
    const m1 = readManifest(s1)!;
    const m2 = readManifest(s2)!;
    expect([m1.shard, m2.shard]).toEqual([
      { index: 1, total: 2 },
      { index: 2, total: 2 },
    ]);
    expect(m2.plan).toBe(m1.plan);
    const planJobs = m1.jobs.map((j) => j.jobId).sort();
    expect(planJobs).toEqual(['f1/app-1-long', 'f1/app-1-short', 'f2/app-2-long', 'f2/app-2-short']);
    // every job ran exactly once over the two shards, each with exit 0
    const ran = [m1, m2].flatMap((m) => m.ran.map((r) => ({ ...r, shard: m.shard.index })));
    expect(ran.map((r) => r.jobId).sort()).toEqual(planJobs);
    for (const r of ran) expect(r.exitCode, r.jobId).toBe(0);
    // a target's jobs all ran in one shard, and the shards split the targets
    const shardsOf = (target: string) => new Set(ran.filter((r) => m1.jobs.find((j) => j.jobId === r.jobId)!.target === target).map((r) => r.shard));
    expect([...shardsOf('f1')]).toHaveLength(1);
    expect([...shardsOf('f2')]).toHaveLength(1);
    expect([...shardsOf('f1')][0]).not.toBe([...shardsOf('f2')][0]);
    // each job's run folder is a run of its suite against its target
    for (const [dir, m] of [
      [s1, m1],
      [s2, m2],
    ] as Array<[string, FleetShardManifest]>) {
      for (const r of m.ran) {
        const start = readEvents(join(dir, m.jobs.find((j) => j.jobId === r.jobId)!.dir, 'events.jsonl')).events[0]!;
        expect(start.type === 'run-start' && [start.suite, start.job?.target, start.job?.id]).toEqual([
          m.jobs.find((j) => j.jobId === r.jobId)!.suite,
          r.jobId.split('/')[0],
          `shard-fleet:${r.jobId}`,
        ]);
      }
    }

    const merged = join(tempDir(), 'merged');
    dirs.push(join(merged, '..'));
    const m = await runCli(['merge', s2, s1, '--out', merged]);
    expect(m.code, m.stderr + m.stdout).toBe(0);
    for (const f of ['fleet-report.html', 'fleet-report.json', 'fleet-report.md']) expect(existsSync(join(merged, f)), f).toBe(true);
    const fr = JSON.parse(readFileSync(join(merged, 'fleet-report.json'), 'utf8')) as FleetReport;
    expect(fr.source).toBe('shards');
    expect(fr.shards).toEqual({ total: 2, merged: [1, 2], missing: [] });
    expect(fr.applications.map((a) => a.application)).toEqual(['app-1', 'app-2']);
    // each job exactly once, with the verdict its own run report gives, from the shard that ran it
    expect(fr.applications.flatMap((a) => a.jobs.map((j) => j.job)).sort()).toEqual(planJobs);
    for (const a of fr.applications) {
      const own: OwnSummary[] = [];
      for (const j of a.jobs) {
        const r = ran.find((x) => x.jobId === j.job)!;
        const dir = m1.jobs.find((x) => x.jobId === j.job)!.dir;
        const s = JSON.parse(readFileSync(join(r.shard === 1 ? s1 : s2, dir, 'summary.json'), 'utf8')) as OwnSummary;
        own.push(s);
        expect(j.verdict?.headline, j.job).toBe(s.verdict.headline);
        expect(j.shard).toBe(r.shard);
        expect(j.state).toBe('done');
        expect(j.report).toBe(join(dir, 'report.html'));
        expect(existsSync(join(merged, j.report!))).toBe(true);
      }
      // the application's figures from its suites' own: the user-timeout session is the weakest,
      // the tolerance the shortest survived by every session, per link the smaller of the largest safe VMs
      expect(a.weakest?.probe).toBe('echo-ut1s');
      const survived = own.flatMap((s) => Object.values(s.probes).map((p) => p.maxSurvivedMs));
      expect(survived).not.toContain(null);
      expect(a.toleranceMs).toBe(Math.min(...(survived as number[])));
      for (const q of a.quickMigration) expect(q.safeUpToBytes).toBe(Math.min(...own.map((s) => s.verdict.quickMigration.find((x) => x.link === q.link)!.safeUpToBytes)));
      expect(a.history).toEqual([]);
    }
    expect(readFileSync(join(merged, 'fleet-report.md'), 'utf8')).toMatch(/History across runs needs the results store/);

    // a shard missing: the report is written, its jobs listed as not run, the shard named, exit 1
    const part = join(tempDir(), 'part');
    dirs.push(join(part, '..'));
    const p = await runCli(['merge', s1, '--out', part]);
    expect(p.code, p.stderr).toBe(1);
    expect(p.stderr).toMatch(/shard\(s\) 2 of 2 missing/);
    const missing = m1.jobs.filter((j) => j.shard === 2).map((j) => j.jobId);
    for (const j of missing) expect(p.stderr).toContain(j);
    const pr = JSON.parse(readFileSync(join(part, 'fleet-report.json'), 'utf8')) as FleetReport;
    expect(pr.shards).toEqual({ total: 2, merged: [1], missing: [2] });
    for (const j of pr.applications.flatMap((a) => a.jobs)) {
      if (missing.includes(j.job)) expect([j.state, j.report, j.verdict]).toEqual(['not run: shard 2 missing', null, null]);
      else expect(j.state).toBe('done');
    }

    // a shard given twice, and a folder that is no fleet shard's, are refused (exit 2)
    const dup = await runCli(['merge', s1, s1, '--out', join(part, '..', 'dup')]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/shard 1\/2 is also/);
    const mixed = await runCli(['merge', s1, fleetDir, '--out', join(part, '..', 'mixed')]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toMatch(/no fleet-shard\.json/);
    process.stdout.write(`fleet of 4 jobs as 2 shards at once: ${(shardsMs / 1000).toFixed(1)} s\n`);
  }, 180_000);
});
