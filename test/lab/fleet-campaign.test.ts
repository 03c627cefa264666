/**
 * Campaigns on the real queue (graphile-worker on a private PostgreSQL) with
 * real worker processes against real lab instances:
 *  - 8 jobs (4 lab targets × 2 suite templates) over 3 workers: every job done
 *    exactly once, the cut windows of one target never overlap, at most
 *    `limits.hypervisor` blackouts at once on one hypervisor, and the fleet
 *    report lists every application with its runs' own verdicts; `campaign
 *    status` says where a job runs and which jobs wait on its lane, and a job
 *    that used its last attempt shows as failed with its error;
 *  - kill -9 of the worker mid-cut: the target answers again by the cut's
 *    deadline + 1 s (the injector's own kernel-side timeout), another worker
 *    completes the job after --retry-after but never cuts before the dead
 *    attempt's deadline, the heal is logged, and the store holds each planned
 *    trial exactly once;
 *  - a worker stalled (SIGSTOP) past --retry-after loses its job: when it
 *    wakes it stops its blackout at once and nothing of that attempt counts;
 *    the job is done once, by another worker, after the stalled cut ended;
 *  - SIGTERM drains: the trial under way finishes and restores, the job goes
 *    back to the queue without spending an attempt and is completed by
 *    another worker after the trials done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPgCluster, type PgCluster } from '../helpers/pg-cluster.ts';
import { labName, ROOT, runCli, tempDir, writeSuite } from '../helpers/lab.ts';
import { readSummary } from '../helpers/run-dir.ts';
import { fleetSuiteTemplate as suiteTemplate } from '../helpers/fleet.ts';
import { labDown, labUp, readLabState } from '../../src/lab/lab.ts';
import type { FleetReport } from '../../src/fleet/fleet-report.ts';

const LABS = [1, 2, 3, 4].map((i) => labName(`tcamp${i}`));
let db: PgCluster;
const dirs: string[] = [];
const workers: ChildProcess[] = [];
beforeAll(async () => {
  db = await startPgCluster();
  // four labs, one after the other; on a machine shared with other checkouts one `lab up` may
  // lose a race for its subnet: that one is brought up again (at most twice)
  for (const l of LABS) {
    for (let attempt = 1; ; attempt++) {
      try {
        await labDown(l).catch(() => {});
        await labUp(l);
        break;
      } catch (e) {
        if (attempt >= 3) throw e;
      }
    }
  }
}, 600_000);
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  for (const l of LABS) await labDown(l).catch(() => {});
  await db?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 300_000);

// a test that failed half-way must not leave its workers to take the next test's jobs
afterEach(async () => {
  const alive = workers.filter((w) => w.exitCode === null && w.signalCode === null);
  for (const w of alive) {
    w.kill('SIGCONT');
    w.kill('SIGKILL');
  }
  await Promise.all(alive.map((w) => new Promise((res) => (w.exitCode === null && w.signalCode === null ? w.once('close', res) : res(null)))));
});

async function q<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

function startWorker(outRoot: string, extra: string[] = []): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/blackout.mjs'), 'worker', '--store', db.url, '--concurrency', '1', '--retry-after', '4s', '--poll', '300ms', '--out-root', outRoot, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: 'true' },
  });
  workers.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => proc.on('close', (code) => res(code)));
  return { proc, out: () => out, exited };
}

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function writeFleet(fleet: unknown): string {
  const d = tempDir('blackout-fleet-');
  dirs.push(d);
  const p = join(d, 'fleet.yaml');
  writeFileSync(p, stringify(fleet));
  return p;
}

/** cut windows (wall ms) per run from the store's raw events */
async function cutWindows(campaign: string): Promise<Array<{ target: string; job: string; from: number; to: number; run: string }>> {
  return q(
    `select r.job_target as target, r.job_id as job, r.run_id as run,
              r.wall_ms + (c.body->>'t')::float8 as "from",
              r.wall_ms + coalesce((select (x.body->>'t')::float8 from blackout.events x where x.run_key = r.run_key and x.type = 'restore' and x.trial = c.trial limit 1), 1e12) as "to"
         from blackout.runs r join blackout.events c on c.run_key = r.run_key and c.type = 'cut' where r.campaign = $1`,
    [campaign],
  );
}

