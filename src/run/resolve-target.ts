/** Turns a suite's `target:` into a ResolvedTarget, checking that a lab target is up. */
import { lookup } from 'node:dns/promises';
import { DEFAULT_LAB, SUPERNET, listLabs, readLabState, labHealth } from '../lab/lab.ts';
import { inRange } from '../lab/range.ts';
import { readVmState, vmTarget } from '../lab/vm.ts';
import type { TargetConfig } from './suite.ts';
import type { ResolvedTarget, SshAccess, PostgresAccess, SmbAccess, WebAccess, FilesAccess } from '../core/target.ts';

export class PreflightError extends Error {}

/** What a run leases for `config`: the lab by name, or the real target by its host (lease.ts). */
export function leaseTargetOf(config: TargetConfig, opts: { lab?: string } = {}): { scope: 'lab'; name: string } | { scope: 'host'; host: string } {
  if (config === 'lab' || config === 'lab-vm' || 'lab' in config) {
    return { scope: 'lab', name: typeof config === 'object' ? config.lab : (opts.lab ?? process.env.BLACKOUT_LAB ?? DEFAULT_LAB) };
  }
  return { scope: 'host', host: config.host };
}

export async function resolveTarget(config: TargetConfig, opts: { lab?: string } = {}): Promise<ResolvedTarget> {
  if (config === 'lab' || config === 'lab-vm' || 'lab' in config) {
    const name = typeof config === 'object' ? config.lab : (opts.lab ?? process.env.BLACKOUT_LAB ?? DEFAULT_LAB);
    const state = readLabState(name);
    if (!state) throw new PreflightError(`lab "${name}" is not up: run \`blackout lab up${name === DEFAULT_LAB ? '' : ` --name ${name}`}\` first`);
    const health = await labHealth(state);
    if (!health.up) throw new PreflightError(`lab "${name}" is not healthy (${health.problems.join('; ')}): run \`blackout lab up\` again`);
    const wantVm = config === 'lab-vm' || (typeof config === 'object' && 'vm' in config && config.vm);
    if (wantVm) {
      const vm = readVmState(state);
      if (!vm) throw new PreflightError(`the VM of lab "${name}" is not up: run \`blackout lab up --vm${name === DEFAULT_LAB ? '' : ` --name ${name}`}\` first`);
      return vmTarget(state, vm);
    }
    const s = state.services;
    const ssh = s.ssh as unknown as { port: number; user: string; privateKeyFile: string; hostKey: string } | undefined;
    const pg = s.postgres as unknown as { port: number; database: string; user: string; passwordFile: string } | undefined;
    return {
      name: `lab ${name}`,
      address: state.targetAddress,
      lab: state,
      services: {
        ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { ...v, host: state.targetAddress }])),
        echo: s.echo ? { port: s.echo.port } : undefined,
        ssh: ssh && { host: state.targetAddress, port: ssh.port, user: ssh.user, privateKeyFile: ssh.privateKeyFile, hostKey: ssh.hostKey },
        smb: smbOf(s.smb, state.targetAddress),
        web: webOf(s.web),
        files: filesOf(s.files),
        postgres: pg && { host: state.targetAddress, port: pg.port, database: pg.database, user: pg.user, passwordFile: pg.passwordFile },
      },
    };
  }
  await refuseLabRange(config.host);
  const ssh: SshAccess | undefined = config.ssh && { host: config.host, ...config.ssh };
  const postgres: PostgresAccess | undefined = config.postgres && { host: config.host, ...config.postgres };
  return { name: config.host, address: config.host, services: { echo: config.echo, ssh, postgres } };
}

/**
 * A real target inside the lab range is refused (unless a lab that is up hosts it): the lab blackholes and
 * guards that range, so such a target is either unreachable or a lab address
 * mistaken for a real one (and a cut "on the real estate" would hit the lab).
 * A name is resolved too (bounded: an unresolvable name is the probes' error
 * to report, not this check's).
 */
async function refuseLabRange(host: string): Promise<void> {
  const addrs = [host];
  if (!inRange(host, '0.0.0.0/0')) {
    const found = await Promise.race([
      lookup(host, { all: true, family: 4 })
        .then((r) => r.map((a) => a.address))
        .catch(() => [] as string[]),
      new Promise<string[]>((res) => setTimeout(() => res([]), 2000).unref()),
    ]);
    addrs.push(...found);
  }
  // a machine the lab itself hosts (a VM on a lab's switch, in the subnet of a lab that is up) is the lab's;
  // any other address in the range is not, and its traffic would meet the lab's guards
  const labSubnets = listLabs()
    .map((n) => readLabState(n))
    .filter((st): st is NonNullable<typeof st> => st !== null)
    .map((st) => st.subnet);
  const hit = addrs.find((a) => inRange(a, SUPERNET) && !labSubnets.some((net) => inRange(a, net)));
  if (hit)
    throw new PreflightError(
      `target host "${host}"${hit !== host ? ` (${hit})` : ''} is inside the lab range ${SUPERNET}, which blackout reserves for its lab: use \`target: lab\` for the lab, or the real target's own address`,
    );
}

// lab services added by the probes issue (smb, web, files)
function smbOf(v: unknown, host: string): SmbAccess | undefined {
  const s = v as { port: number; share: string; user: string; passwordFile: string } | undefined;
  return s && { host, port: s.port, share: s.share, user: s.user, passwordFile: s.passwordFile };
}
function webOf(v: unknown): WebAccess | undefined {
  const s = v as { url: string; user: string; passwordFile: string; adminSocket: string } | undefined;
  return s && { url: s.url, user: s.user, passwordFile: s.passwordFile, adminSocket: s.adminSocket };
}
function filesOf(v: unknown): FilesAccess | undefined {
  const s = v as { dir: string; file: string; size: number; sha256: string } | undefined;
  return s && { dir: s.dir, file: s.file, size: s.size, sha256: s.sha256 };
}
