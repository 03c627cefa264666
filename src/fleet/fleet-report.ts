/**
 * The fleet report: a row per application (its weakest session, its tolerance, the largest VM it may
 * have per storage link, its suites' verdicts with links to their own reports), from two sources:
 *
 *  - `blackout report --store … --campaign NAME`: for every job of the campaign its run is rebuilt
 *    from the store (the raw events of every attempt, keeping of each attempt only the trials the
 *    store counted for it), so the job's own full report (report.html, summary.json, …) sits under
 *    runs/<job>/ beside the fleet report, whichever workers' disks the attempts ran on. With the
 *    store there is also, per application and suite, the history of its breaking points across every
 *    stored run (so a regression after an application upgrade shows).
 *  - `blackout merge DIR…` of a fleet's shards (fleet-merge.ts): the jobs' run folders as the shards
 *    wrote them; no history (that needs the store).
 *
 * Either way the rows are built by one pure function (fleetApplications) from each job's summary.json.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { BlackoutEvent } from '../core/events.ts';
import { writeReports } from '../reporters/index.ts';
import { SCHEMA } from '../store/migrations.ts';
import { redactUrl } from '../store/store-url.ts';
import { EXIT } from '../run/exit-codes.ts';
import { jobDir } from './fleet-shard.ts';

export interface FleetJobEntry {
  job: string;
  target: string;
  suite: string;
  state: string;
  verdict: { level: string; headline: string } | null;
  weakest: { probe: string; maxSurvivedMs: number | null; minFailedMs: number | null } | null;
  toleranceMs: number | null;
  quickMigration: Array<{ link: string; safeUpToBytes: number; text: string }>;
  report: string | null;
  attempts: number;
  trials: number;
  plannedTrials: number;
  /** a fleet shards' report: the shard that ran it */
  shard?: number;
}

export interface FleetHistoryRun {
  at: string;
  campaign: string | null;
  /** the fleet target of a campaign's run; the resolved target (host, `lab NAME`) of a plain run */
  target: string | null;
  breakingPoints: Record<string, { maxSurvivedMs: number | null; minFailedMs: number | null }>;
}

export interface FleetApplication {
  application: string;
  /** the first of `targets` */
  target: string;
  /** the fleet targets the application's jobs ran against */
  targets: string[];
  weakest: FleetJobEntry['weakest'];
  toleranceMs: number | null;
  quickMigration: FleetJobEntry['quickMigration'];
  jobs: FleetJobEntry[];
  /** from the store only: a fleet shards' report has none */
  history: Array<{ suite: string; runs: FleetHistoryRun[] }>;
}

export interface FleetReport {
  campaign: string;
  /** where the runs were read from: the results store (which also gives the history), or a fleet's shards' run folders */
  source: 'store' | 'shards';
  /** a merge of fleet shards: the shards merged and those missing (their jobs are "not run") */
  shards?: { total: number; merged: number[]; missing: number[] };
  applications: FleetApplication[];
}

/** The part of a run's summary.json (reporters/json.ts) the fleet report reads. */
export interface SummaryLike {
  complete?: boolean;
  verdict?: { level: string; headline: string; quickMigration?: Array<{ link: string; safeUpToBytes: number; text: string }> };
  probes?: Record<string, { maxSurvivedMs: number | null; minFailedMs: number | null }>;
  trials?: Array<{ complete?: boolean }>;
}

/** A run folder's summary.json, null when it has none (a job not run, or killed before its reports). */
export function readRunSummary(dir: string): SummaryLike | null {
  const path = join(dir, 'summary.json');
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SummaryLike;
  } catch {
    return null;
  }
}

/** What one job's entry is built from, whichever source. */
export interface FleetJobInput {
  /** the job's id in its campaign: target/suite */
  job: string;
  target: string;
  application: string;
  suite: string;
  state: string;
  attempts: number;
  trials: number;
  plannedTrials: number;
  /** its run folder's summary.json */
  summary: SummaryLike | null;
  /** its own report.html, relative to the fleet report; null when it has no run folder */
  report: string | null;
  shard?: number;
}

function weakestOf(s: SummaryLike): FleetJobEntry['weakest'] {
  const probes = Object.entries(s.probes ?? {});
  if (!probes.length) return null;
  // weakest: the session that fails at the shortest blackout (then the one that survived the least)
  const key = (p: { maxSurvivedMs: number | null; minFailedMs: number | null }) => p.minFailedMs ?? Infinity;
  probes.sort((a, b) => key(a[1]) - key(b[1]) || (a[1].maxSurvivedMs ?? -1) - (b[1].maxSurvivedMs ?? -1));
  const [probe, p] = probes[0]!;
  return { probe, maxSurvivedMs: p.maxSurvivedMs, minFailedMs: p.minFailedMs };
}

