/**
 * Samba (smbd from Debian's samba package) in the target namespace: its own
 * smb.conf and state in the lab folder, SMB2+ on port 445 only (no NetBIOS,
 * no nmbd, no printers), one share `files` = the lab's file-copy folder (see
 * files.ts: the large file and its .sha256), one user (the lab user `bolab`)
 * whose generated password lives in a root-only file.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { run } from '../../transport/exec.ts';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';
import { LAB_USER } from './ssh.ts';

export const SMB_SHARE = 'files';

export const smb: LabService = {
  name: 'smb',
  packages: ['samba', 'smbclient'],
  // its share is the files service's folder
  after: ['files'],
  async start(lab) {
    const dir = `${lab.dir}/smb`;
    rmSync(dir, { recursive: true, force: true });
    for (const d of ['', '/private', '/lock', '/state', '/cache', '/run', '/ncalrpc']) mkdirSync(`${dir}${d}`, { recursive: true, mode: 0o755 });
    const passwordFile = `${lab.dir}/secrets/smb-password`;
    const password = randomBytes(18).toString('base64url');
    writeFileSync(passwordFile, password + '\n', { mode: 0o600 });
    const conf = `${dir}/smb.conf`;
    writeFileSync(
      conf,
      [
        '[global]',
        '  server role = standalone server',
        `  interfaces = ${lab.targetAddress}/24`,
        '  bind interfaces only = yes',
        '  smb ports = 445',
        '  disable netbios = yes',
        '  server min protocol = SMB2',
        `  pid directory = ${dir}/run`,
        `  lock directory = ${dir}/lock`,
        `  state directory = ${dir}/state`,
        `  cache directory = ${dir}/cache`,
        `  private dir = ${dir}/private`,
        `  ncalrpc dir = ${dir}/ncalrpc`,
        `  passdb backend = tdbsam:${dir}/private/passdb.tdb`,
        '  logging = file',
        `  log file = ${dir}/log.smbd`,
        '  log level = 1',
        '  load printers = no',
        '  printing = bsd',
        '  printcap name = /dev/null',
        '  disable spoolss = yes',
        '  map to guest = never',
        '  restrict anonymous = 2',
        // 256 KiB per read/write (Samba's default is 8 MiB): at the throttled rate an 8 MiB
        // response is ~2 s of silence, which would hide the blackout in the progress timeline
        '  smb2 max read = 262144',
        '  smb2 max write = 262144',
        '  smb2 max trans = 262144',
        '',
        `[${SMB_SHARE}]`,
        `  path = ${lab.dir}/files`,
        '  read only = no',
        `  valid users = ${LAB_USER}`,
        '',
      ].join('\n'),
    );
    // the password travels on stdin (twice: new + retype), never on a command line
    await run('smbpasswd', ['-c', conf, '-s', '-a', LAB_USER], { input: `${password}\n${password}\n` });
    startInTarget(lab, 'smbd', '/usr/sbin/smbd', ['--foreground', '--no-process-group', '-s', conf]);
    await waitForPort(lab.targetAddress, 445, 20_000);
    return { port: 445, share: SMB_SHARE, user: LAB_USER, passwordFile, configFile: conf };
  },
};
