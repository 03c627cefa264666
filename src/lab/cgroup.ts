/**
 * Which cgroup freezer the lab uses, decided at run time: the cgroup v1
 * `freezer` controller where a v1 hierarchy has it (older hosts, hybrid
 * setups), otherwise cgroup v2's `cgroup.freeze` (a core v2 file: it needs no
 * controller, so it works beside a v1 hierarchy too, and on every stock
 * Debian 12 / Ubuntu 22.04+ host, which mount only cgroup2).
 * `BLACKOUT_CGROUP=v1|v2` forces one (to prefer v2 on a hybrid host).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export interface FreezerRoot {
  version: 1 | 2;
  /** the mount point of the hierarchy */
  mount: string;
  /** the labs' parent cgroup in it */
  root: string;
}

interface Mount {
  fstype: string;
  target: string;
  options: string[];
}

/** /proc/self/mounts lines: "source target fstype options 0 0" (octal escapes in paths) */
export function parseMounts(text: string): Mount[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    .map(([, target, fstype, options]) => ({ fstype: fstype!, target: unescape(target!), options: options!.split(',') }));
}

/** Picks the freezer from a mount table; pure (the mount text and the override are inputs). */
export function chooseFreezer(mountsText: string, force?: string): FreezerRoot {
  const mounts = parseMounts(mountsText);
  const v1 = mounts.find((m) => m.fstype === 'cgroup' && m.options.includes('freezer'));
  // the shallowest cgroup2 mount: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one
  const v2 = mounts.filter((m) => m.fstype === 'cgroup2').sort((a, b) => a.target.length - b.target.length)[0];
  const want = force?.trim().toLowerCase();
  if (want && want !== 'v1' && want !== 'v2') throw new Error(`BLACKOUT_CGROUP=${force}: expected v1 or v2`);
  if (want === 'v1' || (!want && v1)) {
    if (!v1) throw new Error('BLACKOUT_CGROUP=v1, but no cgroup v1 hierarchy with the freezer controller is mounted');
    return { version: 1, mount: v1.target, root: `${v1.target}/blackout` };
  }
  if (!v2) {
    throw new Error(
      want === 'v2'
        ? 'BLACKOUT_CGROUP=v2, but no cgroup2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)'
        : 'no cgroup freezer: neither a cgroup v1 freezer hierarchy nor a cgroup2 hierarchy is mounted',
    );
  }
  return { version: 2, mount: v2.target, root: `${v2.target}/blackout` };
}

/** The freezer of this machine, now. */
export function detectFreezer(): FreezerRoot {
  return chooseFreezer(readFileSync('/proc/self/mounts', 'utf8'), process.env.BLACKOUT_CGROUP || undefined);
}

/** The version of an existing lab cgroup, from the files the kernel put in it. */
export function cgroupVersion(dir: string): 1 | 2 | null {
  if (existsSync(`${dir}/freezer.state`)) return 1;
  if (existsSync(`${dir}/cgroup.freeze`)) return 2;
  return null;
}

/** Thaws a frozen cgroup of either version (so its processes can run, or receive SIGKILL). */
export function thawCgroup(dir: string): void {
  const v = cgroupVersion(dir);
  if (v === 1) writeFileSync(`${dir}/freezer.state`, 'THAWED');
  else if (v === 2) writeFileSync(`${dir}/cgroup.freeze`, '0');
}
