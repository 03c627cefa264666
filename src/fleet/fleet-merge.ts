/**
 * `blackout merge DIR… --out OUT` of a fleet's shards (the folders of `blackout run FLEET.yaml
 * --shard i/n`, each with its fleet-shard.json, see fleet-shard.ts): checks they are shards of one
 * plan (the same campaign, fleet and shard count, each index once), copies each job's run folder to
 * OUT/runs/<job>/ and writes the fleet report from them (fleet-report.ts, without the history, which
 * needs the store). The jobs of a missing shard, and those a stopped shard did not reach, are listed
 * as not run, and named.
 *
 * The run folders are copied, not linked: OUT is what a CI job uploads or a pod leaves on its volume,
 * and it must not change when a shard's folder is removed or written again.
 */
import { cpSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeReports } from '../reporters/index.ts';
import { EXIT } from '../run/exit-codes.ts';
import { MergeError } from './merge.ts';
import { MANIFEST, jobDir, readManifest, type FleetShardManifest, type ManifestJob, type ManifestRun } from './fleet-shard.ts';
import { fleetApplications, readRunSummary, writeFleetFiles, type FleetJobInput, type FleetReport } from './fleet-report.ts';

export interface FleetMergeResult {
  outDir: string;
  report: FleetReport;
  files: string[];
  md: string;
  missingShards: number[];
  /** jobs that did not run: their shard is missing, or it stopped before them */
  notRun: string[];
  /** jobs interrupted, or whose shard died during them */
  incomplete: string[];
}

/** what a job's run came to, in words (shown when its run gave no verdict) */
function stateOf(run: ManifestRun): string {
  if (run.exitCode === null) return 'incomplete: its shard stopped during it';
  if (run.exitCode === EXIT.ok || run.exitCode === EXIT.expectationFailed) return 'done';
  if (run.exitCode === EXIT.interrupted) return 'interrupted';
  if (run.exitCode === EXIT.badInput) return `not run: ${run.reason ?? 'preflight failed'}`;
  return `exit ${run.exitCode}: ${run.reason ?? ''}`;
}

export async function mergeFleetShards(dirs: string[], outDir: string): Promise<FleetMergeResult> {
  if (dirs.length === 0) throw new MergeError('merge: give at least one shard folder');
  const shards: Array<{ dir: string; m: FleetShardManifest }> = dirs.map((d) => {
    const m = readManifest(d);
    if (!m) throw new MergeError(`${resolve(d)}: no ${MANIFEST}: not a fleet shard's folder (merge the folders of one fleet's shards)`);
    return { dir: resolve(d), m };
  });
  const first = shards[0]!;
  for (const s of shards) {
    if (s.m.campaign !== first.m.campaign) throw new MergeError(`${s.dir}: campaign "${s.m.campaign}" is not "${first.m.campaign}" (merge the shards of one fleet)`);
    if (s.m.shard.total !== first.m.shard.total) throw new MergeError(`${s.dir}: shard count ${s.m.shard.total} differs from ${first.dir}'s ${first.m.shard.total}`);
    if (s.m.plan !== first.m.plan)
      throw new MergeError(`${s.dir}: its fleet plan differs from ${first.dir}'s (another fleet file, or the file changed between the shards' runs): merge the shards of one plan`);
  }
  const byIndex = new Map<number, { dir: string; m: FleetShardManifest }>();
  for (const s of shards) {
    const prev = byIndex.get(s.m.shard.index);
    if (prev) throw new MergeError(`${s.dir}: shard ${s.m.shard.index}/${s.m.shard.total} is also ${prev.dir}`);
    byIndex.set(s.m.shard.index, s);
  }
  const total = first.m.shard.total;
  const missingShards = Array.from({ length: total }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  // every shard ran only its own jobs (a manifest edited by hand, or written by another plan's shard), and
  // each job's folder is the one its id gives: nothing is copied from or to outside the shard and OUT
  for (const s of shards) {
    for (const j of s.m.jobs) if (j.dir !== jobDir(j.jobId)) throw new MergeError(`${s.dir}: job ${j.jobId}: its folder is ${jobDir(j.jobId)}, not ${j.dir}`);
    for (const r of s.m.ran) {
      const j = s.m.jobs.find((x) => x.jobId === r.jobId);
      if (!j || j.shard !== s.m.shard.index) throw new MergeError(`${s.dir}: job ${r.jobId} is not one of shard ${s.m.shard.index}'s jobs in the plan`);
    }
  }
  const out = resolve(outDir);
  for (const f of ['fleet-report.json', MANIFEST, 'runs', 'events.jsonl']) if (existsSync(join(out, f))) throw new MergeError(`--out ${out}: that folder already holds ${f}; choose another folder`);

  const inputs: Array<FleetJobInput & { order: number }> = [];
  const notRun: string[] = [];
  const incomplete: string[] = [];
  for (const [order, job] of first.m.jobs.entries()) {
    const s = byIndex.get(job.shard);
    const base = { job: job.jobId, target: job.target, application: job.application, suite: job.suite, plannedTrials: job.plannedTrials, shard: job.shard, order };
    const run = s?.m.ran.find((r) => r.jobId === job.jobId);
    if (!s || !run) {
      notRun.push(job.jobId);
      inputs.push({ ...base, state: s ? `not run: shard ${job.shard} stopped before it` : `not run: shard ${job.shard} missing`, attempts: 0, trials: 0, summary: null, report: null });
      continue;
    }
    inputs.push({ ...base, ...(await copyRun(s.dir, out, job, run)) });
    if (run.exitCode === null || run.exitCode === EXIT.interrupted) incomplete.push(job.jobId);
  }
  // by application (as the store's report orders them), each application's jobs in plan order
  inputs.sort((a, b) => (a.application < b.application ? -1 : a.application > b.application ? 1 : a.order - b.order));
  const report: FleetReport = {
    campaign: first.m.campaign,
    source: 'shards',
    shards: { total, merged: [...byIndex.keys()].sort((a, b) => a - b), missing: missingShards },
    applications: fleetApplications(inputs),
  };
  const { md, files } = writeFleetFiles(out, report);
  return { outDir: out, report, files, md, missingShards, notRun, incomplete };
}

/** the job's run folder into OUT (its reports written there when the shard died before writing them) */
async function copyRun(shardDir: string, out: string, job: ManifestJob, run: ManifestRun): Promise<Pick<FleetJobInput, 'state' | 'attempts' | 'trials' | 'summary' | 'report'>> {
  const src = join(shardDir, job.dir);
  if (!existsSync(join(src, 'events.jsonl'))) return { state: `${stateOf(run)} (no run folder: ${src})`, attempts: 1, trials: 0, summary: null, report: null };
  const dst = join(out, job.dir);
  cpSync(src, dst, { recursive: true });
  if (!existsSync(join(dst, 'summary.json'))) await writeReports(dst);
  const summary = readRunSummary(dst);
  return {
    state: stateOf(run),
    attempts: 1,
    trials: (summary?.trials ?? []).filter((t) => t.complete !== false).length,
    summary,
    report: join(job.dir, 'report.html'),
  };
}
