/**
 * A lab service: one real server from a Debian package, running inside the
 * target namespace and inside the target's freezer cgroup (so a quick
 * migration freezes it). Adding a service to the lab is one file in
 * services/ exporting an object of this shape: services/index.ts finds it.
 */
import { chmodSync, openSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { run } from '../transport/exec.ts';
import type { Topology } from './topology.ts';
import { spawnWithoutSendLease } from './lease.ts';

export interface ServiceInfo {
  port: number;
  [key: string]: unknown;
}

export interface LabService {
  name: string;
  /**
   * Debian packages it needs, one array literal: scripts/setup.sh reads them from this file
   * (before any npm module is installed) and installs the missing ones
   */
  packages: readonly string[];
  /** services whose start this one needs first (their files, their users); the others start in name order */
  after?: readonly string[];
  /** prepares its files, starts its server(s); returns what clients need (no secrets inline: file paths) */
  start(lab: Topology): Promise<ServiceInfo>;
  /** optional: removes what it made outside the lab dir and namespaces (after its processes are gone); returns what it removed */
  stop?(name: string, lab: Topology | null): Promise<string[]>;
}

export interface StartOptions {
  /** run as this user (setpriv, no extra fork) */
  user?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a long-running server inside the target namespace, inside the
 * target's freezer cgroup, detached from the harness. The wrapper puts its own
 * PID into the cgroup before exec'ing the server, so every process the server
 * forks is in the cgroup from its first instruction. Arguments are passed as a
 * vector: the sh script is fixed and takes them as "$@".
 */
export function startInTarget(lab: Topology, label: string, cmd: string, args: string[], opts: StartOptions = {}): number {
  const log = openSync(`${lab.dir}/${label}.log`, 'a');
  const argv = opts.user ? ['setpriv', `--reuid=${opts.user}`, `--regid=${opts.user}`, '--init-groups', cmd, ...args] : [cmd, ...args];
  // The wrapper runs in the root mount namespace: `ip netns exec` remounts /sys,
  // which hides /sys/fs/cgroup, so the PID is written before entering it.
  // a server lives as long as the lab: it must not inherit a run's send lease (./lease.ts)
  const child = spawnWithoutSendLease(() =>
    spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', `${lab.cgroup}/cgroup.procs`, 'ip', 'netns', 'exec', lab.targetNs, ...argv], {
      detached: true,
      stdio: ['ignore', log, log],
      env: opts.env ?? process.env,
    }),
  );
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${label}`);
  return child.pid;
}

/** Makes a self-signed certificate for `address` (key.pem, cert.pem in `dir`; the lab's TLS servers pin it); returns its "sha256:AB:CD:…" fingerprint. */
export async function selfSignedCert(dir: string, cn: string, address: string): Promise<string> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '30',
    '-keyout',
    `${dir}/key.pem`,
    '-out',
    `${dir}/cert.pem`,
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=IP:${address}`,
  ]);
  chmodSync(`${dir}/key.pem`, 0o600);
  const fp = (await run('openssl', ['x509', '-in', `${dir}/cert.pem`, '-noout', '-fingerprint', '-sha256'])).stdout;
  const m = /Fingerprint=([0-9A-F:]+)/i.exec(fp);
  if (!m) throw new Error(`could not read the certificate fingerprint (${fp.trim()})`);
  return `sha256:${m[1]!.toUpperCase()}`;
}
