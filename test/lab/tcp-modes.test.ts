/**
 * tcp probe without an echo service, against the lab's stock Redis (Debian's
 * redis-server), through a real 3 s cable pull:
 *   ping       exchange PING → +PONG, no read timeout: survives (stalls);
 *   ping-rt    the same with a 1 s read timeout: fails with its own timeout;
 *   hold       an idle connection held by kernel keepalives (1 s idle, 1 s × 5): survives,
 *              its outage measured from the kernel's own last-ACK times (TCP_INFO);
 *   hold-short the same with a keepalive count of 1: the kernel gives up (ETIMEDOUT)
 *              during the pull, and the probe reports that verdict with what the kernel saw;
 * and what must stop at preflight (exit 2, nothing injected): a closed port, a
 * wrong expectation, a greeting that never comes; and the mode's required
 * fields in validation.
 */
import { describe, expect, it } from 'vitest';
import { predictBreakingPoint } from '../../src/analysis/predict.ts';
import { tcp } from '../../src/probes/tcp.ts';
import { labName, runCli, useLab, writeSuite } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, message, runLabSuite } from '../helpers/probes.ts';
import { readSummary } from '../helpers/run-dir.ts';
import { useOwnTmp } from '../helpers/tmp.ts';

useOwnTmp('blackout-tcp-modes-test-');
const LAB = labName('ptcpm');
useLab(LAB);
const PING = { kind: 'tcp', mode: 'exchange', port: 6379, send: 'PING\r\n', expect: '^\\+PONG' };

describe('tcp probe: exchange and hold', () => {
  it('survives a 3 s cable pull, fails past its read timeout, and reports the kernel keepalive verdict', async () => {
    const r = await runLabSuite(LAB, {
      name: 'tcp modes test',
      probes: [
        { name: 'ping', ...PING },
        { name: 'ping-rt', ...PING, readTimeout: '1s' },
        { name: 'hold', kind: 'tcp', mode: 'hold', port: 6379, keepalive: { idle: '1s', interval: '1s', count: 5 } },
        { name: 'hold-short', kind: 'tcp', mode: 'hold', port: 6379, keepalive: { idle: '1s', interval: '1s', count: 1 } },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['3s'],
      warmup: '3s',
      recovery: '8s',
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(t.probes.ping!.samples).toBeGreaterThan(10);
    expect(t.probes.ping!.outcome).toBe('stalled');
    expect(t.probes.ping!.observedOutageMs).toBeGreaterThan(2800);
    expect(t.probes['ping-rt']!.outcome).toBe('failed');
    expect(t.probes['ping-rt']!.reason).toContain('no answer matching /^\\+PONG/ within 1000 ms');

    // hold: samples are the peer's keepalive answers, about one per idle period
    const hold = t.probes.hold!;
    expect(hold.outcome).toBe('stalled');
    expect(hold.effectiveIntervalMs).toBeGreaterThan(900);
    expect(hold.effectiveIntervalMs).toBeLessThan(1500);
    // the silence the kernel saw: the pull, plus up to one keepalive period until the next probe went out
    expect(hold.observedOutageMs).toBeGreaterThan(1400);
    expect(hold.observedOutageMs).toBeLessThan(5000);
    expect(eventsOf(r.events, 'hold', 'session-lost')).toHaveLength(0);

    const short = t.probes['hold-short']!;
    expect(short.outcome).toBe('failed');
    const lost = eventsOf(r.events, 'hold-short', 'session-lost')[0];
    expect(lost && 'code' in lost && lost.code).toBe('ETIMEDOUT');
    expect(message(lost)).toMatch(/ETIMEDOUT \(kernel: last ACK [\d.]+ s before, 1 keepalive probe\(s\) unanswered/);
    const cut = r.events.find((e) => e.type === 'cut')!;
    const restore = r.events.find((e) => e.type === 'restore')!;
    // the verdict fell inside the pull: idle + 1 × interval after the last ACK (≤ 2 s after the cut, 1 s before the restore)
    expect(lost!.t).toBeGreaterThan(cut.t);
    expect(lost!.t).toBeLessThan(restore.t);
    const notes = eventsOf(r.events, 'hold-short', 'probe-note').map(message);
    expect(notes.some((m) => /kernel: last ACK [\d.]+ s before, 1 keepalive probe\(s\) unanswered/.test(m))).toBe(true);
  });

  it('a closed port, a wrong expectation or a missing greeting is a preflight failure: exit 2, nothing injected', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: 'closed', ...PING, port: 6399 }, /ECONNREFUSED/],
      [{ name: 'wrong', ...PING, expect: '^\\+PANG' }, /expected \/\^\\\+PANG\/, got "\+PONG"/],
      [{ name: 'greeting', ...PING, greeting: '^220 ', connectTimeout: '1500ms' }, /greeting: no answer matching \/\^220 \/ within 1500 ms/],
      [{ name: 'hold-closed', kind: 'tcp', mode: 'hold', port: 6399, keepalive: { idle: '1s', interval: '1s', count: 3 } }, /ECONNREFUSED/],
    ];
    for (const [probe, reason] of cases) await expectPreflightFailure(LAB, `tcp preflight ${probe.name}`, probe, reason);
  });

  it('validation names the fields each mode needs', async () => {
    const suite = writeSuite({
      name: 'tcp modes invalid',
      target: 'lab',
      probes: [
        { name: 'a', kind: 'tcp', mode: 'exchange', port: 6379 },
        { name: 'b', kind: 'tcp', mode: 'hold', port: 6379 },
        { name: 'c', kind: 'tcp', send: 'x' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['1s'],
    });
    const r = await runCli(['validate', suite]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('probes[0].send: mode exchange needs send');
    expect(r.stderr).toContain('probes[0].expect: mode exchange needs expect');
    expect(r.stderr).toContain('probes[1].keepalive: mode hold needs keepalive');
    expect(r.stderr).toContain('probes[2].send: only for mode exchange');
  });

  it('predicts a hold breaking point from the keepalive settings', () => {
    const config = tcp.schema.parse({ name: 'h', kind: 'tcp', mode: 'hold', port: 1, keepalive: { idle: '10s', interval: '2s', count: 4 } });
    const p = predictBreakingPoint({ name: 'h', kind: 'tcp', intervalMs: 100, facts: tcp.facts(config) });
    // the last probe that can be answered leaves idle + (count − 1) × interval = 16 s after the last ACK,
    // and the pull starts anywhere in the 10 s idle period: 6–16 s
    expect(p.breakingMs).toBe(11_000);
    expect(p.range).toEqual([5950, 16_050]);
    expect(p.mechanism).toContain('kernel keepalive');
  });
});
