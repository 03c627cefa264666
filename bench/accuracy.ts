/**
 * Outage accuracy: 20 cuts of random lengths (0.3–5 s) on the lab; the icmp
 * probe at 10 ms and fping at the same period (`fping -l -p 10 -D`) watch the
 * same target at the same time; each one's outage against the injector's
 * window. Also the tcp probe's detection edge: cut → first missed interval.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createClock } from '../src/core/clock.ts';
import { labUp, labDown } from '../src/lab/lab.ts';
import { runSuite } from '../src/run/runner.ts';
import { validateSuite } from '../src/run/suite.ts';
import { readEvents } from '../src/core/event-log.ts';
import { analyze, median } from '../src/analysis/analysis.ts';
import { stats, machine, saveResult, f1 } from './common.ts';

export async function accuracy(opts: { cuts?: number } = {}): Promise<void> {
  const n = opts.cuts ?? 20;
  const lab = await labUp('bench-acc');
  try {
    // a fixed seed: the same lengths on every run, comparable across machines
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const lengths = Array.from({ length: n }, () => Math.round(300 + rnd() * 4700));
    const suite = validateSuite({
      name: 'bench accuracy',
      target: { lab: 'bench-acc' },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '10ms' },
        { name: 'tcp', kind: 'tcp', interval: '10ms' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: lengths,
      warmup: '700ms',
      recovery: '8s',
      cooldown: '300ms',
    });
    const clock = createClock();
    const fpingReplies: number[] = [];
    const fping = spawn('fping', ['-l', '-p', '10', '-D', lab.targetAddress], { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: fping.stdout }).on('line', (line) => {
      const m = /^\[(\d+\.\d+)\] \S+ : \[\d+\], \d+ bytes/.exec(line);
      if (m) fpingReplies.push(clock.fromWallMs(Number(m[1]) * 1000));
    });
    const out = mkdtempSync(join(tmpdir(), 'bench-acc-'));
    const started = Date.now();
    await runSuite(suite, { outDir: out, clock, log: (l) => process.stdout.write(`  ${l}\n`) });
    fping.kill('SIGINT');
    const a = analyze(readEvents(join(out, 'events.jsonl')).events);
    const gaps: number[] = [];
    for (let i = 1; i < fpingReplies.length; i++) gaps.push(fpingReplies[i]! - fpingReplies[i - 1]!);
    const fpingPeriod = median(gaps.filter((g) => g < 100)) ?? 10;
    const rows = a.trials.flatMap((t) => {
      if (!t.injected) return [];
      const { cutAt, restoredAt, durationMs } = t.injected;
      let worst = 0;
      for (let i = 1; i < fpingReplies.length; i++) {
        const from = fpingReplies[i - 1]!;
        const to = fpingReplies[i]!;
        if (to > cutAt && from < restoredAt) worst = Math.max(worst, to - from);
      }
      const ping = t.probes.ping!;
      return [{
        trial: t.index,
        requestedMs: t.requestedMs,
        injectedMs: durationMs,
        injectWindowMs: (t.injected.cutAt - t.injected.cutBefore) + (t.injected.restoredAt - t.injected.restoreBefore),
        pingOutageMs: ping.observedOutageMs,
        pingIntervalMs: ping.effectiveIntervalMs,
        pingErrorMs: (ping.observedOutageMs ?? NaN) - durationMs,
        fpingOutageMs: worst - fpingPeriod,
        fpingErrorMs: worst - fpingPeriod - durationMs,
        tcpDetectedAfterMs: t.probes.tcp!.detectedAfterMs,
        tcpOutcome: t.probes.tcp!.outcome,
      }];
    });
    const pe = stats(rows.map((r) => Math.abs(r.pingErrorMs)));
    const fe = stats(rows.map((r) => Math.abs(r.fpingErrorMs)));
    const pm = stats(rows.map((r) => r.pingErrorMs));
    const fm = stats(rows.map((r) => r.fpingErrorMs));
    const det = stats(rows.map((r) => r.tcpDetectedAfterMs ?? NaN).filter(Number.isFinite));
    const win = stats(rows.map((r) => r.injectWindowMs));
    saveResult({
      name: 'accuracy',
      title: `Outage accuracy: ${rows.length} cuts of 0.3–5 s, icmp probe vs fping at 10 ms`,
      date: new Date().toISOString(),
      machine: machine(),
      table: [
        '| measure | mean | p95 | max |',
        '|---|---|---|---|',
        `| blackout icmp probe: \\|outage − injected\\| (ms) | ${f1(pe.mean)} | ${f1(pe.p95)} | ${f1(pe.max)} |`,
        `| fping -l -p 10: \\|outage − injected\\| (ms) | ${f1(fe.mean)} | ${f1(fe.p95)} | ${f1(fe.max)} |`,
        `| blackout icmp probe: signed error (ms) | ${f1(pm.mean)} | ${f1(pm.p95)} | ${f1(pm.max)} |`,
        `| fping: signed error (ms) | ${f1(fm.mean)} | ${f1(fm.p95)} | ${f1(fm.max)} |`,
        `| tcp probe (10 ms): cut → first missed interval (ms) | ${f1(det.mean)} | ${f1(det.p95)} | ${f1(det.max)} |`,
        `| injector: width of [before, t] of cut + restore (ms) | ${f1(win.mean)} | ${f1(win.p95)} | ${f1(win.max)} |`,
      ],
      goals: [
        { goal: 'icmp probe p95 error ≤ 10 ms', met: pe.p95 <= 10, figure: `p95 ${f1(pe.p95)} ms` },
        { goal: 'never worse than fping (p95)', met: pe.p95 <= fe.p95 + 0.05, figure: `${f1(pe.p95)} ms vs fping ${f1(fe.p95)} ms` },
      ],
      notes: [
        `ping's effective interval: ${f1(median(rows.map((r) => r.pingIntervalMs)) ?? NaN)} ms (asked 10 ms; HZ=250 rounds it up), fping's: ${f1(fpingPeriod)} ms. Both are quantised by their send period: the error of one outage is bounded by one period.`,
        `Wall time ${((Date.now() - started) / 1000).toFixed(0)} s. Every tcp outcome: ${[...new Set(rows.map((r) => r.tcpOutcome))].join(', ')}.`,
      ],
      raw: { lengths, rows, fpingPeriod },
    });
  } finally {
    await labDown('bench-acc');
  }
}
