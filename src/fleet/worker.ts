/**
 * `blackout worker`: takes campaign jobs from the graphile-worker queue and
 * runs each as a suite run (in this process; the run folder under --out-root,
 * the events streamed into the store).
 *
 *  - One blackout per target, N per hypervisor: the queue's lanes (named
 *    queues run one job at a time), see fleet-file.ts.
 *  - kill -9: the target is restored by the injector's own kernel-side
 *    deadline, as for any run. graphile-worker itself only frees a dead
 *    worker's lock after 4 hours, so every worker heartbeats the jobs it holds
 *    and releases the locks of a worker silent for --retry-after with
 *    graphile-worker's forceUnlockWorkers; another worker then takes the job
 *    and runs the planned trials not yet stored (a trial counts when its
 *    trial-end reached the store; the store's unique (job, trial) index makes
 *    a second count impossible). --retry-after can be shorter than a blackout,
 *    so the retry first waits until the earlier attempt's last cut is over:
 *    its restore is in the store, or its deadline (+ 1 s) has passed.
 *  - Fencing: an attempt holds its job while its heartbeat row (worker_id,
 *    job_id) exists; a sweep that releases the job deletes that row first. A
 *    worker that stalled past --retry-after (a paused VM, SIGSTOP, a long GC)
 *    finds the row gone at its next heartbeat: it stops that run at once (the
 *    run's abort restores the target) and nothing of the attempt counts any
 *    more: the sink stores a trial only in a transaction that finds the row
 *    (locked against the sweep), and the job's state is written only by the
 *    row's holder. A worker that cannot heartbeat for half of --retry-after
 *    stops its own blackout first, so a database outage never lets two
 *    workers cut one target.
 *  - SIGTERM drains: the trial under way finishes and restores, then the job
 *    goes back to the queue without spending an attempt (release()) and is
 *    resumed elsewhere after the trials already done; graphile-worker's
 *    graceful shutdown waits for it.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { run, makeWorkerUtils, type Job, type Task, type Runner, type WorkerUtils } from 'graphile-worker';
import { runSuite, EXIT } from '../run/runner.ts';
import { validateSuite } from '../run/suite.ts';
import { writeReports } from '../reporters/index.ts';
import { storeHistory, storedHistory } from '../store/allure-history.ts';
import { RunStoreSink } from '../store/sink.ts';
import { connectStore } from '../store/db.ts';
import { SCHEMA } from '../store/migrations.ts';
import { TASK, queueLogger, type JobPayload } from './campaign.ts';
import { fileNamePart } from '../core/format.ts';

/**
 * A retry starts this long after the deadline of a cut an earlier attempt left in force. The deadline is on that
 * attempt's own host clock (runs.wall_ms is its wall origin), so the margin covers ordinary clock skew between two
 * hosts and the injector's own lateness (the lab's kernel timeout is checked within a millisecond or so).
 */
const CUT_DEADLINE_MARGIN_MS = 1000;
/** how often a retry waiting for an earlier attempt's cut asks the store whether that cut was restored */
const CUT_POLL_MS = 500;
/**
 * How long a job's run waits for its target's (or lab's) lease on this host. The lanes keep one job per target at a
 * time across the fleet, so a lease held here is a run winding down: mostly an earlier attempt of the same job that
 * is still restoring and closing its sessions. Waiting for it costs no attempt; failing preflight would.
 */
const LEASE_WAIT_MS = 30_000;

interface ActiveAttempt {
  abort: AbortController;
  lastBeat: number;
  jobId: string;
  campaign: string;
  /** why the job was taken away from this attempt, once a heartbeat found its row gone */
  takenAway: string | null;
}

export interface WorkerOptions {
  url: string;
  concurrency: number;
  /** a worker silent this long has its jobs released to others */
  retryAfterMs: number;
  outRoot: string;
  /** idle polling of the queue (new jobs also arrive by LISTEN/NOTIFY) */
  pollMs: number;
  log: (line: string) => void;
  /** the run itself (the benchmark's simulated fleet swaps in stub trials) */
  runSuiteImpl?: typeof runSuite;
}

export class FleetWorker {
  private runner: Runner | null = null;
  private utils: WorkerUtils | null = null;
  private pool: pg.Pool;
  private drain = new AbortController();
  /** the attempts running here, by graphile-worker's worker id (the key of their heartbeat rows) */
  private active = new Map<string, ActiveAttempt>();
  private timers: NodeJS.Timeout[] = [];
  readonly name = `${hostname()}:${process.pid}`;

