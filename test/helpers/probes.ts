/**
 * Helpers for the probe tests: run a suite through the CLI while acting behind
 * a probe's back, pick a probe's events, and reach the lab's servers by their
 * local side door (Unix sockets, files) even while the cable is pulled.
 * Reading the run folder itself is in run-dir.ts.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { expect } from 'vitest';
import type { BlackoutEvent } from '../../src/core/events.ts';
import type { LabState } from '../../src/lab/state.ts';
import { eventsSoFar, waitForEvent } from './run-dir.ts';

export function eventsOf(events: BlackoutEvent[], probe: string, type?: BlackoutEvent['type']): BlackoutEvent[] {
  return events.filter((e) => 'probe' in e && e.probe === probe && (!type || e.type === type));
}

/** A sample's `value` for each of a probe's samples: for a copy, the bytes so far. */
export function sampleValues(events: BlackoutEvent[], probe: string): number[] {
  return eventsOf(events, probe, 'sample').map((e) => (e.type === 'sample' ? e.value! : 0));
}

/**
 * A `during` for runLabSuite: once the cut is in, flips bytes near the end of the
 * server's file (`size` bytes) behind the back of the probe copying it, so only
 * the copy's checksum can tell.
 */
export function corruptAfterCut(path: string, size: number): (outDir: string) => Promise<void> {
  return async (outDir) => {
    // the run opens its copies and warms up first: minutes on a machine loaded by the whole suite
    await waitForEvent(outDir, (e) => e.type === 'cut', 180_000);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('corrupted by the test'), 0, 21, size - 4096);
    closeSync(fd);
  };
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
  const { runCli, tempDir, writeSuite, labName: tagged } = await import('./lab.ts');
  const out = tempDir();
  // callers name the lab's base name, as they gave it to useLab(labName(…)): the tagged name is the lab's
  const tag = process.env.BLACKOUT_TEST_LAB_TAG;
  const lab = tag && labName.endsWith(`-${tag}`) ? labName : tagged(labName);
  const suiteFile = writeSuite({ target: 'lab', ...suite });
  const cli = runCli(['run', suiteFile, '--lab', lab, '--out', out, '--no-live'], { env: opts.env });
  try {
    if (opts.during) {
      // a run that ends first (a preflight failure, an error) would leave `during` waiting for an event that
      // never comes, and the test would fail on that wait without the run's own words: give it 2 s more, then
      // fail with the run's exit code, stderr and last events
      const acting = opts.during(out);
      acting.catch(() => {});
      const ended = cli.then(async (r) => {
        const late = await Promise.race([acting.then(() => true), sleep(2000).then(() => false)]);
        if (!late) {
          const last = eventsSoFar(out)
            .slice(-8)
            .map((e) => JSON.stringify(e))
            .join('\n');
          throw new Error(`the run ended (exit ${r.code}) before the test had acted; stderr: ${r.stderr.slice(-1500)}\nlast events:\n${last}`);
        }
      });
      await Promise.race([acting, ended]);
    }
  } finally {
    await cli;
    rmSync(dirname(suiteFile), { recursive: true, force: true });
  }
  const r = await cli;
  return { ...r, out, events: eventsSoFar(out) };
}

export function message(e: BlackoutEvent | undefined): string {
  return (e && 'message' in e ? e.message : '') ?? '';
}

/**
 * Runs a one-probe suite whose probe cannot work (wrong password, missing file,
 * closed port) and checks the preflight stops it: exit 2, nothing injected, and
 * the failed preflight's message matching `reason`.
 */
export async function expectPreflightFailure(labName: string, name: string, probe: Record<string, unknown>, reason: RegExp, env?: NodeJS.ProcessEnv): Promise<void> {
  const r = await runLabSuite(labName, { name, probes: [probe], injector: { kind: 'cable-pull' }, blackouts: ['2s'], warmup: '500ms' }, { env });
  try {
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(nothingInjected(r.events)).toBe(true);
    expect(message(r.events.find((e) => e.type === 'preflight' && !e.ok))).toMatch(reason);
  } finally {
    rmSync(r.out, { recursive: true, force: true });
  }
}