/** the rows of `campaign status`'s table: job, state, where, trials, note */
function statusRows(text: string): Array<{ job: string; state: string; where: string; trials: string; note: string }> {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| job ') && !l.startsWith('| ---'))
    .map((l) => {
      const [job, state, where, trials, note] = l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim());
      return { job: job!, state: state!, where: where!, trials: trials!, note: note! };
    });
}

function answers(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port, timeout: 200 });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('timeout', () => {
      s.destroy();
      res(false);
    });
    s.once('error', () => res(false));
  });
}

describe('campaigns', () => {
  it('8 jobs over 4 lab targets and 3 workers: each once, no overlapping cuts per target, ≤ 2 per hypervisor; the fleet report', async () => {
    const campaign = 'camp-8';
    const fleet = writeFleet({
      campaign,
      limits: { hypervisor: 2 },
      targets: LABS.map((l, i) => ({ name: `t${i + 1}`, application: `app-${i + 1}`, hypervisor: i < 3 ? 'hv-a' : 'hv-b', target: { lab: l } })),
      suites: [{ template: suiteTemplate('short', ['600ms']) }, { template: suiteTemplate('long', ['2s']) }],
    });
    const sub = await runCli(['campaign', 'submit', fleet, '--store', db.url]);
    expect(sub.code, sub.stderr + sub.stdout).toBe(0);
    // submitting the same campaign again is refused, nothing queued twice
    const again = await runCli(['campaign', 'submit', fleet, '--store', db.url]);
    expect(again.code).toBe(2);
    // beside it, a job that can only fail (its lab is not up), with a single attempt
    const failing = writeFleet({
      campaign: 'camp-fail',
      targets: [{ name: 'f1', application: 'app-f', target: { lab: labName('tcampnone') } }],
      suites: [{ template: suiteTemplate('fail', ['600ms']) }],
    });
    const subFail = await runCli(['campaign', 'submit', failing, '--store', db.url, '--max-attempts', '1']);
    expect(subFail.code, subFail.stderr).toBe(0);
    const outRoot = tempDir();
    dirs.push(outRoot);
    const ws = [1, 2, 3].map(() => startWorker(outRoot));
    const t0 = Date.now();
    // while jobs run: a running job says on which worker (host:pid), and the jobs of its lane wait on it
    const busy = await waitFor(
      'a status with a job running and another waiting on its lane',
      async () => {
        const st = await runCli(['campaign', 'status', campaign, '--store', db.url]);
        const rows = statusRows(st.stdout);
        const running = rows.filter((r) => r.state === 'running');
        const waiting = rows.find((r) => r.state === 'waiting' && running.some((x) => r.note.startsWith('lane ') && r.note.endsWith(`busy with ${x.job}`)));
        return waiting ? { running: running.find((x) => waiting.note.endsWith(`busy with ${x.job}`))!, waiting, text: st.stdout } : null;
      },
      120_000,
      200,
    );
    expect(busy.running.where, busy.text).toMatch(/^[^:\s]+:\d+$/);
    expect(
      ws.map((w) => w.proc.pid),
      busy.text,
    ).toContain(Number(busy.running.where.split(':')[1]));
    expect(busy.waiting.trials).toBe('0/1');
    expect(busy.waiting.where).toBe('');
    await waitFor(
      '8 jobs done',
      async () => {
        const r = await q<{ n: string }>(`select count(*) n from blackout.campaign_jobs where campaign = $1 and state = 'done'`, [campaign]);
        return Number(r[0]!.n) === 8;
      },
      300_000,
      1000,
    );
    const elapsed = Date.now() - t0;
    const st = await runCli(['campaign', 'status', campaign, '--store', db.url]);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/8 job\(s\) — 8 done/);
    for (const r of statusRows(st.stdout)) expect([r.job, r.state, r.trials]).toEqual([r.job, 'done', '1/1']);
    // the job whose only attempt failed: failed, with why (not "retry at" a time that never comes)
    await waitFor('the failing job attempted', async () => (await q(`select 1 from blackout.campaign_jobs where campaign = 'camp-fail' and state = 'failed'`)).length > 0, 60_000, 500);
    const fst = await runCli(['campaign', 'status', 'camp-fail', '--store', db.url]);
    expect(fst.code, fst.stderr).toBe(0);
    expect(fst.stdout).toMatch(/1 job\(s\) — 0 done, 0 running, 0 waiting, 0 retrying, 1 failed/);
    const [f] = statusRows(fst.stdout);
    expect(f, fst.stdout).toMatchObject({ job: 'f1/app-f-fail', state: 'failed', trials: '0/1' });
    expect(f!.note, fst.stdout).toMatch(new RegExp(`^preflight: lab "${labName('tcampnone')}" is not up`));
    expect(fst.stdout).not.toMatch(/retry at/);
    for (const w of ws) w.proc.kill('SIGTERM');
    const codes = await Promise.all(ws.map((w) => w.exited));
    expect(codes).toEqual([0, 0, 0]);

    // every job exactly once: one run per job, its one planned trial stored once
    const runs = await q<{ job_id: string; n: string; done: string }>(`select job_id, count(*) n, count(*) filter (where exit_code = 0) done from blackout.runs where campaign = $1 group by job_id`, [
      campaign,
    ]);
    expect(runs).toHaveLength(8);
    for (const r of runs) expect([r.job_id, Number(r.n), Number(r.done)]).toEqual([r.job_id, 1, 1]);
    const trials = await q<{ job_id: string; n: string }>(`select job_id, count(*) n from blackout.trials where campaign = $1 group by job_id`, [campaign]);
    expect(trials.map((t) => Number(t.n))).toEqual(Array(8).fill(1));
    // the three workers shared the work
    const byWorker = await q<{ worker: string }>(`select distinct worker from blackout.runs where campaign = $1`, [campaign]);
    expect(byWorker.length).toBeGreaterThanOrEqual(2);

    // the cut windows of one target never overlap; at most 2 at once on hv-a
    const win = await cutWindows(campaign);
    expect(win).toHaveLength(8);
    for (const target of ['t1', 't2', 't3', 't4']) {
      const w = win.filter((x) => x.target === target).sort((a, b) => a.from - b.from);
      expect(w).toHaveLength(2);
      expect(w[1]!.from, `${target}: ${JSON.stringify(w)}`).toBeGreaterThanOrEqual(w[0]!.to);
    }
    const hvA = win.filter((x) => ['t1', 't2', 't3'].includes(x.target));
    for (const w of hvA) expect(hvA.filter((o) => o.from <= w.from && o.to > w.from).length).toBeLessThanOrEqual(2);

    // the fleet report: every application, each suite with the verdict its own run report gives
    const rep = tempDir();
    dirs.push(rep);
    const tr0 = Date.now();
    const fr = await runCli(['report', '--store', db.url, '--campaign', campaign, '--out', rep]);
    const reportMs = Date.now() - tr0;
    expect(fr.code, fr.stderr).toBe(0);
    for (const f of ['fleet-report.html', 'fleet-report.json', 'fleet-report.md']) expect(existsSync(join(rep, f))).toBe(true);
    const fj = JSON.parse(readFileSync(join(rep, 'fleet-report.json'), 'utf8')) as FleetReport;
    expect(fj.applications.map((a) => a.application).sort()).toEqual(['app-1', 'app-2', 'app-3', 'app-4']);
    const outDirs = await q<{ job_id: string; out_dir: string }>(`select job_id, out_dir from blackout.runs where campaign = $1`, [campaign]);
    const ownSummary = (job: string) =>
      JSON.parse(readFileSync(join(outDirs.find((o) => o.job_id === `${campaign}:${job}`)!.out_dir, 'summary.json'), 'utf8')) as {
        verdict: { headline: string; quickMigration: Array<{ link: string; safeUpToBytes: number }> };
      };
    for (const a of fj.applications) {
      expect(a.weakest?.probe).toBe('echo-ut1s');
      expect(a.jobs).toHaveLength(2);
      for (const j of a.jobs) {
        expect(j.verdict?.headline).toBe(ownSummary(j.job).verdict.headline);
        expect(existsSync(join(rep, j.report!))).toBe(true);
      }
      // the largest VM per storage link: per link, the smaller of its suites' own (every run's verdict has one per link)
      const links = ownSummary(a.jobs[0]!.job).verdict.quickMigration.map((x) => x.link);
      expect(links.length).toBeGreaterThan(0);
      expect(a.quickMigration.map((x) => x.link)).toEqual(links);
      for (const x of a.quickMigration) expect(x.safeUpToBytes).toBe(Math.min(...a.jobs.map((j) => ownSummary(j.job).verdict.quickMigration.find((o) => o.link === x.link)!.safeUpToBytes)));
      // the short suite's sessions all survived 600 ms (a VM size > 0), the long one's user-timeout session did not survive 2 s: the row takes the smaller
      expect(ownSummary(a.jobs.find((j) => j.suite.endsWith('short'))!.job).verdict.quickMigration[0]!.safeUpToBytes).toBeGreaterThan(0);
      expect(a.quickMigration[0]!.safeUpToBytes).toBe(0);
      // its history: one run of each of its suites so far, this campaign's, on its target
      expect(a.history.map((h) => [h.suite, h.runs.map((r) => [r.campaign, r.target])])).toEqual(
        a.jobs.map((j) => [j.suite, [[campaign, a.target]]]).sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
      );
    }

    // history is the application's own targets': a plain run --store of app-1's suite against app-1's target (lab) counts,
    // the same suite against another target does not
    const t1 = fj.applications.find((a) => a.application === 'app-1')!;
    const shortSuite = t1.jobs.find((j) => j.suite.endsWith('short'))!.suite;
    for (const lab of [LABS[0]!, LABS[1]!]) {
      const suite = writeSuite(`${suiteTemplate('short', ['600ms']).replace('{{application}}', 'app-1')}target: { lab: ${lab} }\n`);
      dirs.push(dirname(suite));
      const out = tempDir();
      dirs.push(out);
      const r = await runCli(['run', suite, '--out', out, '--no-live', '--store', db.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(readSummary<{ suite: string }>(out).suite).toBe(shortSuite);
    }
    const stamp = (job: string) => statSync(join(rep, 'runs', job.replace('/', '_'), 'events.jsonl')).mtimeMs;
    const before = t1.jobs.map((j) => stamp(j.job));
    const tr1 = Date.now();
    const fr2 = await runCli(['report', '--store', db.url, '--campaign', campaign, '--out', rep]);
    const againMs = Date.now() - tr1;
    expect(fr2.code, fr2.stderr).toBe(0);
    // nothing new for the campaign's jobs in the store: their run folders were not rebuilt
    expect(t1.jobs.map((j) => stamp(j.job))).toEqual(before);
    const fj2 = JSON.parse(readFileSync(join(rep, 'fleet-report.json'), 'utf8')) as FleetReport;
    const h = fj2.applications.find((a) => a.application === 'app-1')!.history.find((x) => x.suite === shortSuite)!;
    expect(h.runs.map((r) => [r.campaign, r.target])).toEqual([
      [campaign, 't1'],
      [null, `lab ${LABS[0]}`],
    ]);
    // every job's run kept its Allure history in the store, for the next run of its suite on any worker
    const kept = await q<{ run_id: string }>(`select h.run_id from blackout.allure_history h join blackout.runs r using (run_id) where r.campaign = $1`, [campaign]);
    expect(kept).toHaveLength(outDirs.length);
    process.stdout.write(
      `campaign of 8 jobs on 3 workers: ${(elapsed / 1000).toFixed(1)} s; fleet report ${(reportMs / 1000).toFixed(1)} s (8 runs rebuilt), again with nothing new ${(againMs / 1000).toFixed(1)} s\n`,
    );
  }, 420_000);

  it("kill -9 of the worker mid-cut: target back by deadline + 1 s, job completed elsewhere after the dead cut's deadline, no trial twice", async () => {
    const campaign = 'camp-kill';
    // --retry-after (2 s) is shorter than the second cut (6 s): the retry must wait for that cut's deadline
    const fleet = writeFleet({
      campaign,
      targets: [{ name: 'k1', application: 'app-k', target: { lab: LABS[0] } }],
      suites: [{ template: suiteTemplate('kill', ['3s', '6s']) }],
    });
    const sub = await runCli(['campaign', 'submit', fleet, '--store', db.url]);
    expect(sub.code, sub.stderr).toBe(0);
    const outRoot = tempDir();
    dirs.push(outRoot);
    const a = startWorker(outRoot, ['--retry-after', '2s']);
    // the first worker takes the job before the second one starts
    const running = await waitFor(
      'the job running',
      async () => (await q<{ worker: string }>(`select worker from blackout.campaign_jobs where campaign = $1 and state = 'running'`, [campaign]))[0],
      90_000,
    );
    expect(running.worker).toMatch(new RegExp(`:${a.proc.pid}$`));
    const b = startWorker(outRoot, ['--retry-after', '2s']);
    // mid-cut of the second trial (the first one is then stored and must not run again)
    const cut = await waitFor(
      'the second cut',
      async () =>
        (
          await q<{ deadline: number; wall_ms: number; t: number; run: string }>(
            `select (e.body->>'deadline')::float8 deadline, r.wall_ms, (e.body->>'t')::float8 t, r.run_id as run from blackout.events e join blackout.runs r using (run_key) where r.campaign = $1 and e.type = 'cut' and e.trial = 1`,
            [campaign],
          )
        )[0],
      120_000,
      100,
    );
    a.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await a.exited;
    const lab = readLabState(LABS[0]!)!;
    const back = await waitFor('the target to answer', async () => ((await answers(lab.targetAddress, lab.services.echo!.port)) ? Date.now() : null), 30_000, 100);
    const deadlineWall = cut.wall_ms + cut.deadline;
    expect(back, `answered ${back - deadlineWall} ms after the deadline`).toBeLessThanOrEqual(deadlineWall + 1000);
    await waitFor('the job done', async () => (await q(`select 1 from blackout.campaign_jobs where campaign = $1 and state = 'done'`, [campaign])).length > 0, 150_000, 500);
    const retriedAfter = Date.now() - killedAt;
    const trials = await q<{ trial: number; worker: string }>(`select t.trial, r.worker from blackout.trials t join blackout.runs r using (run_id) where t.campaign = $1 order by t.trial`, [campaign]);
    expect(trials.map((t) => t.trial)).toEqual([0, 1]);
    expect(trials[1]!.worker).toMatch(new RegExp(`:${b.proc.pid}$`));
    // the dead attempt's stored trial was not run again
    expect(trials[0]!.worker).toMatch(new RegExp(`:${a.proc.pid}$`));
    const log = await q<{ message: string }>(`select message from blackout.campaign_log where campaign = $1`, [campaign]);
    expect(log.some((l) => /^heal: worker .* silent for 2 s/.test(l.message))).toBe(true);
    expect(log.some((l) => /attempt 2\/10 started; 1 of 2 trial\(s\) already stored/.test(l.message))).toBe(true);
    // the retry started before the dead attempt's cut was over, and waited for its deadline before cutting
    expect(
      log.some((l) => /^waiting for the previous attempt's cut deadline/.test(l.message)),
      log.map((l) => l.message).join('\n'),
    ).toBe(true);
    const bCut = (await cutWindows(campaign)).filter((w) => w.run !== cut.run);
    expect(bCut).toHaveLength(1);
    expect(bCut[0]!.from, `the retry cut ${(deadlineWall - bCut[0]!.from).toFixed(0)} ms before the dead attempt's deadline`).toBeGreaterThanOrEqual(deadlineWall);
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    process.stdout.write(`kill -9: target answered ${(back - deadlineWall).toFixed(0)} ms vs deadline; job completed ${(retriedAfter / 1000).toFixed(1)} s after the kill\n`);
  }, 300_000);

  it('a worker stalled past --retry-after loses its job: on waking it stops its blackout at once, nothing of it counts; the job is done once', async () => {
    const campaign = 'camp-fence';
    const fleet = writeFleet({
      campaign,
      targets: [{ name: 's1', application: 'app-s', target: { lab: LABS[2] } }],
      suites: [{ template: suiteTemplate('stall', ['5s']) }],
    });
    expect((await runCli(['campaign', 'submit', fleet, '--store', db.url])).code).toBe(0);
    const outRoot = tempDir();
    dirs.push(outRoot);
    const a = startWorker(outRoot, ['--retry-after', '2s']);
    await waitFor('the job running on the first worker', async () => (await q(`select 1 from blackout.campaign_jobs where campaign = $1 and state = 'running'`, [campaign])).length > 0, 90_000);
    const b = startWorker(outRoot, ['--retry-after', '2s']);
    const cut = await waitFor(
      'the cut',
      async () =>
        (
          await q<{ run: string; from: number }>(
            `select r.run_id as run, r.wall_ms + (e.body->>'t')::float8 as "from" from blackout.events e join blackout.runs r using (run_key) where r.campaign = $1 and e.type = 'cut'`,
            [campaign],
          )
        )[0],
      90_000,
      100,
    );
    // the first worker stalls mid-cut (its 5 s blackout is under way) for longer than --retry-after
    a.proc.kill('SIGSTOP');
    const log = () => q<{ message: string; worker: string }>(`select message, worker from blackout.campaign_log where campaign = $1 order by id`, [campaign]);
    await waitFor("the stalled worker's job released", async () => (await log()).some((l) => l.message.startsWith(`heal: worker `) && l.message.includes(`:${a.proc.pid} `)), 30_000, 100);
    // the other worker took the job, and waits: the stalled worker's cut is still in force
    await waitFor('the retry waiting for the stalled cut', async () => (await log()).some((l) => l.message.startsWith("waiting for the previous attempt's cut deadline")), 10_000, 100);
    a.proc.kill('SIGCONT');
    // on waking it sees its job was taken away and stops its blackout before its scheduled end
    const restore = await waitFor(
      "the stalled worker's restore",
      async () =>
        (
          await q<{ reason: string; at: number }>(
            `select e.body->>'reason' reason, r.wall_ms + (e.body->>'t')::float8 as at from blackout.events e join blackout.runs r using (run_key) where r.run_id = $1 and e.type = 'restore'`,
            [cut.run],
          )
        )[0],
      20_000,
      100,
    );
    expect(restore.reason).toBe('signal');
    expect(restore.at - cut.from, 'the stalled blackout ran its full length').toBeLessThan(5000);
    await waitFor('the job done', async () => (await q(`select 1 from blackout.campaign_jobs where campaign = $1 and state = 'done'`, [campaign])).length > 0, 90_000, 500);
    // done once: its one trial counted once, from the other worker's attempt; the stalled attempt stored no trial
    const trials = await q<{ trial: number; worker: string }>(`select t.trial, r.worker from blackout.trials t join blackout.runs r using (run_id) where t.campaign = $1`, [campaign]);
    expect(trials).toHaveLength(1);
    expect(trials[0]!.worker).toMatch(new RegExp(`:${b.proc.pid}$`));
    const entries = await log();
    const byA = entries.filter((l) => l.worker.endsWith(`:${a.proc.pid}`)).map((l) => l.message);
    expect(byA.join('\n')).toMatch(/taken away/);
    // the stalled attempt neither finished nor failed the job
    expect(byA.filter((m) => /^(done|failed|waiting)\b/.test(m))).toEqual([]);
    expect(entries.some((l) => l.worker.endsWith(`:${b.proc.pid}`) && /^attempt 2\/10 started/.test(l.message))).toBe(true);
    expect(a.out()).toMatch(/taken away/);
    // never two cuts at once on the target: the retry cut after the stalled cut was restored
    const win = (await cutWindows(campaign)).sort((x, y) => x.from - y.from);
    expect(win).toHaveLength(2);
    expect(win[1]!.from, JSON.stringify(win)).toBeGreaterThanOrEqual(win[0]!.to);
    const queued = await q(`select 1 from graphile_worker.jobs where key like $1`, [`${campaign}:%`]);
    expect(queued).toEqual([]);
    for (const w of [a, b]) w.proc.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
    process.stdout.write(`stall: the stalled blackout stopped ${(restore.at - cut.from).toFixed(0)} ms after its cut (5 000 planned)\n`);
  }, 300_000);

  it('SIGTERM drains: the trial under way finishes and restores, the job is released without spending an attempt and finished elsewhere', async () => {
    const campaign = 'camp-drain';
    const fleet = writeFleet({
      campaign,
      targets: [{ name: 'd1', application: 'app-d', target: { lab: LABS[1] } }],
      suites: [{ template: suiteTemplate('drain', ['2s', '2s']) }],
    });
    expect((await runCli(['campaign', 'submit', fleet, '--store', db.url])).code).toBe(0);
    const outRoot = tempDir();
    dirs.push(outRoot);
    const a = startWorker(outRoot);
    await waitFor(
      'the first cut',
      async () => (await q(`select 1 from blackout.events e join blackout.runs r using (run_key) where r.campaign = $1 and e.type = 'cut'`, [campaign])).length > 0,
      90_000,
      100,
    );
    a.proc.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    // the first trial completed in full (scheduled restore) before the worker left
    const first = await q<{ reason: string }>(`select e.body->>'reason' reason from blackout.events e join blackout.runs r using (run_key) where r.campaign = $1 and e.type = 'restore'`, [campaign]);
    expect(first.map((f) => f.reason)).toEqual(['scheduled']);
    expect(a.out()).toMatch(/draining/);
    // released, not failed: the queue holds it as a fresh job, due now, no attempt spent, no error
    const key = `${campaign}:d1/app-d-drain`;
    const queued = await q<{ id: string; attempts: number; last_error: string | null; due: boolean; locked_by: string | null }>(
      `select id::text, attempts, last_error, run_at <= now() as due, locked_by from graphile_worker.jobs where key = $1`,
      [key],
    );
    expect(queued.map(({ id: _id, ...j }) => j)).toEqual([{ attempts: 0, last_error: null, due: true, locked_by: null }]);
    // and the drained job itself is gone from the queue (its task returned successfully), not kept as a failure
    expect(await q(`select id from graphile_worker._private_jobs where payload->>'jobId' = $1`, [key])).toEqual([{ id: queued[0]!.id }]);
    expect((await q<{ queue_job_id: string }>(`select queue_job_id from blackout.campaign_jobs where job_id = $1`, [key]))[0]!.queue_job_id).toBe(queued[0]!.id);
    const st = await runCli(['campaign', 'status', campaign, '--store', db.url]);
    expect(statusRows(st.stdout), st.stdout).toMatchObject([{ job: 'd1/app-d-drain', state: 'waiting', where: '', trials: '1/2' }]);
    // the fleet report mid-campaign (no worker: the job waits with 1 of its 2 trials), and the same --out again once it is done
    const rep = tempDir();
    dirs.push(rep);
    const jobOf = () => {
      const r = JSON.parse(readFileSync(join(rep, 'fleet-report.json'), 'utf8')) as FleetReport;
      const j = r.applications[0]!.jobs[0]!;
      return { state: j.state, trials: j.trials, inRun: readSummary<{ trials: unknown[] }>(join(rep, dirname(j.report!))).trials.length, headline: j.verdict?.headline };
    };
    expect((await runCli(['report', '--store', db.url, '--campaign', campaign, '--out', rep])).code).toBe(0);
    expect(jobOf()).toMatchObject({ state: 'waiting', trials: 1, inRun: 1 });
    const b = startWorker(outRoot);
    await waitFor('the job done', async () => (await q(`select 1 from blackout.campaign_jobs where campaign = $1 and state = 'done'`, [campaign])).length > 0, 120_000, 500);
    const trials = await q<{ trial: number; worker: string }>(`select t.trial, r.worker from blackout.trials t join blackout.runs r using (run_id) where t.campaign = $1 order by t.trial`, [campaign]);
    expect(trials.map((t) => t.trial)).toEqual([0, 1]);
    expect(trials[0]!.worker).toMatch(new RegExp(`:${a.proc.pid}$`));
    expect(trials[1]!.worker).toMatch(new RegExp(`:${b.proc.pid}$`));
    // the next attempt is the fresh job's first, resuming after the stored trial
    const log = await q<{ message: string }>(`select message from blackout.campaign_log where campaign = $1 order by id`, [campaign]);
    expect(
      log.some((l) => /^attempt 1\/10 started; 1 of 2 trial\(s\) already stored/.test(l.message)),
      log.map((l) => l.message).join('\n'),
    ).toBe(true);
    expect(log.some((l) => /^released\b/.test(l.message))).toBe(true);
    // made again into the same folder: the job's run is rebuilt with both trials, its verdict from both
    expect((await runCli(['report', '--store', db.url, '--campaign', campaign, '--out', rep])).code).toBe(0);
    const done = jobOf();
    expect(done).toMatchObject({ state: 'done', trials: 2, inRun: 2 });
    expect(done.headline).toBe(readSummary<{ verdict: { headline: string } }>(join(rep, 'runs', 'd1_app-d-drain')).verdict.headline);
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  }, 300_000);
});
