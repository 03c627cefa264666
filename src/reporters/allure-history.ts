/**
 * Allure history carried between runs of the same suite. Allure keeps a
 * test's history (its status in earlier runs, the trend charts) by reading
 * `history/` in the results folder it is given; it writes the updated history
 * into the report's `history/`. So when a run's allure-results/ is written,
 * the previous run of the same suite is looked for beside it (run folders
 * share a parent: reports/<date>-<suite> by default) and its history is put
 * into this run's allure-results/history/:
 *  - the previous run's allure-report/history/ when it was built (`report
 *    --allure`): Allure's own files, copied;
 *  - else the history that run carried, with that run's own results folded
 *    in as Allure would (the same history.json and history-trend.json
 *    format), so a run whose report was never built still passes its
 *    statuses on.
 * "The same suite": the suite name of run-start; "previous": the latest
 * earlier run-start wall time (never a later run, so rebuilding an old run's
 * reports gives the same history). With a results store the previous run
 * may have run on another host: the store keeps each run's history for the
 * next one (store/allure-history.ts), and the later of the two is carried.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

/** Allure's own history files (allure-report/history/) */
const ALLURE_HISTORY_FILES = ['history.json', 'history-trend.json', 'duration-trend.json', 'categories-trend.json', 'retry-trend.json'];
/** how many earlier runs a test's history and the trend keep (Allure's own default) */
const HISTORY_LIMIT = 20;

type Status = 'passed' | 'failed' | 'broken' | 'skipped' | 'unknown';
type Statistic = Record<Status | 'total', number>;
interface HistoryItem {
  uid: string;
  status: Status;
  /** the result's status message (Allure's history holds the text, not the result's object) */
  statusDetails?: string;
  time: { start: number; stop: number; duration: number };
}
export type AllureHistory = Record<string, { statistic: Statistic; items: HistoryItem[] }>;
export interface TrendEntry {
  buildOrder?: number;
  reportName?: string;
  reportUrl?: string;
  data: Statistic;
}

const zero = (): Statistic => ({ failed: 0, broken: 0, skipped: 0, passed: 0, unknown: 0, total: 0 });
const STATUSES = new Set<Status>(['passed', 'failed', 'broken', 'skipped', 'unknown']);

