/**
 * A fleet's static shards, with no database: `blackout run FLEET.yaml --shard i/n --out DIR` runs this
 * shard's share of the fleet's jobs (planned by fleet-file.ts as a campaign's are), one after another in
 * plan order, each into DIR/runs/<job>/ as an ordinary run folder with its own reports; `blackout merge`
 * of the shards' folders then writes the fleet report (fleet-merge.ts).
 *
 * The share is made of whole queue lanes: the plan's distinct lanes, in the order they first appear in
 * the plan, dealt round robin onto the shards. A target's jobs share one lane, and with `limits` so do
 * the targets of a hypervisor's (or switch's) lane, so no target is cut from two shards at once and a
 * lane's limit holds across the shards, which a split by job could not promise. As shard.ts's split of
 * a sweep, it is a pure function of the fleet file: every CI runner or Indexed Job pod plans the same
 * fleet and takes its own part, with no coordination.
 *
 * DIR/fleet-shard.json (the manifest) names the whole plan, which shard runs which job, and which jobs
 * this shard ran with their exit codes. It is rewritten after every job, so a shard killed half-way
 * still tells merge what it did and what is missing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { extname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { EXIT, worstExit } from '../run/exit-codes.ts';
import type { Shard } from './shard.ts';
import { jobKey, type CampaignJob, type CampaignPlan } from './fleet-file.ts';
import { fileNamePart } from '../core/format.ts';

export const MANIFEST = 'fleet-shard.json';

/** target/suite, as fleet-file.ts makes it (so a job's folder, runs/target_suite, is always inside the shard's) */
const jobId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\/[a-z0-9-]+$/, 'expected target/suite');

const manifestJob = z.object({
  jobId,
  target: z.string(),
  application: z.string(),
  suite: z.string(),
  lane: z.string(),
  plannedTrials: z.number().int(),
  /** the shard that runs it (1-based) */
  shard: z.number().int(),
  /** its run folder, relative to the shard's folder */
  dir: z.string(),
});

const manifestRun = z.object({
  jobId,
  /** null while the job runs (and for good when the shard died during it) */
  exitCode: z.number().int().nullable(),
  reason: z.string().nullable(),
  headline: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
});

