/**
 * Where the time of `blackout report` goes, in one process: start-up (the
 * modules the command loads), the fold (read + parse + validate + analysis),
 * each reporter, Allure's files. Wall and CPU time per phase. Run by
 * report-speed.ts as a child: `node bench/report-phases.ts DIR` prints JSON.
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';

const t0 = performance.now();
let c0 = process.cpuUsage();
const phases: Array<{ phase: string; wallMs: number; cpuMs: number }> = [];
let s = t0;
const lap = (phase: string) => {
  const c = process.cpuUsage(c0);
  phases.push({ phase, wallMs: performance.now() - s, cpuMs: (c.user + c.system) / 1000 });
  c0 = process.cpuUsage();
  s = performance.now();
};
// the modules `blackout report` loads (the CLI loads the runner and the probes lazily)
await import('../src/cli/cli.ts');
const { analyzeRunDir, reporters, loadAssets, writeChunks } = await import('../src/reporters/index.ts');
const { writeAllureResults } = await import('../src/reporters/allure.ts');
lap('start-up: modules (after Node and the TypeScript loader)');
const dir = process.argv[2]!;
const { analysis } = analyzeRunDir(dir);
lap('fold: read, parse, validate, analyse');
const assets = loadAssets(dir, analysis);
for (const r of reporters) {
  writeChunks(join(dir, r.file), r.render(analysis, assets));
  lap(r.file);
}
await writeAllureResults(dir, analysis);
lap('allure-results (alone)');
process.stdout.write(JSON.stringify({ phases, rssMiB: process.memoryUsage().rss / 2 ** 20 }) + '\n');
