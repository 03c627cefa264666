/**
 * File-copy support for the lab: the large file(s) the copy probes move (sftp
 * and SMB serve the same folder) and the HTB throttle that makes a copy last
 * long enough to span a blackout (docs/lab-facts.md: copies over veth finish in
 * under a second unless throttled).
 *
 * The throttle caps the file-copy ports (ssh 22, SMB 445) at RATE_MBIT per
 * port and direction:
 *  - downloads (server → client): an HTB on the target's eth0, matching the
 *    source port;
 *  - uploads (client → server): an HTB on the switch port towards the target,
 *    matching the destination port.
 * Each throttled class gets a short byte-limited FIFO, so a console keystroke on port 22 does
 * not queue behind a bulk copy. Every other port is not shaped. tc works in
 * the namespaces (only netem is missing on this kernel).
 *
 * No port of its own: `port: 0`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, closeSync, mkdirSync, openSync, writeSync, writeFileSync } from 'node:fs';
import { run, runIn } from '../../transport/exec.ts';
import type { LabService } from '../service.ts';
import type { Topology } from '../topology.ts';
import { LAB_USER } from './ssh.ts';

/** per port and direction */
export const COPY_RATE_MBIT = 36;
export const COPY_PORTS = [22, 445];
export const DEFAULT_FILE = 'blackout-64M.bin';
export const DEFAULT_FILE_SIZE = 64 * 1024 * 1024;

/** Writes `size` random bytes to `path` and its sha256 (hex, sha256sum format) to `path.sha256`. */
export function writeRandomFile(path: string, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'w', 0o644);
  try {
    for (let left = size; left > 0;) {
      const chunk = randomBytes(Math.min(left, 1 << 20));
      hash.update(chunk);
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  const hex = hash.digest('hex');
  writeFileSync(`${path}.sha256`, `${hex}  ${path.split('/').pop()}\n`, { mode: 0o644 });
  return hex;
}

async function shape(ns: string, dev: string, match: 'sport' | 'dport'): Promise<void> {
  const tc = (...args: string[]) => runIn(ns, 'tc', args);
  await runIn(ns, 'tc', ['qdisc', 'del', 'dev', dev, 'root'], { allowFail: true });
  await tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '99');
  await tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '10gbit');
  await tc('class', 'add', 'dev', dev, 'parent', '1:1', 'classid', '1:99', 'htb', 'rate', '10gbit');
  for (const [i, port] of COPY_PORTS.entries()) {
    const cls = `1:${10 + i}`;
    await tc('class', 'add', 'dev', dev, 'parent', '1:1', 'classid', cls, 'htb', 'rate', `${COPY_RATE_MBIT}mbit`, 'ceil', `${COPY_RATE_MBIT}mbit`);
    // a short byte-limited FIFO (this kernel has no fq_codel/sfq): at most ~30 ms of queue, so a console
    // keystroke on port 22 does not wait behind seconds of bulk copy data
    await tc('qdisc', 'add', 'dev', dev, 'parent', cls, 'bfifo', 'limit', '128kb');
    await tc('filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', match, String(port), '0xffff', 'flowid', cls);
  }
}

export async function throttleCopies(lab: Topology): Promise<void> {
  await shape(lab.targetNs, 'eth0', 'sport');
  await shape(lab.switchNs, lab.targetPort, 'dport');
}

export const files: LabService = {
  name: 'files',
  packages: ['iproute2'],
  async start(lab) {
    const dir = `${lab.dir}/files`;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const uid = Number((await run('id', ['-u', LAB_USER])).stdout.trim());
    const gid = Number((await run('id', ['-g', LAB_USER])).stdout.trim());
    chownSync(dir, uid, gid); // uploads (sftp, SMB) are written as the lab user
    const sha256 = writeRandomFile(`${dir}/${DEFAULT_FILE}`, DEFAULT_FILE_SIZE);
    await throttleCopies(lab);
    return {
      port: 0,
      dir,
      file: DEFAULT_FILE,
      size: DEFAULT_FILE_SIZE,
      sha256,
      throttle: { rateMbit: COPY_RATE_MBIT, ports: COPY_PORTS, per: 'port and direction' },
    };
  },
};
