/**
 * OpenSSH sshd from Debian's openssh-server: its own config, its own host key
 * generated per lab (its fingerprint recorded so clients verify it), key login
 * for the lab user `bolab` only. SFTP is served by internal-sftp.
 */
import { mkdirSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { run } from '../../transport/exec.ts';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';

export const LAB_USER = 'bolab';

export const ssh: LabService = {
  name: 'ssh',
  packages: ['openssh-server', 'openssh-client'],
  async start(lab) {
    const dir = `${lab.dir}/ssh`;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o755 });
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const hostKey = `${dir}/ssh_host_ed25519_key`;
    const clientKey = `${lab.dir}/secrets/id_ed25519`;
    rmSync(clientKey, { force: true });
    rmSync(`${clientKey}.pub`, { force: true });
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `blackout-lab-${lab.name}-host`, '-f', hostKey]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `blackout-lab-${lab.name}-client`, '-f', clientKey]);
    writeFileSync(`${dir}/authorized_keys`, readFileSync(`${clientKey}.pub`), { mode: 0o644 });
    const fp = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`])).stdout.split(/\s+/)[1];
    if (!fp?.startsWith('SHA256:')) throw new Error('could not read the lab host key fingerprint');
    const config = [
      `ListenAddress ${lab.targetAddress}`,
      'Port 22',
      `HostKey ${hostKey}`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin no',
      `AllowUsers ${LAB_USER}`,
      'MaxSessions 100',
      'MaxStartups 200:30:400',
      'ClientAliveInterval 0',
      'Subsystem sftp internal-sftp',
      'LogLevel INFO',
      '',
    ].join('\n');
    writeFileSync(`${dir}/sshd_config`, config);
    startInTarget(lab, 'sshd', '/usr/sbin/sshd', ['-D', '-e', '-f', `${dir}/sshd_config`]);
    await waitForPort(lab.targetAddress, 22, 15_000);
    return {
      port: 22,
      user: LAB_USER,
      privateKeyFile: clientKey,
      hostKey: fp,
      hostKeyFile: `${hostKey}.pub`,
    };
  },
};
