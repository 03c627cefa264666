/**
 * linux-gateway: the cable-pull mechanism on a remote Linux router or
 * hypervisor, over SSH (or on this machine): nft set elements with a timeout,
 * matched by a drop rule at the earliest hook, so the kernel itself ends the
 * cut at the deadline even when the SSH session or the harness is gone.
 *
 *   injector:
 *     kind: linux-gateway
 *     ssh: { host: router01, user: root, privateKeyFile: ~/.ssh/id_ed25519, hostKey: "SHA256:…" }
 *     family: netdev             # netdev: ingress of `devices` (both sides of the VM's path)
 *                                # bridge: the forward hook of a Linux bridge (a hypervisor's vSwitch)
 *                                # inet:   the forward hook of a router
 *     devices: [eth1, eth2]      # netdev only
 *     addresses: [10.0.0.5]      # default: the suite target's address
 *     mac: "52:54:00:12:34:56"   # netdev/bridge: drop the VM's frames by MAC as well
 *     arp: false                 # also drop ARP for the addresses (a same-LAN pull)
 *     sudo: false                # run nft through `sudo -n`
 *
 * One `nft -f -` batch is one kernel transaction: every direction goes silent
 * at the same instant. The table (default `blackout_gw`) is created at
 * preflight and removed at the end of the run.
 */
import { z } from 'zod';
import type { Executor } from '../transport/ssh-exec.ts';
import { describeSsh, executorFor, remoteFields, timed } from './shared/remote.ts';
import type { CutInstant, InjectorDefinition, Instant } from '../core/injector.ts';

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ipv6 = /^[0-9A-Fa-f:]+(:[0-9.]+)?$/;
const address = z.string().refine((a) => ipv4.test(a) || (a.includes(':') && ipv6.test(a)), { message: 'expected an IPv4 or IPv6 address' });

const schema = z
  .strictObject({
    kind: z.literal('linux-gateway').describe('the injector kind'),
    ...remoteFields,
    family: z
      .enum(['netdev', 'bridge', 'inet'])
      .default('netdev')
      .describe("where packets are dropped: netdev (ingress of `devices`), bridge (a Linux bridge's forward hook), inet (a router's forward hook)"),
    devices: z
      .array(z.string().regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'expected an interface name'))
      .max(64)
      .default([])
      .describe("netdev: the interfaces on the VM's path, both sides"),
    addresses: z.array(address).max(256).optional().describe("the addresses cut (default: the target's address)"),
    mac: z
      .string()
      .regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, 'expected a MAC address aa:bb:cc:dd:ee:ff')
      .optional()
      .describe("netdev/bridge: also drop the VM's frames by MAC"),
    arp: z.boolean().default(false).describe('also drop ARP for the addresses (a same-LAN pull)'),
    sudo: z.boolean().default(false).describe('run nft through sudo -n'),
    table: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,31}$/, 'expected an nft table name')
      .default('blackout_gw')
      .describe('the nft table created at preflight and removed at the end of the run'),
  })
  .refine((c) => c.family !== 'netdev' || c.devices.length > 0, { message: 'family netdev needs devices: [the interfaces on the VM’s path]', path: ['devices'] })
  .refine((c) => c.family === 'netdev' || c.devices.length === 0, { message: 'devices: only for family netdev', path: ['devices'] })
  .refine((c) => c.family !== 'inet' || (!c.mac && !c.arp), { message: 'family inet (a routed hop) matches IP only: no mac or arp', path: ['family'] });
export type LinuxGatewayConfig = z.infer<typeof schema>;

/** restore happens this long after the requested end at the latest, even with the harness dead */
const DEFAULT_GRACE_MS = 500;

export function gatewayTable(c: LinuxGatewayConfig): string {
  const f = c.family;
  const t = c.table;
  const sets = [
    'set cut4 { type ipv4_addr; flags timeout; }',
    'set cut6 { type ipv6_addr; flags timeout; }',
    ...(f !== 'inet' ? ['set cutmac { type ether_addr; flags timeout; }', 'set cutarp { type ipv4_addr; flags timeout; }'] : []),
  ];
  const rules = [
    'ip saddr @cut4 counter drop',
    'ip daddr @cut4 counter drop',
    'ip6 saddr @cut6 counter drop',
    'ip6 daddr @cut6 counter drop',
    ...(f !== 'inet' ? ['ether saddr @cutmac counter drop', 'ether daddr @cutmac counter drop', 'arp saddr ip @cutarp counter drop', 'arp daddr ip @cutarp counter drop'] : []),
  ];
  const chain = (name: string, hook: string) => `  chain ${name} {\n    type filter hook ${hook}; policy accept;\n${rules.map((r) => `    ${r}`).join('\n')}\n  }`;
  const chains =
    f === 'netdev'
      ? c.devices.map((d) => chain(`in_${d.replace(/[^A-Za-z0-9_]/g, '_')}`, `ingress device "${d}" priority -500`))
      : [chain('cut_forward', f === 'bridge' ? 'forward priority -200' : 'forward priority -300')];
  return `table ${f} ${t} {\n  comment "blackout linux-gateway"\n${sets.map((s) => `  ${s}`).join('\n')}\n${chains.join('\n')}\n}\n`;
}

