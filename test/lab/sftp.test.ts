/**
 * sftp probe against the lab's real sshd (internal-sftp), file-copy port throttled
 * by the lab's HTB. One 2 s cable-pull trial, four copies at once —
 *   dl       a 12 MB download: stalls, resumes, sha256 matches on both ends;
 *   up       an 8 MB upload: the same, the server's sha256 taken after the upload;
 *   ka       keepalive 500 ms × 2: the copy dies with ssh2's "Keepalive timeout";
 *   corrupt  the server's file is changed behind its back during the cut: the checksum catches it;
 * and a missing remote file: exit 2, nothing injected.
 */
import { describe, expect, it } from 'vitest';
import { writeRandomFile } from '../../src/lab/services/files.ts';
import { useLab, labName } from '../helpers/lab.ts';
import { corruptAfterCut, eventsOf, expectPreflightFailure, message, runLabSuite, sampleValues } from '../helpers/probes.ts';
import { readSummary } from '../helpers/run-dir.ts';

const lab = useLab(labName('psftp'));
const MB = 1024 * 1024;

describe('sftp probe', () => {
  it('copies survive a 2 s cable pull with matching checksums; keepalive 500 ms × 2 fails; corruption is detected', async () => {
    const dir = `${lab.state().dir}/files`;
    writeRandomFile(`${dir}/t-dl.bin`, 12 * MB);
    writeRandomFile(`${dir}/t-corrupt.bin`, 12 * MB);
    const r = await runLabSuite(
      'psftp',
      {
        name: 'sftp probe test',
        probes: [
          { name: 'dl', kind: 'sftp', remotePath: `${dir}/t-dl.bin` },
          { name: 'up', kind: 'sftp', direction: 'upload', size: '8MB' },
          { name: 'ka', kind: 'sftp', remotePath: `${dir}/t-dl.bin`, serverAlive: { interval: '500ms', countMax: 2 } },
          { name: 'corrupt', kind: 'sftp', remotePath: `${dir}/t-corrupt.bin` },
        ],
        injector: { kind: 'cable-pull' },
        blackouts: ['2s'],
        warmup: '1s',
        recovery: '10s',
      },
      // behind the probe's back: flip bytes near the end of the file it is downloading
      { during: corruptAfterCut(`${dir}/t-corrupt.bin`, 12 * MB) },
    );
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary(r.out).trials[0]!;
    for (const name of ['dl', 'up']) {
      expect(eventsOf(r.events, name, 'session-open').length, name).toBe(1);
      expect(t.probes[name]!.outcome, `${name}: ${t.probes[name]!.reason}`).toBe('stalled');
      expect(t.probes[name]!.verifications, name).toEqual([expect.objectContaining({ ok: true, message: expect.stringMatching(/sha256 matches on both ends/) })]);
      // the throughput timeline: bytes so far, never decreasing, up to the whole file
      const values = sampleValues(r.events, name);
      expect(values.every((v, i) => i === 0 || v >= values[i - 1]!)).toBe(true);
      expect(values.at(-1)).toBe(name === 'dl' ? 12 * MB : 8 * MB);
    }
    expect(t.probes.ka!.outcome).toBe('failed');
    expect(message(eventsOf(r.events, 'ka', 'session-lost')[0])).toBe('Keepalive timeout');
    expect(t.probes.corrupt!.outcome).toBe('failed');
    expect(t.probes.corrupt!.verifications[0]!.message).toMatch(/t-corrupt\.bin: sha256 mismatch — server [0-9a-f]{64}, client [0-9a-f]{64}: the copy is corrupt/);
  });

  it('a missing remote file is a preflight failure: exit 2, nothing injected', async () => {
    await expectPreflightFailure('psftp', 'sftp preflight', { name: 'missing', kind: 'sftp', remotePath: '/nonexistent/file.bin' }, /\/nonexistent\/file\.bin on the server: No such file/);
  });
});
