/** Shared pieces of the benchmarks: stats, the machine's description, the results file. */
import { cpus, totalmem, release } from 'node:os';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

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
  const files = existsSync(RESULTS_DIR) ? readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json')).sort() : [];
  const order = ['accuracy', 'scale', 'search', 'report-speed', 'fleet'];
  const results = files.map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as BenchResult).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const out = ['# blackout benchmarks', '', 'Written by `npm run bench` (one benchmark: `npm run bench -- accuracy|scale|search|report-speed|fleet`). Raw figures: `bench/results/*.json`.', ''];
  for (const r of results) {
    out.push(`## ${r.title}`, '', `${r.date} · ${r.machine}`, '', ...r.table, '');
    for (const g of r.goals) out.push(`- ${g.met ? '✅ met' : '❌ not met'}: ${g.goal} — ${g.figure}`);
    if (r.notes?.length) out.push('', ...r.notes.map((n) => `> ${n}`));
    out.push('');
  }
  writeFileSync(join(BENCH_DIR, 'RESULTS.md'), out.join('\n'));
}

export const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '–');
