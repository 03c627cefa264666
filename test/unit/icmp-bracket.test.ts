/**
 * The icmp probe's outage is bracketed by send times (reply − round trip):
 * the last answered request before the cut and the first after the restore,
 * less half a send period at each edge; requests lost in between are counted
 * by ping's sequence numbers. A round trip that varies, or ping sending at
 * another pace while nothing comes back, does not move the figure.
 */
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analysis/analysis.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';

const probes = [{ name: 'ping', kind: 'icmp', intervalMs: 1, toleranceMs: 500, policy: {}, facts: { session: false, deadlines: [], notes: [], reconnect: false, sendTimes: true } }];
const start: BlackoutEvent = {
  type: 'run-start',
  t: 0,
  schema: 1,
  runId: 'r',
  suite: 's',
  config: {},
  wallMs: Date.UTC(2026, 0, 1),
  host: 'h',
  target: { name: 'lab', address: '10.213.0.2' },
  injector: { kind: 'cable-pull' },
  probes,
  version: '0',
};

/** ping every `period` ms from 0 to 3000, a cut at `cut` for `len` ms; replies take `rtt(seq)` ms */
function run(period: number, cut: number, len: number, rtt: (seq: number) => number, seq0 = 0, kind = 'icmp', pace = 1): BlackoutEvent[] {
  const restore = cut + len;
  const ev: BlackoutEvent[] = [
    { ...start, probes: [{ ...probes[0]!, kind, intervalMs: period, facts: { ...probes[0]!.facts, sendTimes: kind === 'icmp' } }] } as BlackoutEvent,
    { type: 'trial-start', t: 0, trial: 0, requestedMs: len },
    { type: 'cut', t: cut, before: cut - 0.1, deadline: restore + 500, trial: 0 },
    { type: 'restore', t: restore, before: restore - 0.1, trial: 0, reason: 'scheduled' },
  ];
  let seq = seq0;
  // pace: how much faster ping sends while the link is dead (below 1: slower, as iputils at 1 ms)
  for (let s = 0; s <= 3000; s += s > cut && s < restore ? period / pace : period, seq = (seq + 1) % 65536) {
    const r = rtt(seq);
    // lost when the request or its reply would cross the dead link
    if (s + r / 2 > cut && s + r / 2 < restore) continue;
    ev.push({ type: 'sample', t: s + r, probe: 'ping', trial: 0, seq, latencyMs: r });
  }
  ev.push({ type: 'trial-end', t: 3100, trial: 0 });
  ev.push({ type: 'run-end', t: 3200, exitCode: 0, reason: 'completed' });
  return [ev[0]!, ...ev.slice(1).sort((a, b) => a.t - b.t)];
}

