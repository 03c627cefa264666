/**
 * Fleet benchmarks on a private PostgreSQL (started and removed here; store
 * ingest has its own benchmark, bench/ingest.ts):
 *  - queue overhead per job: graphile-worker lanes; the time from a lane's job
 *    finishing (its target free) to the next job of that lane starting (the
 *    bare queue, and through blackout's worker with its own steps), and from a
 *    job's submission to its start on an idle worker;
 *  - a simulated fleet of 500 targets × 1 suite with stub trials (the real
 *    worker with its heartbeats, resume and store sink; the trial itself a
 *    synthetic event stream): plan, submit, distribute over 4 workers, report.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, makeWorkerUtils, Logger } from 'graphile-worker';
import { startPgCluster, type PgCluster } from '../test/helpers/pg-cluster.ts';
import { connectStore } from '../src/store/db.ts';
import { EventLog } from '../src/core/event-log.ts';
import { EVENT_SCHEMA_VERSION, type BlackoutEvent } from '../src/core/events.ts';
import type { runSuite } from '../src/run/runner.ts';
import { planFleet } from '../src/fleet/fleet-file.ts';
import { submitCampaign } from '../src/fleet/campaign.ts';
import { FleetWorker } from '../src/fleet/worker.ts';
import { buildFleetReport, fleetHtml, fleetMarkdown } from '../src/fleet/fleet-report.ts';
import { stats, machine, saveResult, f1, fs1, runs, spread } from './common.ts';

const quiet = new Logger(() => () => {});

async function queueOverhead(db: PgCluster): Promise<{ laneGap: number[]; idleStart: number[] }> {
  const utils = await makeWorkerUtils({ connectionString: db.url, logger: quiet });
  await utils.migrate();
  const started = new Map<string, number>();
  const ended = new Map<string, number>();
  const runner = await run({
    connectionString: db.url,
    concurrency: 2,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quiet,
    taskList: {
      'bench-job': async (p) => {
        const { id } = p as { id: string };
        started.set(id, performance.now());
        await new Promise((r) => setTimeout(r, 20));
        ended.set(id, performance.now());
      },
    },
  });
  // one lane (one target), 30 jobs: each waits for the one before it
  for (let i = 0; i < 30; i++) await utils.addJob('bench-job', { id: `lane-${i}` }, { queueName: 'target:bench' });
  const deadline = Date.now() + 120_000;
  while (started.size < 30 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 100));
  const laneGap: number[] = [];
  for (let i = 1; i < 30; i++) laneGap.push(started.get(`lane-${i}`)! - ended.get(`lane-${i - 1}`)!);
  // submission → start on an idle worker (LISTEN/NOTIFY wakes it)
  const idleStart: number[] = [];
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const t0 = performance.now();
    await utils.addJob('bench-job', { id: `idle-${i}` }, { queueName: `target:idle-${i}` });
    while (!started.has(`idle-${i}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    idleStart.push(started.get(`idle-${i}`)! - t0);
  }
  await runner.stop();
  await utils.release();
  return { laneGap, idleStart };
}

/** stub trials: a synthetic event stream per planned trial, through the worker's real sink and resume logic */
const stubRunSuite: typeof runSuite = async (suite, opts) => {
  const log = new EventLog(join(opts.outDir, 'events.jsonl'));
  const emit = (e: BlackoutEvent) => {
    log.append(e);
    opts.onEvent?.(e);
  };
  let t = 0;
  emit({
    type: 'run-start',
    t,
    schema: EVENT_SCHEMA_VERSION,
    runId: `stub-${process.pid}-${Math.random().toString(36).slice(2)}`,
    suite: suite.name,
    config: { name: suite.name },
    wallMs: Date.now(),
    host: 'bench',
    target: { name: 'stub', address: '192.0.2.1' },
    injector: { kind: 'cable-pull' },
    probes: suite.probes.map((p) => ({ name: p.name, kind: p.kind, intervalMs: p.interval, toleranceMs: p.tolerance, policy: {} })),
    version: '0',
    ...(opts.job ? { job: opts.job } : {}),
  });
  suite.blackouts.forEach((len, k) => {
    if (opts.only && !opts.only(k)) return;
    emit({ type: 'trial-start', t: ++t, trial: k, requestedMs: len });
    for (let s = 0; s < 30; s++) for (const p of suite.probes) emit({ type: 'sample', t: (t += 100), probe: p.name, trial: k, latencyMs: 0.3 });
    emit({ type: 'cut', t: ++t, before: t - 0.1, deadline: t + len + 5000, trial: k });
    t += len;
    emit({ type: 'restore', t, before: t - 0.1, trial: k, reason: 'scheduled' });
    for (let s = 0; s < 30; s++) for (const p of suite.probes) emit({ type: 'sample', t: (t += 100), probe: p.name, trial: k, latencyMs: 0.3 });
    emit({ type: 'trial-end', t: ++t, trial: k });
  });
  emit({ type: 'run-end', t: ++t, exitCode: 0, reason: 'completed' });
  log.close();
  return { exitCode: 0, outDir: opts.outDir, eventsPath: join(opts.outDir, 'events.jsonl'), reason: 'completed' };
};

