/**
 * The fleet commands (merge, import, campaign, worker, the fleet report),
 * registered on the CLI from here so src/cli.ts only gains one call.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { pcErr } from '../core/color.ts';
import { EXIT } from '../run/exit-codes.ts';
import { abortOnSignals } from '../run/interrupt.ts';
import { writeReports } from '../reporters/index.ts';
import { matrixMarkdown } from '../reporters/markdown.ts';
import { mergeRunDirs, MergeError } from './merge.ts';
import { checkStoreUrl, StoreError } from '../store/store-url.ts';
import type { BlackoutEvent } from '../core/events.ts';

export interface RunStoreHandle {
  onEvent: (e: BlackoutEvent, line?: string) => void;
  close(): Promise<unknown>;
}

/**
 * The store sink of `run --store` (the URL checked here: a bad one is bad input, nothing injected).
 * The sink, and with it the PostgreSQL client, is loaded only here: the other commands start faster.
 */
export async function openRunStore(url: string, opts: { outDir: string; log: (l: string) => void }): Promise<RunStoreHandle> {
  checkStoreUrl(url, process.env.BLACKOUT_STORE === url ? 'BLACKOUT_STORE' : '--store');
  const { RunStoreSink } = await import('../store/sink.ts');
  const sink = new RunStoreSink(url, { outDir: opts.outDir, log: opts.log, closeWaitMs: Number(process.env.BLACKOUT_STORE_WAIT_MS ?? 60_000) });
  return {
    onEvent: sink.onEvent,
    close: async () => {
      const s = await sink.close();
      if (s.notStored === 0) opts.log(`store: ${s.stored} events of run ${s.runId} stored${s.reconnects ? ` (the database was away ${(s.downMs / 1000).toFixed(1)} s; caught up)` : ''}`);
      return s;
    },
  };
}

function fail(program: Command, message: string, code: number = EXIT.badInput): void {
  process.stderr.write(pcErr.red(`${message}\n`));
  program.setOptionValue('exitCode', code);
}

export async function fleetReportCommand(campaign: string | undefined, store: string | undefined, out: string): Promise<number> {
  if (campaign === undefined) {
    process.stderr.write(pcErr.red('report: give a run folder, or --campaign NAME with --store\n'));
    return EXIT.badInput;
  }
  try {
    checkStoreUrl(store);
  } catch (e) {
    process.stderr.write(pcErr.red(`${(e as Error).message}\n`));
    return EXIT.badInput;
  }
  const { writeFleetReport } = await import('./fleet-report.ts');
  return writeFleetReport(store!, campaign, out);
}

export interface FleetRunOptions {
  shard?: string;
  shardCount?: string;
  out?: string;
  lab?: string;
  leaseWaitMs: number;
  dryRun?: boolean;
  store?: string;
  metrics?: unknown;
  /** the run folder when --out is not given, from a name */
  defaultOut: (name: string) => string;
}

/**
 * `blackout run FLEET.yaml [--shard i/n] --out DIR`: this shard's jobs of the fleet, one after another,
 * each as `blackout run` would run its suite (its run folder under DIR/runs/, its reports), with no
 * store (fleet-shard.ts). Returns the exit code: the worst of the jobs' (exit-codes.ts).
 */
