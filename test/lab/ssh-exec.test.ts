/**
 * The SSH command runner: quoting through real shells, host key verification
 * (pinned, known_hosts: plain, hashed, [host]:port, changed, unknown, revoked),
 * secrets on stdin and scrubbed from errors, timeouts — against the lab's real
 * OpenSSH server and the recording server.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { checkHostKey, knownHostsFieldMatches } from '../../src/transport/ssh-trust.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodePowershellCommandLine,
  describeCommand,
  DryRunExecutor,
  ExecError,
  LocalExecutor,
  posixJoin,
  posixQuote,
  powershellCommandLine,
  psQuote,
  SshExecutor,
} from '../../src/transport/ssh-exec.ts';
import { run } from '../../src/transport/exec.ts';
import { startFakeSsh, type FakeSsh } from '../helpers/fake-ssh.ts';
import { tempDir, useLab, labName } from '../helpers/lab.ts';

const NASTY = ["it's", '$(touch /tmp/pwned)', '`id`', 'a b\tc', '"dq"', '\\back', '*', '; rm -rf /', '--', '-n', '', 'ü€', 'line\nbreak', "'", "''", '$HOME', '!x', '{a,b}', '~'];

describe('quoting', () => {
  it('posixQuote round-trips every string through a real /bin/sh', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('\0')),
          { minLength: 1, maxLength: 5 },
        ),
        async (args) => {
          const r = await run('sh', ['-c', `printf '%s\\0' ${posixJoin(args)}`]);
          expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
        },
      ),
      { numRuns: 60 },
    );
    const r = await run('sh', ['-c', `printf '%s\\0' ${posixJoin(NASTY)}`]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(NASTY);
  });

  it('plain words stay readable, the rest is single-quoted', () => {
    expect(posixQuote('virsh')).toBe('virsh');
    expect(posixQuote('10.0.0.5/32')).toBe('10.0.0.5/32');
    expect(posixQuote("it's")).toBe(`'it'\\''s'`);
    expect(posixQuote('')).toBe(`''`);
    expect(() => posixQuote('a\0b')).toThrow(/NUL/);
  });

  it('psQuote doubles every PowerShell quote character; the encoded command line survives any shell', () => {
    expect(psQuote("O'Brien")).toBe(`'O''Brien'`);
    expect(psQuote('a\u2019b')).toBe(`'a\u2019\u2019b'`);
    expect(psQuote('$env:X; `n')).toBe(`'$env:X; \`n'`);
    const script = `Save-VM -Name ${psQuote("app'01 $(x)")}`;
    const line = powershellCommandLine(script);
    expect(line).toMatch(/^powershell\.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand [A-Za-z0-9+/=]+$/);
    expect(decodePowershellCommandLine(line)).toBe(script);
  });

  it('a transcript shows secret placeholders, never values', () => {
    process.env.A_TEST_SECRET = 'hunter2-secret';
    const line = describeCommand({ argv: ['govc', 'vm.power', '-on', 'app 01'], env: { GOVC_PASSWORD: { env: 'A_TEST_SECRET' }, GOVC_URL: 'https://vc' } });
    expect(line).toContain('<secret from env A_TEST_SECRET>');
    expect(line).not.toContain('hunter2');
    expect(line).toContain(`exec govc vm.power -on 'app 01'`);
  });

  it('the dry-run executor records and runs nothing', async () => {
    const lines: string[] = [];
    const ex = new DryRunExecutor('ssh ops@hv:22', (l) => lines.push(l));
    const marker = join(tempDir(), 'touched');
    const r = await ex.exec({ argv: ['touch', marker] }, { label: 'cut' });
    expect(r.dryRun).toBe(true);
    expect(lines).toEqual([`[ssh ops@hv:22] cut: touch ${marker}`]);
  });
});

describe('local executor', () => {
  it('passes secrets through the environment only, bounds every call', async () => {
    process.env.A_LOCAL_SECRET = 's3cr3t-value';
    const ex = new LocalExecutor();
    const r = await ex.exec({ argv: ['sh', '-c', 'printf %s "$TOKEN"'], env: { TOKEN: { env: 'A_LOCAL_SECRET' } } });
    expect(r.stdout).toBe('s3cr3t-value');
    const t0 = Date.now();
    const e = await ex.exec({ argv: ['sleep', '5'] }, { timeoutMs: 300 }).catch((x: ExecError) => x);
    expect(e).toBeInstanceOf(ExecError);
    expect((e as ExecError).timedOut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    const f = await ex.exec({ argv: ['sh', '-c', 'echo "bad $TOKEN" >&2; exit 3'], env: { TOKEN: { env: 'A_LOCAL_SECRET' } } }).catch((x: ExecError) => x);
    expect((f as ExecError).message).toMatch(/exit 3/);
    expect((f as ExecError).message).not.toContain('s3cr3t-value');
    expect((f as ExecError).message).toContain('[redacted]');
  });
});

describe('host key verification', () => {
  const blob = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
  const other = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]);
  const dir = tempDir('blackout-kh-');

  it('matches plain, [host]:port, patterns and hashed entries', () => {
    expect(knownHostsFieldMatches('hv01,10.0.0.9', 'hv01', 22)).toBe(true);
    expect(knownHostsFieldMatches('hv01', 'hv01', 2222)).toBe(false);
    expect(knownHostsFieldMatches('[hv01]:2222', 'hv01', 2222)).toBe(true);
    expect(knownHostsFieldMatches('*.lab,!bad.lab', 'good.lab', 22)).toBe(true);
    expect(knownHostsFieldMatches('*.lab,!bad.lab', 'bad.lab', 22)).toBe(false);
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('hv01').digest('base64')}`;
    expect(knownHostsFieldMatches(hashed, 'hv01', 22)).toBe(true);
    expect(knownHostsFieldMatches(hashed, 'hv02', 22)).toBe(false);
  });

  it('accepts a known key, refuses unknown, changed and revoked keys naming the offered fingerprint', () => {
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, `# comment\nhv01 ssh-ed25519 ${blob.toString('base64')}\n@revoked hv03 ssh-ed25519 ${other.toString('base64')}\n`);
    expect(checkHostKey({ host: 'hv01', port: 22, knownHostsFile: kh }, blob)).toBeNull();
    const changed = checkHostKey({ host: 'hv01', port: 22, knownHostsFile: kh }, other);
    expect(changed).toMatch(/has CHANGED/);
    expect(changed).toContain('SHA256:');
    expect(checkHostKey({ host: 'hv02', port: 22, knownHostsFile: kh }, blob)).toMatch(/unknown.*offered ssh-ed25519 SHA256:/);
    expect(checkHostKey({ host: 'hv03', port: 22, knownHostsFile: kh }, other)).toMatch(/@revoked/);
    expect(checkHostKey({ host: 'hv01', port: 22, knownHostsFile: join(dir, 'nope') }, blob)).toMatch(/does not exist/);
  });
});

describe('over SSH: the lab OpenSSH server (real /bin/sh) and the recording server', () => {
  const lab = useLab(labName('aexec'));
  let fake: FakeSsh;
  beforeAll(async () => {
    fake = await startFakeSsh({
      rules: [
        { match: 'sleep-forever', hang: true },
        { match: 'fail-me', code: 7, stderr: 'boom' },
      ],
    });
  });
  afterAll(async () => {
    // a start that failed leaves nothing to close; throwing here stopped the lab's own teardown after it
    // (a fresh-clone run left this lab up when ssh2's key generation failed under load)
    await fake?.close();
  });
  const labSsh = () => {
    const s = lab.state();
    const ssh = s.services.ssh as unknown as { user: string; privateKeyFile: string; hostKey: string };
    return { host: s.targetAddress, port: 22, user: ssh.user, privateKeyFile: ssh.privateKeyFile, hostKey: ssh.hostKey };
  };

  it('every nasty argument arrives intact through the remote shell', async () => {
    const ex = new SshExecutor(labSsh());
    try {
      const r = await ex.exec({ argv: ['printf', '%s\\0', ...NASTY] }, { timeoutMs: 10_000 });
      expect(r.stdout.split('\0').slice(0, -1)).toEqual(NASTY);
      // secrets on stdin: in the environment of the command, not on its command line
      process.env.A_SSH_SECRET = "pa ss'word";
      const s = await ex.exec({ argv: ['sh', '-c', 'printf %s "$PW"; ps -o args= -p $$ >&2'], env: { PW: { env: 'A_SSH_SECRET' } } }, { timeoutMs: 10_000 });
      expect(s.stdout).toBe("pa ss'word");
      expect(s.stderr).not.toContain('pa ss');
    } finally {
      await ex.close();
    }
  });

  it('a timed-out command is killed on the server (signal KILL over the channel)', async () => {
    const ex = new SshExecutor(labSsh());
    try {
      const e = (await ex.exec({ argv: ['sh', '-c', 'echo $$; exec sleep 30'] }, { timeoutMs: 4000 }).catch((x: ExecError) => x)) as ExecError;
      expect(e.timedOut).toBe(true);
      const pid = e.result!.stdout.trim();
      expect(pid).toMatch(/^\d+$/);
      let alive = 0;
      for (let i = 0; i < 30; i++) {
        alive = (await ex.exec({ argv: ['kill', '-0', pid] }, { allowFail: true })).code ?? -1;
        if (alive !== 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(alive).not.toBe(0);
    } finally {
      await ex.close();
    }
  });

  it('refuses a wrong pinned key and a missing known_hosts entry, showing the offered fingerprint', async () => {
    const good = labSsh();
    const wrong = new SshExecutor({ ...good, hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    const e = await wrong.exec({ argv: ['true'] }, { timeoutMs: 10_000 }).catch((x: Error) => x);
    expect((e as Error).message).toContain('does NOT match the pinned');
    expect((e as Error).message).toContain(good.hostKey);
    const kh = join(tempDir(), 'known_hosts');
    writeFileSync(kh, `otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7rYb2xH3y1\n`);
    const unknown = new SshExecutor({ ...good, hostKey: undefined, knownHostsFile: kh });
    const u = await unknown.exec({ argv: ['true'] }, { timeoutMs: 10_000 }).catch((x: Error) => x);
    expect((u as Error).message).toMatch(/unknown/);
    expect((u as Error).message).toContain(good.hostKey);
    // the same key in known_hosts: accepted
    const pub = readFileSync(`${(lab.state().services.ssh as unknown as { hostKeyFile: string }).hostKeyFile}`, 'utf8').split(' ');
    writeFileSync(kh, `${good.host} ${pub[0]} ${pub[1]}\n`);
    const known = new SshExecutor({ ...good, hostKey: undefined, knownHostsFile: kh });
    expect((await known.exec({ argv: ['echo', 'ok'] }, { timeoutMs: 10_000 })).stdout).toBe('ok\n');
    await known.close();
  });

  it('times out a hanging command (sending KILL), reports exit codes, reconnects after a drop', async () => {
    const ex = new SshExecutor({ host: fake.host, port: fake.port, user: fake.user, privateKeyFile: fake.privateKeyFile, hostKey: fake.hostKey });
    try {
      const t0 = Date.now();
      const e = await ex.exec({ argv: ['sleep-forever'] }, { timeoutMs: 600, label: 'cut' }).catch((x: ExecError) => x);
      expect((e as ExecError).timedOut).toBe(true);
      expect((e as ExecError).message).toMatch(/\(cut\): no answer within 600 ms/);
      expect(Date.now() - t0).toBeLessThan(3000);
      const f = await ex.exec({ argv: ['fail-me'] }).catch((x: ExecError) => x);
      expect((f as ExecError).message).toMatch(/exit 7: boom/);
      await ex.close(); // a dropped connection: the next call connects again
      expect((await ex.exec({ argv: ['echo', 'x'] })).code).toBe(0);
      expect(fake.commands()).toEqual(['sleep-forever', 'fail-me', 'echo x']);
    } finally {
      await ex.close();
    }
  });
});