/**
 * The same lane gap through blackout's own worker: one target with `n` suites (one lane), the stub trials
 * timed where the real run starts and ends. Between one run's end (its target free) and the next run's start
 * lie the worker's own steps: the run's store sink closing, its reports written, the job marked done, the
 * queue's next job, the heartbeat row, the trials already stored read back, the job marked running.
 */
async function workerLaneGap(db: PgCluster, n: number): Promise<number[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'blackout-bench-lane-'));
  try {
    const plan = planFleet(
      {
        campaign: 'lane',
        targets: [{ name: 'vm', application: 'app', target: { host: '192.0.2.1', echo: { port: 7 } } }],
        suites: Array.from({ length: n }, (_, i) => ({
          template: `name: "{{application}} ${i}"\nprobes:\n  - { name: echo, kind: tcp, interval: 100ms }\ninjector: { kind: cable-pull }\nblackouts: [2s]\n`,
        })),
      },
      tmp,
    );
    const spans: Array<{ start: number; end: number }> = [];
    const timed: typeof runSuite = async (suite, opts) => {
      const start = performance.now();
      const r = await stubRunSuite(suite, opts);
      spans.push({ start, end: performance.now() });
      return r;
    };
    await submitCampaign(db.url, plan, { maxAttempts: 3, log: () => {} });
    const w = new FleetWorker({ url: db.url, concurrency: 2, retryAfterMs: 30_000, outRoot: join(tmp, 'runs'), pollMs: 1000, log: () => {}, runSuiteImpl: timed });
    await w.start();
    const deadline = Date.now() + 120_000;
    const c = await connectStore(db.url);
    try {
      for (;;) {
        const { rows } = await c.query<{ n: string }>(`select count(*) n from blackout.campaign_jobs where campaign = $1 and state = 'done'`, [plan.campaign]);
        if (Number(rows[0]!.n) >= n) break;
        if (Date.now() > deadline) throw new Error(`lane: ${rows[0]!.n} of ${n} jobs done after 120 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await c.end();
      await w.stop();
    }
    spans.sort((a, b) => a.start - b.start);
    for (let i = 1; i < spans.length; i++) if (spans[i]!.start < spans[i - 1]!.end) throw new Error('lane: two runs of one target overlapped');
    return spans.slice(1).map((s, i) => s.start - spans[i]!.end);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function simulatedFleet(db: PgCluster, n: number): Promise<{ planMs: number; submitMs: number; distributeMs: number; reportMs: number; workers: number }> {
  const tmp = mkdtempSync(join(tmpdir(), 'blackout-bench-fleet-'));
  try {
    const t0 = performance.now();
    const plan = planFleet(
      {
        campaign: `sim-${n}`,
        limits: { hypervisor: 4 },
        targets: Array.from({ length: n }, (_, i) => ({ name: `vm-${i}`, application: `app-${i}`, hypervisor: `hv-${i % 25}`, target: { host: `192.0.2.${(i % 250) + 1}`, echo: { port: 7 } } })),
        suites: [
          {
            template:
              'name: "{{application}} pull"\nprobes:\n  - { name: echo, kind: tcp, interval: 100ms }\n  - { name: ping, kind: icmp, interval: 100ms }\ninjector: { kind: cable-pull }\nblackouts: [2s, 5s]\n',
          },
        ],
      },
      tmp,
    );
    const planMs = performance.now() - t0;
    const t1 = performance.now();
    await submitCampaign(db.url, plan, { maxAttempts: 3, log: () => {} });
    const submitMs = performance.now() - t1;
    const t2 = performance.now();
    const workers = [1, 2, 3, 4].map(() => new FleetWorker({ url: db.url, concurrency: 4, retryAfterMs: 30_000, outRoot: join(tmp, 'runs'), pollMs: 500, log: () => {}, runSuiteImpl: stubRunSuite }));
    for (const w of workers) await w.start();
    const c = await connectStore(db.url);
    for (;;) {
      const { rows } = await c.query<{ n: string }>(`select count(*) n from blackout.campaign_jobs where campaign = $1 and state = 'done'`, [plan.campaign]);
      if (Number(rows[0]!.n) >= n) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await c.end();
    const distributeMs = performance.now() - t2;
    await Promise.all(workers.map((w) => w.stop()));
    const t3 = performance.now();
    const r = await buildFleetReport(db.url, plan.campaign, join(tmp, 'report'));
    fleetHtml(r);
    fleetMarkdown(r);
    if (r.applications.length !== n) throw new Error(`report: ${r.applications.length} applications`);
    const reportMs = performance.now() - t3;
    return { planMs, submitMs, distributeMs, reportMs, workers: workers.length };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

export async function fleet(): Promise<void> {
  // each run on a fresh cluster, so no run inherits another's campaigns
  const perRun: Array<{ gap: ReturnType<typeof stats>; idle: ReturnType<typeof stats>; wgap: ReturnType<typeof stats>; sim: Awaited<ReturnType<typeof simulatedFleet>>; raw: unknown }> = [];
  for (let i = 0; i < runs(); i++) {
    const db = await startPgCluster();
    try {
      const q = await queueOverhead(db);
      const wq = await workerLaneGap(db, 15);
      const sim = await simulatedFleet(db, 500);
      perRun.push({ gap: stats(q.laneGap), idle: stats(q.idleStart), wgap: stats(wq), sim, raw: { queue: q, workerLaneGap: wq, simulated: sim } });
      process.stdout.write(
        `  run ${i + 1}: lane gap p50 ${f1(stats(q.laneGap).p50)} ms, through blackout's worker ${f1(stats(wq).p50)} ms; 500 targets: distribute ${f1(sim.distributeMs / 1000)} s, report ${f1(sim.reportMs / 1000)} s\n`,
      );
    } finally {
      await db.destroy();
    }
  }
  const of = (f: (r: (typeof perRun)[number]) => number) => spread(perRun.map(f));
  const ms = (f: (r: (typeof perRun)[number]) => number) => fs1(of(f));
  const secs = (f: (r: (typeof perRun)[number]) => number) => fs1(of((r) => f(r) / 1000));
  const gapN = perRun[0]?.gap.n ?? 0;
  const idleN = perRun[0]?.idle.n ?? 0;
  const wgapN = perRun[0]?.wgap.n ?? 0;
  saveResult({
    name: 'fleet',
    title: 'Fleet: queue overhead, a simulated fleet of 500 targets',
    date: new Date().toISOString(),
    machine: machine(),
    table: [
      `| measure, median of ${perRun.length} runs (min–max) | figure |`,
      '| --- | --- |',
      `| queue: a target's next job starts after its previous one ends (graphile-worker lane, n=${gapN} per run) | p50 ${ms((r) => r.gap.p50)} ms, p95 ${ms((r) => r.gap.p95)} ms, max ${ms((r) => r.gap.max)} ms |`,
      `| a target's next run starts after its previous run ends, through \`blackout worker\` (store sink closed, reports written, job state, heartbeat, resume check; stub trials, n=${wgapN} per run) | p50 ${ms((r) => r.wgap.p50)} ms, p95 ${ms((r) => r.wgap.p95)} ms, max ${ms((r) => r.wgap.max)} ms |`,
      `| queue: submission → start on an idle worker (LISTEN/NOTIFY, n=${idleN} per run) | p50 ${ms((r) => r.idle.p50)} ms, p95 ${ms((r) => r.idle.p95)} ms, max ${ms((r) => r.idle.max)} ms |`,
      `| 500 targets × 1 suite (2 stub trials each): plan | ${ms((r) => r.sim.planMs)} ms |`,
      `| … submit (one transaction) | ${ms((r) => r.sim.submitMs)} ms |`,
      `| … distribute and run over ${perRun[0]?.sim.workers ?? 0} workers × 4 (stub trials, real store sink, Allure history kept in the store) | ${secs((r) => r.sim.distributeMs)} s |`,
      `| … fleet report (each job's run rebuilt from the store, every reporter) | ${secs((r) => r.sim.reportMs)} s |`,
    ],
    goals: [],
    notes: ['The database runs with fsync off in this benchmark (a throwaway cluster, a fresh one for each run). Store ingest: its own section (`npm run bench -- ingest`).'],
    raw: { runs: perRun.map((r) => r.raw) },
  });
}
