/**
 * postgres probe against the lab's real PostgreSQL: one 2 s cable-pull trial
 * with three probes at once —
 *   db     no client timeouts: the session stalls and survives;
 *   db-qt  query timeout 1 s: fails with pg's own "Query read timeout";
 *   lw     an acknowledged row is deleted behind its back during the cut:
 *          the lost-write check must report data loss;
 * and a misconfigured target (wrong password, closed port): exit 2, nothing injected.
 */
import { describe, expect, it } from 'vitest';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, labSql } from '../helpers/probes.ts';
import { eventsSoFar, readSummary, waitForEvent } from '../helpers/run-dir.ts';

const lab = useLab(labName('ppg'));

describe('postgres probe', () => {
  it('survives a 2 s cable pull, fails past its query timeout, detects a lost acknowledged write', async () => {
    const out = tempDir();
    const suite = writeSuite({
      name: 'pg probe test',
      target: 'lab',
      probes: [
        { name: 'db', kind: 'postgres', interval: '100ms' },
        { name: 'db-qt', kind: 'postgres', interval: '100ms', queryTimeout: '1s', statementTimeout: '1s' },
        { name: 'lw', kind: 'postgres', interval: '100ms' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
      warmup: '1s',
      recovery: '10s',
    });
    const cli = runCli(['run', suite, '--lab', labName('ppg'), '--out', out, '--no-live']);
    // behind the probe's back, during the cut: delete an acknowledged row (over the server's Unix socket)
    await waitForEvent(out, (e) => e.type === 'cut');
    const del = await labSql(lab.state(), 'DELETE FROM bo_lw_t0 WHERE seq = 3');
    expect(del.rowCount).toBe(1);
    const r = await cli;
    expect(r.code, r.stderr).toBe(0);

    const events = eventsSoFar(out);
    const t = readSummary(out).trials[0]!;
    // up: the session opened and samples flowed before the cut
    expect(eventsOf(events, 'db', 'session-open').length).toBe(1);
    expect(t.probes.db!.samples).toBeGreaterThan(10);
    expect(t.probes.db!.outcome).toBe('stalled');
    expect(t.probes.db!.observedOutageMs).toBeGreaterThan(1800);
    expect(t.probes.db!.verifications[0]).toMatchObject({ ok: true });

    expect(t.probes['db-qt']!.outcome).toBe('failed');
    expect(t.probes['db-qt']!.reason).toContain('Query read timeout');
    const lost = eventsOf(events, 'db-qt', 'session-lost')[0];
    expect(lost && 'message' in lost && lost.message).toBe('Query read timeout');

    expect(t.probes.lw!.outcome).toBe('failed');
    const v = t.probes.lw!.verifications.find((x) => !x.ok)!;
    expect(v.message).toMatch(/^data loss: 1 of \d+ acknowledged writes missing from bo_lw_t0 \(seq 3\)/);
    expect(v.data).toMatchObject({ lostWrites: 1, lost: [3] });

    // the password never reaches the event log
    const password = (await import('node:fs')).readFileSync(`${lab.state().dir}/secrets/pg-password`, 'utf8').trim();
    expect((await import('node:fs')).readFileSync(`${out}/events.jsonl`, 'utf8')).not.toContain(password);
  });

  it('a wrong password or a closed port is a preflight failure: exit 2, nothing injected', async () => {
    for (const probe of [
      { name: 'badpw', kind: 'postgres', passwordEnv: 'BO_TEST_WRONG_PW' },
      { name: 'closed', kind: 'postgres', port: 5499, connectionTimeout: '2s' },
    ]) {
      const reason = probe.name === 'badpw' ? /password authentication failed for user "blackout"/ : /ECONNREFUSED/;
      await expectPreflightFailure('ppg', 'pg preflight', probe, reason, { BO_TEST_WRONG_PW: 'not-the-password' });
    }
  });
});
