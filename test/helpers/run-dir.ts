import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../src/clock.ts';
import { readEvents } from '../../src/event-log.ts';
import type { BlackoutEvent } from '../../src/events.ts';

/** Events written so far (the run may still be going). */
export function eventsSoFar(dir: string): BlackoutEvent[] {
  const p = join(dir, 'events.jsonl');
  if (!existsSync(p) || readFileSync(p, 'utf8').trim() === '') return [];
  return readEvents(p).events;
}

/** Waits until an event matching `pred` is in the log. */
export async function waitForEvent<T extends BlackoutEvent>(dir: string, pred: (e: BlackoutEvent) => e is T, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hit = eventsSoFar(dir).find(pred);
    if (hit) return hit;
    await sleep(50);
  }
  throw new Error(`no matching event in ${dir} within ${timeoutMs} ms`);
}

export function summary(dir: string): any {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
}