  constructor(private readonly o: WorkerOptions) {
    this.o = { ...o, outRoot: resolve(o.outRoot) };
    this.pool = new pg.Pool({ connectionString: o.url, max: Math.max(4, o.concurrency + 2), connectionTimeoutMillis: 5000 });
    this.pool.on('error', () => {});
  }

  private async note(campaign: string, jobId: string | null, message: string): Promise<void> {
    this.o.log(`${jobId ? `${jobId}: ` : ''}${message}`);
    await this.pool.query(`insert into ${SCHEMA}.campaign_log (campaign, job_id, worker, message) values ($1,$2,$3,$4)`, [campaign, jobId, this.name, message]).catch(() => {});
  }

  async start(): Promise<void> {
    (await connectStore(this.o.url)).end();
    this.utils = await makeWorkerUtils({ connectionString: this.o.url, logger: queueLogger(this.o.log) });
    await this.utils.migrate();
    const task: Task = (payload, helpers) => this.runJob(payload as JobPayload, helpers.job, helpers.job.locked_by ?? 'unknown');
    this.runner = await run({
      connectionString: this.o.url,
      concurrency: this.o.concurrency,
      noHandleSignals: true,
      pollInterval: this.o.pollMs,
      taskList: { [TASK]: task },
      logger: queueLogger(this.o.log),
    });
    const beatEvery = Math.max(200, Math.min(2000, this.o.retryAfterMs / 4));
    this.timers.push(setInterval(() => void this.heartbeat(), beatEvery));
    this.timers.push(setInterval(() => void this.sweep(), beatEvery));
    this.o.log(`worker ${this.name}: concurrency ${this.o.concurrency}, a silent worker's jobs released after ${this.o.retryAfterMs / 1000} s`);
  }

  /** Resolves when the runner stops (after drain()). */
  get promise(): Promise<void> {
    return this.runner?.promise ?? Promise.resolve();
  }

  private async heartbeat(): Promise<void> {
    const held = [...this.active.entries()];
    if (!held.length) return;
    let beating: Set<string>;
    try {
      const { rows } = await this.pool.query<{ worker_id: string }>(
        `update ${SCHEMA}.worker_heartbeats h set last_seen = now() from unnest($1::text[], $2::text[]) as a(worker_id, job_id)
          where h.worker_id = a.worker_id and h.job_id = a.job_id returning h.worker_id`,
        [held.map(([id]) => id), held.map(([, a]) => a.jobId)],
      );
      beating = new Set(rows.map((r) => r.worker_id));
    } catch {
      // fencing: past half of --retry-after another worker may soon be given this job
      for (const [id, a] of this.active) {
        if (Date.now() - a.lastBeat > this.o.retryAfterMs / 2 && !a.abort.signal.aborted) {
          this.o.log(
            `${a.jobId}: no heartbeat for ${((Date.now() - a.lastBeat) / 1000).toFixed(1)} s (store unreachable): stopping this blackout before the job can be given to another worker (${id})`,
          );
          a.abort.abort(new Error('heartbeat lost'));
        }
      }
      return;
    }
    const now = Date.now();
    for (const [id, a] of held) {
      if (beating.has(id)) {
        a.lastBeat = now;
        continue;
      }
      // the row is made before an attempt enters `active` and deleted after it left: an attempt still
      // here whose row is gone had its job released by a sweep (this worker was silent too long)
      if (this.active.get(id) !== a || a.takenAway) continue;
      a.takenAway = `taken away: this worker was silent for ${((now - a.lastBeat) / 1000).toFixed(1)} s (longer than --retry-after; stalled or cut off) and its job was released to another worker; this attempt stops its blackout now and nothing of it counts`;
      a.abort.abort(new Error(a.takenAway));
      await this.note(a.campaign, a.jobId, a.takenAway);
    }
  }