/** the run-start of a run folder (its first line), or null */
export function runStartOf(dir: string): { suite: string; target: string | null; wallMs: number; runId: string; shard: string | null } | null {
  const path = join(dir, 'events.jsonl');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    // run-start carries the suite's config: a few KiB, rarely more (read until its newline, at most 4 MiB)
    const parts: Buffer[] = [];
    let size = 0;
    let nl = -1;
    while (nl < 0 && size < 4 << 20) {
      const buf = Buffer.allocUnsafe(16 << 10);
      const n = readSync(fd, buf, 0, buf.length, size);
      if (n === 0) break;
      const got = buf.subarray(0, n);
      const at = got.indexOf(10);
      if (at >= 0) nl = size + at;
      parts.push(got);
      size += n;
    }
    const text = Buffer.concat(parts)
      .subarray(0, nl < 0 ? size : nl)
      .toString('utf8');
    const e = JSON.parse(text) as { type?: unknown; suite?: unknown; target?: { name?: unknown }; wallMs?: unknown; runId?: unknown; shard?: { index?: unknown; total?: unknown } };
    if (e.type !== 'run-start' || typeof e.suite !== 'string' || typeof e.wallMs !== 'number' || typeof e.runId !== 'string') return null;
    return {
      suite: e.suite,
      target: typeof e.target?.name === 'string' ? e.target.name : null,
      wallMs: e.wallMs,
      runId: e.runId,
      shard: e.shard ? `${String(e.shard.index)}/${String(e.shard.total)}` : null,
    };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * The folder of the previous run of `suite` against the same target beside
 * `runDir`, or in one of the `alsoIn` folders (a worker's other campaigns),
 * started before `startedWallMs`, the latest such; or null. A run of the same
 * suite against another target is another application's history. A shard
 * (`run --shard i/n`) follows the same shard of an earlier sweep, never
 * another shard of its own sweep (they run side by side); a whole run follows
 * a whole run.
 */
export function previousRunDir(runDir: string, suite: string, startedWallMs: number, alsoIn: readonly string[] = []): string | null {
  const self = resolve(runDir);
  const own = runStartOf(self);
  const shard = own?.shard ?? null;
  const target = own?.target ?? null;
  let best: { dir: string; wallMs: number } | null = null;
  for (const parent of new Set([dirname(self), ...alsoIn.map((d) => resolve(d))])) {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      const dir = join(parent, name);
      if (dir === self) continue;
      try {
        if (!statSync(dir).isDirectory()) continue;
      } catch {
        continue;
      }
      const s = runStartOf(dir);
      if (!s || s.suite !== suite || s.target !== target || s.shard !== shard || !(s.wallMs < startedWallMs)) continue;
      if (!best || s.wallMs > best.wallMs) best = { dir, wallMs: s.wallMs };
    }
  }
  return best?.dir ?? null;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

interface ResultKeyFields {
  testCaseId?: string;
  fullName?: string;
  historyId?: string;
  parameters?: Array<{ name?: string; value?: string; excluded?: boolean }>;
}

/**
 * The key Allure (2.2x and later) files a test's history under: the MD5 of
 * its test case id, a dot, and the MD5 of its parameters that are not
 * excluded, sorted, as name:value joined by commas (what allure generate
 * computes; the result's own historyId is only its fallback).
 */
export function allureHistoryKey(r: ResultKeyFields): string | null {
  const id = r.testCaseId ?? r.fullName ?? r.historyId;
  if (!id) return null;
  const params = (r.parameters ?? [])
    .filter((p) => p && typeof p.name === 'string' && p.name !== '' && p.excluded !== true)
    .map((p) => ({ name: p.name!, value: p.value ?? '#___unknown_value___#' }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return `${md5(id)}.${md5(params.map((p) => `${p.name}:${p.value}`).join(','))}`;
}

export type ResultRecord = ResultKeyFields & { uuid?: string; status?: Status; statusDetails?: { message?: unknown }; start?: number; stop?: number };

/** What the next run of a suite carries: this run's history with its own results folded in. */
export interface NextHistory {
  history: AllureHistory;
  trend: TrendEntry[];
}

/**
 * A results folder's history with its own results folded in, as `allure
 * generate` would write it into the report's history/. (A run being written
 * folds the results it has in memory: see foldIntoHistory.)
 */
export function foldResultsIntoHistory(resultsDir: string, runName: string): NextHistory {
  const results = readdirSync(resultsDir)
    .filter((f) => f.endsWith('-result.json'))
    .map((f) => readJson<ResultRecord>(join(resultsDir, f)));
  const prior = { history: readJson<AllureHistory>(join(resultsDir, 'history', 'history.json')), trend: readJson<TrendEntry[]>(join(resultsDir, 'history', 'history-trend.json')) };
  return foldIntoHistory(prior, results, runName);
}

/** The history `prior` (as carried into the run) with the run's `results` folded in; pure. */
export function foldIntoHistory(prior: { history: AllureHistory | null; trend: TrendEntry[] | null }, results: Iterable<ResultRecord | null>, runName: string): NextHistory {
  const history: AllureHistory = prior.history ?? {};
  const trend = Array.isArray(prior.trend) ? prior.trend : [];
  const data = zero();
  // results under one key are one test and its retries: Allure keeps the latest
  const latest = new Map<string, ResultRecord & { uuid: string }>();
  for (const r of results) {
    const key = r && allureHistoryKey(r);
    if (!r || !key || !r.uuid) continue;
    const had = latest.get(key);
    if (!had || (r.stop ?? 0) >= (had.stop ?? 0)) latest.set(key, { ...r, uuid: r.uuid });
  }
  for (const [key, r] of latest) {
    const status: Status = r.status && STATUSES.has(r.status) ? r.status : 'unknown';
    data[status]++;
    data.total++;
    const h = (history[key] ??= { statistic: zero(), items: [] });
    h.statistic = { ...zero(), ...h.statistic };
    h.statistic[status]++;
    h.statistic.total++;
    const start = r.start ?? 0;
    const stop = r.stop ?? start;
    const message = r.statusDetails?.message;
    h.items = [{ uid: r.uuid, status, ...(typeof message === 'string' && message ? { statusDetails: message } : {}), time: { start, stop, duration: stop - start } }, ...(h.items ?? [])].slice(
      0,
      HISTORY_LIMIT,
    );
  }
  const order = Math.max(0, ...trend.map((t) => t.buildOrder ?? 0)) + 1;
  return { history, trend: [{ buildOrder: order, reportName: runName, data }, ...trend].slice(0, HISTORY_LIMIT) };
}

/** A history/ file for allure-results/: its name under history/ and its content or a file to copy. */
export interface HistoryFile {
  name: string;
  content?: string;
  copyFrom?: string;
}

/** History carried into a run: its files, and the run they came from (a folder, or a run in the store) with its start */
export interface CarriedHistory {
  from: string | null;
  /** run-start wall time of the run it came from */
  wallMs: number | null;
  files: HistoryFile[];
}

/**
 * The history/ files this run's allure-results/ carries from the previous run
 * of the same suite (empty when there is none), and which run they came from.
 * `alsoIn`: more folders of run folders to look in (see previousRunDir).
 */
export function carriedHistory(runDir: string, suite: string, startedWallMs: number, alsoIn: readonly string[] = []): CarriedHistory {
  const prev = previousRunDir(runDir, suite, startedWallMs, alsoIn);
  if (!prev) return { from: null, wallMs: null, files: [] };
  const wallMs = runStartOf(prev)?.wallMs ?? null;
  const built = join(prev, 'allure-report', 'history');
  if (existsSync(join(built, 'history.json'))) {
    return { from: prev, wallMs, files: ALLURE_HISTORY_FILES.filter((f) => existsSync(join(built, f))).map((f) => ({ name: f, copyFrom: join(built, f) })) };
  }
  const results = join(prev, 'allure-results');
  if (!existsSync(results)) return { from: prev, wallMs, files: [] };
  const { history, trend } = foldResultsIntoHistory(results, basename(prev));
  return {
    from: prev,
    wallMs,
    files: [
      { name: 'history.json', content: JSON.stringify(history) },
      { name: 'history-trend.json', content: JSON.stringify(trend) },
    ],
  };
}
