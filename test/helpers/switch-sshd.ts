/**
 * A Linux "router" for the real-estate adapters' tests: the lab's switch
 * namespace gets a management address on its bridge and an OpenSSH server for
 * root (key login), so an adapter can reach it over SSH exactly as it would a
 * real router or hypervisor, and act on the lab's real traffic.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { run, runIn, pidAlive } from '../../src/transport/exec.ts';
import type { LabState } from '../../src/lab/state.ts';
import { waitForPort } from '../../src/lab/wait.ts';

export interface SwitchSshd {
  address: string;
  ssh: { host: string; port: number; user: string; privateKeyFile: string; hostKey: string };
  pid: number;
  stop(): Promise<void>;
}

export async function startSwitchSshd(lab: LabState): Promise<SwitchSshd> {
  const dir = `${lab.dir}/switch-sshd`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const address = `${lab.prefix}.250`;
  await runIn(lab.switchNs, 'ip', ['addr', 'replace', `${address}/24`, 'dev', lab.bridge]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/host_key`]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/id_ed25519`]);
  writeFileSync(`${dir}/authorized_keys`, readFileSync(`${dir}/id_ed25519.pub`), { mode: 0o600 });
  const hostKey = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${dir}/host_key.pub`])).stdout.split(/\s+/)[1]!;
  writeFileSync(
    `${dir}/sshd_config`,
    [
      `ListenAddress ${address}`,
      'Port 22',
      `HostKey ${dir}/host_key`,
      `PidFile ${dir}/sshd.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'AllowUsers root',
      'StrictModes no',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn('ip', ['netns', 'exec', lab.switchNs, '/usr/sbin/sshd', '-D', '-e', '-f', `${dir}/sshd_config`], { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
  child.unref();
  await waitForPort(address, 22, 15_000);
  const pid = child.pid!;
  return {
    address,
    ssh: { host: address, port: 22, user: 'root', privateKeyFile: `${dir}/id_ed25519`, hostKey },
    pid,
    async stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      for (let i = 0; i < 40 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    },
  };
}