/** tolerance: the longest blackout every session survived (none when a session survived none) */
function toleranceOf(s: SummaryLike): number | null {
  const v = Object.values(s.probes ?? {}).map((p) => p.maxSurvivedMs);
  if (!v.length || v.some((x) => x === null)) return null;
  return Math.min(...(v as number[]));
}

/**
 * The application rows from the jobs' summaries (pure): an application's figures are its weakest
 * session over all its suites, its tolerance the smallest of its suites', and per storage link the
 * smallest of its suites' largest safe VM. Applications and their jobs keep the order given.
 */
export function fleetApplications(jobs: FleetJobInput[]): FleetApplication[] {
  const apps = new Map<string, FleetApplication>();
  for (const j of jobs) {
    const s = j.summary;
    const entry: FleetJobEntry = {
      job: j.job,
      target: j.target,
      suite: j.suite,
      state: j.state,
      verdict: s?.verdict ? { level: s.verdict.level, headline: s.verdict.headline } : null,
      weakest: s ? weakestOf(s) : null,
      toleranceMs: s ? toleranceOf(s) : null,
      quickMigration: (s?.verdict?.quickMigration ?? []).map((q) => ({ link: q.link, safeUpToBytes: q.safeUpToBytes, text: q.text })),
      report: j.report,
      attempts: j.attempts,
      trials: j.trials,
      plannedTrials: j.plannedTrials,
      ...(j.shard !== undefined ? { shard: j.shard } : {}),
    };
    const app = apps.get(j.application) ?? { application: j.application, target: j.target, targets: [], weakest: null, toleranceMs: null, quickMigration: [], jobs: [], history: [] };
    app.jobs.push(entry);
    if (!app.targets.includes(j.target)) app.targets.push(j.target);
    apps.set(j.application, app);
  }
  for (const app of apps.values()) {
    const withData = app.jobs.filter((j) => j.weakest);
    // as within a run: the session failing at the shortest blackout, then the one that survived the least
    withData.sort((a, b) => (a.weakest!.minFailedMs ?? Infinity) - (b.weakest!.minFailedMs ?? Infinity) || (a.weakest!.maxSurvivedMs ?? -1) - (b.weakest!.maxSurvivedMs ?? -1));
    app.weakest = withData[0]?.weakest ?? null;
    // a suite without a summary (not run, no trial) leaves the tolerance unknown, not larger
    const tol = app.jobs.map((j) => j.toleranceMs);
    app.toleranceMs = tol.length && tol.every((t) => t !== null) ? Math.min(...(tol as number[])) : null;
    const byLink = new Map<string, FleetJobEntry['quickMigration'][number]>();
    for (const q of app.jobs.flatMap((j) => j.quickMigration)) if (!byLink.has(q.link) || byLink.get(q.link)!.safeUpToBytes > q.safeUpToBytes) byLink.set(q.link, q);
    app.quickMigration = [...byLink.values()];
  }
  return [...apps.values()];
}

interface JobRow {
  job_id: string;
  target: string;
  application: string;
  suite_name: string;
  state: string;
  planned_trials: number;
}