export const linuxGateway: InjectorDefinition<LinuxGatewayConfig> = {
  kind: 'linux-gateway',
  summary: 'nft drop with kernel-side timeout on a Linux router/hypervisor over SSH (netdev ingress, bridge or routed forward)',
  schema,
  create(config, ctx) {
    let ex: Executor | null = null;
    const get = () => (ex ??= executorFor(ctx, config.ssh));
    const nftArgv = (...args: string[]) => [...(config.sudo ? ['sudo', '-n'] : []), 'nft', ...args];
    const nft = (input: string, label: string, allowFail = false) => get().exec({ argv: nftArgv('-f', '-'), stdin: input }, { timeoutMs: config.timeout, label, allowFail });
    const fam = config.family;
    const t = config.table;
    const addrs = () => config.addresses ?? [ctx.target.address];
    const grace = config.grace ?? DEFAULT_GRACE_MS;
    const stale: string[] = [];
    let active = false;

    const elements = (timeoutMs: number | null): string[] => {
      const to = timeoutMs === null ? '' : ` timeout ${timeoutMs}ms`;
      const v4 = addrs().filter((a) => !a.includes(':'));
      const v6 = addrs().filter((a) => a.includes(':'));
      const out: string[] = [];
      if (v4.length) out.push(`cut4 { ${v4.map((a) => `${a}${to}`).join(', ')} }`);
      if (v6.length) out.push(`cut6 { ${v6.map((a) => `${a}${to}`).join(', ')} }`);
      if (config.mac) out.push(`cutmac { ${config.mac.toLowerCase()}${to} }`);
      if (config.arp && v4.length) out.push(`cutarp { ${v4.map((a) => `${a}${to}`).join(', ')} }`);
      return out;
    };
    const setNames = () => elements(null).map((e) => e.split(' ')[0]!);

    return {
      kind: 'linux-gateway',
      migration: 'none',
      dryRunCapable: true,
      describe: () => ({
        kind: 'linux-gateway',
        ...describeSsh(config.ssh),
        family: fam,
        devices: config.devices,
        addresses: addrs(),
        mac: config.mac,
        arp: config.arp,
        table: t,
        kernelGraceMs: grace,
      }),
      async preflight() {
        for (const a of addrs()) if (!ipv4.test(a) && !a.includes(':')) throw new Error(`linux-gateway: target address ${a} is not an IP address: give addresses:`);
        const existing = await get().exec({ argv: nftArgv('list', 'table', fam, t) }, { timeoutMs: config.timeout, label: 'preflight: existing table', allowFail: true });
        if (existing.code === 0 && /elements = \{/.test(existing.stdout)) stale.push(`removed a stale cut (elements in nft table ${fam} ${t}) on ${get().where}`);
        // (re)create the table from scratch: rules and chains exactly as configured, no leftovers
        await nft(`add table ${fam} ${t}\ndelete table ${fam} ${t}\n${gatewayTable(config)}`, 'create table');
      },
      async heal() {
        return stale.splice(0);
      },
      async cut(requestedMs): Promise<CutInstant> {
        const timeout = Math.ceil(requestedMs + grace);
        const batch =
          elements(timeout)
            .map((e) => `add element ${fam} ${t} ${e}`)
            .join('\n') + '\n';
        active = true;
        const r = await timed(get(), ctx.clock, { argv: nftArgv('-f', '-'), stdin: batch }, { timeoutMs: config.timeout, label: 'cut' });
        // the kernel starts the element's clock when the batch commits, inside [before, t]: t + timeout bounds it
        return { before: r.before, t: r.t, deadline: r.t + timeout, detail: { mechanism: `nft ${fam} drop on ${get().where}`, sets: setNames(), kernelTimeoutMs: timeout, cutTookMs: r.t - r.before } };
      },
      async restore(): Promise<Instant> {
        const batch =
          elements(null)
            .map((e) => `delete element ${fam} ${t} ${e}`)
            .join('\n') + '\n';
        const before = ctx.clock.now();
        let r;
        try {
          r = await get().exec({ argv: nftArgv('-f', '-'), stdin: batch }, { timeoutMs: config.timeout, label: 'restore', allowFail: true });
        } catch (e) {
          throw new Error(`${(e as Error).message}; the kernel timeout restores at the deadline`);
        }
        const t1 = ctx.clock.now();
        active = false;
        const expired = r.code !== 0 && /No such file|does not exist/i.test(r.stderr);
        if (r.code !== 0 && !expired) {
          // the blunt way: flush the sets
          await nft(
            setNames()
              .map((s) => `flush set ${fam} ${t} ${s}`)
              .join('\n') + '\n',
            'restore: flush sets',
          );
        }
        return { before, t: t1, detail: expired ? { expiredByKernelTimeout: true } : { restoreTookMs: t1 - before } };
      },
      async dispose() {
        if (ex && !active)
          await get()
            .exec({ argv: nftArgv('delete', 'table', fam, t) }, { timeoutMs: config.timeout, label: 'remove table', allowFail: true })
            .catch(() => {});
        await ex?.close();
      },
    };
  },
};