export async function runFleetCommand(file: string, o: FleetRunOptions): Promise<number> {
  const { loadFleet, FleetError } = await import('./fleet-file.ts');
  const { runFleetShard, shardJobs, MANIFEST, jobDir } = await import('./fleet-shard.ts');
  const { resolveShard, ShardError } = await import('./shard.ts');
  const bad = (m: string) => (process.stderr.write(pcErr.red(`${m}\n`)), EXIT.badInput);
  let plan;
  let shard;
  try {
    plan = loadFleet(file);
    shard = resolveShard(o) ?? { index: 1, total: 1 };
  } catch (e) {
    if (!(e instanceof FleetError) && !(e instanceof ShardError)) throw e;
    return bad(e.message);
  }
  // a fleet with a store is a campaign (its queue keeps the lanes across machines): campaign submit + worker
  if (o.store !== undefined)
    return bad(`--store: a fleet file runs without a store here; submit it as a campaign (blackout campaign submit ${file} --store …), or add the runs afterwards with blackout import DIR/runs/*`);
  if (o.metrics !== undefined) return bad('--metrics: serves the metrics of one run; not for a fleet file');
  if (o.dryRun) {
    const [{ dryRun }, { validateSuite }] = await Promise.all([import('../run/dry-run.ts'), import('../run/suite.ts')]);
    const codes: number[] = [];
    for (const j of shardJobs(plan, shard)) {
      process.stdout.write(`# job ${j.jobId} (lane ${j.lane}), shard ${shard.index}/${shard.total}\n`);
      codes.push(await dryRun(validateSuite(j.suite, `job ${j.jobId}`), { lab: o.lab, write: (l) => process.stdout.write(`${l}\n`) }));
    }
    const { worstExit } = await import('../run/exit-codes.ts');
    return worstExit(codes);
  }
  const outDir = resolve(o.out ?? o.defaultOut(shard.total > 1 ? `${plan.campaign}-shard-${shard.index}-of-${shard.total}` : plan.campaign));
  for (const f of [MANIFEST, 'events.jsonl']) if (existsSync(join(outDir, f))) return bad(`--out ${outDir}: that folder already holds a run (${f}); choose another folder`);
  if (process.env.BLACKOUT_STORE) process.stderr.write(pcErr.dim('BLACKOUT_STORE is set: a fleet file runs without a store (blackout import DIR/runs/* adds its runs afterwards)\n'));
  const [{ runSuite }, { validateSuite }] = await Promise.all([import('../run/runner.ts'), import('../run/suite.ts')]);
  const log = (l: string) => process.stdout.write(`${l}\n`);
  const interrupt = abortOnSignals('restoring the target, writing the reports of what completed; no further job starts…');
  let m;
  try {
    m = await runFleetShard(plan, shard, {
      outDir,
      log,
      signal: interrupt.signal,
      // as worker.ts runs a campaign job, minus the store
      runJob: async (job, dir, meta) => {
        const suite = validateSuite(job.suite, `job ${job.jobId}`);
        const r = await runSuite(suite, { outDir: dir, lab: o.lab, leaseWaitMs: o.leaseWaitMs, signal: interrupt.signal, log: (l) => log(`  ${job.jobId}: ${l}`), job: meta });
        const { analysis } = await writeReports(dir);
        // as `blackout run`: the run's own failure, else what the analysis counts (summary.json, junit.xml)
        const exitCode = r.exitCode !== EXIT.ok ? r.exitCode : (analysis.exitCode ?? EXIT.expectationFailed);
        return { exitCode, reason: r.reason, headline: r.exitCode === EXIT.badInput ? null : analysis.decision.verdict.headline };
      },
    });
  } finally {
    interrupt.dispose();
  }
  const lines = ['', `| job | exit | verdict | report |`, '| --- | --- | --- | --- |'];
  for (const r of m.ran) lines.push(`| ${r.jobId} | ${r.exitCode ?? '–'} | ${(r.headline ?? r.reason ?? '').replace(/\|/g, '/')} | ${join(jobDir(r.jobId), 'report.html')} |`);
  process.stdout.write(
    `${lines.join('\n')}\n\nshard ${shard.index}/${shard.total} of campaign ${plan.campaign}: ${m.ran.length} job(s) run, exit ${m.exitCode}\n${join(outDir, MANIFEST)}\n` +
      (shard.total > 1 ? `next: blackout merge (the ${shard.total} shards' folders) --out MERGED\n` : `fleet report: blackout merge ${outDir} --out MERGED\n`),
  );
  return m.exitCode ?? EXIT.interrupted;
}

/** "90s", "2m", "1500ms", "30" (seconds) → ms */
export function parseDurationOpt(v: string, field: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) throw new StoreError(`${field}: "${v}" is not a duration (e.g. 30s, 2m, 500ms)`);
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
  if (n <= 0) throw new StoreError(`${field}: must be more than 0`);
  return n;
}

function positiveInt(v: string, field: string): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1) throw new StoreError(`${field}: "${v}" is not a positive integer`);
  return Number(v);
}

