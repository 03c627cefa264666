/**
 * `blackout report --store … --campaign NAME`: the fleet report. For every
 * job of the campaign its run is rebuilt from the store (the raw events of
 * every attempt, keeping of each attempt only the trials the store counted
 * for it), so the job's own full report (report.html, summary.json, …) sits
 * under runs/<job>/ beside the fleet report, whichever workers' disks the
 * attempts ran on. The fleet report has a row per application (its weakest
 * session, its tolerance, the largest VM it may have per storage link, its
 * suites' verdicts with links to their reports) and, per application and
 * suite, the history of its breaking points across every run in the store
 * (so a regression after an application upgrade shows).
 */
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { BlackoutEvent } from '../core/events.ts';
import { writeReports } from '../reporters/index.ts';
import { SCHEMA } from '../store/migrations.ts';
import { redactUrl } from '../store/store-url.ts';
import { EXIT } from '../run/runner.ts';

interface JobRow {
  job_id: string;
  target: string;
  application: string;
  suite_name: string;
  state: string;
  planned_trials: number;
}

export interface FleetJobEntry {
  job: string;
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
}

export interface FleetApplication {
  application: string;
  target: string;
  weakest: FleetJobEntry['weakest'];
  toleranceMs: number | null;
  quickMigration: FleetJobEntry['quickMigration'];
  jobs: FleetJobEntry[];
  history: Array<{ suite: string; runs: Array<{ at: string; campaign: string | null; breakingPoints: Record<string, { maxSurvivedMs: number | null; minFailedMs: number | null }> }> }>;
}

interface SummaryLike {
  verdict?: { level: string; headline: string; quickMigration?: Array<{ link: string; safeUpToBytes: number; text: string }> };
  probes?: Record<string, { maxSurvivedMs: number | null; minFailedMs: number | null }>;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

/** the job's run, rebuilt from the store into dir (events of every attempt; only counted trials) */
async function rebuildJobRun(c: pg.Client, jobId: string, dir: string): Promise<boolean> {
  const runs = (
    await c.query<{ run_id: string; run_key: string; wall_ms: number; run_start: BlackoutEvent }>(
      `select run_id, run_key, wall_ms, run_start from ${SCHEMA}.runs where job_id = $1 order by started_at`,
      [jobId],
    )
  ).rows;
  if (!runs.length) return false;
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
  return true;
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

/** tolerance: the longest blackout every session survived */
function toleranceOf(s: SummaryLike): number | null {
  const v = Object.values(s.probes ?? {}).map((p) => p.maxSurvivedMs);
  if (!v.length || v.some((x) => x === null)) return v.length ? null : null;
  return Math.min(...(v as number[]));
}

export async function buildFleetReport(url: string, campaign: string, outDir: string): Promise<{ applications: FleetApplication[]; campaign: string }> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    const jobs = (
      await c.query<JobRow>(`select job_id, target, application, suite_name, state, planned_trials from ${SCHEMA}.campaign_jobs where campaign = $1 order by application, job_id`, [campaign])
    ).rows;
    const apps = new Map<string, FleetApplication>();
    for (const j of jobs) {
      const dir = join(outDir, 'runs', slug(j.job_id.slice(campaign.length + 1)));
      const built = existsSync(join(dir, 'events.jsonl')) || (await rebuildJobRun(c, j.job_id, dir));
      const summary: SummaryLike | null =
        built && existsSync(join(dir, 'summary.json')) ? (JSON.parse((await import('node:fs')).readFileSync(join(dir, 'summary.json'), 'utf8')) as SummaryLike) : null;
      const attempts = Number((await c.query<{ n: string }>(`select count(*) n from ${SCHEMA}.runs where job_id = $1`, [j.job_id])).rows[0]!.n);
      const trials = Number((await c.query<{ n: string }>(`select count(*) n from ${SCHEMA}.trials where job_id = $1`, [j.job_id])).rows[0]!.n);
      const entry: FleetJobEntry = {
        job: j.job_id.slice(campaign.length + 1),
        suite: j.suite_name,
        state: j.state,
        verdict: summary?.verdict ? { level: summary.verdict.level, headline: summary.verdict.headline } : null,
        weakest: summary ? weakestOf(summary) : null,
        toleranceMs: summary ? toleranceOf(summary) : null,
        quickMigration: summary?.verdict?.quickMigration ?? [],
        report: built ? join('runs', slug(j.job_id.slice(campaign.length + 1)), 'report.html') : null,
        attempts,
        trials,
        plannedTrials: j.planned_trials,
      };
      const app = apps.get(j.application) ?? { application: j.application, target: j.target, weakest: null, toleranceMs: null, quickMigration: [], jobs: [], history: [] };
      app.jobs.push(entry);
      apps.set(j.application, app);
    }
    for (const app of apps.values()) {
      // the application's figures: its weakest session over all its suites
      const withData = app.jobs.filter((j) => j.weakest);
      withData.sort((a, b) => (a.weakest!.minFailedMs ?? Infinity) - (b.weakest!.minFailedMs ?? Infinity));
      app.weakest = withData[0]?.weakest ?? null;
      const tol = app.jobs.map((j) => j.toleranceMs);
      app.toleranceMs = tol.length && tol.every((t) => t !== null) ? Math.min(...(tol as number[])) : null;
      const byLink = new Map<string, FleetJobEntry['quickMigration'][number]>();
      for (const q of app.jobs.flatMap((j) => j.quickMigration)) if (!byLink.has(q.link) || byLink.get(q.link)!.safeUpToBytes > q.safeUpToBytes) byLink.set(q.link, q);
      app.quickMigration = [...byLink.values()];
      // history: every stored run of this target's suites, in time (any campaign, or none)
      for (const suite of [...new Set(app.jobs.map((j) => j.suite))]) {
        const { rows } = await c.query<{ started_at: Date; campaign: string | null; summary: SummaryLike | null }>(
          `select started_at, campaign, summary from ${SCHEMA}.runs where suite = $1 and (job_target = $2 or job_target is null) and summary is not null order by started_at`,
          [suite, app.target],
        );
        app.history.push({
          suite,
          runs: rows.map((r) => ({
            at: new Date(r.started_at).toISOString(),
            campaign: r.campaign,
            breakingPoints: Object.fromEntries(Object.entries(r.summary?.probes ?? {}).map(([k, p]) => [k, { maxSurvivedMs: p.maxSurvivedMs, minFailedMs: p.minFailedMs }])),
          })),
        });
      }
    }
    return { campaign, applications: [...apps.values()] };
  } finally {
    await c.end();
  }
}

