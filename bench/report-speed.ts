/**
 * Report speed: a synthetic event log of 1 M events (a long run with many
 * probes); analysis plus every reporter, wall time and peak memory.
 */
import { copyFileSync, mkdtempSync, mkdirSync, openSync, writeSync, closeSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { nodeArgv } from '../src/core/runtime.ts';
import { packAndInstall } from '../test/helpers/packed.ts';
import { machine, saveResult, f1, load, runs, spread, fs1, ratio, baseline } from './common.ts';

/**
 * `stretch`: each trial's recovery that many times longer (more samples per
 * trial, the same trials): the log grows without the results growing.
 */
export function writeSyntheticLog(path: string, target: number, stretch = 1): { count: number; trials: number } {
  const fd = openSync(path, 'w');
  const probes = Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, kind: 'tcp', intervalMs: 100, toleranceMs: 500, policy: { reconnect: 'none' } }));
  const lines: string[] = [
    JSON.stringify({
      type: 'run-start',
      t: 0,
      schema: 1,
      runId: 'synthetic',
      suite: 'synthetic 1M',
      config: {},
      wallMs: Date.UTC(2026, 0, 1),
      host: 'bench',
      target: { name: 'lab', address: '10.213.0.2' },
      injector: { kind: 'cable-pull' },
      probes,
      version: '0',
    }),
  ];
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
    const end = restore + 5000 * stretch;
    for (let s = t; s < end && count < target; s += 100) {
      for (const p of probes) {
        if (s > cut && s < restore + 1500) continue;
        // times as the run clock writes them: whole nanoseconds in ms (at most 6 decimals), not 17-digit doubles
        lines.push(JSON.stringify({ type: 'sample', t: Math.round((s + Math.random()) * 1e6) / 1e6, probe: p.name, trial, latencyMs: 0.3 }));
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
  return { count, trials: trial };
}

/** Builds every report of a synthetic log (`blackout report DIR`, a fresh process: its peak RSS is the report's alone). */
/**
 * A fresh run folder with a copy of the log, as `blackout report` meets a
 * run's folder the first time: on this machine's ext4 (mounted with discard)
 * writing 15 456 small files took 0.28 s in a fresh folder and 0.86 s right
 * after deleting as many, a cost of the benchmark's repetition, not of the
 * report. Every copy goes when the benchmark ends.
 */
function fresh(dir: string, tag: string): string {
  const copy = `${dir}-${tag}`;
  mkdirSync(copy);
  copyFileSync(join(dir, 'events.jsonl'), join(copy, 'events.jsonl'));
  return copy;
}

/** the command: the installed package's `blackout` (compiled JavaScript), or null for this checkout (`node bin/blackout.mjs`, its TypeScript through tsx) */
function measure(dir: string, installed: string | null): { secs: number; cpuSecs: number; kb: number; ok: boolean; stderr: string } {
  const cmd = installed ? [process.execPath, installed] : [process.execPath, new URL('../bin/blackout.mjs', import.meta.url).pathname];
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', ...cmd, 'report', dir], { encoding: 'utf8' });
  const [secs, kb, user, sys] = (r.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
  return { secs: secs ?? NaN, cpuSecs: (user ?? NaN) + (sys ?? NaN), kb: kb ?? NaN, ok: r.status === 0, stderr: r.stderr.slice(-1000) };
}

function phases(dir: string): Array<{ phase: string; wallMs: number; cpuMs: number }> {
  const r = spawnSync(process.execPath, [...nodeArgv('./report-phases.ts', import.meta.url), dir], { encoding: 'utf8' });
  try {
    return (JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as { phases: Array<{ phase: string; wallMs: number; cpuMs: number }> }).phases;
  } catch {
    return [];
  }
}

export async function reportSpeed(): Promise<void> {
  const loadBefore = load();
  // measured as users run it: the package installed (compiled JavaScript, plain node); a checkout beside it
  const packed = await packAndInstall();
  const root = mkdtempSync(join(tmpdir(), 'bench-report-'));
  try {
    // a quarter-size log beside the full one: memory that does not grow with the log stays flat between them;
    // and the full size again with the quarter's trials (each 4× as long): what grows with the events alone
    const logs = [
      { n: 250_000, stretch: 1 },
      { n: 1_000_000, stretch: 1 },
      { n: 1_000_000, stretch: 5 },
    ].map(({ n, stretch }) => {
      const dir = join(root, `${n}-${stretch}`);
      mkdirSync(dir);
      const { count, trials } = writeSyntheticLog(join(dir, 'events.jsonl'), n, stretch);
      return { n, dir, count, trials, size: statSync(join(dir, 'events.jsonl')).size };
    });
    // the sizes interleaved, run after run: a change in the machine's load falls on both alike
    const all = logs.map(() => [] as ReturnType<typeof measure>[]);
    const checkout: ReturnType<typeof measure>[] = [];
    for (let r = 0; r < runs(); r++) {
      for (const [i, l] of logs.entries()) {
        const m = measure(fresh(l.dir, `r${r}`), packed.blackout);
        all[i]!.push(m);
        process.stdout.write(`  [${r + 1}] ${l.count} events: ${f1(m.secs)} s wall, ${f1(m.cpuSecs)} s CPU, ${f1(m.kb / 1024)} MiB${m.ok ? '' : ' FAILED'}\n`);
      }
      const c = measure(fresh(logs[1]!.dir, `c${r}`), null);
      checkout.push(c);
      process.stdout.write(`  [${r + 1}] ${logs[1]!.count} events, from the checkout: ${f1(c.secs)} s wall, ${f1(c.cpuSecs)} s CPU, ${f1(c.kb / 1024)} MiB${c.ok ? '' : ' FAILED'}\n`);
    }
    const fromCheckout = { secs: spread(checkout.map((m) => m.secs)), cpu: spread(checkout.map((m) => m.cpuSecs)), mib: spread(checkout.map((m) => m.kb / 1024)), ok: checkout.every((m) => m.ok) };
    const ph = phases(fresh(logs[1]!.dir, 'phases'));
    const base = baseline();
    const [small, big, long] = all.map((ms) => ({
      secs: spread(ms.map((m) => m.secs)),
      cpu: spread(ms.map((m) => m.cpuSecs)),
      mib: spread(ms.map((m) => m.kb / 1024)),
      ok: ms.every((m) => m.ok),
      stderr: ms.find((m) => !m.ok)?.stderr ?? '',
    }));
    const key = (i: number) => (i === 0 ? '250k' : i === 1 ? '1M' : '');
    const row = (i: number) => {
      const l = logs[i]!;
      const m = [small, big, long][i]!;
      const b = base[`report.${key(i)}.secs`];
      const bm = base[`report.${key(i)}.rssMiB`];
      return `| ${l.count} | ${l.trials} | ${f1(l.size / 2 ** 20)} MiB | ${fs1(m.secs)} | ${b ? `${b} → ${ratio(m.secs.median, b)}` : '–'} | ${fs1(m.cpu)} | ${fs1(m.mib)} | ${bm ? `${bm} → ${ratio(m.mib.median, bm)}` : '–'} | ${m.ok ? 0 : 'failed'} |`;
    };
    const growth = big!.mib.median / small!.mib.median;
    // the growth from the quarter-size log to the full one, per probe-trial result more (50 probes a trial)
    const perResultKiB = ((big!.mib.median - small!.mib.median) * 1024) / ((logs[1]!.trials - logs[0]!.trials) * 50);
    const growthEvents = long!.mib.median / small!.mib.median;
    saveResult({
      name: 'report-speed',
      title: 'Report speed: analysis + every reporter (summary, JUnit, Markdown, HTML, Allure results) on synthetic logs',
      date: new Date().toISOString(),
      machine: machine(),
      load: `${loadBefore} at the start, ${load()} at the end`,
      table: [
        `| events | trials (× 50 probes) | log size | wall time (s), median of ${runs()} (min–max) | wall before → ratio | CPU time, user + system (s) | peak RSS (MiB) | RSS before → ratio | exit |`,
        '|---|---|---|---|---|---|---|---|---|',
        row(0),
        row(1),
        row(2),
        `| ${logs[1]!.count}, from a checkout (TypeScript through tsx) | ${logs[1]!.trials} | ${f1(logs[1]!.size / 2 ** 20)} MiB | ${fs1(fromCheckout.secs)} | – | ${fs1(fromCheckout.cpu)} | ${fs1(fromCheckout.mib)} | – | ${fromCheckout.ok ? 0 : 'failed'} |`,
        '',
        `| where the time goes, 1 M events (one run, in one process) | wall ms | CPU ms |`,
        '|---|---|---|',
        ...ph.map((p) => `| ${p.phase} | ${p.wallMs.toFixed(0)} | ${p.cpuMs.toFixed(0)} |`),
      ],
      goals: [
        {
          goal: '≤ 3 s for analysis + every reporter on 1 M events (the installed package)',
          met: big!.ok && big!.secs.median <= 3,
          figure: `${fs1(big!.secs)} s wall (${fs1(big!.cpu)} s CPU); from a checkout ${fs1(fromCheckout.secs)} s`,
        },
        {
          goal: 'memory does not grow with the log (within 20 % at 250 k and 1 M events)',
          met: big!.ok && growth <= 1.2,
          figure: `${f1(small!.mib.median)} MiB at ${logs[0]!.count} events, ${f1(big!.mib.median)} MiB at ${logs[1]!.count} (×${growth.toFixed(2)} for ×4 the log); what grows is the results: ${f1(perResultKiB)} KiB of peak RSS per probe-trial result`,
        },
        {
          goal: 'the same, with the trials held (×4 the events, each trial 4× as long)',
          met: long!.ok && growthEvents <= 1.2,
          figure: `${f1(small!.mib.median)} MiB at ${logs[0]!.count} events in ${logs[0]!.trials} trials, ${f1(long!.mib.median)} MiB at ${logs[2]!.count} in ${logs[2]!.trials} (×${growthEvents.toFixed(2)})`,
        },
      ],
      notes: [
        "The 1 M-event log is 50 probes × ~300 trials (the third log: the same events in as many trials as the quarter-size one): besides the analysis (each sample line read from its bytes by the reader's fast path, JSON.parse and zod for every other event, a fold into per-trial accumulators; sample times as the run clock writes them, whole nanoseconds in ms) the reporters write ~15 000 Allure results, one file per probe per trial (Allure's format): a trial's results as soon as the fold has read its trial-end, on a thread of their own that writes them synchronously while the main thread goes on folding and then renders the other reports, piece by piece, a trial, a test case or a chart's lane at a time (fs/promises' writeFile, 32 in flight, cost twice the CPU for no gain in wall time: each file's open, write and close are trips to the thread pool); the thread's queue is 4 MiB, and what it has no room for during the fold goes between the other reports' pieces. Peak memory is flat in the events (the third log) and grows with the results the analysis holds to the end of the report (a probe-trial result: ~0.65 KiB of heap each, measured after the fold; its test case is made when it is written, not held) and the garbage of rendering them. Creating those files is the file system's work: 15 000 creates took 0.3–2.7 s on this machine's ext4 (mounted with discard), depending on what was deleted before; each measurement reports a fresh copy of the log, as a run's folder is reported the first time. The CLI loads the runner, the probes and their client libraries only for the commands that run suites. Wall time counts the whole `blackout report` process, Node included: the installed package (`npm pack`, installed into a private prefix, as users run it) and, on the 1 M-event log, this checkout (`node bin/blackout.mjs`, which compiles its TypeScript at start through tsx); CPU time is user + system of that process (its thread pool included), which a loaded machine inflates less than wall time.",
        ...(big!.ok ? [] : [`blackout report failed: ${big!.stderr}`]),
      ],
      raw: { logs: logs.map(({ n, count, trials, size }) => ({ n, count, trials, size })), runs: all, phases: ph },
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
    packed.cleanup();
  }
}
