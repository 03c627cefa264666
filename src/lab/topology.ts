/**
 * Names and addresses of one lab instance. Several labs can exist side by side
 * (tests run in parallel, each with its own); each gets an index and the
 * subnet 10.213.<index>.0/24.
 *
 *   root namespace (the harness, i.e. the clients)
 *     bo<i>c  10.213.<i>.1/24 ──┐ veth
 *                               │
 *   bo-<name>-sw  (the "switch": a bridge, no addresses)
 *     bo<i>cs ── br0 ── bo<i>ts      ← the cut lives here: netdev ingress
 *                               │      drops on every switch port, one
 *                               │      atomic nft transaction
 *   bo-<name>  (the target host: real servers, frozen by the cgroup freezer)
 *     eth0    10.213.<i>.2/24  ──┘ veth
 *
 * Pulling the cable at the switch leaves both endpoints' links up: no local
 * "unreachable", no RST, no route change — just silence (docs/lab-facts.md).
 */
export const LAB_RUN_DIR = '/run/blackout/labs';
/** the labs' parent cgroup on a cgroup v1 host; on cgroup v2 it is under the cgroup2 mount (src/lab/cgroup.ts) */
export const FREEZER_ROOT = '/sys/fs/cgroup/freezer/blackout';
/** every nft table the project creates carries this comment prefix: the ownership marker */
export const OWNER_MARK = 'blackout-lab:';

export interface Topology {
  name: string;
  index: number;
  dir: string;
  targetNs: string;
  switchNs: string;
  clientIf: string;
  clientPort: string;
  targetPort: string;
  bridge: string;
  subnet: string;
  prefix: string;
  clientAddress: string;
  targetAddress: string;
  guardTable: string;
  cutTable: string;
  cgroup: string;
}

export function validateLabName(name: string): string {
  if (!/^[a-z][a-z0-9-]{0,15}$/.test(name)) {
    throw new Error(`lab name "${name}": expected 1–16 characters a-z, 0-9 or "-", starting with a letter`);
  }
  return name;
}

export function topology(name: string, index: number, cgroupRoot = FREEZER_ROOT): Topology {
  validateLabName(name);
  if (!Number.isInteger(index) || index < 0 || index > 250) throw new Error(`lab index ${index} out of range 0–250`);
  const prefix = `10.213.${index}`;
  return {
    name,
    index,
    dir: `${LAB_RUN_DIR}/${name}`,
    targetNs: `bo-${name}`,
    switchNs: `bo-${name}-sw`,
    clientIf: `bo${index}c`,
    clientPort: `bo${index}cs`,
    targetPort: `bo${index}ts`,
    bridge: 'br0',
    subnet: `${prefix}.0/24`,
    prefix,
    clientAddress: `${prefix}.1`,
    targetAddress: `${prefix}.2`,
    guardTable: `bo_guard_${index}`,
    cutTable: 'bo_cut',
    cgroup: `${cgroupRoot}/${name}`,
  };
}
