/**
 * sleepUntil never ends before its instant on the run clock. A Node timer may
 * fire up to a millisecond early (its loop clock is in whole milliseconds), so
 * a plain sleep ended 2 s blackouts at 1 999.9 ms; the blackout phase sleeps
 * until the cut's instant plus the requested length instead.
 */
import { describe, expect, it } from 'vitest';
import { createClock, sleepUntil } from '../../src/core/clock.ts';

describe('sleepUntil', () => {
  it('never resolves before its instant, over 200 sleeps of 1-6 ms at random fractions of a millisecond', async () => {
    const clock = createClock();
    let worst = -Infinity;
    for (let i = 0; i < 200; i++) {
      const t = clock.now() + 1 + Math.random() * 5;
      await sleepUntil(clock, t);
      worst = Math.max(worst, t - clock.now());
    }
    expect(worst).toBeLessThanOrEqual(0);
  });

  it('resolves at once for an instant already past (before the next turn of the event loop, no timer), and rejects when aborted', async () => {
    const clock = createClock();
    let done = false;
    void sleepUntil(clock, clock.now() - 5).then(() => (done = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(true);
    const ac = new AbortController();
    const p = sleepUntil(clock, clock.now() + 10_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});
