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

export async function reportSpeed(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
  const count = writeSyntheticLog(join(dir, 'events.jsonl'), 1_000_000);
  const size = statSync(join(dir, 'events.jsonl')).size;
  // a separate process, so its peak RSS is the report's alone
  const bin = new URL('../bin/blackout.mjs', import.meta.url).pathname;
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, bin, 'report', dir], { encoding: 'utf8' });
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  const [secs, kb] = last.split(' ').map(Number);
  const ok = r.status === 0;
  saveResult({
    name: 'report-speed',
    title: 'Report speed: 1 M events, analysis + every reporter',
    date: new Date().toISOString(),
    machine: machine(),
    table: ['| events | log size | wall time (s) | peak RSS (MiB) | exit |', '|---|---|---|---|---|', `| ${count} | ${f1(size / 2 ** 20)} MiB | ${f1(secs ?? NaN)} | ${f1((kb ?? NaN) / 1024)} | ${r.status} |`],
    goals: [
      { goal: '≤ 3 s for analysis + every reporter', met: ok && (secs ?? Infinity) <= 3, figure: `${f1(secs ?? NaN)} s` },
      { goal: 'memory does not grow with the log (streamed)', met: ok && (kb ?? Infinity) / 1024 < 300, figure: `${f1((kb ?? NaN) / 1024)} MiB peak for a ${f1(size / 2 ** 20)} MiB log` },
    ],
    notes: ok ? [] : [`blackout report failed: ${r.stderr.slice(-500)}`],
    raw: { count, size, secs, kb, stderr: r.stderr.slice(-2000) },
  });
}
