/**
 * Outage accuracy: 20 cuts of random lengths (0.3–5 s) on the lab, watched at
 * the same time by the icmp probe at 10 ms three ways (its default socket
 * sender, which sends every 1 ms while replies are missing; the same sender
 * at one pace throughout, as fping; iputils ping), fping at 10 ms
 * (`fping -l -p 10 -D`, which sends no faster on this machine) and the tcp
 * probe at 10 ms: each one's outage against the injector's window, on the
 * same cuts. Then, on cuts of the same lengths, two passes of their own: the
 * socket sender at 1 ms (the default there too, at real-time priority), and
 * iputils ping at 1 ms. Each 1 ms pass keeps off the others' CPUs: at
 * real-time priority a 1 ms ping spins one core, and sharing the cuts with
 * it starved fping (116–158 ms late replies on an idle machine). The icmp
 * figures are given twice, by the analysis's send-time bracket and by the
 * former estimate (longest gap between replies minus one period), computed
 * from the same events, with the pace each sender kept while the link was
 * dead. Then each icmp sender alone for a while: its CPU cost and the events
 * it writes, and how long the reports of a 1 ms log take. Repeated
 * BENCH_RUNS times.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createClock, type Clock } from '../src/core/clock.ts';
import { labDown } from '../src/lab/lab.ts';
import { runSuite } from '../src/run/runner.ts';
import { validateSuite } from '../src/run/suite.ts';
import { foldEvents } from '../src/core/event-log.ts';
import { analyze, median, type Analysis } from '../src/analysis/analysis.ts';
import { writeReports } from '../src/reporters/index.ts';
import type { BlackoutEvent } from '../src/core/events.ts';
import { stats, machine, saveResult, f1, benchLab, benchLabUp, load, runs, spread, fs1, ratio, baseline } from './common.ts';

const TICK = 100; // clock ticks per second (USER_HZ) for /proc/PID/stat

/** CPU seconds used so far by this process's child `ping`s, by the interval they were given */
function pingCpu(into: Map<number, { arg: string; secs: number }>): void {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (!stat.includes('(ping)') || Number(f[1]) !== process.pid) continue;
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const arg = args[args.indexOf('-i') + 1] ?? '?';
      into.set(Number(d), { arg, secs: (Number(f[11]) + Number(f[12])) / TICK });
    } catch {
      /* gone meanwhile */
    }
  }
}

interface Row {
  trial: number;
  injectedMs: number;
  injectWindowMs: number;
  ping10: number | null;
  ping10Gap: number | null;
  probe10: number | null;
  probe10Gap: number | null;
  flat10: number | null;
  ping1: number | null;
  ping1Gap: number | null;
  iping1: number | null;
  iping1Gap: number | null;
  fping: number;
  ping10IntervalMs: number;
  probe10IntervalMs: number;
  flat10IntervalMs: number;
  ping1IntervalMs: number;
  iping1IntervalMs: number;
  /** ms between the requests the sender sent while the link was dead (from the lost sequence numbers) */
  ping10SilentPaceMs: number | null;
  probe10SilentPaceMs: number | null;
  flat10SilentPaceMs: number | null;
  ping1SilentPaceMs: number | null;
  iping1SilentPaceMs: number | null;
  tcpDetectedAfterMs: number | null;
  tcpOutcome: string;
}

/** statistics of one watcher's |error| over these cuts (the cuts it has a figure for) */
function absErrors(rows: Row[], k: keyof Row): ReturnType<typeof stats> {
  return stats(rows.map((x) => Math.abs(Number(x[k] ?? NaN))).filter(Number.isFinite));
}

/** The former estimate from the same events: longest gap between replies across the window, minus the median gap before it. */
function gapEstimate(samples: number[], cutAt: number, restoredAt: number): number | null {
  let worst = 0;
  const before: number[] = [];
  let after = false;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    if (b <= cutAt) before.push(b - a);
    if (b > cutAt && a < restoredAt) worst = Math.max(worst, b - a);
    if (b > restoredAt) after = true;
  }
  if (!after) return null;
  return Math.max(0, worst - (median(before.slice(-256)) ?? 0));
}