/** the job's run, rebuilt from the store into dir (events of every attempt; only counted trials) */
async function rebuildJobRun(c: pg.Client, campaign: string, jobId: string, dir: string): Promise<void> {
  const runs = (
    await c.query<{ run_id: string; run_key: string; wall_ms: number; run_start: BlackoutEvent }>(
      `select run_id, run_key, wall_ms, run_start from ${SCHEMA}.runs where campaign = $1 and job_id = $2 order by started_at`,
      [campaign, jobId],
    )
  ).rows;
  const counted = (await c.query<{ run_id: string; trial: number }>(`select run_id, trial from ${SCHEMA}.trials where job_id = $1`, [jobId])).rows;
  const keep = new Set(counted.map((r) => `${r.run_id}/${r.trial}`));
  const origin = Math.min(...runs.map((r) => r.wall_ms));
  const lines: string[] = [];
  const first = runs[0]!.run_start as Extract<BlackoutEvent, { type: 'run-start' }>;
  const { job: _j, ...head } = first;
  lines.push(JSON.stringify({ ...head, t: 0, wallMs: origin, runId: `job-${jobId}`, merged: runs.map((r) => ({ runId: r.run_id, host: (r.run_start as { host?: string }).host ?? '' })) }));
  let endT = 0;
  let lastEnd: Extract<BlackoutEvent, { type: 'run-end' }> | null = null;
  for (const r of runs) {
    const shift = r.wall_ms - origin;
    const { rows } = await c.query<{ body: BlackoutEvent }>(`select body from ${SCHEMA}.events where run_key = $1 order by seq`, [r.run_key]);
    for (const { body: e } of rows) {
      if (e.type === 'run-start') continue;
      if (e.type === 'run-end') {
        lastEnd = { ...e, t: e.t + shift };
        continue;
      }
      // an attempt's trial that the store did not count (it died mid-trial) is left out
      if ('trial' in e && typeof e.trial === 'number' && e.type !== 'injector-info' && !keep.has(`${r.run_id}/${e.trial}`)) continue;
      const m = { ...e, t: e.t + shift } as BlackoutEvent;
      if ('before' in m && typeof m.before === 'number') m.before += shift;
      if (m.type === 'cut') m.deadline += shift;
      endT = Math.max(endT, m.t);
      lines.push(JSON.stringify(m));
    }
  }
  const complete = counted.length > 0 && lastEnd !== null;
  if (complete)
    lines.push(
      JSON.stringify({
        type: 'run-end',
        t: Math.max(endT, lastEnd!.t),
        exitCode: lastEnd!.exitCode === EXIT.interrupted ? 0 : lastEnd!.exitCode,
        reason: runs.length > 1 ? `${runs.length} attempts; ${lastEnd!.reason}` : lastEnd!.reason,
      }),
    );
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'events.jsonl'), lines.join('\n') + '\n');
  await writeReports(dir);
}

/** in a rebuilt job folder: what the store held when it was rebuilt (see syncJobRun) */
const STORE_SOURCE = 'store-source.json';

/**
 * The job's run folder, as the store holds it now: rebuilt unless the folder was rebuilt from exactly
 * what the store holds (the same attempts, each with as many events stored, the same exit codes and
 * counted trials). A report made mid-campaign and made again into the same --out so shows every trial
 * stored since; one made again with nothing new costs a query instead of every event read and
 * rendered again. Returns the resolved targets of the job's runs (their run-start's target name), or
 * null when the store holds no run of the job yet.
 */
async function syncJobRun(c: pg.Client, campaign: string, jobId: string, dir: string): Promise<string[] | null> {
  const runs = (
    await c.query<{ run_id: string; events_stored: string; exit_code: number | null; target_name: string | null }>(
      `select run_id, events_stored, exit_code, target_name from ${SCHEMA}.runs where campaign = $1 and job_id = $2 order by started_at, run_id`,
      [campaign, jobId],
    )
  ).rows;
  if (!runs.length) return null;
  const trials = (await c.query<{ n: string }>(`select count(*) n from ${SCHEMA}.trials where job_id = $1`, [jobId])).rows[0]!.n;
  const source = JSON.stringify({ runs: runs.map((r) => [r.run_id, Number(r.events_stored), r.exit_code]), trials: Number(trials) });
  const marker = join(dir, STORE_SOURCE);
  const current = existsSync(marker) && existsSync(join(dir, 'summary.json')) && readFileSync(marker, 'utf8') === source;
  if (!current) {
    // from scratch: no file of the older rebuild outlives it (Allure's results and attachments are files per test and trial)
    rmSync(dir, { recursive: true, force: true });
    await rebuildJobRun(c, campaign, jobId, dir);
    // written last: a rebuild cut short has no marker and is done again next time
    writeFileSync(marker, source);
  }
  return [...new Set(runs.map((r) => r.target_name).filter((n): n is string => n !== null))];
}

