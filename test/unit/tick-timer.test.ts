/**
 * The session loops' shared timer: callbacks run in the order of their due
 * times, a new `after` replaces a pending one, `cancel` drops it, each
 * callback runs in the async context its timer was made in, and a callback
 * that throws neither stops the others due with it nor loses its context
 * (the run's containment names the probe from that context).
 */
import { execFile } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TickTimer } from '../../src/probes/shared/tick-timer.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** waits for `done` (a loaded machine runs timers late, never in another order) */
async function until(done: () => boolean): Promise<void> {
  for (const t0 = Date.now(); !done() && Date.now() - t0 < 10_000;) await sleep(10);
}

describe('tick timer', () => {
  it('runs callbacks by due time, replaces a pending run, cancels one', async () => {
    const order: string[] = [];
    const make = (name: string) => new TickTimer(() => order.push(name));
    const a = make('a');
    const b = make('b');
    const c = make('c');
    const d = make('d');
    const e = make('e');
    c.after(60);
    a.after(20);
    d.after(10);
    b.after(40);
    e.after(30);
    d.after(80); // replaces its 10 ms
    e.cancel();
    expect(e.pending).toBe(false);
    expect(a.pending).toBe(true);
    await until(() => order.length === 4);
    await sleep(20); // e would have run by now
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect([a, b, c, d].some((t) => t.pending)).toBe(false);
  });

  it('never runs a callback more than 1 ms before its due time', async () => {
    const early: number[] = [];
    const timers = Array.from({ length: 200 }, (_, i) => {
      const ms = (i * 7) % 53;
      const due = performance.now() + ms;
      const t = new TickTimer(() => early.push(due - performance.now()));
      t.after(ms);
      return t;
    });
    await until(() => early.length === timers.length);
    expect(early).toHaveLength(timers.length);
    expect(Math.max(...early)).toBeLessThan(1);
  });

  it('a callback may schedule its own timer again', async () => {
    let n = 0;
    const t: TickTimer = new TickTimer(() => {
      if (++n < 5) t.after(2);
    });
    t.after(0);
    await until(() => n === 5);
    expect(n).toBe(5);
  });

  it('runs each callback in the async context its timer was made in', async () => {
    const als = new AsyncLocalStorage<string>();
    const seen: Array<string | undefined> = [];
    const timers = ['p1', 'p2', 'p3'].map((name) => als.run(name, () => new TickTimer(() => seen.push(als.getStore()))));
    // scheduled from outside any context: the context is the timer's, not the scheduler's
    for (const t of timers) t.after(5);
    await until(() => seen.length === 3);
    expect(seen.sort()).toEqual(['p1', 'p2', 'p3']);
  });

  it('a throwing callback: the others due with it still run, and the throw arrives in its own context', async () => {
    // in a child process: the throw must become an uncaught exception, which would fail this test run
    const src = fileURLToPath(new URL('../../src/probes/shared/tick-timer.ts', import.meta.url));
    const script = `
      import { AsyncLocalStorage } from 'node:async_hooks';
      const { TickTimer } = await import(${JSON.stringify(src)});
      const als = new AsyncLocalStorage();
      const ran = [];
      process.on('uncaughtException', (e) => console.log('caught ' + e.message + ' in ' + als.getStore()));
      const timers = ['p1', 'p2', 'p3'].map((name) => als.run(name, () => new TickTimer(() => {
        ran.push(name);
        if (name === 'p2') throw new Error('boom');
      })));
      for (const t of timers) t.after(5);
      const t0 = Date.now();
      const wait = () => (ran.length === 3 || Date.now() - t0 > 5000 ? setImmediate(() => console.log('ran ' + ran.join(','))) : setTimeout(wait, 10));
      wait();
    `;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 30_000 });
    expect(stdout).toContain('caught boom in p2');
    expect(stdout).toContain('ran p1,p2,p3');
  });
});
