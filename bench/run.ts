/**
 * `npm run bench [-- NAME…]`: runs the benchmarks (all, or the named ones) on
 * the lab and rewrites bench/RESULTS.md. Each one is bounded in time.
 */
import { accuracy } from './accuracy.ts';
import { scale } from './scale.ts';
import { reportSpeed } from './report-speed.ts';
import { search } from './search.ts';
import { fleet } from './fleet.ts';
import { startup } from './startup.ts';
import { ingest } from './ingest.ts';

const all: Record<string, () => Promise<void>> = {
  accuracy: () => accuracy(),
  scale: () => scale(),
  search: () => search(),
  'report-speed': () => reportSpeed(),
  ingest: () => ingest(),
  fleet: () => fleet(),
  startup: () => startup(),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length ? wanted : Object.keys(all);
for (const n of names) {
  const fn = all[n];
  if (!fn) {
    process.stderr.write(`unknown benchmark "${n}"; known: ${Object.keys(all).join(', ')}\n`);
    process.exit(2);
  }
  const t0 = Date.now();
  process.stdout.write(`bench ${n}…\n`);
  await fn();
  process.stdout.write(`bench ${n}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
process.stdout.write('results: bench/RESULTS.md\n');
