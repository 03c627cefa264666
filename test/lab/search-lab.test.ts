/**
 * End to end on the lab: a short adaptive search through the real CLI. A tcp
 * probe with a 3 s TCP user timeout and one without; the brackets found must
 * match what their policies predict (the 3 s one breaks after the last
 * retransmission before its timeout, ~3 s, and before the next one, 6.2 s;
 * the plain one survives the range).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { linearSweepTrials } from '../../src/analysis/search.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { readSummary } from '../helpers/run-dir.ts';

useLab(labName('rsearch'));

describe('adaptive search on the lab', () => {
  it('brackets each probe within the resolution, in fewer trials than a linear sweep, where its policy says', async () => {
    const out = tempDir();
    const suite = writeSuite({
      name: 'search e2e',
      target: { lab: labName('rsearch') },
      probes: [
        { name: 'ping', kind: 'icmp', interval: '10ms' },
        { name: 'echo', kind: 'tcp', interval: '100ms' },
        { name: 'echo-ut3s', kind: 'tcp', interval: '100ms', userTimeout: '3s' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: { search: { from: '500ms', to: '8s', resolution: '1s' } },
      warmup: '1s',
      recovery: '15s',
      cooldown: '500ms',
    });
    const r = await runCli(['run', suite, '--out', out, '--no-live'], { timeoutMs: 200_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/search done: every probe is resolved/);
    const s = readSummary<any>(out);
    expect(s.sweep).toMatchObject({ mode: 'search', from: 500, to: 8000, resolution: 1000 });
    expect(s.search.trials).toBeLessThan(linearSweepTrials(500, 8000, 1000));
    for (const t of s.trials) expect(t.reason).toMatch(/^search step \d+/);

    const ut = s.probes['echo-ut3s'];
    expect(ut.status).toBe('resolved');
    expect(ut.requestedBracket.hi - ut.requestedBracket.lo).toBeLessThanOrEqual(1000);
    // the policy's prediction: the last retransmission before the 3 s user timeout (3.0 s); the session breaks
    // between there and the next retransmission after the timeout (6.2 s), depending on where in its request
    // cycle the cut falls (3.3–3.5 s on an idle machine, 4.25–5.25 s seen on a loaded one)
    expect(ut.predicted.breakingMs).toBe(3000);
    // On a loaded machine the kernel's RTO grows with the measured RTT variance, the retransmission that
    // lands just before the user timeout moves earlier, and a 2 s cut has been seen to kill it: then the
    // report must say "breaks earlier" (a finding). Which of the two it says is not free: it follows from
    // the measured bracket against the predicted range (up to 6.2 s, 10 % / 250 ms slack), computed here
    const [lo, hi] = ut.predicted.range as [number, number];
    expect(hi).toBe(6200);
    expect(lo).toBeGreaterThan(2000);
    expect(lo).toBeLessThanOrEqual(3000);
    const earliestAllowed = lo - Math.max(250, 0.1 * lo);
    const expected = ut.minFailedMs !== null && ut.minFailedMs < earliestAllowed ? 'breaks-earlier' : 'agrees';
    expect(ut.agreement, ut.agreementText).toBe(expected);
    if (expected === 'breaks-earlier') expect(s.findings.some((f: { text: string }) => /echo-ut3s: breaks earlier than its policy allows/.test(f.text))).toBe(true);
    expect(ut.maxSurvivedMs).toBeGreaterThan(1400);
    expect(ut.minFailedMs).toBeLessThan(6200 * 1.1);

    expect(s.probes.echo).toMatchObject({ status: 'survives-range', minFailedMs: null, agreement: 'agrees' });
    expect(s.probes.echo.maxSurvivedMs).toBeGreaterThan(7900);
    expect(s.probes.ping.status).toBe('survives-range');
    expect(s.verdict.limitedBy).toBe('echo-ut3s');
    expect(existsSync(join(out, 'allure-results'))).toBe(true);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  });
});