  /** release the jobs of workers that stopped heartbeating (killed, machine gone) */
  private async sweep(): Promise<void> {
    if (!this.utils) return;
    try {
      const { rows } = await this.pool.query<{ worker_id: string; host: string; pid: number; campaign: string | null; job_id: string | null }>(
        `delete from ${SCHEMA}.worker_heartbeats h where h.last_seen < now() - ($1::float8 * interval '1 millisecond') returning worker_id, host, pid, campaign, job_id`,
        [this.o.retryAfterMs],
      );
      if (!rows.length) return;
      await this.utils.forceUnlockWorkers(rows.map((r) => r.worker_id));
      for (const r of rows) {
        await this.note(
          r.campaign ?? '',
          r.job_id,
          `heal: worker ${r.host}:${r.pid} (${r.worker_id}) silent for ${this.o.retryAfterMs / 1000} s; its job is released for another worker (the injector's own deadline restored the target)`,
        );
      }
    } catch {
      /* the store is away: try at the next tick */
    }
  }

  private async runJob(p: JobPayload, job: Job, workerId: string): Promise<void> {
    const { attempts: attempt, max_attempts: maxAttempts } = job;
    const abort = new AbortController();
    const me: ActiveAttempt = { abort, lastBeat: Date.now(), jobId: p.jobId, campaign: p.campaign, takenAway: null };
    try {
      await this.pool.query(
        `insert into ${SCHEMA}.worker_heartbeats (worker_id, host, pid, campaign, job_id) values ($1,$2,$3,$4,$5)
         on conflict (worker_id) do update set host = excluded.host, pid = excluded.pid, campaign = excluded.campaign, job_id = excluded.job_id, started_at = now(), last_seen = now()`,
        [workerId, hostname(), process.pid, p.campaign, p.jobId],
      );
      // only once its row exists: a heartbeat takes an attempt in `active` without a row as one whose job was taken away
      this.active.set(workerId, me);
      if (this.drain.signal.aborted) return await this.release(p, job, workerId, 'the worker was draining when it got the job');
      const done = new Set((await this.pool.query<{ trial: number }>(`select trial from ${SCHEMA}.trials where job_id = $1`, [p.jobId])).rows.map((r) => r.trial));
      await this.pool.query(`update ${SCHEMA}.campaign_jobs set state = 'running', worker = $2, attempt = $3, updated_at = now() where job_id = $1`, [p.jobId, this.name, attempt]);
      await this.note(
        p.campaign,
        p.jobId,
        `attempt ${attempt}/${maxAttempts} started${done.size ? `; ${done.size} of ${p.plannedTrials} trial(s) already stored by an earlier attempt, resuming after them` : ''}`,
      );
      if (done.size >= p.plannedTrials) {
        await this.finishJob(p, workerId, 'done', null);
        return;
      }
      if ((await this.awaitEarlierCut(p, abort.signal)) === 'drained') return await this.release(p, job, workerId, "drained while waiting for the previous attempt's cut");
      if (abort.signal.aborted) throw new Error(me.takenAway ?? `stopped before the run: ${(abort.signal.reason as Error).message}`);
      const suite = validateSuite(p.suite, `job ${p.jobId}`);
      const base = join(this.o.outRoot, fileNamePart(p.campaign), `${fileNamePart(p.jobId.slice(p.campaign.length + 1))}-attempt-${attempt}`);
      let outDir = base;
      for (let i = 2; existsSync(outDir); i++) outDir = `${base}-${i}`;
      mkdirSync(outDir, { recursive: true });
      const log = (l: string) => this.o.log(`${p.jobId}: ${l}`);
      const sink = new RunStoreSink(this.o.url, { outDir, log, closeWaitMs: 60_000, holds: { workerId, jobId: p.jobId } });
      // a run stopped mid-trial (its job taken away, the store unreachable) cut that trial short: it never counts
      abort.signal.addEventListener('abort', () => sink.stopCounting((abort.signal.reason as Error).message), { once: true });
      const healed: string[] = [];
      let result;
      try {
        result = await (this.o.runSuiteImpl ?? runSuite)(suite, {
          outDir,
          signal: abort.signal,
          drain: this.drain.signal,
          leaseWaitMs: LEASE_WAIT_MS,
          onEvent: (e, line) => {
            sink.onEvent(e, line);
            if (e.type === 'heal') healed.push(...e.actions);
          },
          log,
          only: (k) => k < p.plannedTrials && !done.has(k),
          job: { campaign: p.campaign, id: p.jobId, attempt, target: p.target, worker: this.name },
        });
      } finally {
        await sink.close();
      }
      if (me.takenAway) {
        // another worker runs the job now: this attempt neither reports, nor keeps its Allure history, nor marks the
        // job (graphile-worker's failJob only touches a job this worker still locks, so the throw changes nothing there)
        log(`the run folder ${outDir} keeps this attempt's events; nothing of it counts`);
        throw new Error(me.takenAway);
      }
      // the previous run of this suite against this target may be in an earlier campaign's folder (on
      // this host: the folders under --out-root) or have run on another host (the store keeps its
      // history): its Allure history goes on from the later of the two
      const history = await storedHistory(this.pool, outDir).catch((e: Error) => (log(`Allure history from the store: ${e.message}`), null));
      const { nextAllureHistory } = await writeReports(outDir, { historyFrom: subfolders(this.o.outRoot), history });
      await storeHistory(this.pool, outDir, nextAllureHistory).catch((e: Error) => log(`Allure history into the store: ${e.message}`));
      await this.pool.query(
        `update ${SCHEMA}.campaign_jobs set run_ids = array_append(run_ids, (select run_id from ${SCHEMA}.runs where out_dir = $2 limit 1)), out_dirs = array_append(out_dirs, $2) where job_id = $1`,
        [p.jobId, resolve(outDir)],
      );
      if (healed.length) await this.note(p.campaign, p.jobId, `heal before the first trial: ${healed.join('; ')}`);
      if (result.exitCode === EXIT.interrupted) {
        if (this.drain.signal.aborted) return await this.release(p, job, workerId, result.reason);
        // stopped by this worker's own fencing (the store unreachable): a failed attempt, retried after graphile-worker's backoff
        await this.finishJob(p, workerId, 'waiting', result.reason);
        throw new Error(`stopped: ${result.reason}`);
      }
      if (result.exitCode === EXIT.badInput) {
        await this.finishJob(p, workerId, 'failed', result.reason);
        throw new Error(result.reason);
      }
      const stored = Number((await this.pool.query<{ n: string }>(`select count(*) n from ${SCHEMA}.trials where job_id = $1`, [p.jobId])).rows[0]!.n);
      if (stored < p.plannedTrials) {
        await this.finishJob(p, workerId, 'failed', `${stored} of ${p.plannedTrials} trial(s) in the store`);
        throw new Error(`${p.plannedTrials - stored} trial(s) not stored (the store was unreachable?); the job is retried`);
      }
      await this.finishJob(p, workerId, 'done', null);
    } finally {
      if (this.active.get(workerId) === me) this.active.delete(workerId);
      await this.pool.query(`delete from ${SCHEMA}.worker_heartbeats where worker_id = $1 and job_id = $2`, [workerId, p.jobId]).catch(() => {});
    }
  }

