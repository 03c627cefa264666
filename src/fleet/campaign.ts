/**
 * Campaigns on graphile-worker: `campaign submit` turns a fleet file into one
 * queue job per target × suite, each in its target's lane (graphile-worker's
 * queue_name: the jobs of one named queue run strictly one at a time, across
 * every worker, while other queues go on; see fleet-file.ts for the lanes).
 * The campaign and its jobs are also recorded in the results store so that
 * `campaign status` and the fleet report can say what ran where.
 */
import { hostname } from 'node:os';
import pg from 'pg';
import { makeWorkerUtils, Logger } from 'graphile-worker';
import { connectStore } from '../store/db.ts';
import { SCHEMA } from '../store/migrations.ts';
import { jobKey, type CampaignPlan } from './fleet-file.ts';

export const TASK = 'blackout-campaign-job';

export interface JobPayload {
  campaign: string;
  jobId: string;
  target: string;
  application: string;
  suite: Record<string, unknown>;
  plannedTrials: number;
}

/** graphile-worker's own logging, routed to ours (warnings and errors only) */
export function queueLogger(log: (l: string) => void): Logger {
  return new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') log(`queue ${level}: ${message}`);
  });
}

export class CampaignError extends Error {}

export async function submitCampaign(url: string, plan: CampaignPlan, opts: { maxAttempts: number; log: (l: string) => void }): Promise<{ jobs: number }> {
  const client = await connectStore(url);
  const utils = await makeWorkerUtils({ connectionString: url, logger: queueLogger(opts.log) });
  try {
    await utils.migrate();
    await client.query('begin');
    const ins = await client.query(`insert into ${SCHEMA}.campaigns (name, fleet) values ($1, $2) on conflict do nothing`, [
      plan.campaign,
      JSON.stringify({ limits: plan.limits ?? null, jobs: plan.jobs.length }),
    ]);
    if (ins.rowCount === 0) {
      await client.query('rollback');
      throw new CampaignError(`campaign: "${plan.campaign}" was already submitted (choose another campaign name)`);
    }
    for (const j of plan.jobs) {
      await client.query(`insert into ${SCHEMA}.campaign_jobs (job_id, campaign, target, suite_name, application, planned_trials) values ($1,$2,$3,$4,$5,$6)`, [
        jobKey(j),
        j.campaign,
        j.target,
        j.suiteName,
        j.application,
        j.plannedTrials,
      ]);
    }
    await client.query(`insert into ${SCHEMA}.campaign_log (campaign, message, worker) values ($1, $2, $3)`, [
      plan.campaign,
      `submitted: ${plan.jobs.length} job(s) over ${new Set(plan.jobs.map((j) => j.target)).size} target(s)`,
      `${hostname()}:${process.pid}`,
    ]);
    // the queue's jobs in the same transaction: a campaign is either submitted whole or not at all
    for (const j of plan.jobs) {
      const payload: JobPayload = { campaign: j.campaign, jobId: jobKey(j), target: j.target, application: j.application, suite: j.suite, plannedTrials: j.plannedTrials };
      const { rows } = await client.query<{ id: string }>(`select id from graphile_worker.add_job($1, $2::json, queue_name => $3, max_attempts => $4, job_key => $5)`, [
        TASK,
        JSON.stringify(payload),
        j.lane,
        opts.maxAttempts,
        jobKey(j),
      ]);
      await client.query(`update ${SCHEMA}.campaign_jobs set queue_job_id = $2 where job_id = $1`, [jobKey(j), rows[0]!.id]);
    }
    await client.query('commit');
  } catch (e) {
    await client.query('rollback').catch(() => {});
    throw e;
  } finally {
    await utils.release();
    await client.end();
  }
  return { jobs: plan.jobs.length };
}

export interface JobStatus {
  jobId: string;
  target: string;
  application: string;
  suite: string;
  state: string;
  worker: string | null;
  attempt: number;
  trialsDone: number;
  plannedTrials: number;
  error: string | null;
  queue: string | null;
  /** for a waiting job: what it waits on */
  waitingOn: string | null;
}