const manifestSchema = z.object({
  kind: z.literal('blackout-fleet-shard'),
  version: z.literal(1),
  campaign: z.string(),
  shard: z.object({ index: z.number().int().min(1), total: z.number().int().min(1) }),
  /** the plan's digest (planDigest): the shards of one merge must share it */
  plan: z.string(),
  jobs: z.array(manifestJob),
  ran: z.array(manifestRun),
  host: z.string(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  /** the shard's exit code (the worst of its jobs'); null while it runs */
  exitCode: z.number().int().nullable(),
});
export type FleetShardManifest = z.infer<typeof manifestSchema>;
export type ManifestJob = z.infer<typeof manifestJob>;
export type ManifestRun = z.infer<typeof manifestRun>;

export class FleetShardError extends Error {}

/**
 * Whether a run's file is a fleet file (it has `campaign:` and `targets:`) rather than a suite. Only
 * YAML is looked at; a file that does not parse is left to the suite loader, which names the error.
 */
export function isFleetFile(path: string): boolean {
  if (!['.yaml', '.yml'].includes(extname(path)) || !existsSync(path)) return false;
  try {
    const raw: unknown = parseYaml(readFileSync(path, 'utf8'), { uniqueKeys: true, maxAliasCount: 100 });
    return !!raw && typeof raw === 'object' && !Array.isArray(raw) && 'campaign' in raw && 'targets' in raw;
  } catch {
    return false;
  }
}

/** lane → the shard (1-based) that runs it: the plan's lanes in order of first appearance, round robin */
export function laneShards(plan: CampaignPlan, total: number): Map<string, number> {
  const lanes = [...new Set(plan.jobs.map((j) => j.lane))];
  return new Map(lanes.map((lane, i) => [lane, (i % total) + 1]));
}

/** The jobs of a shard, in plan order. */
export function shardJobs(plan: CampaignPlan, shard: Shard): CampaignJob[] {
  const of = laneShards(plan, shard.total);
  return plan.jobs.filter((j) => of.get(j.lane) === shard.index);
}

/**
 * The plan's digest: every job with its filled-in suite. Shards of one merge must have planned the same
 * fleet (a fleet file edited between two shards' runs would deal its lanes differently).
 */
export function planDigest(plan: CampaignPlan): string {
  return createHash('sha256')
    .update(JSON.stringify([plan.campaign, plan.limits ?? null, plan.jobs]))
    .digest('hex');
}

/** A job's run folder, relative to the shard's (the same name the store's fleet report gives it). */
export function jobDir(jobId: string): string {
  return join('runs', fileNamePart(jobId));
}

/** The manifest in a folder, null when there is none; a manifest that does not read is an error naming the field. */
export function readManifest(dir: string): FleetShardManifest | null {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FleetShardError(`${path}: ${(e as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new FleetShardError(`${path}: ${i.path.join('.') || '(file)'}: ${i.message}`);
  }
  return parsed.data;
}

/** written whole or not at all: a shard killed mid-write leaves the previous manifest */
function writeManifest(dir: string, m: FleetShardManifest): void {
  const path = join(dir, MANIFEST);
  writeFileSync(`${path}.tmp`, JSON.stringify(m, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
}

export interface JobOutcome {
  exitCode: number;
  reason: string;
  /** the verdict's headline from the job's own reports */
  headline: string | null;
}

export interface FleetShardOptions {
  outDir: string;
  log: (line: string) => void;
  /** aborting it is Ctrl-C: the job under way restores and writes its reports, no further job starts */
  signal?: AbortSignal;
  /** runs one job into its run folder and writes its reports (fleet/commands.ts: as `blackout run` does) */
  runJob: (job: CampaignJob, dir: string, meta: { campaign: string; id: string; attempt: number; target: string; worker: string }) => Promise<JobOutcome>;
}

/** Runs this shard's jobs one after another; returns the manifest as finally written. */
export async function runFleetShard(plan: CampaignPlan, shard: Shard, o: FleetShardOptions): Promise<FleetShardManifest> {
  const of = laneShards(plan, shard.total);
  const mine = shardJobs(plan, shard);
  const worker = `${hostname()}:${process.pid}`;
  const m: FleetShardManifest = {
    kind: 'blackout-fleet-shard',
    version: 1,
    campaign: plan.campaign,
    shard,
    plan: planDigest(plan),
    jobs: plan.jobs.map((j) => ({
      jobId: j.jobId,
      target: j.target,
      application: j.application,
      suite: j.suiteName,
      lane: j.lane,
      plannedTrials: j.plannedTrials,
      shard: of.get(j.lane)!,
      dir: jobDir(j.jobId),
    })),
    ran: [],
    host: hostname(),
    startedAt: new Date().toISOString(),
    endedAt: null,
    exitCode: null,
  };
  mkdirSync(o.outDir, { recursive: true });
  writeManifest(o.outDir, m);
  const tag = `[shard ${shard.index}/${shard.total}]`;
  const lanes = new Set(mine.map((j) => j.lane));
  o.log(`${tag} campaign ${plan.campaign}: ${mine.length} of ${plan.jobs.length} job(s), ${lanes.size} lane(s): ${[...lanes].join(', ') || 'none'}`);
  for (const [k, job] of mine.entries()) {
    if (o.signal?.aborted) {
      o.log(
        `${tag} interrupted: ${mine.length - k} job(s) not run (${mine
          .slice(k)
          .map((j) => j.jobId)
          .join(', ')})`,
      );
      break;
    }
    const dir = jobDir(job.jobId);
    o.log(`${tag} job ${k + 1}/${mine.length} ${job.jobId} (lane ${job.lane}, ${job.plannedTrials} trial(s)) → ${dir}`);
    const run: ManifestRun = { jobId: job.jobId, exitCode: null, reason: null, headline: null, startedAt: new Date().toISOString(), endedAt: null };
    m.ran.push(run);
    writeManifest(o.outDir, m);
    let outcome: JobOutcome;
    try {
      outcome = await o.runJob(job, join(o.outDir, dir), { campaign: plan.campaign, id: jobKey(job), attempt: 1, target: job.target, worker });
    } catch (e) {
      // a harness error in one job: said and counted, and the other targets' jobs still run
      outcome = { exitCode: 1, reason: `harness error: ${(e as Error).message}`, headline: null };
    }
    Object.assign(run, { exitCode: outcome.exitCode, reason: outcome.reason, headline: outcome.headline, endedAt: new Date().toISOString() });
    writeManifest(o.outDir, m);
    o.log(`${tag} job ${k + 1}/${mine.length} ${job.jobId}: exit ${outcome.exitCode}${outcome.headline ? ` — ${outcome.headline}` : outcome.reason ? ` — ${outcome.reason}` : ''}`);
  }
  const codes = m.ran.map((r) => r.exitCode ?? EXIT.interrupted);
  // a job that did not run because the shard was stopped makes the shard interrupted
  if (m.ran.length < mine.length) codes.push(EXIT.interrupted);
  m.exitCode = worstExit(codes);
  m.endedAt = new Date().toISOString();
  writeManifest(o.outDir, m);
  return m;
}