  /**
   * An earlier attempt of this job (killed, stalled, on this host or another) may have left a cut in force: its
   * injector restores it by the cut's deadline on its own, and that can be later than --retry-after. Nothing of this
   * attempt runs until that cut is over: its restore is in the store (an attempt that lost its job restores when it
   * wakes), or its deadline + CUT_DEADLINE_MARGIN_MS has passed. A cut event carries its deadline on the run clock;
   * the run's wall_ms is that clock's wall origin.
   */
  private async awaitEarlierCut(p: JobPayload, stop: AbortSignal): Promise<'go' | 'drained' | 'stopped'> {
    let waitingFor: string | null = null;
    const either = AbortSignal.any([this.drain.signal, stop]);
    for (;;) {
      const { rows } = await this.pool.query<{ run_id: string; trial: number; deadline_wall: number }>(
        `select r.run_id, c.trial, r.wall_ms + (c.body->>'deadline')::float8 as deadline_wall
           from ${SCHEMA}.runs r join ${SCHEMA}.events c on c.run_key = r.run_key and c.type = 'cut'
          where r.job_id = $1 and c.body->>'deadline' is not null
            and not exists (select 1 from ${SCHEMA}.events x where x.run_key = c.run_key and x.type = 'restore' and x.seq > c.seq)
          order by deadline_wall desc limit 1`,
        [p.jobId],
      );
      const cut = rows[0];
      const until = cut ? cut.deadline_wall + CUT_DEADLINE_MARGIN_MS : 0;
      if (!cut || Date.now() >= until) {
        if (waitingFor) await this.note(p.campaign, p.jobId, `the previous attempt's cut is over (${cut ? 'its deadline passed' : 'its restore is stored'}); going on`);
        return 'go';
      }
      if (waitingFor !== `${cut.run_id}/${cut.trial}`) {
        waitingFor = `${cut.run_id}/${cut.trial}`;
        await this.note(
          p.campaign,
          p.jobId,
          `waiting for the previous attempt's cut deadline: run ${cut.run_id} cut the target in trial ${cut.trial + 1} and stored no restore; its injector restores it by ${new Date(cut.deadline_wall).toISOString().slice(11, 23)} at the latest, and this attempt starts ${CUT_DEADLINE_MARGIN_MS / 1000} s after that (or once that restore is stored)`,
        );
      }
      await sleep(Math.min(CUT_POLL_MS, until - Date.now()), undefined, { signal: either }).catch(() => {});
      if (this.drain.signal.aborted) return 'drained';
      if (stop.aborted) return 'stopped';
    }
  }

