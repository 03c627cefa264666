/**
 * console probe (ssh2 interactive shell) against the lab's real sshd: one 2 s
 * cable-pull trial with two consoles at once —
 *   con     no keepalive (OpenSSH's default): the shell stalls and survives;
 *   con-ka  keepalive 500 ms × 2: fails with ssh2's own "Keepalive timeout";
 * and the preflight: an unknown host key is refused, a closed port is refused — exit 2, nothing injected.
 */
import { describe, expect, it } from 'vitest';
import { useLab, labName } from '../helpers/lab.ts';
import { eventsOf, expectPreflightFailure, message, runLabSuite } from '../helpers/probes.ts';
import { readSummary } from '../helpers/run-dir.ts';

useLab(labName('pcon'));

describe('console probe', () => {
  it('a plain console survives a 2 s cable pull; one with keepalive 500 ms × 2 dies with "Keepalive timeout"', async () => {
    const r = await runLabSuite('pcon', {
      name: 'console probe test',
      probes: [
        { name: 'con', kind: 'console', interval: '200ms' },
        { name: 'con-ka', kind: 'console', interval: '200ms', serverAlive: { interval: '500ms', countMax: 2 } },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
      warmup: '1s',
      recovery: '10s',
    });
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(eventsOf(r.events, 'con', 'session-open').length).toBe(1);
    expect(t.probes.con!.samples).toBeGreaterThan(5);
    expect(t.probes.con!.outcome).toBe('stalled');
    expect(t.probes.con!.observedOutageMs).toBeGreaterThan(1800);
    expect(t.probes['con-ka']!.outcome).toBe('failed');
    const lost = eventsOf(r.events, 'con-ka', 'session-lost')[0]!;
    expect(message(lost)).toBe('Keepalive timeout');
    // it died during the cut, after about interval × (countMax + 1)
    const cut = r.events.find((e) => e.type === 'cut')!;
    expect(lost.t - cut.t).toBeGreaterThan(700);
    expect(lost.t - cut.t).toBeLessThan(2000);
    // the policy is recorded next to the outcome
    const start = r.events[0]!;
    expect(start.type === 'run-start' && start.probes.find((p) => p.name === 'con-ka')!.policy).toMatchObject({ keepaliveIntervalMs: 500, keepaliveCountMax: 2 });
  });

  it('an unknown host key or a closed port is a preflight failure: exit 2, nothing injected', async () => {
    for (const [probe, pattern] of [
      [{ name: 'badkey', kind: 'console', hostKey: 'SHA256:' + 'A'.repeat(43) }, /host key of [\d.]+:22 does NOT match the probe's hostKey .*\(refused\)/],
      [{ name: 'closed', kind: 'console', port: 2222 }, /ECONNREFUSED/],
    ] as const) {
      await expectPreflightFailure('pcon', 'console preflight', probe, pattern);
    }
  });
});
