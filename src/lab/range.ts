/**
 * Is the lab range free on this machine? The lab blackholes its whole range
 * (and guards it), so a range the host already uses — a route or an address
 * of a real network in it, or a wider route such as a VPN's 10.0.0.0/8 that
 * may reach real hosts there — must not be taken: `lab up` refuses it and
 * says which route or address is in the way. The lab's own routes and
 * addresses (on its exactly named links, and its metric-4242 blackholes) are
 * not conflicts.
 */
import { run } from '../transport/exec.ts';

export function parseCidr(cidr: string): { start: number; end: number; len: number } | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(cidr.trim());
  if (!m) return null;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return null;
  const len = m[5] === undefined ? 32 : Number(m[5]);
  if (len > 32) return null;
  const ip = ((octets[0]! << 24) >>> 0) + (octets[1]! << 16) + (octets[2]! << 8) + octets[3]!;
  const size = 2 ** (32 - len);
  const start = ip - (ip % size);
  return { start, end: start + size - 1, len };
}

/** true when the IPv4 address (or CIDR) lies inside `range` */
export function inRange(address: string, range: string): boolean {
  const a = parseCidr(address);
  const r = parseCidr(range);
  return !!a && !!r && a.start >= r.start && a.end <= r.end;
}

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return !!x && !!y && x.start <= y.end && y.start <= x.end;
}

/** a lab link as `lab up` names it (bo<i>c) carrying only its own 10.213.<i>.0/24 */
function isLabLink(dev: string | undefined, dst: string, range: string, labIfs: readonly string[]): boolean {
  if (!dev) return false;
  const m = /^bo(\d{1,3})c$/.exec(dev);
  const r = parseCidr(range);
  if (!r) return false;
  if (labIfs.includes(dev)) return true;
  if (!m) return false;
  const i = Number(m[1]);
  const sub = `${(r.start >>> 24) & 255}.${(r.start >>> 16) & 255}.${i}.0/24`;
  return inRange(dst, sub);
}

interface IpRoute {
  dst: string;
  type?: string;
  dev?: string;
  gateway?: string;
  metric?: number;
  table?: string;
}
interface IpAddr {
  ifname: string;
  addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
}

/**
 * The host's routes and addresses in (or around) `range` that are not the
 * lab's own. `ns` reads another network namespace instead (tests).
 */
export async function rangeConflicts(range: string, labIfs: readonly string[], ns?: string): Promise<string[]> {
  const ip = (...args: string[]) => run('ip', ns ? ['-n', ns, ...args] : args);
  const routes = JSON.parse((await ip('-4', '-j', 'route', 'show', 'table', 'all')).stdout || '[]') as IpRoute[];
  const addrs = JSON.parse((await ip('-4', '-j', 'addr', 'show')).stdout || '[]') as IpAddr[];
  const out: string[] = [];
  const rangeLen = parseCidr(range)!.len;
  for (const r of routes) {
    if (r.dst === 'default' || !overlaps(r.dst, range)) continue;
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    if (r.type === 'blackhole' && r.metric === 4242 && (dst === range || (inRange(dst, range) && parseCidr(dst)!.len === 24))) continue;
    if (isLabLink(r.dev, dst, range, labIfs)) continue;
    if (parseCidr(dst)!.len === 0) continue;
    const where = [r.type && r.type !== 'unicast' ? r.type : '', r.gateway ? `via ${r.gateway}` : '', r.dev ? `dev ${r.dev}` : '', r.table ? `table ${r.table}` : ''].filter(Boolean).join(' ');
    const wider = parseCidr(dst)!.len < rangeLen;
    out.push(`route ${r.dst}${where ? ` ${where}` : ''}${wider ? ' (a wider network that may hold real hosts in the lab range)' : ''}`);
  }
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (a.family !== 'inet' || !overlaps(`${a.local}/${a.prefixlen}`, range)) continue;
      if (isLabLink(link.ifname, `${a.local}/32`, range, labIfs)) continue;
      out.push(`address ${a.local}/${a.prefixlen} on ${link.ifname}`);
    }
  }
  return [...new Set(out)];
}
