/**
 * cable-pull: silent loss of every IP packet between the target and the
 * network for N seconds, like a pulled cable of a remote VM. With `arp: true`
 * ARP is dropped too (a same-LAN pull: once the client's ARP entry expires,
 * the client starts to see "Destination Host Unreachable").
 */
import { z } from 'zod';
import { LabCut, requireLab } from './shared/lab-cut.ts';
import type { InjectorDefinition } from '../core/injector.ts';

const schema = z.strictObject({
  kind: z.literal('cable-pull').describe('the injector kind'),
  arp: z.boolean().default(false).describe('drop ARP too (a same-LAN pull: once the client\'s ARP entry expires it sees "Destination Host Unreachable")'),
});
export type CablePullConfig = z.infer<typeof schema>;

export const cablePull: InjectorDefinition<CablePullConfig> = {
  kind: 'cable-pull',
  summary: 'silent packet loss between target and network (nft drop at the switch, kernel-side timeout)',
  schema,
  create(config, ctx) {
    let cut: LabCut | null = null;
    const get = () => (cut ??= new LabCut(requireLab(ctx.target, 'cable-pull'), ctx.clock, ctx.target.address, config.arp));
    return {
      kind: 'cable-pull',
      migration: 'none',
      describe: () => ({ kind: 'cable-pull', arp: config.arp }),
      preflight: () => get().warm(),
      async dispose() {
        cut?.close();
      },
      heal: () => get().flush(),
      cut: (ms) => get().cut(ms),
      restore: () => get().restore(),
    };
  },
};