export async function buildFleetReport(url: string, campaign: string, outDir: string): Promise<FleetReport> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    const jobs = (
      await c.query<JobRow>(`select job_id, target, application, suite_name, state, planned_trials from ${SCHEMA}.campaign_jobs where campaign = $1 order by application, job_id`, [campaign])
    ).rows;
    const inputs: FleetJobInput[] = [];
    const resolved = new Map<string, string[]>();
    for (const j of jobs) {
      const id = j.job_id.slice(campaign.length + 1);
      const dir = join(outDir, jobDir(id));
      const names = await syncJobRun(c, campaign, j.job_id, dir);
      resolved.set(j.job_id, names ?? []);
      const attempts = Number((await c.query<{ n: string }>(`select count(*) n from ${SCHEMA}.runs where campaign = $1 and job_id = $2`, [campaign, j.job_id])).rows[0]!.n);
      const trials = Number((await c.query<{ n: string }>(`select count(*) n from ${SCHEMA}.trials where job_id = $1`, [j.job_id])).rows[0]!.n);
      inputs.push({
        job: id,
        target: j.target,
        application: j.application,
        suite: j.suite_name,
        state: j.state,
        attempts,
        trials,
        plannedTrials: j.planned_trials,
        summary: names ? readRunSummary(dir) : null,
        report: names ? join(jobDir(id), 'report.html') : null,
      });
    }
    const applications = fleetApplications(inputs);
    for (const app of applications) {
      const own = jobs.filter((j) => j.application === app.application);
      // history per suite: the stored runs of that suite against the application's own targets, in time
      for (const suite of [...new Set(own.map((j) => j.suite_name))]) {
        const of = own.filter((j) => j.suite_name === suite);
        // A campaign's run counts when its job's fleet target is one of the application's (any campaign).
        // A plain `run --store` has no job and so no fleet target: its run-start records only the resolved
        // target (runs.target_name: the host, or `lab NAME`), so it counts when that is the one these jobs'
        // own runs resolved to. Runs of other targets with a suite of the same name are left out.
        const { rows } = await c.query<{ started_at: Date; campaign: string | null; target: string | null; summary: SummaryLike | null }>(
          `select started_at, campaign, coalesce(job_target, target_name) as target, summary from ${SCHEMA}.runs
            where suite = $1 and summary is not null and (job_target = any($2::text[]) or (job_id is null and target_name = any($3::text[])))
            order by started_at`,
          [suite, [...new Set(of.map((j) => j.target))], [...new Set(of.flatMap((j) => resolved.get(j.job_id) ?? []))]],
        );
        app.history.push({
          suite,
          runs: rows.map((r) => ({
            at: new Date(r.started_at).toISOString(),
            campaign: r.campaign,
            target: r.target,
            breakingPoints: Object.fromEntries(Object.entries(r.summary?.probes ?? {}).map(([k, p]) => [k, { maxSurvivedMs: p.maxSurvivedMs, minFailedMs: p.minFailedMs }])),
          })),
        });
      }
    }
    return { campaign, source: 'store', applications };
  } finally {
    await c.end();
  }
}

const ms = (v: number | null) => (v === null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(v % 1000 ? 1 : 0)} s` : `${Math.round(v)} ms`);
const bytes = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);
const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** a job's suite, with its target when the application has several */
const suiteOf = (a: FleetApplication, j: FleetJobEntry) => (a.targets.length > 1 ? `${j.suite} (${j.target})` : j.suite);

/** a suite's verdict, and what became of its job when that is not simply done */
const said = (j: FleetJobEntry) => (j.verdict ? `${j.verdict.headline}${j.state === 'done' ? '' : ` (${j.state})`}` : j.state);

const HISTORY_NEEDS_STORE =
  "History across runs needs the results store: this report was merged from a fleet's shards' run folders. Run the fleet as a campaign (blackout campaign submit, blackout worker), or add these runs to a store with blackout import, and make the report with --store … --campaign NAME.";

function shardsLine(r: FleetReport): string | null {
  if (!r.shards) return null;
  return `Merged from shard(s) ${r.shards.merged.join(', ')} of ${r.shards.total}${r.shards.missing.length ? `; shard(s) ${r.shards.missing.join(', ')} missing: their jobs did not run` : ''}.`;
}

export function fleetMarkdown(r: FleetReport): string {
  const out = [`# Fleet report: ${r.campaign}`, ''];
  const sl = shardsLine(r);
  if (sl) out.push(sl, '');
  out.push('| application | weakest session | tolerance | largest VM per storage link | suites |', '| --- | --- | --- | --- | --- |');
  for (const a of r.applications) {
    const weak = a.weakest ? `${a.weakest.probe} (fails at ${ms(a.weakest.minFailedMs)}, survived ${ms(a.weakest.maxSurvivedMs)})` : '–';
    const vm = a.quickMigration.map((q) => `${q.link}: ${bytes(q.safeUpToBytes)}`).join('; ') || '–';
    const suites = a.jobs.map((j) => `${j.report ? `[${suiteOf(a, j)}](${j.report})` : suiteOf(a, j)}: ${said(j)}`).join('<br>');
    out.push(`| ${a.application} | ${weak} | ${ms(a.toleranceMs)} | ${vm} | ${suites.replace(/\|/g, '/')} |`);
  }
  out.push('', '## History (breaking points per run)');
  if (r.source === 'shards') out.push('', HISTORY_NEEDS_STORE);
  for (const a of r.applications) {
    for (const h of a.history) {
      out.push('', `### ${a.application} — ${h.suite}`, '', '| run | target | probe: survived / failed |', '| --- | --- | --- |');
      for (const run of h.runs)
        out.push(
          `| ${run.at}${run.campaign ? ` (${run.campaign})` : ''} | ${run.target ?? '–'} | ${Object.entries(run.breakingPoints)
            .map(([p, b]) => `${p}: ${ms(b.maxSurvivedMs)} / ${ms(b.minFailedMs)}`)
            .join(', ')} |`,
        );
    }
  }
  return out.join('\n') + '\n';
}