  /**
   * The job's state, written only while this attempt holds the job: its heartbeat row is locked in the same statement
   * (a sweep's delete waits for it), so an attempt whose job was released never marks it done, failed or waiting.
   */
  private async finishJob(p: JobPayload, workerId: string, state: string, error: string | null): Promise<void> {
    const r = await this.pool.query(
      `with held as (select 1 from ${SCHEMA}.worker_heartbeats where worker_id = $4 and job_id = $1 for key share)
       update ${SCHEMA}.campaign_jobs set state = $2, error = $3, updated_at = now() where job_id = $1 and exists (select 1 from held)`,
      [p.jobId, state, error, workerId],
    );
    if (!r.rowCount) {
      const why = `taken away: the job was released to another worker before this attempt could mark it ${state}; nothing of it counts`;
      await this.note(p.campaign, p.jobId, why);
      throw new Error(why);
    }
    await this.note(p.campaign, p.jobId, state === 'done' ? 'done' : `${state}: ${error}`);
  }

  /**
   * SIGTERM: the job goes back to the queue without spending an attempt. graphile-worker spends one on a task that
   * throws (and waits its exponential backoff before the next: ~10 rolling restarts would fail a job for good), so the
   * task puts the job back itself and returns successfully: add_job with the same task, payload, lane (queue_name),
   * max_attempts and job_key, due now. For a key whose job is locked (ours, running this task) graphile-worker 0.16's
   * add_jobs clears that job's key and gives it no further attempt (attempts = max_attempts), and adds a new job with
   * the key; the success then deletes ours. The store's record of the job (waiting, its new queue job) changes in the
   * same transaction, and only while this attempt holds the job (its heartbeat row, locked against the sweep).
   */
  private async release(p: JobPayload, job: Job, workerId: string, why: string): Promise<void> {
    const c = await this.pool.connect();
    let requeued: string | null = null;
    try {
      await c.query('begin');
      const held = await c.query(`select 1 from ${SCHEMA}.worker_heartbeats where worker_id = $1 and job_id = $2 for key share`, [workerId, p.jobId]);
      if (held.rowCount) {
        const { rows } = await c.query<{ id: string }>(
          `select n.id::text as id from graphile_worker.jobs o,
             lateral graphile_worker.add_job($2, $3::json, queue_name => o.queue_name, max_attempts => o.max_attempts, job_key => $4, priority => o.priority) n
            where o.id = $1`,
          [job.id, TASK, JSON.stringify(p), p.jobId],
        );
        requeued = rows[0]?.id ?? null;
        if (requeued)
          await c.query(`update ${SCHEMA}.campaign_jobs set state = 'waiting', queue_job_id = $2, error = $3, updated_at = now() where job_id = $1`, [
            p.jobId,
            requeued,
            `released by ${this.name}: ${why}`,
          ]);
      }
      await c.query(requeued ? 'commit' : 'rollback');
    } catch (e) {
      await c.query('rollback').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
    if (!requeued) {
      const taken = `taken away: the job was released to another worker before this attempt could put it back in the queue (${why})`;
      await this.note(p.campaign, p.jobId, taken);
      throw new Error(taken);
    }
    await this.note(p.campaign, p.jobId, `released: ${why}; back in the queue as job ${requeued}, due now (no attempt spent)`);
  }

  /** SIGTERM: finish the trials under way, release their jobs, stop. */
  async stop(): Promise<void> {
    this.drain.abort(new Error('SIGTERM'));
    await this.runner?.stop();
    for (const t of this.timers) clearInterval(t);
    await this.utils?.release();
    await this.pool.end().catch(() => {});
  }
}

/** the folders in `dir` (none when it cannot be read) */
function subfolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name));
  } catch {
    return [];
  }
}
