/**
 * smb probe (smbclient) against the lab's real Samba, file-copy port throttled.
 *  - a 2 s cable pull: `smb` (smbclient's default 20 s request timeout) stalls and
 *    resumes with a matching checksum; in another run, `corrupt`'s file is
 *    changed on the server during the cut: the checksum catches it;
 *  - a 7 s cable pull: `smb-t5` (smbclient -t 5) fails with smbclient's own
 *    NT_STATUS_IO_TIMEOUT (alone: under contention on the throttled link a 5 s
 *    request timeout is too tight even without a blackout);
 *  - a wrong password: exit 2, nothing injected.
 */
import { describe, expect, it } from 'vitest';
import { writeRandomFile } from '../../src/lab/services/files.ts';
import { useLab, labName } from '../helpers/lab.ts';
import { corruptAfterCut, eventsOf, expectPreflightFailure, message, runLabSuite, sampleValues } from '../helpers/probes.ts';
import { readSummary } from '../helpers/run-dir.ts';

const lab = useLab(labName('psmb'));
const MB = 1024 * 1024;

describe('smb probe', () => {
  // one copy per run: two copies on the lab's one throttled SMB link (a drop-tail queue; this kernel has no
  // per-flow fair queueing) once left the second without progress for the whole 1 s warm-up on a loaded
  // machine, and the run ended in preflight ("smb: no steady good samples during warm-up")
  it('a copy survives a 2 s cable pull with a matching checksum', async () => {
    writeRandomFile(`${lab.state().dir}/files/t-smb.bin`, 12 * MB);
    const r = await runLabSuite('psmb', {
      name: 'smb probe test',
      probes: [{ name: 'smb', kind: 'smb', file: 't-smb.bin' }],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
      warmup: '1s',
      recovery: '10s',
    });
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(eventsOf(r.events, 'smb', 'session-open').length).toBe(1);
    expect(t.probes.smb!.outcome, t.probes.smb!.reason).toBe('stalled');
    expect(t.probes.smb!.observedOutageMs).toBeGreaterThan(1800);
    expect(t.probes.smb!.verifications).toEqual([expect.objectContaining({ ok: true, message: "t-smb.bin: sha256 matches the server's" })]);
    const values = sampleValues(r.events, 'smb');
    expect(values.at(-1)).toBe(12 * MB);
    // a budget for a loaded machine, not a timing claim
  }, 300_000);

  it('a file changed on the server during the cut: the checksum catches it', async () => {
    const dir = `${lab.state().dir}/files`;
    writeRandomFile(`${dir}/t-corrupt.bin`, 24 * MB);
    const r = await runLabSuite(
      'psmb',
      {
        name: 'smb corruption test',
        probes: [{ name: 'corrupt', kind: 'smb', file: 't-corrupt.bin' }],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s'],
        warmup: '1s',
        recovery: '10s',
      },
      { during: corruptAfterCut(`${dir}/t-corrupt.bin`, 24 * MB) },
    );
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(t.probes.corrupt!.outcome).toBe('failed');
    expect(t.probes.corrupt!.verifications[0]!.message).toMatch(/^t-corrupt\.bin: sha256 mismatch — server [0-9a-f]{64}, received [0-9a-f]{64}: the copy is corrupt$/);
  }, 300_000);

  it('smbclient -t 5 fails a 7 s cable pull with its own NT_STATUS_IO_TIMEOUT', async () => {
    writeRandomFile(`${lab.state().dir}/files/t-t5.bin`, 16 * MB);
    const r = await runLabSuite('psmb', {
      name: 'smb timeout test',
      probes: [{ name: 'smb-t5', kind: 'smb', file: 't-t5.bin', timeout: '5s' }],
      injector: { kind: 'cable-pull' },
      blackouts: ['7s'],
      warmup: '1s',
      recovery: '5s',
    });
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    expect(t.probes['smb-t5']!.outcome).toBe('failed');
    const lost = eventsOf(r.events, 'smb-t5', 'session-lost')[0]!;
    expect(message(lost)).toMatch(/^smbclient: .*NT_STATUS_IO_TIMEOUT/);
    const cut = r.events.find((e) => e.type === 'cut')!;
    // the request that times out may have been sent (and queued on the throttled link) before the cut
    expect(lost.t - cut.t).toBeGreaterThan(1000);
    expect(lost.t - cut.t).toBeLessThan(7000);
  });

  it('a wrong password is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure('psmb', 'smb preflight', { name: 'badpw', kind: 'smb', passwordEnv: 'BO_TEST_WRONG_PW' }, /NT_STATUS_LOGON_FAILURE/, { BO_TEST_WRONG_PW: 'not-the-password' });
  });
});
