/**
 * Report speed: a synthetic event log of 1 M events (a long run with many
 * probes); analysis plus every reporter, wall time and peak memory.
 */
import { mkdtempSync, openSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { machine, saveResult, f1 } from './common.ts';

export function writeSyntheticLog(path: string, target: number): number {
  const fd = openSync(path, 'w');
  const probes = Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: { reconnect: 'none' } }));
  const lines: string[] = [JSON.stringify({ type: 'run-start', t: 0, schema: 1, runId: 'synthetic', suite: 'synthetic 1M', config: {}, wallMs: Date.UTC(2026, 0, 1), host: 'bench', target: { name: 'lab', address: '10.213.0.2' }, injector: { kind: 'cable-pull' }, probes, version: '0' })];
  let count = 1;
  let t = 0;
  let trial = 0;
  const flush = () => {
    writeSync(fd, lines.join('\n') + '\n');
    lines.length = 0;
  };
  while (count < target) {
    const len = 2000 + (trial % 10) * 1000;
    lines.push(JSON.stringify({ type: 'trial-start', t, trial, requestedMs: len }));
    const cut = t + 3000;
    const restore = cut + len;
    const end = restore + 5000;
    for (let s = t; s < end && count < target; s += 100) {
      for (const p of probes) {
        if (s > cut && s < restore + 1500) continue;
        lines.push(JSON.stringify({ type: 'sample', t: s + Math.random(), probe: p.name, trial, latencyMs: 0.3 }));
        count++;
      }
      if (s <= cut && s + 100 > cut) lines.push(JSON.stringify({ type: 'cut', t: cut, before: cut - 0.5, deadline: restore + 500, trial }));
      if (s <= restore && s + 100 > restore) lines.push(JSON.stringify({ type: 'restore', t: restore, before: restore - 0.5, trial, reason: 'scheduled' }));
      if (lines.length > 5000) flush();
    }
    lines.push(JSON.stringify({ type: 'trial-end', t: end, trial }));
    count += 4;
    t = end + 1000;
    trial++;
  }
  lines.push(JSON.stringify({ type: 'run-end', t, exitCode: 0, reason: 'completed' }));
  flush();
  closeSync(fd);
  return count;
}

/** Builds every report of a synthetic log of `n` events in a separate process (its peak RSS is the report's alone). */
function measure(n: number): { count: number; size: number; secs: number; kb: number; ok: boolean; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  const count = writeSyntheticLog(join(dir, 'events.jsonl'), n);
  const size = statSync(join(dir, 'events.jsonl')).size;
  const bin = new URL('../bin/blackout.mjs', import.meta.url).pathname;
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, bin, 'report', dir], { encoding: 'utf8' });
  const [secs, kb] = (r.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { count, size, secs: secs ?? NaN, kb: kb ?? NaN, ok: r.status === 0, stderr: r.stderr.slice(-1000) };
}

export async function reportSpeed(): Promise<void> {
  // a quarter-size log beside the full one: memory that does not grow with the log stays flat between them
  const small = measure(250_000);
  const big = measure(1_000_000);
  const row = (m: typeof big) => `| ${m.count} | ${f1(m.size / 2 ** 20)} MiB | ${f1(m.secs)} | ${f1(m.kb / 1024)} | ${m.ok ? 0 : 'failed'} |`;
  const growth = big.kb / small.kb;
  saveResult({
    name: 'report-speed',
    title: 'Report speed: analysis + every reporter (summary, JUnit, Markdown, HTML, Allure results) on synthetic logs',
    date: new Date().toISOString(),
    machine: machine(),
    table: ['| events | log size | wall time (s) | peak RSS (MiB) | exit |', '|---|---|---|---|---|', row(small), row(big)],
    goals: [
      { goal: '≤ 3 s for analysis + every reporter on 1 M events', met: big.ok && big.secs <= 3, figure: `${f1(big.secs)} s` },
      { goal: 'memory does not grow with the log (streamed)', met: big.ok && growth < 1.5, figure: `${f1(small.kb / 1024)} MiB at ${small.count} events, ${f1(big.kb / 1024)} MiB at ${big.count} (×${growth.toFixed(2)} for ×4 the log)` },
    ],
    notes: [
      'The 1 M-event log is 50 probes × ~300 trials: besides the analysis (one JSON.parse per line, a fold into per-trial accumulators) the reporters write ~15 000 Allure results, one file per probe per trial; Node and the TypeScript loader take ~0.7 s to start.',
      ...(big.ok ? [] : [`blackout report failed: ${big.stderr}`]),
    ],
    raw: { small, big },
  });
}