const ms = (v: number | null) => (v === null ? '–' : v >= 1000 ? `${(v / 1000).toFixed(v % 1000 ? 1 : 0)} s` : `${Math.round(v)} ms`);
const bytes = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);
const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

export function fleetMarkdown(r: { campaign: string; applications: FleetApplication[] }): string {
  const out = [`# Fleet report: ${r.campaign}`, '', '| application | weakest session | tolerance | largest VM per storage link | suites |', '| --- | --- | --- | --- | --- |'];
  for (const a of r.applications) {
    const weak = a.weakest ? `${a.weakest.probe} (fails at ${ms(a.weakest.minFailedMs)}, survived ${ms(a.weakest.maxSurvivedMs)})` : '–';
    const vm = a.quickMigration.map((q) => `${q.link}: ${bytes(q.safeUpToBytes)}`).join('; ') || '–';
    const suites = a.jobs.map((j) => `[${j.suite}](${j.report ?? '#'}): ${j.verdict?.headline ?? j.state}`).join('<br>');
    out.push(`| ${a.application} | ${weak} | ${ms(a.toleranceMs)} | ${vm} | ${suites.replace(/\|/g, '/')} |`);
  }
  out.push('', '## History (breaking points per run)');
  for (const a of r.applications) {
    for (const h of a.history) {
      out.push('', `### ${a.application} — ${h.suite}`, '', '| run | probe: survived / failed |', '| --- | --- |');
      for (const run of h.runs)
        out.push(
          `| ${run.at}${run.campaign ? ` (${run.campaign})` : ''} | ${Object.entries(run.breakingPoints)
            .map(([p, b]) => `${p}: ${ms(b.maxSurvivedMs)} / ${ms(b.minFailedMs)}`)
            .join(', ')} |`,
        );
    }
  }
  return out.join('\n') + '\n';
}

export function fleetHtml(r: { campaign: string; applications: FleetApplication[] }): string {
  const rows = r.applications.map((a) => {
    const weak = a.weakest ? `${esc(a.weakest.probe)} <small>fails at ${ms(a.weakest.minFailedMs)}, survived ${ms(a.weakest.maxSurvivedMs)}</small>` : '–';
    const vm = a.quickMigration.map((q) => `${esc(q.link)}: ${bytes(q.safeUpToBytes)}`).join('<br>') || '–';
    const suites = a.jobs
      .map(
        (j) =>
          `<a href="${esc(j.report ?? '#')}">${esc(j.suite)}</a> <span class="lv-${esc(j.verdict?.level ?? 'no-data')}">${esc(j.verdict?.headline ?? j.state)}</span>${j.attempts > 1 ? ` <small>(${j.attempts} attempts)</small>` : ''}`,
      )
      .join('<br>');
    return `<tr><td>${esc(a.application)}<br><small>${esc(a.target)}</small></td><td>${weak}</td><td>${ms(a.toleranceMs)}</td><td>${vm}</td><td>${suites}</td></tr>`;
  });
  const hist = r.applications.flatMap((a) =>
    a.history.map((h) => {
      const probes = [...new Set(h.runs.flatMap((x) => Object.keys(x.breakingPoints)))];
      return `<h3>${esc(a.application)} — ${esc(h.suite)}</h3><table><tr><th>run</th>${probes.map((p) => `<th>${esc(p)}<br><small>survived / failed</small></th>`).join('')}</tr>${h.runs.map((x) => `<tr><td>${esc(x.at)}${x.campaign ? `<br><small>${esc(x.campaign)}</small>` : ''}</td>${probes.map((p) => `<td>${ms(x.breakingPoints[p]?.maxSurvivedMs ?? null)} / ${ms(x.breakingPoints[p]?.minFailedMs ?? null)}</td>`).join('')}</tr>`).join('')}</table>`;
    }),
  );
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fleet report: ${esc(r.campaign)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}.lv-safe{color:#1a7f37}.lv-limited{color:#9a6700}.lv-unsafe{color:#cf222e}small{color:#666}</style></head>
<body><h1>Fleet report: ${esc(r.campaign)}</h1><p>${r.applications.length} application(s). Tolerance: the longest blackout every session of the application survived.</p>
<table><tr><th>application</th><th>weakest session</th><th>tolerance</th><th>largest VM per storage link</th><th>suites (their own reports)</th></tr>${rows.join('')}</table>
<h2>History</h2>${hist.join('')}</body></html>`;
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
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'fleet-report.json'), JSON.stringify(r, null, 2) + '\n');
  const md = fleetMarkdown(r);
  writeFileSync(join(outDir, 'fleet-report.md'), md);
  writeFileSync(join(outDir, 'fleet-report.html'), fleetHtml(r));
  process.stdout.write(`${md}\n${join(outDir, 'fleet-report.html')}\n${join(outDir, 'fleet-report.json')}\n${join(outDir, 'fleet-report.md')}\n`);
  return EXIT.ok;
}
