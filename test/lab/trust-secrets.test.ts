/**
 * Secrets stay secret, SSH host keys are verified, and the harness holds many
 * sessions at once — each against the real lab.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/transport/exec.ts';
import { runCli, tempDir, useLab, writeSuite, labName } from '../helpers/lab.ts';
import { eventsSoFar, readSummary } from '../helpers/run-dir.ts';

const lab = useLab(labName('ttrust'));

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe('secrets', () => {
  it('a sentinel secret used through a whole run appears in no file of the run folder and no terminal output', async () => {
    const s = lab.state();
    // the sentinel is the lab database's real password, handed to the probes through an environment variable
    const sentinel = readFileSync(`${s.dir}/secrets/pg-password`, 'utf8').trim();
    expect(sentinel.length).toBeGreaterThan(12);
    const out = tempDir();
    const suite = writeSuite({
      name: 'secrets',
      target: { lab: labName('ttrust') },
      probes: [
        { name: 'db', kind: 'postgres', interval: '100ms', passwordEnv: 'BO_SENTINEL' },
        { name: 'db-qt', kind: 'postgres', interval: '100ms', passwordEnv: 'BO_SENTINEL', queryTimeout: '1s' },
        { name: 'odbc', kind: 'odbc', interval: '200ms', passwordEnv: 'BO_SENTINEL' },
        { name: 'console', kind: 'console', interval: '200ms' },
      ],
      injector: { kind: 'cable-pull' },
      blackouts: ['2s'],
      warmup: '1500ms',
      recovery: '8s',
    });
    const r = await runCli(['run', suite, '--out', out], { env: { BO_SENTINEL: sentinel } });
    expect(r.code, r.stderr).toBe(0);
    // the probes really used it: they logged in and one of them failed on its own timeout (errors are where secrets leak)
    const sm = readSummary<any>(out);
    expect(sm.trials[0].probes.db.samples).toBeGreaterThan(5);
    expect(sm.trials[0].probes['db-qt'].outcome).toBe('failed');
    const files = filesUnder(out);
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(readFileSync(f).includes(sentinel), f).toBe(false);
    expect(r.stdout.includes(sentinel)).toBe(false);
    expect(r.stderr.includes(sentinel)).toBe(false);
    // the run records where the secret came from, not what it is
    expect(JSON.stringify(eventsSoFar(out)[0])).toContain('"passwordEnv":"BO_SENTINEL"');
  });
});

describe('SSH trust', () => {
  it('a swapped lab host key stops the run before any injection, showing the offered fingerprint', async () => {
    const s = lab.state();
    const keyFile = `${s.dir}/ssh/ssh_host_ed25519_key`;
    const original = readFileSync(keyFile);
    const originalPub = readFileSync(`${keyFile}.pub`);
    const tmp = tempDir('blackout-key-');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(tmp, 'k')]);
    const offered = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(tmp, 'k.pub')], { encoding: 'utf8' }).split(/\s+/)[1]!;
    const pid = Number(readFileSync(`${s.dir}/ssh/sshd.pid`, 'utf8'));
    try {
      // the attacker's (or a rebuilt server's) key: sshd re-reads its host key on SIGHUP
      writeFileSync(keyFile, readFileSync(join(tmp, 'k')), { mode: 0o600 });
      writeFileSync(`${keyFile}.pub`, readFileSync(join(tmp, 'k.pub')));
      process.kill(pid, 'SIGHUP');
      await new Promise((res) => setTimeout(res, 800));
      const out = tempDir();
      const r = await runCli([
        'run',
        writeSuite({
          name: 'trust',
          target: { lab: labName('ttrust') },
          probes: [
            { name: 'console', kind: 'console' },
            { name: 'copy', kind: 'sftp', size: '1MB' },
          ],
          injector: { kind: 'cable-pull' },
          blackouts: ['1s'],
        }),
        '--out',
        out,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(offered);
      expect(r.stderr).toMatch(/does NOT match .*refused/);
      expect(eventsSoFar(out).some((e) => e.type === 'cut')).toBe(false);
    } finally {
      writeFileSync(keyFile, original, { mode: 0o600 });
      writeFileSync(`${keyFile}.pub`, originalPub);
      const newPid = Number(readFileSync(`${s.dir}/ssh/sshd.pid`, 'utf8'));
      process.kill(newPid, 'SIGHUP');
    }
  });
});

describe('load', () => {
  it('100 tcp and 10 postgres sessions through a 2 s cut: no session lost that should not be, no event lost', async () => {
    const probes: unknown[] = Array.from({ length: 100 }, (_, i) => ({ name: `tcp${i}`, kind: 'tcp', interval: '100ms' }));
    for (let i = 0; i < 10; i++) probes.push({ name: `pg${i}`, kind: 'postgres', interval: '200ms' });
    const out = tempDir();
    const r = await runCli([
      'run',
      writeSuite({ name: 'load', target: { lab: labName('ttrust') }, probes, injector: { kind: 'cable-pull' }, blackouts: ['2s'], warmup: '2s', recovery: '15s' }),
      '--out',
      out,
      '--no-live',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const t = readSummary<any>(out).trials[0];
    const outcomes = Object.values(t.probes as Record<string, { outcome: string; samples: number }>);
    expect(outcomes).toHaveLength(110);
    expect(outcomes.filter((p) => p.outcome !== 'stalled')).toEqual([]);
    // every session kept sampling: ~10/s for tcp over the warm-up alone
    for (const p of outcomes) expect(p.samples).toBeGreaterThan(8);
    // the log is whole: every line parses and it ends with run-end
    const events = eventsSoFar(out);
    expect(events.at(-1)?.type).toBe('run-end');
    expect(events.filter((e) => e.type === 'session-lost')).toEqual([]);
  });
});

// the lab's own PostgreSQL accepts the sentinel: a sanity check that the secret test used a real secret
it('the sentinel is the live database password', async () => {
  const s = lab.state();
  const pw = readFileSync(`${s.dir}/secrets/pg-password`, 'utf8').trim();
  const r = await run('psql', ['-h', s.targetAddress, '-U', 'blackout', '-d', 'blackout', '-tAc', 'select 42'], { env: { ...process.env, PGPASSWORD: pw } });
  expect(r.stdout.trim()).toBe('42');
});
