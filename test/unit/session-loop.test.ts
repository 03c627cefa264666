/**
 * The session loop's schedule: each probe ticks at its own phase of the
 * interval, so sessions opened together do not fire together; a late answer
 * sends the next request at once and the schedule then returns to the phase.
 * A real loop on the real clock, with a session that answers from memory.
 */
import { describe, expect, it } from 'vitest';
import { createClock } from '../../src/core/clock.ts';
import type { ProbeContext, ProbeEvent } from '../../src/core/probe.ts';
import { SessionLoop, tickAtOrAfter, tickPhase } from '../../src/probes/shared/session-loop.ts';

describe('session loop schedule', () => {
  it('spreads the phases of many probes over the interval, the same run after run', () => {
    const interval = 100;
    const perMs = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const p = tickPhase(`tcp${i}`, interval);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(interval);
      expect(tickPhase(`tcp${i}`, interval)).toBe(p);
      perMs.set(Math.floor(p), (perMs.get(Math.floor(p)) ?? 0) + 1);
    }
    // 500 probes over 100 one-millisecond slots: 5 each on average; without phases all 500 would share one
    expect(perMs.size).toBeGreaterThan(90);
    expect(Math.max(...perMs.values())).toBeLessThanOrEqual(15);
  });

  it('finds the next tick of the grid', () => {
    expect(tickAtOrAfter(1000, 30, 100)).toBe(1030);
    expect(tickAtOrAfter(1030, 30, 100)).toBe(1030);
    expect(tickAtOrAfter(1030.5, 30, 100)).toBe(1130);
    expect(tickAtOrAfter(5, 30, 100)).toBe(30);
  });

  it('ticks on its phase, sends at once after a late answer, then returns to the phase', async () => {
    const real = createClock();
    // every reading of the clock is kept: the last one before a request is the loop's own send time
    let last = 0;
    const readings: number[] = [];
    const clock = {
      ...real,
      now: () => {
        readings.push((last = real.now()));
        return last;
      },
    };
    const interval = 50;
    const name = 'phase-probe';
    const phase = tickPhase(name, interval);
    const sends: number[] = [];
    let answeredLate = 0;
    const events: ProbeEvent[] = [];
    const ac = new AbortController();
    const ctx = { name, trial: 0, clock, signal: ac.signal, emit: (e: ProbeEvent) => events.push(e) } as unknown as ProbeContext;
    const loop = new SessionLoop({
      ctx,
      interval,
      reconnect: { mode: 'none', initial: 500, max: 5000 },
      connect: async () => ({
        async request(seq) {
          sends.push(last);
          // the 6th answer comes 2.6 intervals late
          if (seq === 6) {
            await new Promise((r) => setTimeout(r, 130));
            answeredLate = real.now();
          }
          return {};
        },
        alive: () => true,
        async close() {},
      }),
    });
    await loop.open();
    for (let waited = 0; sends.length < 12 && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await loop.close();

    const samples = events.flatMap((e) => (e.type === 'sample' ? [e] : []));
    expect(samples.length).toBeGreaterThanOrEqual(11);
    // the tick each request was due at: its send time less how late it left (rounded to 0.01 ms)
    const due = samples.map((e, i) => sends[i]! - e.lateMs!);
    const off = (t: number) => {
      const d = (((t - phase) % interval) + interval) % interval;
      return Math.min(d, interval - d);
    };
    // the first goes at once; the second on the phase, at least half an interval later
    expect(due[1]! - due[0]!).toBeGreaterThanOrEqual(interval / 2 - 0.02);
    for (const i of [1, 2, 3, 4, 5]) expect(off(due[i]!), `request ${i + 1}`).toBeLessThan(0.02);
    // after the late 6th answer: the 7th at once, due when the loop read the clock after the answer
    // (a reading, where a tick is computed; lateMs is rounded to 0.01 ms), not on the next tick …
    expect(due[6]!).toBeGreaterThanOrEqual(answeredLate);
    expect(readings.some((r) => r >= answeredLate && Math.abs(r - due[6]!) <= 0.006)).toBe(true);
    // … and the 8th and after on the phase again, the 8th at least half an interval after the 7th
    expect(due[7]! - due[6]!).toBeGreaterThanOrEqual(interval / 2 - 0.02);
    for (let i = 7; i < samples.length; i++) expect(off(due[i]!), `request ${i + 1}`).toBeLessThan(0.02);
  });
});
