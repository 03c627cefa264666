/**
 * Startup: the time from `blackout --version` to its exit, for blackout
 * installed from its package (compiled JavaScript, plain node) and for a
 * checkout (`node bin/blackout.mjs`: the TypeScript sources through tsx),
 * interleaved run after run so a change in the machine's load falls on both.
 * No lab; it packs and installs into a private prefix and removes it.
 */
import { join } from 'node:path';
import { packAndInstall, run } from '../test/helpers/packed.ts';
import { ROOT } from '../test/helpers/lab.ts';
import { machine, saveResult, load, runs, spread, ratio } from './common.ts';

export async function startup(): Promise<void> {
  const loadBefore = load();
  const packed = await packAndInstall();
  try {
    const n = Math.max(5, runs());
    const compiled: number[] = [];
    const sources: number[] = [];
    let ok = true;
    for (let i = 0; i < n; i++) {
      const c = await run(packed.blackout, ['--version'], packed.prefix, 60_000);
      const s = await run(process.execPath, [join(ROOT, 'bin/blackout.mjs'), '--version'], ROOT, 60_000);
      ok &&= c.code === 0 && s.code === 0;
      compiled.push(c.ms);
      sources.push(s.ms);
      process.stdout.write(`  [${i + 1}] installed ${c.ms.toFixed(0)} ms, checkout ${s.ms.toFixed(0)} ms\n`);
    }
    const c = spread(compiled);
    const s = spread(sources);
    const ms = (v: { median: number; min: number; max: number }) => `${v.median.toFixed(0)} (${v.min.toFixed(0)}–${v.max.toFixed(0)})`;
    saveResult({
      name: 'startup',
      title: 'Startup: `blackout --version`, installed from the package vs a checkout',
      date: new Date().toISOString(),
      machine: machine(),
      load: `${loadBefore} at the start, ${load()} at the end`,
      table: [
        `| how blackout runs | wall ms, median of ${n} (min–max) | vs the checkout |`,
        '|---|---|---|',
        `| installed from the package (dist/, plain node) | ${ms(c)} | ${ratio(c.median, s.median)} |`,
        `| a checkout (src/ through tsx) | ${ms(s)} | – |`,
      ],
      goals: [
        {
          goal: 'the installed package starts faster than a checkout (no TypeScript compile at start)',
          met: ok && c.median < s.median,
          figure: `${c.median.toFixed(0)} ms vs ${s.median.toFixed(0)} ms`,
        },
      ],
      notes: [`npm pack ${(packed.pack.ms / 1000).toFixed(1)} s, npm install -g (no install scripts, npm cache warm) ${(packed.install.ms / 1000).toFixed(1)} s`],
      raw: { compiled, sources },
    });
  } finally {
    packed.cleanup();
  }
}
