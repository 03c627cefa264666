/**
 * Exact names, no sub-language injection (no lab):
 *  - a VM name with glob characters or a leading "-" is refused for every
 *    hypervisor adapter (Hyper-V -Name takes wildcards; govc and virsh read
 *    "-x" as a flag), and positional names follow "--";
 *  - the SMB probe's file cannot carry a second smbclient command (";") and
 *    ODBC values cannot carry a newline (a new odbc.ini line) or ";";
 *  - a remote POSIX command reaches the login shell as a fixed /bin/sh
 *    bootstrap: no backslash and no quote inside its one quoted literal, so
 *    fish, csh or zsh parse it as sh does.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SuiteError, validateSuite } from '../../src/run/suite.ts';
import { decodePosixBootstrap, posixBootstrap, renderPosix } from '../../src/transport/ssh-exec.ts';
import { makeInjector } from '../helpers/injector.ts';

const ssh = { host: 'hv01.example.internal', user: 'ops', privateKeyFile: '/nonexistent', hostKey: 'SHA256:Q2hhbmdlTWVUb1RoZUhvc3RLZXlPZkh2MDEuLi4uLi4' };

function problems(probe: Record<string, unknown>, injector: Record<string, unknown> = { kind: 'cable-pull' }): string {
  try {
    validateSuite({ name: 'n', target: { host: 'app01.example.internal' }, probes: [{ name: 'p', ...probe }], injector, blackouts: ['2s'] }, 's.yaml');
    return '';
  } catch (e) {
    if (e instanceof SuiteError) return e.problems.join('\n');
    throw e;
  }
}

describe('exact VM names', () => {
  const blocks: Array<[string, Record<string, unknown>, string]> = [
    ['hyperv', { kind: 'hyperv', ssh, mode: 'pause' }, 'vm'],
    ['libvirt', { kind: 'libvirt', mode: 'suspend' }, 'domain'],
    ['vsphere', { kind: 'vsphere', url: 'https://vc/sdk', username: 'u', password: { env: 'P' }, mode: 'suspend' }, 'vm'],
  ];
  for (const [kind, block, field] of blocks) {
    it.each(['*', 'app*', 'app?', 'app[01]'])(`${kind}: ${field} %s (a wildcard) is refused`, (bad) => {
      expect(problems({ kind: 'tcp' }, { ...block, [field]: bad })).toMatch(new RegExp(`injector\\.${field}: expected an exact name`));
    });
    it.each(['-h', '--help', '-dc=other'])(`${kind}: ${field} %s (a leading "-") is refused`, (bad) => {
      expect(problems({ kind: 'tcp' }, { ...block, [field]: bad })).toMatch(new RegExp(`injector\\.${field}: expected a name that does not start with "-"`));
    });
    it(`${kind}: an ordinary name with spaces and quotes is accepted`, () => {
      expect(problems({ kind: 'tcp' }, { ...block, [field]: "app 01's vm" })).toBe('');
    });
  }

  it('positional names follow "--" in the dry-run transcripts of virsh and govc', async () => {
    const lv = makeInjector({ kind: 'libvirt', domain: 'app01', mode: 'save', saveFile: '/var/lib/x/app01.save' }, { dryRun: true });
    await lv.injector.preflight();
    await lv.injector.cut(1000);
    await lv.injector.restore('scheduled');
    const t = lv.transcript.join('\n');
    expect(t).toContain('virsh domstate -- app01');
    expect(t).toContain('virsh suspend -- app01');
    expect(t).toContain('virsh save -- app01 /var/lib/x/app01.save');
    expect(t).toContain('virsh restore --running -- /var/lib/x/app01.save');
    const vs = makeInjector({ kind: 'vsphere', url: 'https://vc/sdk', username: 'u', password: { env: 'P' }, vm: 'app01', mode: 'suspend' }, { dryRun: true });
    await vs.injector.preflight();
    await vs.injector.cut(1000);
    await vs.injector.restore('scheduled');
    const v = vs.transcript.join('\n');
    expect(v).toContain('govc vm.info -- app01');
    expect(v).toContain('govc vm.power -suspend -- app01');
    expect(v).toContain('govc vm.power -on -- app01');
  });
});

describe('no sub-language injection', () => {
  it.each([
    ['a ";" (a second smbclient command)', 'big.bin; rm big.bin'],
    ['a double quote', 'big".bin'],
    ['a single quote', "big'.bin"],
    ['a newline', 'big.bin\nrm x'],
    ['a tab', 'big\t.bin'],
  ])('smb file with %s is refused', (_what, file) => {
    expect(problems({ kind: 'smb', file })).toMatch(/probes\[0\]\.file: expected a file name without ;, quotes or control characters/);
  });
  it('smb user, domain and share: no newline (a line of the authentication file), no ";"', () => {
    expect(problems({ kind: 'smb', user: 'ops\npassword = x' })).toMatch(/probes\[0\]\.user: /);
    expect(problems({ kind: 'smb', domain: 'W\nusername = root' })).toMatch(/probes\[0\]\.domain: /);
    expect(problems({ kind: 'smb', share: 'data;x' })).toMatch(/probes\[0\]\.share: /);
    expect(problems({ kind: 'smb', file: 'dir\\big file.bin', user: 'ops', domain: 'CORP', share: 'data' })).toBe('');
  });
  it.each([
    ['database', 'app\nDriver = /tmp/evil.so'],
    ['database', 'app;Driver=/tmp/evil.so'],
    ['user', 'ops\r\nServername = 10.0.0.9'],
    ['user', 'ops}'],
    ['host', 'db1\nPort = 1'],
    ['driver', '/usr/lib/x.so\nDebug = 1'],
  ])('odbc %s with a newline, ";" or a brace is refused', (field, value) => {
    expect(problems({ kind: 'odbc', [field]: value })).toMatch(new RegExp(`probes\\[0\\]\\.${field}: .*must not contain ";", braces, quotes or control characters`));
  });
});

describe('remote POSIX commands through a fixed /bin/sh bootstrap', () => {
  const NASTY = ["it's", '$(touch /nonexistent/pwned)', '`id`', 'a b\tc', '"dq"', '\\back', "'", "''", "\\'", '!x', '{a,b}', '~', 'ü€', '-n', ''];
  const line = renderPosix({ argv: ['printf', '%s\\n', ...NASTY] }, false).line;
  const sent = posixBootstrap(line);

  it('the sent line is the fixed bootstrap and one base64 word: no backslash or quote for a login shell to misread', () => {
    expect(sent).toMatch(/^\/bin\/sh -c 'eval "\$\(printf %s "\$0" \| base64 -d\)"' [A-Za-z0-9+/]+=*$/);
    const literal = /'([^']*)'/.exec(sent)![1]!;
    expect(literal).not.toMatch(/[\\']/);
    expect(decodePosixBootstrap(sent)).toBe(line);
  });

  // every shell on this machine that may be a login shell runs it to the same arguments
  const shells = ['/bin/sh', '/bin/bash', '/bin/dash', '/usr/bin/zsh', '/usr/bin/fish', '/bin/csh', '/bin/busybox'].filter((s) => existsSync(s));
  it.each(shells)('%s -c <bootstrap> prints every argument exactly', (shell) => {
    const args = shell === '/bin/busybox' ? ['sh', '-c', sent] : ['-c', sent];
    const out = execFileSync(shell, args, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(out).toBe(NASTY.map((a) => `${a}\n`).join(''));
  });
});