export async function campaignStatus(url: string, campaign: string): Promise<{ jobs: JobStatus[]; log: Array<{ at: Date; worker: string | null; job_id: string | null; message: string }> }> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    const exists = await c.query(`select 1 from ${SCHEMA}.campaigns where name = $1`, [campaign]).catch(() => ({ rowCount: 0 }));
    if (!exists.rowCount) throw new CampaignError(`--campaign: no campaign "${campaign}" in the store`);
    const { rows } = await c.query(
      `select cj.job_id, cj.target, cj.application, cj.suite_name, cj.state, cj.worker, cj.attempt, cj.planned_trials, cj.error,
              (select count(*) from ${SCHEMA}.trials t where t.job_id = cj.job_id)::int as trials_done,
              (select h.host || ':' || h.pid from ${SCHEMA}.worker_heartbeats h where h.job_id = cj.job_id order by h.last_seen desc limit 1) as holder,
              q.queue_name, q.locked_by, q.attempts as queue_attempts, q.max_attempts, q.last_error, q.run_at,
              (select string_agg(distinct o.key, ', ') from graphile_worker.jobs o
                 where o.queue_name = q.queue_name and o.locked_at is not null and o.id <> q.id) as blocking
         from ${SCHEMA}.campaign_jobs cj left join graphile_worker.jobs q on q.id::text = cj.queue_job_id
        where cj.campaign = $1 order by cj.job_id`,
      [campaign],
    );
    const jobs: JobStatus[] = rows.map((r) => {
      // graphile-worker keeps a job that used its last attempt (unlocked, never due again): that is a failure, not a retry
      const state =
        r.state === 'done' || !r.queue_name
          ? r.state
          : r.locked_by
            ? 'running'
            : r.queue_attempts >= r.max_attempts
              ? 'failed'
              : r.queue_attempts > 0
                ? `retry at ${new Date(r.run_at).toISOString().slice(11, 19)}`
                : 'waiting';
      return {
        jobId: r.job_id.slice(campaign.length + 1),
        target: r.target,
        application: r.application,
        suite: r.suite_name,
        state,
        // where it runs: the worker whose heartbeat holds it; a waiting job runs nowhere (yet)
        worker: state === 'running' ? (r.holder ?? r.worker) : state === 'waiting' ? null : r.worker,
        attempt: r.attempt,
        trialsDone: r.trials_done,
        plannedTrials: r.planned_trials,
        error: r.error ?? r.last_error ?? null,
        queue: r.queue_name,
        waitingOn:
          !r.locked_by && r.blocking
            ? `lane ${r.queue_name} busy with ${String(r.blocking)
                .split(', ')
                .map((k: string) => k.slice(campaign.length + 1))
                .join(', ')}`
            : null,
      };
    });
    const log = (await c.query(`select at, worker, job_id, message from ${SCHEMA}.campaign_log where campaign = $1 order by id`, [campaign])).rows;
    return { jobs, log };
  } finally {
    await c.end();
  }
}

export function statusText(campaign: string, s: Awaited<ReturnType<typeof campaignStatus>>): string {
  const count = (p: (j: JobStatus) => boolean) => s.jobs.filter(p).length;
  const lines = [
    `campaign ${campaign}: ${s.jobs.length} job(s) — ${count((j) => j.state === 'done')} done, ${count((j) => j.state === 'running')} running, ${count((j) => j.state === 'waiting')} waiting, ${count((j) => j.state.startsWith('retry'))} retrying, ${count((j) => j.state === 'failed')} failed`,
    '',
    '| job | state | where | trials | note |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const j of s.jobs) {
    lines.push(
      `| ${j.jobId} | ${j.state} | ${j.worker ?? ''} | ${j.trialsDone}/${j.plannedTrials} | ${(j.state === 'done' ? '' : (j.waitingOn ?? j.error ?? '')).replace(/\|/g, '/').slice(0, 160)} |`,
    );
  }
  const tail = s.log.slice(-12);
  if (tail.length)
    lines.push('', 'log:', ...tail.map((l) => `  ${new Date(l.at).toISOString().slice(11, 19)} ${l.worker ?? ''} ${l.job_id ? `${l.job_id.slice(campaign.length + 1)}: ` : ''}${l.message}`));
  return lines.join('\n');
}
