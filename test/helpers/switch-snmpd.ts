/**
 * A real SNMP agent for the switch-port adapter's tests: Debian's snmpd in the
 * lab's switch namespace, on a management address of the bridge, with a v2c
 * write community and a v3 authPriv user. Its IF-MIB ifAdminStatus is writable:
 * a SET shuts the lab switch's port like a managed switch would (the target's
 * NIC loses its link; the host-side link is never touched).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { run, runIn, pidAlive } from '../../src/transport/exec.ts';
import type { LabState } from '../../src/lab/state.ts';

export interface SwitchSnmpd {
  address: string;
  community: string;
  v3: { user: string; authKey: string; privKey: string };
  stop(): Promise<void>;
}

export async function startSwitchSnmpd(lab: LabState): Promise<SwitchSnmpd> {
  const dir = `${lab.dir}/switch-snmpd`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const address = `${lab.prefix}.250`;
  await runIn(lab.switchNs, 'ip', ['addr', 'replace', `${address}/24`, 'dev', lab.bridge]);
  const community = `bo-rw-${Math.random().toString(36).slice(2, 10)}`;
  const v3 = { user: 'bosnmp', authKey: `auth-${Math.random().toString(36).slice(2, 10)}`, privKey: `priv-${Math.random().toString(36).slice(2, 10)}` };
  writeFileSync(
    `${dir}/snmpd.conf`,
    [`agentAddress udp:${address}:161`, `rwcommunity ${community} ${lab.clientAddress}`, `createUser ${v3.user} SHA "${v3.authKey}" AES "${v3.privKey}"`, `rwuser ${v3.user} priv`, ''].join('\n'),
    { mode: 0o600 },
  );
  const child = spawn('ip', ['netns', 'exec', lab.switchNs, 'snmpd', '-f', '-Lf', `${dir}/snmpd.log`, '-C', '-c', `${dir}/snmpd.conf`, `--persistentDir=${dir}`, '-p', `${dir}/snmpd.pid`], {
    stdio: 'ignore',
    detached: true,
  });
  child.unref();
  const pid = child.pid!;
  // ready when it answers a GET
  const end = Date.now() + 15_000;
  for (;;) {
    const r = await run('snmpget', ['-v2c', '-c', community, '-t', '0.5', '-r', '0', address, '1.3.6.1.2.1.1.3.0'], { allowFail: true });
    if (r.code === 0) break;
    if (Date.now() > end) throw new Error(`snmpd did not answer: ${r.stderr}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return {
    address,
    community,
    v3,
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
