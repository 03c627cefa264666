/**
 * The session loop's schedule: each probe ticks at its own phase of the
 * interval, so sessions opened together do not fire together; a late answer
 * sends the next request at once and the schedule then returns to the phase.
 * A real loop on the real clock, with a session that answers from memory; one
 * answer late, one that holds the thread (a starved harness is late too, and
 * the test follows the loop's rule for that rather than failing under load).
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
    let starvedUntil = 0;
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
          // the 9th answers at once but holds the thread for 80 ms, as a machine starved of CPU does
          if (seq === 9) {
            const until = real.now() + 80;
            while (real.now() < until);
            starvedUntil = until;
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
    // the schedule: every request after the first is due on the first tick of the probe's phase at least half an
    // interval after the one before; or, when the loop found that tick already past (an answer came late, or the
    // harness was starved of CPU: a loaded machine does that to any request), at once: at a reading of its clock
    // after that tick (a tick is computed, never read). Followed request by request from the exact instants (due
    // is within lateMs's rounding, 0.005 ms, of them), so a loaded machine cannot make it fail by chance.
    const reading = (t: number, after = -Infinity) => readings.find((r) => r > after && Math.abs(r - t) <= 0.006);
    // the first goes at once
    let prev = reading(due[0]!);
    expect(prev, 'request 1').toBeDefined();
    for (let i = 1; i < samples.length; i++) {
      const tick = tickAtOrAfter(prev! + interval / 2, phase, interval);
      prev = Math.abs(due[i]! - tick) <= 0.006 ? tick : reading(due[i]!, tick);
      expect(prev, `request ${i + 1}: due ${due[i]}, its tick ${tick}`).toBeDefined();
    }
    // the 6th answer came 2.6 intervals late: the 7th went at once, when the loop read the clock after the answer;
    // so did the 10th, after the thread was held past its tick
    expect(due[6]!).toBeGreaterThanOrEqual(answeredLate);
    expect(reading(due[6]!, answeredLate)).toBeDefined();
    expect(reading(due[9]!, starvedUntil)).toBeDefined();
  });

  it("goes round on a session's send when it has one: samples, an error it survives, then a loss", async () => {
    const ac = new AbortController();
    const events: ProbeEvent[] = [];
    const ctx = { name: 'send-probe', trial: 0, clock: createClock(), signal: ac.signal, emit: (e: ProbeEvent) => events.push(e) } as unknown as ProbeContext;
    let alive = true;
    let requests = 0;
    const loop = new SessionLoop({
      ctx,
      interval: 10,
      reconnect: { mode: 'none', initial: 500, max: 5000 },
      connect: async () => ({
        request: async () => {
          requests++;
          return {};
        },
        send(seq, done) {
          // answered from the event loop, as a socket would: 3 good answers, an error the session survives, 2 more, then the session dies
          setImmediate(() => {
            if (seq === 4) return done(new Error('busy'));
            if (seq === 7) {
              alive = false;
              return done(new Error('connection reset'));
            }
            done(null, { latencyMs: seq });
          });
        },
        alive: () => alive,
        async close() {},
      }),
    });
    await loop.open();
    for (let waited = 0; !events.some((e) => e.type === 'session-lost') && waited < 10_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    await loop.close();
    expect(requests).toBe(0);
    expect(events.map((e) => (e.type === 'sample' ? `sample ${e.latencyMs}` : e.type === 'probe-error' || e.type === 'session-lost' ? `${e.type} ${e.message}` : e.type))).toEqual([
      'session-open',
      'sample 1',
      'sample 2',
      'sample 3',
      'probe-error busy',
      'sample 5',
      'sample 6',
      'session-lost connection reset',
    ]);
  });
});
