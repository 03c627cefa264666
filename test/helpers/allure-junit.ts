/**
 * A real JUnit reader: Allure's own (allure-commandline, the project's
 * dependency). `allure generate` over a folder of JUnit XML files (or of
 * allure-results) and read back what it counted, in total and per suite.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allureCli } from '../../src/reporters/allure.ts';

export interface AllureStatistic {
  failed: number;
  broken: number;
  skipped: number;
  passed: number;
  unknown: number;
  total: number;
}

export interface AllureRead {
  total: AllureStatistic;
  /** per suite (JUnit: the testsuite's name; allure-results: the suite label) */
  suites: Record<string, AllureStatistic>;
  /** category name → how many results it holds */
  categories: Record<string, number>;
}

/** Runs `allure generate IN -o OUT` and reads its counts. */
export function allureRead(input: string, out: string): Promise<AllureRead> {
  return new Promise((res, rej) => {
    const child = spawn(allureCli(), ['generate', input, '-o', out, '--clean'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return rej(new Error(`allure generate exited ${code}: ${output}`));
      const total = (JSON.parse(readFileSync(join(out, 'widgets', 'summary.json'), 'utf8')) as { statistic: AllureStatistic }).statistic;
      const suites: Record<string, AllureStatistic> = {};
      type Node = { name: string; status?: keyof AllureStatistic; children?: Node[] };
      const tree = JSON.parse(readFileSync(join(out, 'data', 'suites.json'), 'utf8')) as Node;
      const leaves = (n: Node): Node[] => (n.children ? n.children.flatMap(leaves) : [n]);
      // JUnit: suites → testsuite → cases; allure-results: suites → parentSuite "blackout" → suite → subSuite → cases
      const level = (tree.children ?? []).flatMap((n) => (n.name === 'blackout' && n.children ? n.children : [n]));
      for (const s of level) {
        const st: AllureStatistic = { failed: 0, broken: 0, skipped: 0, passed: 0, unknown: 0, total: 0 };
        for (const l of leaves(s)) {
          st[l.status ?? 'unknown']++;
          st.total++;
        }
        suites[s.name] = st;
      }
      const categories: Record<string, number> = {};
      const cat = JSON.parse(readFileSync(join(out, 'data', 'categories.json'), 'utf8')) as Node;
      for (const c of cat.children ?? []) categories[c.name] = leaves(c).length;
      res({ total, suites, categories });
    });
  });
}