export function registerFleetCommands(program: Command, _deps: { runCommand: unknown }): void {
  const campaign = program.command('campaign').description('fleet campaigns: targets × suites as jobs on a PostgreSQL queue (graphile-worker), run by `blackout worker` on any number of machines');
  campaign
    .command('plan')
    .description('expand a fleet file into its jobs and lanes, validating every suite; touches nothing')
    .argument('<fleet>', 'fleet file (.yaml)')
    .option('--json', 'machine-readable')
    .action(async (file: string, o: { json?: boolean }) => {
      const { loadFleet, FleetError } = await import('./fleet-file.ts');
      try {
        const plan = loadFleet(file);
        if (o.json)
          process.stdout.write(
            JSON.stringify(
              plan.jobs.map(({ suite: _s, ...j }) => j),
              null,
              2,
            ) + '\n',
          );
        else {
          process.stdout.write(`campaign ${plan.campaign}: ${plan.jobs.length} job(s)\n`);
          for (const j of plan.jobs) process.stdout.write(`  ${j.jobId.padEnd(40)} lane ${j.lane.padEnd(28)} ${j.plannedTrials} trial(s)\n`);
        }
      } catch (e) {
        if (!(e instanceof FleetError)) throw e;
        fail(program, e.message);
      }
    });
  campaign
    .command('submit')
    .description("submit a fleet file as a campaign: one queue job per target × suite; a target's jobs never overlap, and `limits` caps the blackouts per hypervisor or switch")
    .argument('<fleet>', 'fleet file (.yaml)')
    .option('--store <url>', 'results store and queue, postgres://… (or $BLACKOUT_STORE)')
    .option('--max-attempts <n>', 'attempts per job (a failed or crashed attempt counts; one drained by SIGTERM does not)', '10')
    .action(async (file: string, o: { store?: string; maxAttempts: string }) => {
      const { loadFleet, FleetError } = await import('./fleet-file.ts');
      const { submitCampaign, CampaignError } = await import('./campaign.ts');
      let url: string;
      let plan;
      let maxAttempts: number;
      try {
        url = checkStoreUrl(o.store ?? process.env.BLACKOUT_STORE);
        maxAttempts = positiveInt(o.maxAttempts, '--max-attempts');
        plan = loadFleet(file);
      } catch (e) {
        if (!(e instanceof FleetError) && !(e instanceof StoreError)) throw e;
        return fail(program, e.message);
      }
      try {
        const r = await submitCampaign(url, plan, { maxAttempts, log: (l) => process.stderr.write(pcErr.dim(`${l}\n`)) });
        process.stdout.write(`campaign ${plan.campaign}: ${r.jobs} job(s) submitted; follow with: blackout campaign status ${plan.campaign}\n`);
      } catch (e) {
        if (e instanceof CampaignError) return fail(program, e.message);
        if (e instanceof StoreError) return fail(program, e.message, 1);
        throw e;
      }
    });
  campaign
    .command('status')
    .description("a campaign's progress: done, running where, failed with why, waiting on a target")
    .argument('<name>', 'campaign name')
    .option('--store <url>', 'results store, postgres://… (or $BLACKOUT_STORE)')
    .option('--json', 'machine-readable')
    .action(async (name: string, o: { store?: string; json?: boolean }) => {
      const { campaignStatus, statusText, CampaignError } = await import('./campaign.ts');
      let url: string;
      try {
        url = checkStoreUrl(o.store ?? process.env.BLACKOUT_STORE);
      } catch (e) {
        return fail(program, (e as Error).message);
      }
      try {
        const s = await campaignStatus(url, name);
        process.stdout.write(o.json ? JSON.stringify(s, null, 2) + '\n' : statusText(name, s) + '\n');
      } catch (e) {
        if (e instanceof CampaignError) return fail(program, e.message);
        return fail(program, `results store: ${(e as Error).message}`, 1);
      }
    });

  program
    .command('worker')
    .description('take campaign jobs from the queue and run them (any number of workers on any number of machines); SIGTERM drains')
    .option('--store <url>', 'results store and queue, postgres://… (or $BLACKOUT_STORE)')
    .option('--concurrency <n>', 'jobs at once in this process', '1')
    .option(
      '--retry-after <duration>',
      "how long a worker may be silent (killed, machine lost, stalled) before its job is released to another worker. It bounds when the retry takes the job, not when it cuts: the retry first waits until the silent attempt's last cut is over (its restore stored, or the injector's own restore deadline + 1 s passed), so a shorter --retry-after never overlaps two cuts",
      '30s',
    )
    .option('--poll <duration>', 'idle polling of the queue', '1s')
    .option('--out-root <dir>', "where the jobs' run folders go", 'reports/campaigns')
    .action(async (o: { store?: string; concurrency: string; retryAfter: string; poll: string; outRoot: string }) => {
      let url: string;
      let concurrency: number;
      let retryAfterMs: number;
      let pollMs: number;
      try {
        url = checkStoreUrl(o.store ?? process.env.BLACKOUT_STORE);
        concurrency = positiveInt(o.concurrency, '--concurrency');
        retryAfterMs = parseDurationOpt(o.retryAfter, '--retry-after');
        pollMs = parseDurationOpt(o.poll, '--poll');
      } catch (e) {
        return fail(program, (e as Error).message);
      }
      const { FleetWorker } = await import('./worker.ts');
      const log = (l: string) => process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${l}\n`);
      const w = new FleetWorker({ url, concurrency, retryAfterMs, pollMs, outRoot: o.outRoot, log });
      let stopping: Promise<void> | null = null;
      const onSignal = (sig: string) => {
        if (stopping) return log(`${sig} again: still draining (the trial under way finishes and restores)`);
        log(`${sig}: draining — the trial under way finishes and restores, then its job is released`);
        stopping = w.stop();
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
      try {
        await w.start();
      } catch (e) {
        return fail(program, (e as Error).message, 1);
      }
      await w.promise;
      if (stopping) await stopping;
      log('worker stopped');
    });

  program
    .command('merge')
    .description(
      "one run folder and every report from the run folders of a sweep's shards (`run SUITE --shard i/n`), as if it had run unsharded; " +
        "or, from a fleet's shards (`run FLEET.yaml --shard i/n`), the fleet report over their jobs' run folders",
    )
    .argument('<dirs...>', "the shards' folders")
    .requiredOption('-o, --out <dir>', 'the merged run folder (a fleet: the folder of the fleet report and its runs/)')
    .action(async (dirs: string[], o: { out: string }) => {
      const { MANIFEST, FleetShardError } = await import('./fleet-shard.ts');
      const fleet = dirs.filter((d) => existsSync(join(d, MANIFEST)));
      if (fleet.length) {
        const other = dirs.find((d) => !fleet.includes(d));
        if (other) return fail(program, `${resolve(other)}: no ${MANIFEST}, but ${resolve(fleet[0]!)} is a fleet shard's folder: merge the shards of one fleet`);
        const { mergeFleetShards } = await import('./fleet-merge.ts');
        try {
          const r = await mergeFleetShards(dirs, o.out);
          const jobs = r.report.applications.reduce((n, a) => n + a.jobs.length, 0);
          process.stdout.write(`${r.md}\nmerged ${dirs.length} shard(s) of ${r.report.shards!.total}: ${jobs - r.notRun.length} of ${jobs} job(s) ran\n${r.files.join('\n')}\n`);
          // the report is written either way; the exit code says whether it is whole
          if (r.missingShards.length) fail(program, `shard(s) ${r.missingShards.join(', ')} of ${r.report.shards!.total} missing: the fleet report lacks their job(s) ${r.notRun.join(', ')}`, 1);
          else if (r.notRun.length || r.incomplete.length)
            fail(program, `job(s) not run or not finished: ${[...r.notRun, ...r.incomplete.map((j) => `${j} (interrupted)`)].join(', ')}: a shard was stopped before it finished`, 1);
        } catch (e) {
          if (!(e instanceof MergeError) && !(e instanceof FleetShardError)) throw e;
          fail(program, e.message);
        }
        return;
      }
      try {
        const r = mergeRunDirs(dirs, o.out);
        const { analysis, files } = await writeReports(r.outDir);
        process.stdout.write(`${matrixMarkdown(analysis)}\n\n${analysis.decision.verdict.headline}\n\nmerged ${r.runs} run(s), ${r.trials} trial(s)\n${files.join('\n')}\n`);
        if (r.missingShards.length) fail(program, `shard(s) ${r.missingShards.join(', ')} of ${dirs.length + r.missingShards.length} missing: the merged report lacks their trials`, 1);
      } catch (e) {
        if (!(e instanceof MergeError)) throw e;
        fail(program, e.message);
      }
    });

  program
    .command('import')
    .description('add a run folder to the results store (a run made without --store, or one whose database went away); resumes after what is stored')
    .argument('<dirs...>', 'run folders')
    .option('--store <url>', 'results store, postgres://… (or $BLACKOUT_STORE)')
    .action(async (dirs: string[], o: { store?: string }) => {
      let url: string;
      try {
        url = checkStoreUrl(o.store ?? process.env.BLACKOUT_STORE);
      } catch (e) {
        return fail(program, (e as Error).message);
      }
      for (const d of dirs) {
        if (!existsSync(join(d, 'events.jsonl'))) return fail(program, `${join(resolve(d), 'events.jsonl')}: not found`);
      }
      const { importRunDir } = await import('../store/sink.ts');
      const { storeHistory, withStore } = await import('../store/allure-history.ts');
      for (const d of dirs) {
        try {
          const log = (l: string) => process.stderr.write(pcErr.dim(`${l}\n`));
          const s = await importRunDir(url, resolve(d), log);
          if (s.notStored || s.refused) return fail(program, `${d}: ${s.notStored + s.refused} event(s) could not be stored`, 1);
          // its Allure history too, for the next run of its suite on whichever host (when its reports were written)
          const history = await withStore(url, 'Allure history', log, (db) => storeHistory(db, resolve(d)));
          process.stdout.write(`${d}: run ${s.runId}, ${s.stored} event(s) in the store${history ? ', with its Allure history' : ''}\n`);
        } catch (e) {
          if (!(e instanceof StoreError)) throw e;
          return fail(program, e.message, 1);
        }
      }
    });
}