describe('icmp outage: send-time bracket', () => {
  it('is within one period of the injected window, whatever the round trip does', () => {
    // round trips from 0.2 to 9 ms: the gap between replies would be off by up to 9 ms
    const rtt = (seq: number) => 0.2 + ((seq * 7919) % 89) / 10;
    const a = analyze(run(1, 1000.3, 1500, rtt));
    const out = a.trials[0]!.probes.ping!.observedOutageMs!;
    expect(Math.abs(out - 1500)).toBeLessThanOrEqual(1);
    expect(a.trials[0]!.probes.ping!.outcome).toBe('stalled');
  });

  it('uses the send periods at the edges, not the pace of the unanswered requests', () => {
    const a = analyze(run(10, 1003, 1500, () => 0.3, 0, 'icmp', 2));
    expect(Math.abs(a.trials[0]!.probes.ping!.observedOutageMs! - 1500)).toBeLessThanOrEqual(10);
  });

  it('places the restore within the pace ping kept while nothing came back, not the period after it', () => {
    // iputils at -i 0.001 sends every 1 ms while replies come back and every 10.3 ms while none do (it waits
    // 10 ms for a missing reply): the first answered request after the restore left up to 10.3 ms after it.
    // Half the period after it (0.5 ms) as that edge read the outage 4.5 ms long on average, up to 9.6 ms.
    const errs: number[] = [];
    for (let len = 700; len < 1700; len += 17.3) errs.push(analyze(run(1, 1000.3, len, () => 0.05, 0, 'icmp', 1 / 10.3)).trials[0]!.probes.ping!.observedOutageMs! - len);
    const mean = errs.reduce((sum, e) => sum + e, 0) / errs.length;
    expect(Math.max(...errs.map(Math.abs))).toBeLessThanOrEqual(5.5);
    expect(Math.abs(mean)).toBeLessThanOrEqual(1);
  });

  it('keeps working across the 16-bit sequence wrap', () => {
    const a = analyze(run(1, 1000.3, 700, () => 0.3, 65536 - 1200));
    expect(Math.abs(a.trials[0]!.probes.ping!.observedOutageMs! - 700)).toBeLessThanOrEqual(1);
  });

  it('is not used for probes that do not declare send times (their seq is their own counter, which stalls with the session)', () => {
    const rtt = (seq: number) => (seq % 2 ? 9 : 0.2);
    const icmp = analyze(run(10, 1000.3, 1500, rtt)).trials[0]!.probes.ping!.observedOutageMs!;
    const tcp = analyze(run(10, 1000.3, 1500, rtt, 0, 'tcp')).trials[0]!.probes.ping!.observedOutageMs!;
    // tcp keeps the gap between replies minus one period, round trips included
    expect(Math.abs(icmp - 1500)).toBeLessThanOrEqual(10);
    expect(tcp).not.toBe(icmp);
  });

  /** a VM restored from a saved state: its tap device queues what arrives while QEMU loads, and the guest
   * answers all of it at once when it runs (round trips up to 500 ms); `spike`: one warm-up reply that
   * a starved guest answered that late (ms), sent at 100 ms; `inRing`: the request sent at 1010 ms reached
   * the guest just as it paused and is answered when it runs again */
  function held(spike: number, inRing = false): number {
    const ev: BlackoutEvent[] = run(10, 1000.3, 1500, (seq) => (seq === 10 ? spike : 0.5)).filter((e) => e.type !== 'trial-end' && e.type !== 'run-end');
    let seq = 0;
    for (let s = 0; s <= 3000; s += 10, seq++)
      if ((s >= 2000 || (inRing && s === 1010)) && s + 0.25 > 1000.3 && s + 0.25 < 2500.3)
        ev.push({ type: 'sample', t: 2500.8 + Math.max(0, s - 2000) / 100, probe: 'ping', trial: 0, seq, latencyMs: 2500.8 + Math.max(0, s - 2000) / 100 - s });
    ev.push({ type: 'trial-end', t: 3100, trial: 0 }, { type: 'run-end', t: 3200, exitCode: 0, reason: 'completed' });
    const a = analyze([ev[0]!, ...ev.slice(1).sort((x, y) => x.t - y.t)]);
    return a.trials[0]!.probes.ping!.observedOutageMs!;
  }

  it('counts requests that a paused target held in a queue as answered when it ran again, not when they were sent', () => {
    // one period, plus the cap on a held reply's round trip (twice the warm-up's, plus one interval)
    expect(Math.abs(held(0.5) - 1500)).toBeLessThanOrEqual(10 + 11);
  });

  it('one warm-up reply that came back 800 ms late does not lift the cap on the held ones', () => {
    // with the warm-up's longest round trip as the measure, the cap would be 1.6 s and the outage would end
    // when the held requests were sent (at the restore's start, 500 ms early)
    expect(Math.abs(held(800) - 1500)).toBeLessThanOrEqual(10 + 11);
  });

  it('a request the guest received as it paused, answered when it ran again, does not hide the outage', () => {
    // its sequence number follows the last answered one: without counting a held reply as a gap of its own,
    // the bracket would be the few milliseconds between the held replies and the outage 0
    expect(Math.abs(held(0.5, true) - 1500)).toBeLessThanOrEqual(10 + 11);
  });

  /**
   * The socket sender at 10 ms: after 20 ms without a reply it sends every 1 ms, and each reply says the
   * step from the request before it. `starved`: the thread waited `starved` ms for a CPU before the first
   * request that got through, so the pace of the lost ones says nothing about that last step.
   */
  function socket10(cut: number, len: number, withStep: boolean, starved = 0): number {
    const restore = cut + len;
    const sends: number[] = [];
    for (let s = 0; s <= 3000;) {
      sends.push(s);
      const silent = s > cut + 20 && s < restore;
      let next = silent ? s + 1 : Math.floor(s / 10) * 10 + 10;
      if (silent && starved && next >= restore && s < restore) next = s + starved;
      s = next;
    }
    const ev: BlackoutEvent[] = run(10, cut, len, () => 0.2).filter((e) => e.type !== 'sample' && e.type !== 'trial-end' && e.type !== 'run-end');
    sends.forEach((s, seq) => {
      if (s + 0.1 > cut && s + 0.1 < restore) return;
      ev.push({ type: 'sample', t: s + 0.2, probe: 'ping', trial: 0, seq, latencyMs: 0.2, ...(withStep && seq > 0 ? { sendStepMs: s - sends[seq - 1]! } : {}) });
    });
    ev.push({ type: 'trial-end', t: 3100, trial: 0 }, { type: 'run-end', t: 3200, exitCode: 0, reason: 'completed' });
    return analyze([ev[0]!, ...ev.slice(1).sort((x, y) => x.t - y.t)]).trials[0]!.probes.ping!.observedOutageMs! - len;
  }

  it('places the restore within the step the socket sender says it took, faster while replies were missing', () => {
    // the restore is known to the millisecond: the error is the cut's edge alone, within half the 10 ms period
    const errs: number[] = [];
    for (let i = 0; i < 60; i++) errs.push(socket10(1000 + ((i * 3.7) % 10), 400 + i * 23.3, true));
    expect(Math.max(...errs.map(Math.abs))).toBeLessThanOrEqual(5 + 0.5 + 0.01);
    // a starved last step of 7 ms: the step says where the restore lay; the lost requests' pace (1 ms) does not
    const said = socket10(1005, 1500.6, true, 7);
    const paced = socket10(1005, 1500.6, false, 7);
    expect(Math.abs(said)).toBeLessThanOrEqual(0.5 + 3.5 + 0.01);
    expect(Math.abs(paced - said)).toBeGreaterThan(2.5);
  });
});
