/** Shared pieces of the benchmarks: stats, the machine's description, the results file. */
import { cpus, totalmem, release, loadavg } from 'node:os';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { labUp, labDown, type LabState } from '../src/lab/lab.ts';

export const BENCH_DIR = new URL('.', import.meta.url).pathname;
export const RESULTS_DIR = join(BENCH_DIR, 'results');

export function stats(values: number[]): { n: number; mean: number; p50: number; p95: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN);
  return { n: s.length, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1), p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.at(-1) ?? NaN };
}

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node ${process.version}`;
}

export interface BenchResult {
  name: string;
  title: string;
  date: string;
  machine: string;
  /** the machine's load averages while it was measured (1 / 5 / 15 min, at the start and at the end) */
  load?: string;
  /** markdown table rows (with header) */
  table: string[];
  /** goal lines: met or not, with the figure */
  goals: Array<{ goal: string; met: boolean; figure: string }>;
  notes?: string[];
  raw: unknown;
}

export function saveResult(r: BenchResult): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${r.name}.json`), JSON.stringify(r, null, 2) + '\n');
  writeResultsMd();
}

/** RESULTS.md is rebuilt from every result on disk, so one benchmark can run alone. */
export function writeResultsMd(): void {
  const files = existsSync(RESULTS_DIR)
    ? readdirSync(RESULTS_DIR)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];
  const order = ['accuracy', 'scale', 'search', 'report-speed', 'ingest', 'fleet', 'startup'];
  const results = files.map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as BenchResult).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const out = [
    '# blackout benchmarks',
    '',
    'Written by `npm run bench` (one benchmark: `npm run bench -- accuracy|scale|search|report-speed|ingest|fleet|startup`). Raw figures: `bench/results/*.json`.',
    '',
  ];
  for (const r of results) {
    out.push(`## ${r.title}`, '', `${r.date} · ${r.machine}${r.load ? ` · load average ${r.load}` : ''}`, '', ...r.table, '');
    for (const g of r.goals) out.push(`- ${g.met ? '✅ met' : '❌ not met'}: ${g.goal} — ${g.figure}`);
    if (r.notes?.length) out.push('', ...r.notes.map((n) => `> ${n}`));
    out.push('');
  }
  writeFileSync(join(BENCH_DIR, 'RESULTS.md'), out.join('\n'));
}

export const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');

/**
 * A lab name for a benchmark, with BLACKOUT_TEST_LAB_TAG appended when set (as
 * the tests do): several checkouts can run benchmarks on one machine at once.
 */
export function benchLab(base: string): string {
  const tag = process.env.BLACKOUT_TEST_LAB_TAG ?? '';
  if (!tag) return base;
  return `${base.slice(0, 16 - tag.length - 1)}-${tag}`;
}

/** The 1-, 5- and 15-minute load averages, for beside a figure measured on a shared machine. */
export function load(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}

/** How many times each figure is measured (its median, min and max are reported): BENCH_RUNS, default 3. */
export function runs(): number {
  const n = Number(process.env.BENCH_RUNS ?? 3);
  return Number.isInteger(n) && n >= 1 ? n : 3;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const m = v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  return { median: m, min: v[0]!, max: v.at(-1)!, n: v.length };
}

/** "median (min–max)" */
export function fs1(s: Spread, digits = 1): string {
  if (!Number.isFinite(s.median)) return '–';
  return s.n > 1 ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})` : s.median.toFixed(digits);
}

/** a ratio "×0.83" (a / b) */
export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `×${(a / b).toFixed(2)}` : '–';
}

/**
 * The figures before issue 15's work (bench/baseline.json, measured by the
 * previous version of these benchmarks): each new figure is shown as a ratio
 * against them.
 */
export function baseline(): Record<string, number> {
  const p = join(BENCH_DIR, 'baseline.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as { figures: Record<string, number> }).figures : {};
}

/**
 * labUp, tried up to three times: on a loaded machine a lab server can take
 * longer than the lab's start-up wait to answer (a failed attempt leaves
 * nothing behind: labUp cleans up after itself, and labDown makes sure).
 */
export async function benchLabUp(name: string): Promise<LabState> {
  for (let i = 1; ; i++) {
    try {
      return await labUp(name);
    } catch (e) {
      if (i >= 3) throw e;
      process.stdout.write(`  lab ${name} did not come up (${(e as Error).message}); again\n`);
      await labDown(name).catch(() => {});
    }
  }
}