export function fleetHtml(r: FleetReport): string {
  const rows = r.applications.map((a) => {
    const weak = a.weakest ? `${esc(a.weakest.probe)} <small>fails at ${ms(a.weakest.minFailedMs)}, survived ${ms(a.weakest.maxSurvivedMs)}</small>` : '–';
    const vm = a.quickMigration.map((q) => `${esc(q.link)}: ${bytes(q.safeUpToBytes)}`).join('<br>') || '–';
    const suites = a.jobs
      .map(
        (j) =>
          `${j.report ? `<a href="${esc(j.report)}">${esc(suiteOf(a, j))}</a>` : esc(suiteOf(a, j))} <span class="lv-${esc(j.verdict?.level ?? 'no-data')}">${esc(said(j))}</span>${j.attempts > 1 ? ` <small>(${j.attempts} attempts)</small>` : ''}`,
      )
      .join('<br>');
    return `<tr><td>${esc(a.application)}<br><small>${esc(a.targets.join(', '))}</small></td><td>${weak}</td><td>${ms(a.toleranceMs)}</td><td>${vm}</td><td>${suites}</td></tr>`;
  });
  const hist = r.applications.flatMap((a) =>
    a.history.map((h) => {
      const probes = [...new Set(h.runs.flatMap((x) => Object.keys(x.breakingPoints)))];
      return `<h3>${esc(a.application)} — ${esc(h.suite)}</h3><table><tr><th>run</th><th>target</th>${probes.map((p) => `<th>${esc(p)}<br><small>survived / failed</small></th>`).join('')}</tr>${h.runs.map((x) => `<tr><td>${esc(x.at)}${x.campaign ? `<br><small>${esc(x.campaign)}</small>` : ''}</td><td>${esc(x.target ?? '–')}</td>${probes.map((p) => `<td>${ms(x.breakingPoints[p]?.maxSurvivedMs ?? null)} / ${ms(x.breakingPoints[p]?.minFailedMs ?? null)}</td>`).join('')}</tr>`).join('')}</table>`;
    }),
  );
  const sl = shardsLine(r);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fleet report: ${esc(r.campaign)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}.lv-safe{color:#1a7f37}.lv-limited{color:#9a6700}.lv-unsafe{color:#cf222e}small{color:#666}</style></head>
<body><h1>Fleet report: ${esc(r.campaign)}</h1><p>${r.applications.length} application(s). Tolerance: the longest blackout every session of the application survived.</p>${sl ? `<p>${esc(sl)}</p>` : ''}
<table><tr><th>application</th><th>weakest session</th><th>tolerance</th><th>largest VM per storage link</th><th>suites (their own reports)</th></tr>${rows.join('')}</table>
<h2>History</h2>${r.source === 'shards' ? `<p>${esc(HISTORY_NEEDS_STORE)}</p>` : ''}${hist.join('')}</body></html>`;
}

/** fleet-report.json, .md and .html into outDir; returns the Markdown and the files */
export function writeFleetFiles(outDir: string, r: FleetReport): { md: string; files: string[] } {
  mkdirSync(outDir, { recursive: true });
  const files = ['fleet-report.html', 'fleet-report.json', 'fleet-report.md'].map((f) => join(outDir, f));
  writeFileSync(files[1]!, JSON.stringify(r, null, 2) + '\n');
  const md = fleetMarkdown(r);
  writeFileSync(files[2]!, md);
  writeFileSync(files[0]!, fleetHtml(r));
  return { md, files };
}

export async function writeFleetReport(url: string, campaign: string, out: string): Promise<number> {
  const outDir = resolve(out);
  let r;
  try {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    const found = await c.query(`select 1 from ${SCHEMA}.campaigns where name = $1`, [campaign]).catch(() => ({ rowCount: 0 }));
    await c.end();
    if (!found.rowCount) {
      process.stderr.write(`--campaign: no campaign "${campaign}" in the store\n`);
      return EXIT.badInput;
    }
    r = await buildFleetReport(url, campaign, outDir);
  } catch (e) {
    process.stderr.write(`results store ${redactUrl(url)}: ${(e as Error).message}\n`);
    return 1;
  }
  const { md, files } = writeFleetFiles(outDir, r);
  process.stdout.write(`${md}\n${files.join('\n')}\n`);
  return EXIT.ok;
}
