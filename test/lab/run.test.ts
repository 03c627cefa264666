/**
 * The core slice end to end through the real CLI against the real lab: the
 * icmp probe measures the injected window (with its socket sender at 10 ms,
 * which sends every 1 ms while replies are missing, at 1 ms, and with
 * iputils ping at 10 ms), the
 * tcp probe stalls through a 2 s cut, the same probe with a 1 s TCP user
 * timeout fails with the kernel's own error; Ctrl-C mid-cut restores, writes
 * the reports and exits 130.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventOf } from '../../src/core/events.ts';
import { waitForPort } from '../../src/lab/wait.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { eventsSoFar, readSummary, waitForEvent } from '../helpers/run-dir.ts';

const lab = useLab(labName('trun'));

describe('blackout run on the lab', () => {
  it('measures a 2 s cut: icmp within one interval + 10 ms (at 10 ms, at 1 ms, with ping), tcp stalled, tcp with a 1 s user timeout failed', async () => {
    const out = tempDir();
    const suite = writeSuite({
      name: 'core 2s',
      target: { lab: labName('trun') },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '10ms' },
        { name: 'ping1', kind: 'icmp', interval: '1ms' },
        { name: 'iputils', kind: 'icmp', interval: '10ms', client: 'ping' },
        { name: 'echo', kind: 'tcp', interval: '100ms' },
        { name: 'echo-ut', kind: 'tcp', interval: '100ms', userTimeout: '1s' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
      warmup: '1s',
      recovery: '10s',
      expect: { echo: { survives: '2s' } },
    });
    const r = await runCli(['run', suite, '--out', out]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const s = readSummary<any>(out);
    expect(s.passed).toBe(true);
    const trial = s.trials[0];
    expect(trial.injected.durationMs).toBeGreaterThan(1990);
    expect(trial.injected.durationMs).toBeLessThan(2100);
    const ping = trial.probes.ping;
    expect(ping.outcome).toBe('stalled');
    expect(Math.abs(ping.observedOutageMs - trial.injected.durationMs)).toBeLessThanOrEqual(ping.effectiveIntervalMs + 10);
    const ping1 = trial.probes.ping1;
    expect(ping1.outcome).toBe('stalled');
    expect(ping1.effectiveIntervalMs).toBeLessThan(2);
    expect(Math.abs(ping1.observedOutageMs - trial.injected.durationMs)).toBeLessThanOrEqual(ping1.effectiveIntervalMs + 10);
    const iputils = trial.probes.iputils;
    expect(iputils.outcome).toBe('stalled');
    expect(Math.abs(iputils.observedOutageMs - trial.injected.durationMs)).toBeLessThanOrEqual(iputils.effectiveIntervalMs + 10);
    // the socket senders kept sending through the silence, the 10 ms one every 1 ms: the requests lost
    // in the cut, by sequence number, are about one per ms (iputils ping sends one per ~10 ms then), and
    // the first answered one after the restore says the step from the one before it
    const events = eventsSoFar(out);
    const firstAfter = (probe: string) => {
      const answered = events.filter((e): e is EventOf<'sample'> => e.type === 'sample' && e.probe === probe);
      const i = answered.findIndex((e) => e.t - e.latencyMs! > trial.injected.restoredAt);
      return { lost: answered[i]!.seq! - answered[i - 1]!.seq! - 1, step: answered[i]!.sendStepMs };
    };
    for (const probe of ['ping', 'ping1']) {
      const { lost, step } = firstAfter(probe);
      expect(lost, probe).toBeGreaterThan(trial.injected.durationMs / 2);
      expect(step, probe).toBeGreaterThan(0);
      expect(step, probe).toBeLessThan(5);
    }
    expect(ping.effectiveIntervalMs).toBeGreaterThan(9.5);
    expect(firstAfter('iputils').lost).toBeLessThan(trial.injected.durationMs / 8);
    expect(firstAfter('iputils').step).toBeUndefined();
    expect(trial.probes.echo.outcome).toBe('stalled');
    expect(trial.probes.echo.errors).toEqual([]);
    // TCP waits out its retransmission backoff: the application saw more than the cut
    expect(trial.probes.echo.observedOutageMs).toBeGreaterThan(trial.injected.durationMs);
    expect(trial.probes['echo-ut'].outcome).toBe('failed');
    expect(trial.probes['echo-ut'].reason).toMatch(/ETIMEDOUT/);
    expect(s.probes.echo.maxSurvivedMs).toBeCloseTo(trial.injected.durationMs, 0);
    expect(s.probes['echo-ut'].minFailedMs).toBeCloseTo(trial.injected.durationMs, 0);
    for (const f of ['report.html', 'junit.xml', 'summary.md', 'events.jsonl']) expect(readFileSync(join(out, f), 'utf8').length).toBeGreaterThan(100);
    // exit 0: junit.xml fails nothing either; the lost session is a visible observation
    const junit = readFileSync(join(out, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/failures="0" errors="0"/);
    expect(junit).toMatch(/name="echo-ut \(tcp\), 2 s blackout \[trial 0\]: failed \(observed; no expectation covers it\)"/);

    // `blackout report` rebuilds the same summary from the event log alone
    const before = readFileSync(join(out, 'summary.json'), 'utf8');
    const rr = await runCli(['report', out]);
    expect(rr.code).toBe(0);
    expect(readFileSync(join(out, 'summary.json'), 'utf8')).toBe(before);
  });

  it('Ctrl-C mid-cut: restores the target first, writes the reports, exits 130', async () => {
    const out = tempDir();
    const suite = writeSuite({
      name: 'interrupted',
      target: { lab: labName('trun') },
      probes: [{ name: 'echo', kind: 'tcp', interval: '100ms' }],
      injector: { kind: 'cable-pull' },
      blackouts: ['20s', '5s'],
      warmup: '500ms',
    });
    let pid = 0;
    const done = runCli(['run', suite, '--out', out], { onSpawn: (p) => (pid = p) });
    const cut = await waitForEvent(out, (e): e is EventOf<'cut'> => e.type === 'cut');
    const sentAt = Date.now();
    process.kill(pid, 'SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(Date.now() - sentAt).toBeLessThan(10_000);
    const events = eventsSoFar(out);
    const restore = events.find((e): e is EventOf<'restore'> => e.type === 'restore')!;
    expect(restore.reason).toBe('signal');
    expect(restore.t - cut.t).toBeLessThan(19_000);
    expect(events.filter((e) => e.type === 'trial-start')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'run-end', exitCode: 130 });
    await waitForPort(lab.state().targetAddress, 7, 3000);
    const s = readSummary<any>(out);
    expect(s.complete).toBe(true);
    expect(s.passed).toBe(false);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('interrupted');
  });
});
