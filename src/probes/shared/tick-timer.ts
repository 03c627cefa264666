/**
 * One Node timer for every session loop's pause before its next tick.
 *
 * With a setTimeout per pause, every tick of every session made a Timeout,
 * ran the async hooks' init for it (the run's containment is an
 * AsyncLocalStorage, which copies its store onto every new async resource)
 * and filed it in Node's timer lists. At thousands of sessions that was a
 * share of the harness's time of its own. Here each session owns one
 * TickTimer for its whole life; the timers wait in one binary heap ordered by
 * due time, and one Node timer is armed for the earliest.
 *
 * A callback runs in the async context its TickTimer was made in, so the
 * run's containment still names the probe whose callback threw. A throw does
 * not stop the other callbacks due in the same turn: it is thrown again from
 * an immediate made in that same context.
 *
 * Like a Node timer, a callback may run up to 1 ms before its due time (Node
 * counts from the event loop's cached millisecond), never earlier.
 */
import { AsyncResource } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

export class TickTimer {
  private static readonly heap: TickTimer[] = [];
  private static armed: NodeJS.Timeout | null = null;
  /** the due time the armed Node timer was set for (Infinity: none armed) */
  private static armedFor = Infinity;
  /** runDue is running the due callbacks: it arms once when they are done, not once per callback that reschedules */
  private static draining = false;

  /** performance.now() when the callback is due */
  private due = 0;
  /** position in the heap; -1 when not waiting */
  private pos = -1;
  private readonly context = new AsyncResource('blackout.tick');

  constructor(private readonly callback: () => void) {}

  /** runs the callback `ms` from now (replacing a pending run) */
  after(ms: number): void {
    if (this.pos >= 0) TickTimer.remove(this);
    this.due = performance.now() + Math.max(0, ms);
    TickTimer.insert(this);
    TickTimer.arm();
  }

  cancel(): void {
    if (this.pos >= 0) TickTimer.remove(this);
  }

  get pending(): boolean {
    return this.pos >= 0;
  }

  private run(): void {
    try {
      this.callback();
    } catch (e) {
      setImmediate(() => {
        throw e;
      });
    }
  }

  /** the armed Node timer's callback: runs every callback that is due, then arms for the next */
  private static readonly runDue = (): void => {
    TickTimer.armed = null;
    TickTimer.armedFor = Infinity;
    const limit = performance.now() + 1;
    const heap = TickTimer.heap;
    TickTimer.draining = true;
    try {
      while (heap.length > 0 && heap[0]!.due < limit) {
        const t = heap[0]!;
        // off the heap before it runs: its callback usually schedules it again
        TickTimer.remove(t);
        t.context.runInAsyncScope(t.run, t);
      }
    } finally {
      TickTimer.draining = false;
      TickTimer.arm();
    }
  };

  private static arm(): void {
    if (TickTimer.draining) return;
    const first = TickTimer.heap[0];
    if (first && TickTimer.armed && TickTimer.armedFor <= first.due) return;
    if (TickTimer.armed) clearTimeout(TickTimer.armed);
    TickTimer.armed = null;
    TickTimer.armedFor = Infinity;
    if (!first) return;
    TickTimer.armed = setTimeout(TickTimer.runDue, Math.max(0, first.due - performance.now()));
    TickTimer.armedFor = first.due;
  }

  private static insert(t: TickTimer): void {
    t.pos = TickTimer.heap.length;
    TickTimer.heap.push(t);
    TickTimer.up(t.pos);
  }

  private static remove(t: TickTimer): void {
    const heap = TickTimer.heap;
    const i = t.pos;
    const last = heap.pop()!;
    t.pos = -1;
    if (last === t) return;
    heap[i] = last;
    last.pos = i;
    TickTimer.up(i);
    TickTimer.down(last.pos);
  }

  private static up(i: number): void {
    const heap = TickTimer.heap;
    const t = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.due <= t.due) break;
      heap[i] = parent;
      parent.pos = i;
      i = p;
    }
    heap[i] = t;
    t.pos = i;
  }

  private static down(i: number): void {
    const heap = TickTimer.heap;
    const t = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const c = r < heap.length && heap[r]!.due < heap[l]!.due ? r : l;
      const child = heap[c]!;
      if (child.due >= t.due) break;
      heap[i] = child;
      child.pos = i;
      i = c;
    }
    heap[i] = t;
    t.pos = i;
  }
}
