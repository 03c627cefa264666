/**
 * Session scale: 500 and 2 000 concurrent tcp sessions (100 ms) plus 50
 * postgres sessions (200 ms, when that probe is registered; 30 s to connect:
 * 50 connection start-ups at once on a loaded 2-core machine) through one 5 s
 * cut: harness CPU and RSS (per session too), how late each request left
 * against its schedule, the main thread's event-loop delay beside it, events
 * written per second, whether every outcome was the right one (stalled) and
 * whether every event handed to the log was read back from it.
 *
 * The lab's servers run at a lower CPU weight than the harness: the harness's
 * main thread (and the threads and processes it starts after the lab is up)
 * at nice HARNESS_NICE, the lab's servers at 0. In real use the servers the
 * sessions talk to are on another machine, while here one Node echo process
 * answering thousands of round trips a second and 50 PostgreSQL backends share
 * the harness's 2 cores. (Raising the harness rather than lowering the lab: on
 * a machine shared with other work a lab at nice 10 is starved outright, and
 * PostgreSQL's connection start-up times out.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createClock } from '../src/core/clock.ts';
import { labDown } from '../src/lab/lab.ts';
import { runSuite } from '../src/run/runner.ts';
import { validateSuite } from '../src/run/suite.ts';
import { foldEvents } from '../src/core/event-log.ts';
import { AnalysisBuilder } from '../src/analysis/analysis.ts';
import { probeDefinition } from '../src/probes/index.ts';
import type { BlackoutEvent } from '../src/core/events.ts';
import { stats, machine, saveResult, f1, benchLab, benchLabUp, load, runs, spread, fs1, ratio, baseline } from './common.ts';

export const HARNESS_NICE = -5;

interface Row {
  tcp: number;
  pg: number;
  cpuPct: number;
  rssMiB: number;
  rssPerSessionKiB: number;
  cpuPerSessionPct: number;
  lateP50: number;
  lateP99: number;
  loopDelayP99: number;
  jitterP99: number;
  eventsPerSec: number;
  right: number;
  total: number;
  handed: number;
  read: number;
}

async function once(lab: string, n: number, withPg: boolean): Promise<Row> {
  const probes: unknown[] = Array.from({ length: n }, (_, i) => ({ name: `tcp${i}`, kind: 'tcp', interval: '100ms' }));
  if (withPg) for (let i = 0; i < 50; i++) probes.push({ name: `pg${i}`, kind: 'postgres', interval: '200ms', connectionTimeout: '30s' });
  const suite = validateSuite({
    name: `bench scale ${n}`,
    target: { lab },
    probes,
    injector: { kind: 'cable-pull' },
    blackouts: ['5s'],
    warmup: '3s',
    recovery: '20s',
  });
  const out = mkdtempSync(join(tmpdir(), 'bench-scale-'));
  try {
    const clock = createClock();
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let rssMax = 0;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 100);
    // the main thread's event-loop delay (10 ms resolution is the default; 1 ms here), over the steady window only
    const loop = monitorEventLoopDelay({ resolution: 1 });
    let cutAt = Infinity;
    let handed = 0;
    let steadyFrom = Infinity;
    const cpu0 = process.cpuUsage();
    const t0 = clock.now();
    const res = await runSuite(suite, {
      outDir: out,
      clock,
      log: (l) => process.stdout.write(`    ${l}\n`),
      onEvent: (e) => {
        handed++;
        if (e.type === 'phase' && e.phase === 'warmup') {
          // the steady window: from 1 s into the warm-up (after the connect storm) to the cut
          steadyFrom = e.t + 1000;
          setTimeout(() => loop.enable(), 1000);
        }
        if (e.type === 'cut') {
          cutAt = e.t;
          loop.disable();
        }
      },
    });
    const wall = clock.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    if (res.exitCode !== 0) process.stdout.write(`    run ended with ${res.exitCode}: ${res.reason}\n`);
    const b = new AnalysisBuilder();
    const late: number[] = [];
    const jitter: number[] = [];
    const last = new Map<string, number>();
    let read = 0;
    const from = Math.max(steadyFrom, cutAt - 2000);
    foldEvents(join(out, 'events.jsonl'), (e: BlackoutEvent) => {
      read++;
      b.add(e);
      if (e.type !== 'sample' || e.t >= cutAt || e.t < from) return;
      if (e.lateMs !== undefined) late.push(e.lateMs);
      if (!e.probe.startsWith('tcp')) return;
      const prev = last.get(e.probe);
      if (prev !== undefined) jitter.push(Math.abs(e.t - prev - 100));
      last.set(e.probe, e.t);
    });
    const a = b.finish();
    const outcomes = Object.values(a.trials[0]!.probes).map((p) => p.outcome);
    const sessions = n + (withPg ? 50 : 0);
    const cpuPct = ((cpu.user + cpu.system) / 1000 / wall) * 100;
    const l = stats(late);
    return {
      tcp: n,
      pg: withPg ? 50 : 0,
      cpuPct,
      rssMiB: rssMax / 2 ** 20,
      rssPerSessionKiB: (rssMax - rss0) / 1024 / sessions,
      cpuPerSessionPct: cpuPct / sessions,
      lateP50: l.p50,
      lateP99: l.p99,
      loopDelayP99: loop.percentile(99) / 1e6,
      jitterP99: stats(jitter).p99,
      eventsPerSec: read / (wall / 1000),
      right: outcomes.filter((o) => o === 'stalled').length,
      total: outcomes.length,
      handed,
      read,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

export async function scale(opts: { sizes?: number[] } = {}): Promise<void> {
  const sizes = opts.sizes ?? (process.env.BENCH_SCALE_SIZES ? process.env.BENCH_SCALE_SIZES.split(',').map(Number) : [500, 2000]);
  const withPg = probeDefinition('postgres') !== undefined;
  const lab = benchLab('bench-scale');
  const loadBefore = load();
  const all: Row[][] = sizes.map(() => []);
  const prio = getPriority();
  try {
    await benchLabUp(lab);
    // after the lab is up: its servers, started by this process, keep nice 0
    setPriority(HARNESS_NICE);
    // the sizes interleaved, run after run: a change in the machine's load falls on every size alike
    for (let r = 0; r < runs(); r++) {
      for (const [i, n] of sizes.entries()) {
        const row = await once(lab, n, withPg);
        all[i]!.push(row);
        process.stdout.write(
          `  [${r + 1}] ${n} tcp${withPg ? ' + 50 pg' : ''}: cpu ${f1(row.cpuPct)} %, lateness p99 ${f1(row.lateP99)} ms, loop delay p99 ${f1(row.loopDelayP99)} ms, ${row.right}/${row.total} stalled, events ${row.read}/${row.handed}\n`,
        );
      }
    }
  } finally {
    setPriority(prio);
    await labDown(lab);
  }
  const base = baseline();
  const sp = (rows: Row[], k: keyof Row) => spread(rows.map((r) => r[k]));
  const goal = (n: number, limit: number) => {
    const i = sizes.indexOf(n);
    const rows = all[i] ?? [];
    const p99 = sp(rows, 'lateP99');
    const right = rows.every((r) => r.right === r.total);
    const lost = rows.reduce((s, r) => s + (r.handed - r.read), 0);
    return {
      goal: `${n} tcp + 50 pg: schedule lateness p99 ≤ ${limit} ms, every outcome right, no event lost`,
      met: rows.length > 0 && withPg && p99.median <= limit && right && lost === 0,
      figure: rows.length
        ? `p99 ${fs1(p99)} ms; outcomes ${rows.map((r) => `${r.right}/${r.total}`).join(', ')}; events lost ${lost}${withPg ? '' : ' (postgres probe not available in this build: tcp only)'}`
        : 'not run',
    };
  };
  saveResult({
    name: 'scale',
    title: `Session scale: concurrent sessions through one 5 s cut (2 cores), harness at nice ${HARNESS_NICE}, lab servers at 0`,
    date: new Date().toISOString(),
    machine: machine(),
    load: `${loadBefore} at the start, ${load()} at the end`,
    table: [
      `| sessions (tcp + pg), median of ${runs()} (min–max) | harness CPU % | CPU % per session | RSS MiB | RSS KiB per session | schedule lateness p50 / p99 (ms) | lateness p99 before → ratio | event-loop delay p99 (ms) | echo-gap jitter p99 (ms) | events/s | right outcomes | events read / handed to the log |`,
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...all.map((rows, i) => {
        const n = sizes[i]!;
        const p99 = sp(rows, 'lateP99');
        const b = base[`scale.${n}.lateP99`];
        return `| ${n} + ${withPg ? 50 : 0} | ${fs1(sp(rows, 'cpuPct'))} | ${fs1(sp(rows, 'cpuPerSessionPct'), 3)} | ${fs1(sp(rows, 'rssMiB'))} | ${fs1(sp(rows, 'rssPerSessionKiB'))} | ${fs1(sp(rows, 'lateP50'))} / ${fs1(p99)} | ${b ? `${b} → ${ratio(p99.median, b)}` : '–'} | ${fs1(sp(rows, 'loopDelayP99'))} | ${fs1(sp(rows, 'jitterP99'))} | ${fs1(sp(rows, 'eventsPerSec'), 0)} | ${rows.map((r) => `${r.right}/${r.total}`).join(', ')} | ${rows.map((r) => `${r.read}/${r.handed}`).join(', ')} |`;
      }),
    ],
    goals: [goal(500, 5), goal(2000, 10)],
    notes: [
      `The harness runs at nice ${HARNESS_NICE} (CPU weight 3121) and the lab's servers (the echo server, PostgreSQL and its backends, sshd) at nice 0 (weight 1024): that models servers on another machine, which is how the harness is used; on this 2-core machine they would otherwise take the harness's CPU while it is loading them. The harness is raised rather than the lab lowered because the machine is shared with other work: a lab at nice 10 was starved outright (PostgreSQL's connection start-up timed out).`,
      "CPU % is of one core (100 % = one core busy); per session: divided by the sessions. RSS per session: the peak RSS of the run minus the RSS before it, divided by the sessions. Schedule lateness: how late each request left the harness against its tick (the sampling schedule itself), over the steady window (1 s into the warm-up to the cut, at most 2 s). Event-loop delay: perf_hooks.monitorEventLoopDelay over the same window: the main thread's own delay in running a due timer; when lateness follows it, what delays the schedule is the main thread's load (or the CPU it waits for), not the timers themselves. Echo-gap jitter adds the round trip through the lab's echo server.",
      "Each probe ticks at its own phase of its interval (a hash of its name): sessions opened together no longer fire in the same millisecond, where the last of each burst left as late as the burst was long (500 + 50, 3 runs each, the code before and after back to back on this machine: lateness p99 7.2–15.7 ms → 1.9–4.4 ms, loop delay p99 5.5–8.0 → 2.5–3.3 ms). A lateness p50 below 0 is a timer firing before its tick: Node counts a timer from the event loop\'s cached millisecond, so it can fire up to 1 ms early. At 2 000 + 50 the phases were not enough: the event loop ran in batches of ~50 ms (every socket that became readable during the last batch, then every timer that came due in it), lateness p50 ~50 ms and p99 148–170 ms, and it never left that state. 2 000 bare echo sessions (a timer and a socket each, no events) showed the machine could do it: 20 000 round trips a second at 49 % of a core, lateness p99 0.9 ms. What brought the probe closer: its loop runs on callbacks instead of an async function (every promise also ran the run's containment hook, an AsyncLocalStorage), a session may answer by callback (`send`: the tcp echo does), the echo is read into the session's own buffer (`onread`), and each session has one abort listener instead of one per tick. This benchmark on the code before and after: lateness p99 161.6 (148.4–169.6) → 5.6 (3.7–31.8) ms, harness CPU 46.7 → 39.1 %; the run before this one, same code: 5.3 (4.0–15.3) ms. It holds only for a harness that has already run: here each 2 000-session run follows a 500-session run in the same process. A 2 000-session run as the first of its process (4 runs) or right after another 2 000-session run (4 runs) still fell into the batches in 7 of 8: p99 83–132 ms (4.5 ms in the eighth); with each session's first request on its tick instead of at once, in 8 of 9 (57–167 ms; 7.1 ms in one). In a process's first run the open and the warm-up bring scavenges of 24–75 ms (most young objects survive them: the new sessions' own). A full collection after the open (a test with --expose-gc, not kept) did not help a process's first run (147 ms); the two runs after it were good (5.2, 6.0 ms). What did not move it: a larger young generation (--max-semi-space-size=64); the fixed read buffer and the single listener without the callbacks; sessions on two worker threads. The largest single cost left is the socket writes, ~14 µs each: the kernel's path through the veth pair and the bridge runs in the sender's system call.",
      "Later the same day this benchmark gave other figures on the same code: 22.5, 86.5 and 89.8 ms at 2 000 + 50 (3 runs), so the 5.6 ms above does not hold from one hour to the next on this shared machine. What changed after that: the pause between a session's requests is one shared timer (a heap of due times, one Node timer armed for the earliest) instead of a setTimeout per tick, which made a Timeout and ran the containment's async hook 20 000 times a second; a probe's event is completed in place instead of copied; the sample is built without spreads (they kept missing V8's inline cache); the lab's switch no longer sends bridged frames through br_netfilter's IP hooks (~5 % of the harness's main thread in perf, paid in its own send calls). In this benchmark that code gave 106.9 (90.8–108.3) ms: in the first 3 s of a process both versions stay in the batches. Further into a run (a 10 s warm-up, the last 2 s before the cut, each run the first of its process, the two versions alternating, 4 runs each): this code 5.5, 8.6, 9.4 and 72.7 ms, the code before 124.2, 135.1, 136.8 and 148.9 ms; this code left the batches 5–8 s after the sessions opened in 3 of 4 runs, the code before in none. At 1 000 tcp sessions without pg (3 runs each, same window as here): p99 1.4, 1.4 and 2.5 ms against 3.6, 4.7 and 8.3 ms. CPU time is compared only within one run: that day a bare echo client doing the same 20 000 round trips a second used 51–99 % of a core from one second to the next. The figures in the table are from another machine (2 × Intel Xeon under KVM: the machine and date at the top of this section), with the same code; there both goals are met. The notes above were measured on 2 × AMD EPYC (a PVM guest, where entering the kernel costs more: `pvm_irq_enable` alone was 7.5 % of the harness in perf); there the same code gave 106.9 (90.8–108.3) ms, which is why the figure is given with its machine. On the Xeon, 4 cold runs on an otherwise idle machine (2 000 + 50, each the first of its process, a 6 s warm-up) showed a burst only in the warm-up's first second (p99 38–67 ms), then p99 1.4–2.7 ms over the last 2 s before the cut; with other test labs running beside them (load average 3–7) cold runs still fell into the batches for seconds. Tried there and not kept: the lab's receive work off the harness's sends (GRO and threaded NAPI on the two veth ports that receive from the harness's side, TSO off on their senders, so the switch's bridging and the target's TCP receive run in kernel threads instead of in the harness's socket writes). In cold runs it took away that first-second burst (p99 1.5–4.6 ms in 4 of 4) and 6–10 points of harness CPU, but this benchmark (3 runs) gave 2.4, 2.0 and 6.3 ms against 1.7, 1.8 and 1.5 ms without it, so it did not earn the extra package (ethtool) and the change to the lab's network.",
    ],
    raw: { sizes, runs: all, harnessNice: HARNESS_NICE },
  });
}
