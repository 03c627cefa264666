/**
 * Helpers for the probe tests: read a run folder, wait for an event while the
 * CLI runs (to act behind a probe's back mid-trial), and reach the lab's
 * servers by their local side door (Unix sockets, files) even while the cable
 * is pulled.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { BlackoutEvent } from '../../src/events.ts';
import type { LabState } from '../../src/lab/lab.ts';

export function readEvents(outDir: string): BlackoutEvent[] {
  const p = join(outDir, 'events.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as BlackoutEvent];
      } catch {
        return []; // a line being written
      }
    });
}

export interface Summary {
  passed: boolean;
  trials: Array<{
    index: number;
    requestedMs: number;
    injected: { durationMs: number } | null;
    probes: Record<string, { outcome: string; reason: string; observedOutageMs: number | null; errors: Array<{ message: string; fatal: boolean }>; verifications: Array<{ ok: boolean; message: string; data?: Record<string, unknown> }>; samples: number }>;
  }>;
}

export function readSummary(outDir: string): Summary {
  return JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8')) as Summary;
}

/** Polls the run's events.jsonl until an event matches. */
export async function waitForEvent(outDir: string, match: (e: BlackoutEvent) => boolean, timeoutMs = 60_000): Promise<BlackoutEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const hit = readEvents(outDir).find(match);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no matching event in ${outDir} within ${timeoutMs} ms`);
}

export function eventsOf(events: BlackoutEvent[], probe: string, type?: BlackoutEvent['type']): BlackoutEvent[] {
  return events.filter((e) => 'probe' in e && e.probe === probe && (!type || e.type === type));
}

/** SQL as the PostgreSQL superuser over the lab cluster's Unix socket (works while the cable is pulled). */
export async function labSql(lab: LabState, sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ host: `${lab.dir}/pgsock`, user: 'postgres', database: 'blackout' });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

/** true when the event log shows no cut: nothing was injected */
export const nothingInjected = (events: BlackoutEvent[]): boolean => !events.some((e) => e.type === 'cut');

/**
 * Runs a suite object through the real CLI against a lab; `during(outDir)` runs while the
 * CLI does (e.g. waits for the cut and acts behind a probe's back). Returns the CLI result,
 * the run folder and its events.
 */
export async function runLabSuite(
  labName: string,
  suite: Record<string, unknown>,
  opts: { during?: (outDir: string) => Promise<void>; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; out: string; events: BlackoutEvent[] }> {
  const { runCli, tempDir, writeSuite } = await import('./lab.ts');
  const out = tempDir();
  const cli = runCli(['run', writeSuite({ target: 'lab', ...suite }), '--lab', labName, '--out', out, '--no-live'], { env: opts.env });
  if (opts.during) await opts.during(out);
  const r = await cli;
  return { ...r, out, events: readEvents(out) };
}

export function message(e: BlackoutEvent | undefined): string {
  return (e && 'message' in e ? e.message : '') ?? '';
}
