/**
 * Reading a run folder from a test: its events (also while the CLI is still
 * writing them), waiting for one event to act mid-trial, and summary.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../src/core/clock.ts';
import { readEvents } from '../../src/core/event-log.ts';
import type { BlackoutEvent } from '../../src/core/events.ts';

/**
 * Events written so far (the run may still be going). Read with the harness's own
 * reader, so every complete line is checked against the event schema, as
 * `blackout report` would; a torn last line is the writer mid-line and is left out.
 */
export function eventsSoFar(dir: string): BlackoutEvent[] {
  const p = join(dir, 'events.jsonl');
  // no complete line yet (the writer ends every line with "\n"): nothing to read, and
  // the reader would reject a log whose torn first line is not yet a run-start
  const text = existsSync(p) ? readFileSync(p, 'utf8') : '';
  if (text.trim() === '' || !text.includes('\n')) return [];
  return readEvents(p).events;
}

/** Waits until an event matching `pred` is in the log. */
export async function waitForEvent<T extends BlackoutEvent>(dir: string, pred: (e: BlackoutEvent) => e is T, timeoutMs?: number): Promise<T>;
export async function waitForEvent(dir: string, pred: (e: BlackoutEvent) => boolean, timeoutMs?: number): Promise<BlackoutEvent>;
export async function waitForEvent(dir: string, pred: (e: BlackoutEvent) => boolean, timeoutMs = 60_000): Promise<BlackoutEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hit = eventsSoFar(dir).find(pred);
    if (hit) return hit;
    await sleep(50);
  }
  throw new Error(`no matching event in ${dir} within ${timeoutMs} ms`);
}

/** The part of summary.json (src/reporters/json.ts) the probe tests read. */
export interface Summary {
  passed: boolean;
  trials: Array<{
    index: number;
    requestedMs: number;
    injected: { durationMs: number } | null;
    probes: Record<
      string,
      {
        outcome: string;
        reason: string;
        observedOutageMs: number | null;
        errors: Array<{ message: string; fatal: boolean }>;
        verifications: Array<{ ok: boolean; message: string; data?: Record<string, unknown> }>;
        samples: number;
        effectiveIntervalMs?: number;
      }
    >;
  }>;
}

/**
 * summary.json, typed as far as Summary goes; a test that reaches into the rest
 * (verdict, search, per-probe figures) reads it as `readSummary<any>`.
 */
export function readSummary<S = Summary>(dir: string): S {
  return JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as S;
}
