/**
 * A fleet's shards as a pure function of the fleet file: whole lanes dealt round robin (a target's
 * jobs, and a hypervisor lane's, on one shard; every job in exactly one shard; the same split on any
 * machine), the plan digest that merge compares, the fleet report's rows from the jobs' summaries,
 * and the worst of several exit codes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { planFleet } from '../../src/fleet/fleet-file.ts';
import { isFleetFile, laneShards, planDigest, shardJobs } from '../../src/fleet/fleet-shard.ts';
import { fleetApplications, type FleetJobInput, type SummaryLike } from '../../src/fleet/fleet-report.ts';
import { EXIT, worstExit } from '../../src/run/exit-codes.ts';

const dir = mkdtempSync(join(tmpdir(), 'blackout-fleet-shards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const template = (label: string) => `name: "{{application}} ${label}"
probes:
  - { name: echo, kind: tcp, interval: 100ms }
injector: { kind: cable-pull }
blackouts: [1s, 2s]
`;

function fleet(over: { limits?: unknown; suites?: string[] } = {}) {
  return {
    campaign: 'c',
    ...(over.limits ? { limits: over.limits } : {}),
    targets: [
      { name: 't1', application: 'A', hypervisor: 'hv-a', target: { host: '192.0.2.1', echo: { port: 7 } } },
      { name: 't2', application: 'A', hypervisor: 'hv-a', target: { host: '192.0.2.2', echo: { port: 7 } } },
      { name: 't3', application: 'B', hypervisor: 'hv-a', target: { host: '192.0.2.3', echo: { port: 7 } } },
      { name: 't4', application: 'C', hypervisor: 'hv-b', target: { host: '192.0.2.4', echo: { port: 7 } } },
      { name: 't5', application: 'D', target: { host: '192.0.2.5', echo: { port: 7 } } },
    ],
    suites: (over.suites ?? ['one', 'two']).map((l) => ({ template: template(l) })),
  };
}

describe("a fleet's shards", () => {
  it('deals whole lanes round robin: every job in one shard, a lane (and so a target) never on two', () => {
    for (const limits of [undefined, { hypervisor: 2 }]) {
      const plan = planFleet(fleet({ limits }), dir);
      expect(plan.jobs).toHaveLength(10);
      for (const total of [1, 2, 3, 7]) {
        const shards = Array.from({ length: total }, (_, i) => shardJobs(plan, { index: i + 1, total }));
        expect(
          shards
            .flat()
            .map((j) => j.jobId)
            .sort(),
        ).toEqual(plan.jobs.map((j) => j.jobId).sort());
        for (const key of ['lane', 'target'] as const) {
          for (const v of new Set(plan.jobs.map((j) => j[key]))) expect(shards.filter((s) => s.some((j) => j[key] === v)).length, `${key} ${v}, ${total} shards`).toBe(1);
        }
        // in plan order within a shard
        for (const s of shards) expect(s).toEqual(plan.jobs.filter((j) => s.includes(j)));
      }
    }
  });

  it('with limits: a hypervisor lane stays on one shard; the lanes go round robin in plan order', () => {
    const plan = planFleet(fleet({ limits: { hypervisor: 2 } }), dir);
    // hv-a's three targets on two lanes (t1 and t3 share one), hv-b one, t5 its own
    expect(Object.fromEntries(plan.jobs.map((j) => [j.target, j.lane]))).toEqual({
      t1: 'hypervisor:hv-a#1',
      t2: 'hypervisor:hv-a#2',
      t3: 'hypervisor:hv-a#1',
      t4: 'hypervisor:hv-b#1',
      t5: 'target:t5',
    });
    expect([...laneShards(plan, 2)]).toEqual([
      ['hypervisor:hv-a#1', 1],
      ['hypervisor:hv-a#2', 2],
      ['hypervisor:hv-b#1', 1],
      ['target:t5', 2],
    ]);
    expect(shardJobs(plan, { index: 1, total: 2 }).map((j) => j.jobId)).toEqual(['t1/a-one', 't1/a-two', 't3/b-one', 't3/b-two', 't4/c-one', 't4/c-two']);
    // more shards than lanes: the rest have no job
    expect(shardJobs(plan, { index: 5, total: 5 })).toEqual([]);
  });

  it('the plan digest is the same for the same file on any machine and changes with a suite', () => {
    expect(planDigest(planFleet(fleet(), dir))).toBe(planDigest(planFleet(structuredClone(fleet()), '/elsewhere')));
    expect(planDigest(planFleet(fleet({ suites: ['one', 'three'] }), dir))).not.toBe(planDigest(planFleet(fleet(), dir)));
  });

  it('tells a fleet file from a suite', () => {
    const f = join(dir, 'fleet.yaml');
    const s = join(dir, 'suite.yaml');
    writeFileSync(f, stringify(fleet()));
    writeFileSync(s, template('x').replace('{{application}}', 'A'));
    writeFileSync(join(dir, 'bad.yaml'), 'campaign: [');
    expect([isFleetFile(f), isFleetFile(s), isFleetFile(join(dir, 'bad.yaml')), isFleetFile(join(dir, 'none.yaml'))]).toEqual([true, false, false, false]);
  });
});

describe('fleet report rows', () => {
  const summary = (probes: Record<string, [number | null, number | null]>, vm: Record<string, number>): SummaryLike => ({
    verdict: { level: 'limited', headline: `h ${JSON.stringify(probes)}`, quickMigration: Object.entries(vm).map(([link, b]) => ({ link, safeUpToBytes: b, text: `${link} ${b}` })) },
    probes: Object.fromEntries(Object.entries(probes).map(([k, [s, f]]) => [k, { maxSurvivedMs: s, minFailedMs: f }])),
  });
  const job = (job: string, application: string, s: SummaryLike | null): FleetJobInput => ({
    job,
    target: job.split('/')[0]!,
    application,
    suite: job.split('/')[1]!,
    state: s ? 'done' : 'not run: shard 2 missing',
    attempts: s ? 1 : 0,
    trials: 1,
    plannedTrials: 1,
    summary: s,
    report: s ? `runs/${job.replace('/', '_')}/report.html` : null,
  });

  it('an application: its weakest session and tolerance over its suites, per link the smallest largest VM', () => {
    const [a, b] = fleetApplications([
      job('t1/x', 'A', summary({ echo: [2000, null], ut: [1000, 2000] }, { '1 GbE': 50, '10 GbE': 500 })),
      job('t2/x', 'A', summary({ echo: [1000, null], ut: [800, 1000] }, { '1 GbE': 40, '10 GbE': 600 })),
      job('t3/y', 'B', summary({ echo: [3000, null] }, { '1 GbE': 90 })),
      job('t3/z', 'B', null),
    ]);
    expect(a!.targets).toEqual(['t1', 't2']);
    expect(a!.weakest).toEqual({ probe: 'ut', maxSurvivedMs: 800, minFailedMs: 1000 });
    expect(a!.toleranceMs).toBe(800);
    expect(a!.quickMigration.map((q) => [q.link, q.safeUpToBytes])).toEqual([
      ['1 GbE', 40],
      ['10 GbE', 500],
    ]);
    expect(a!.jobs.map((j) => j.verdict?.headline)).toEqual([expect.stringMatching(/^h /), expect.stringMatching(/^h /)]);
    // a suite that did not run leaves the tolerance unknown, not larger
    expect(b!.toleranceMs).toBeNull();
    expect(b!.weakest?.probe).toBe('echo');
    expect(b!.jobs[1]).toMatchObject({ verdict: null, report: null, state: 'not run: shard 2 missing' });
  });

  it('ties on the failing length go to the session that survived the least, as within a run', () => {
    const [a] = fleetApplications([job('t1/x', 'A', summary({ echo: [2000, null] }, {})), job('t2/x', 'A', summary({ echo: [900, null] }, {}))]);
    expect(a!.weakest).toEqual({ probe: 'echo', maxSurvivedMs: 900, minFailedMs: null });
  });
});

describe('worstExit', () => {
  it('the code that most needs a person wins', () => {
    expect(worstExit([])).toBe(EXIT.ok);
    expect(worstExit([0, 1, 0])).toBe(1);
    expect(worstExit([1, 2, 130])).toBe(130);
    expect(worstExit([130, 3])).toBe(3);
    expect(worstExit([3, 5, 1])).toBe(5);
    expect(worstExit([5, 4, 0])).toBe(4);
    expect(worstExit([0, 42])).toBe(42);
    expect(worstExit([1, 42])).toBe(1);
  });
});