/**
 * The pace of ping's sends while nothing came back: the longest stretch
 * between two answered requests (by send time, reply − round trip) across
 * the window, less the ordinary period before the first lost one, over the
 * requests lost in between (by sequence number).
 */
function silentPace(samples: Array<{ s: number; seq: number }>, cutAt: number, restoredAt: number, periodMs: number): number | null {
  let best: { len: number; lost: number } | null = null;
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    if (!(b.s > cutAt && a.s < restoredAt)) continue;
    const lost = ((((b.seq - a.seq) % 65536) + 65536) % 65536) - 1;
    if (lost >= 1 && (!best || b.s - a.s > best.len)) best = { len: b.s - a.s, lost };
  }
  return best ? (best.len - periodMs) / best.lost : null;
}

/** One run of the suite's cuts with these probes; its events and their analysis (the run folder is removed). */
async function pass(lab: string, name: string, probes: Array<Record<string, unknown>>, lengths: number[], clock: Clock, log: (l: string) => void): Promise<{ events: BlackoutEvent[]; a: Analysis }> {
  const suite = validateSuite({ name, target: { lab }, probes, injector: { kind: 'cable-pull' }, blackouts: lengths, warmup: '700ms', recovery: '8s', cooldown: '300ms' });
  const out = mkdtempSync(join(tmpdir(), 'bench-acc-'));
  try {
    await runSuite(suite, { outDir: out, clock, log });
    const events: BlackoutEvent[] = [];
    foldEvents(join(out, 'events.jsonl'), (e) => events.push(e));
    return { events, a: analyze(events) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** a probe's answered requests in one trial: receive times, and send times with sequence numbers */
function answered(events: BlackoutEvent[], trial: number, probe: string): { t: number[]; sent: Array<{ s: number; seq: number }> } {
  const t: number[] = [];
  const sent: Array<{ s: number; seq: number }> = [];
  for (const e of events) {
    if (e.type !== 'sample' || e.trial !== trial || e.probe !== probe) continue;
    t.push(e.t);
    if (e.seq !== undefined && e.latencyMs !== undefined) sent.push({ s: e.t - e.latencyMs, seq: e.seq });
  }
  return { t, sent };
}

async function once(lab: string, address: string, lengths: number[], log: (l: string) => void): Promise<{ rows: Row[]; fpingPeriod: number; wallS: number; cost: Record<string, number> }> {
  const clock = createClock();
  const fpingReplies: number[] = [];
  const fping = spawn('fping', ['-l', '-p', '10', '-D', address], { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: fping.stdout }).on('line', (line) => {
    const m = /^\[(\d+\.\d+)\] \S+ : \[\d+\], \d+ bytes/.exec(line);
    if (m) fpingReplies.push(clock.fromWallMs(Number(m[1]) * 1000));
  });
  const pings = new Map<number, { arg: string; secs: number }>();
  const poll = setInterval(() => pingCpu(pings), 250);
  const started = Date.now();
  let at10: { events: BlackoutEvent[]; a: Analysis };
  const t0 = clock.now();
  try {
    at10 = await pass(
      lab,
      'bench accuracy',
      [
        { name: 'probe10', kind: 'icmp', interval: '10ms' },
        { name: 'flat10', kind: 'icmp', interval: '10ms', silentInterval: '10ms' },
        { name: 'ping10', kind: 'icmp', interval: '10ms', client: 'ping' },
        { name: 'tcp', kind: 'tcp', interval: '10ms' },
      ],
      lengths,
      clock,
      log,
    );
  } finally {
    clearInterval(poll);
    pingCpu(pings);
    fping.kill('SIGINT');
    if (fping.exitCode === null) setTimeout(() => fping.exitCode === null && fping.kill('SIGKILL'), 1000).unref();
  }
  const ping10Cpu = ([...pings.values()].reduce((sum, p) => sum + p.secs, 0) / ((clock.now() - t0) / 1000)) * 100;
  // on cuts of the same lengths: the socket sender at 1 ms, then iputils ping at 1 ms, each alone (see the header)
  const atSock = await pass(lab, 'bench accuracy 1 ms socket', [{ name: 'ping1', kind: 'icmp', interval: '1ms' }], lengths, clock, log);
  const at1 = await pass(lab, 'bench accuracy 1 ms iputils', [{ name: 'iping1', kind: 'icmp', interval: '1ms', client: 'ping' }], lengths, clock, log);
  const gaps: number[] = [];
  for (let i = 1; i < fpingReplies.length; i++) gaps.push(fpingReplies[i]! - fpingReplies[i - 1]!);
  const fpingPeriod = median(gaps.filter((g) => g < 100)) ?? 10;
  const rows: Row[] = [];
  for (const t of at10.a.trials) {
    const t1 = at1.a.trials.find((x) => x.index === t.index);
    const ts = atSock.a.trials.find((x) => x.index === t.index);
    if (!t.injected || !t1?.injected || !ts?.injected) continue;
    const { cutAt, restoredAt, durationMs } = t.injected;
    const p10 = answered(at10.events, t.index, 'ping10');
    const pr10 = answered(at10.events, t.index, 'probe10');
    const f10 = answered(at10.events, t.index, 'flat10');
    const p1 = answered(atSock.events, t.index, 'ping1');
    const ip1 = answered(at1.events, t.index, 'iping1');
    let worst = 0;
    for (let i = 1; i < fpingReplies.length; i++) {
      const from = fpingReplies[i - 1]!;
      const to = fpingReplies[i]!;
      if (to > cutAt && from < restoredAt) worst = Math.max(worst, to - from);
    }
    const err = (v: number | null | undefined, injected: number) => (v === null || v === undefined ? null : v - injected);
    const iping1 = t1.probes.iping1!;
    const ping1 = ts.probes.ping1!;
    const probe10 = t.probes.probe10!;
    const flat10 = t.probes.flat10!;
    const sInj = ts.injected;
    rows.push({
      trial: t.index,
      injectedMs: durationMs,
      injectWindowMs: t.injected.cutAt - t.injected.cutBefore + (t.injected.restoredAt - t.injected.restoreBefore),
      ping10: err(t.probes.ping10!.observedOutageMs, durationMs),
      ping10Gap: err(gapEstimate(p10.t, cutAt, restoredAt), durationMs),
      probe10: err(probe10.observedOutageMs, durationMs),
      probe10Gap: err(gapEstimate(pr10.t, cutAt, restoredAt), durationMs),
      flat10: err(flat10.observedOutageMs, durationMs),
      ping1: err(ping1.observedOutageMs, sInj.durationMs),
      ping1Gap: err(gapEstimate(p1.t, sInj.cutAt, sInj.restoredAt), sInj.durationMs),
      iping1: err(iping1.observedOutageMs, t1.injected.durationMs),
      iping1Gap: err(gapEstimate(ip1.t, t1.injected.cutAt, t1.injected.restoredAt), t1.injected.durationMs),
      fping: worst - fpingPeriod - durationMs,
      ping10IntervalMs: t.probes.ping10!.effectiveIntervalMs,
      probe10IntervalMs: probe10.effectiveIntervalMs,
      flat10IntervalMs: flat10.effectiveIntervalMs,
      ping1IntervalMs: ping1.effectiveIntervalMs,
      iping1IntervalMs: iping1.effectiveIntervalMs,
      ping10SilentPaceMs: silentPace(p10.sent, cutAt, restoredAt, t.probes.ping10!.effectiveIntervalMs),
      probe10SilentPaceMs: silentPace(pr10.sent, cutAt, restoredAt, probe10.effectiveIntervalMs),
      flat10SilentPaceMs: silentPace(f10.sent, cutAt, restoredAt, flat10.effectiveIntervalMs),
      ping1SilentPaceMs: silentPace(p1.sent, sInj.cutAt, sInj.restoredAt, ping1.effectiveIntervalMs),
      iping1SilentPaceMs: silentPace(ip1.sent, t1.injected.cutAt, t1.injected.restoredAt, iping1.effectiveIntervalMs),
      tcpDetectedAfterMs: t.probes.tcp!.detectedAfterMs,
      tcpOutcome: t.probes.tcp!.outcome,
    });
  }
  return { rows, fpingPeriod, wallS: (Date.now() - started) / 1000, cost: { ping10CpuPct: ping10Cpu } };
}

/**
 * One icmp probe alone through one short cut, with one client: the CPU of the
 * ping process (iputils) and of the harness (which at 1 ms writes ~1 000
 * events/s, and with the socket client also runs the sender thread), the
 * events per second and bytes per event, and the reports of that log (its
 * charts draw steady spans, not each sample). Keys are prefixed with `key`.
 */
async function cost(lab: string, client: 'socket' | 'ping', intervalMs: number, key: string): Promise<Record<string, number>> {
  const suite = validateSuite({
    name: `bench icmp ${intervalMs} ms cost ${client}`,
    target: { lab },
    probes: [{ name: 'ping1', kind: 'icmp', interval: `${intervalMs}ms`, client }],
    injector: { kind: 'cable-pull' },
    blackouts: ['1s'],
    warmup: '6s',
    recovery: '3s',
  });
  const out = mkdtempSync(join(tmpdir(), 'bench-acc-cost-'));
  const pings = new Map<number, { arg: string; secs: number }>();
  const poll = setInterval(() => pingCpu(pings), 250);
  try {
    const clock = createClock();
    const cpu0 = process.cpuUsage();
    const t0 = clock.now();
    await runSuite(suite, { outDir: out, clock });
    const wall = clock.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(poll);
    let samples = 0;
    let first = Infinity;
    let last = -Infinity;
    foldEvents(join(out, 'events.jsonl'), (e) => {
      if (e.type === 'sample') {
        samples++;
        first = Math.min(first, e.t);
        last = Math.max(last, e.t);
      }
    });
    const bytes = statSync(join(out, 'events.jsonl')).size;
    const r0 = performance.now();
    await writeReports(out);
    const reportMs = performance.now() - r0;
    const pingSecs = [...pings.values()].reduce((s, p) => s + p.secs, 0);
    return {
      // the ping process's CPU over the time it ran (≈ the sampling span), % of one core
      [`${key}.pingCpuPct`]: (pingSecs / ((last - first) / 1000)) * 100,
      [`${key}.harnessCpuPct`]: ((cpu.user + cpu.system) / 1000 / wall) * 100,
      [`${key}.samplesPerSec`]: samples / ((last - first) / 1000),
      [`${key}.bytesPerEvent`]: bytes / samples,
      [`${key}.reportMs`]: reportMs,
      [`${key}.reportSamples`]: samples,
    };
  } finally {
    clearInterval(poll);
    rmSync(out, { recursive: true, force: true });
  }
}

export async function accuracy(opts: { cuts?: number } = {}): Promise<void> {
  const n = opts.cuts ?? (Number(process.env.BENCH_CUTS) || 20);
  const lab = benchLab('bench-acc');
  const loadBefore = load();
  const started = Date.now();
  const perRun: Array<{ rows: Row[]; fpingPeriod: number; wallS: number; cost: Record<string, number> }> = [];
  // a fixed seed: the same lengths on every run, comparable across machines
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lengths = Array.from({ length: n }, () => Math.round(300 + rnd() * 4700));
  try {
    const state = await benchLabUp(lab);
    for (let i = 0; i < runs(); i++) {
      const r = await once(lab, state.targetAddress, lengths, (l) => process.stdout.write(`  [${i + 1}] ${l}\n`));
      r.cost = { ...r.cost, ...(await cost(lab, 'socket', 10, 'socket10')), ...(await cost(lab, 'socket', 1, 'socket')), ...(await cost(lab, 'ping', 1, 'ping')) };
      perRun.push(r);
      const p95 = (k: keyof Row) => absErrors(r.rows, k).p95;
      process.stdout.write(
        `  run ${i + 1}: p95 |error| probe10 ${f1(p95('probe10'))} ms, flat10 ${f1(p95('flat10'))} ms, ping10 ${f1(p95('ping10'))} ms, fping ${f1(p95('fping'))} ms, ping1 (socket) ${f1(p95('ping1'))} ms, iputils 1 ms ${f1(p95('iping1'))} ms; ping10 cpu ${f1(r.cost.ping10CpuPct!)} %; 10 ms socket: harness ${f1(r.cost['socket10.harnessCpuPct']!)} %; 1 ms socket: harness ${f1(r.cost['socket.harnessCpuPct']!)} %; 1 ms iputils: ping ${f1(r.cost['ping.pingCpuPct']!)} % + harness ${f1(r.cost['ping.harnessCpuPct']!)} %\n`,
      );
    }
  } finally {
    await labDown(lab);
  }
  // per run: p95 / mean of |error| for each watcher; then the median of the runs, with min and max
  const per = (k: keyof Row, f: 'p95' | 'mean' | 'max') => spread(perRun.map((r) => absErrors(r.rows, k)[f]));
  const signed = (k: keyof Row) => spread(perRun.map((r) => stats(r.rows.map((x) => Number(x[k] ?? NaN)).filter(Number.isFinite)).mean));
  const base = baseline();
  const p10 = per('probe10', 'p95');
  const flat = per('flat10', 'p95');
  const ping = per('ping10', 'p95');
  const pf = per('fping', 'p95');
  const p1 = per('ping1', 'p95');
  const row = (label: string, k: keyof Row, vsFping: boolean, baseKey?: string) => {
    const p = per(k, 'p95');
    return `| ${label} | ${fs1(per(k, 'mean'))} | ${fs1(p)} | ${fs1(per(k, 'max'))} | ${fs1(signed(k))} | ${vsFping ? ratio(p.median, pf.median) : ''} | ${baseKey && base[baseKey] ? `${base[baseKey]} → ${ratio(p.median, base[baseKey]!)}` : ''} |`;
  };
  const cst = (k: string) => spread(perRun.map((r) => r.cost[k] ?? NaN));
  const det = spread(perRun.map((r) => stats(r.rows.map((x) => x.tcpDetectedAfterMs ?? NaN).filter(Number.isFinite)).p95));
  const win = spread(perRun.map((r) => stats(r.rows.map((x) => x.injectWindowMs)).p95));
  const ivl = (k: keyof Row) => spread(perRun.map((r) => median(r.rows.map((x) => Number(x[k] ?? NaN)).filter(Number.isFinite)) ?? NaN));
  const ip1 = per('iping1', 'p95');
  const fpPeriod = spread(perRun.map((r) => r.fpingPeriod));
  const cuts = perRun[0]?.rows.length ?? 0;
  const meanAbs = (k: keyof Row) =>
    absErrors(
      perRun.flatMap((r) => r.rows),
      k,
    ).mean;
  // in how many runs the default sender's p95 was not above fping's on the same cuts
  const runsNotWorse = perRun.filter((r) => absErrors(r.rows, 'probe10').p95 <= absErrors(r.rows, 'fping').p95).length;
  saveResult({
    name: 'accuracy',
    title: `Outage accuracy: ${cuts} cuts of 0.3–5 s, the icmp probe at 10 ms (its socket sender, by default and at one pace, and iputils ping) vs fping at 10 ms on the same cuts; on cuts of the same lengths, the socket sender and iputils ping at 1 ms`,
    date: new Date().toISOString(),
    machine: machine(),
    load: `${loadBefore} at the start, ${load()} at the end`,
    table: [
      `| \\|outage − injected\\| (ms), median of ${perRun.length} runs (min–max) | mean | p95 | max | signed mean | p95 vs fping | p95 before → ratio |`,
      '|---|---|---|---|---|---|---|',
      row('icmp probe, 10 ms, socket sender (the default: 1 ms while replies are missing): send-time bracket (the analysis)', 'probe10', true, 'accuracy.ping10.p95'),
      row('icmp probe, 10 ms, socket sender: gap − period (former estimate, same events)', 'probe10Gap', true),
      row('icmp probe, 10 ms, socket sender at one pace (silentInterval: 10ms, as fping): send-time bracket', 'flat10', true),
      row('icmp probe, 10 ms, iputils ping (the default before): send-time bracket', 'ping10', true),
      row('icmp probe, 10 ms, iputils ping: gap − period (same events)', 'ping10Gap', true),
      row('fping -l -p 10', 'fping', false, 'accuracy.fping.p95'),
      row('icmp probe, 1 ms, socket sender (the default; own pass): send-time bracket', 'ping1', true),
      row('icmp probe, 1 ms, socket sender: gap − period (same events)', 'ping1Gap', true),
      row('icmp probe, 1 ms, iputils ping (own pass): send-time bracket', 'iping1', true),
      row('icmp probe, 1 ms, iputils ping: gap − period (same events)', 'iping1Gap', true),
      '',
      '| what sets these figures, and what they cost | median (min–max) |',
      '|---|---|',
      `| effective interval while replies come back (ms): 10 ms socket / 10 ms socket at one pace / 10 ms iputils / fping / 1 ms socket / 1 ms iputils | ${fs1(ivl('probe10IntervalMs'), 2)} / ${fs1(ivl('flat10IntervalMs'), 2)} / ${fs1(ivl('ping10IntervalMs'), 2)} / ${fs1(fpPeriod, 2)} / ${fs1(ivl('ping1IntervalMs'), 2)} / ${fs1(ivl('iping1IntervalMs'), 2)} |`,
      `| send pace while the link is dead (ms, median of the cuts): 10 ms socket / 10 ms socket at one pace / 10 ms iputils / 1 ms socket / 1 ms iputils | ${fs1(ivl('probe10SilentPaceMs'), 2)} / ${fs1(ivl('flat10SilentPaceMs'), 2)} / ${fs1(ivl('ping10SilentPaceMs'), 2)} / ${fs1(ivl('ping1SilentPaceMs'), 2)} / ${fs1(ivl('iping1SilentPaceMs'), 2)} |`,
      `| 10 ms probe alone, socket sender: harness CPU (its sender thread included), % of one core | ${fs1(cst('socket10.harnessCpuPct'))} |`,
      `| ping process CPU, 10 ms probe with iputils (ping -i 0.009), % of one core | ${fs1(cst('ping10CpuPct'))} |`,
      `| 1 ms probe alone, socket sender: harness CPU (its sender thread included), % of one core | ${fs1(cst('socket.harnessCpuPct'))} |`,
      `| 1 ms probe alone, iputils: ping process CPU + harness CPU, % of one core | ${fs1(cst('ping.pingCpuPct'))} + ${fs1(cst('ping.harnessCpuPct'))} |`,
      `| 1 ms probe: events written per second, socket / iputils | ${fs1(cst('socket.samplesPerSec'), 0)} / ${fs1(cst('ping.samplesPerSec'), 0)} |`,
      `| bytes of events.jsonl per sample, socket / iputils | ${fs1(cst('socket.bytesPerEvent'), 0)} / ${fs1(cst('ping.bytesPerEvent'), 0)} |`,
      `| every report of the socket log (${fs1(cst('socket.reportSamples'), 0)} samples), ms | ${fs1(cst('socket.reportMs'), 0)} |`,
      `| tcp probe (10 ms): cut → first missed interval, p95 (ms) | ${fs1(det)} |`,
      `| injector: width of [before, t] of cut + restore, p95 (ms) | ${fs1(win)} |`,
    ],
    goals: [
      { goal: 'icmp probe at 10 ms: p95 error ≤ 10 ms', met: p10.median <= 10, figure: `p95 ${fs1(p10)} ms` },
      {
        goal: 'icmp probe at 10 ms never worse than fping at the same rate (p95 on the same cuts, median of runs)',
        met: p10.median <= pf.median + 0.05,
        figure: `${f1(p10.median)} ms vs fping ${f1(pf.median)} ms (${ratio(p10.median, pf.median)}); not worse in ${runsNotWorse} of ${perRun.length} runs; at one pace ${f1(flat.median)} ms (${ratio(flat.median, pf.median)}), iputils ${f1(ping.median)} ms (${ratio(ping.median, pf.median)})`,
      },
      {
        goal: 'icmp probe at 1 ms: p95 |outage − injected| ≤ 2 ms',
        met: p1.median <= 2,
        figure: `p95 ${fs1(p1)} ms over ${cuts} cuts (${ratio(p1.median, pf.median)} fping's; iputils ping at 1 ms: ${fs1(ip1)} ms)`,
      },
    ],
    notes: [
      "Send-time bracket: each reply's send time is its receive time minus its round trip; the outage lies between the last answered request before the cut and the first answered one after the restore (lost requests still advance the sequence), less half a send period at each edge: at the cut the period before the last answered request, at the restore the step the socket sender says it took to that request (iputils does not say: there, the pace it kept while nothing came back, the lost requests' span over their count). The round trip and receive-side delays drop out. Below 10 ms the senders run at real-time priority (iputils through chrt -f 10, the socket sender's thread through sched_setscheduler), and the injector's nft thread too, so a loaded machine does not stretch their periods or timestamps; the 10 ms probes and fping run at normal priority.",
      "The same rate: while replies come back the 10 ms socket sender sends every 10.0 ms on a grid of random phase, fping every 10.1 ms (the interval row). Once nothing has come back for two periods and twice the recent round trips, it sends every 1 ms until a reply comes (the pace row): requests that a cut-off target cannot receive, which place the restore to the millisecond. The cut's edge cannot be bettered at the same rate: the last answered request before it is up to one period old, for every watcher. So by theory its error is the cut edge's uniform phase over 10 ms plus 1 ms at the restore (p95 ≈ 4.8 ms), where a watcher at one pace has two uniform phases (p95 ≈ 0.78 of the period: 7.8 ms for both fping and the sender at one pace, which at 20 cuts come out either way round).",
      'iputils ping waits at least 10 ms for a missing reply before it sends again (MIN_INTERVAL_MS in its ping_common.c), so while the link is dead it sends every ~10 ms whatever -i says (the pace row), and the restore lies somewhere in the last of those periods: ±5 ms at best, however fast it sends while replies come back. Below 10 ms, and at -i 0.009, it spins between sends (the CPU rows); from -i 0.010 up it sleeps in whole kernel ticks (16 ms apart at HZ=250). fping keeps its own pace while nothing comes back, but sends no faster than every 10 ms.',
      `Mean |error| over every cut of every run: the default sender ${f1(meanAbs('probe10'))} ms, at one pace ${f1(meanAbs('flat10'))} ms, iputils ${f1(meanAbs('ping10'))} ms, fping ${f1(meanAbs('fping'))} ms.`,
      `Every tcp outcome: ${[...new Set(perRun.flatMap((r) => r.rows.map((x) => x.tcpOutcome)))].join(', ')}. Wall time ${((Date.now() - started) / 1000).toFixed(0)} s for ${perRun.length} run(s).`,
    ],
    raw: { lengths, runs: perRun },
  });
}
