/**
 * quick-migration (emulated on the lab): the target's every process is frozen
 * (cgroup freezer) and its network cut as by cable-pull for N s; then the
 * network is restored and the processes thawed — the "save, move, restore" of
 * a quick migration, seen from the network.
 */
import { z } from 'zod';
import { frozenCut } from './shared/frozen-cut.ts';
import type { InjectorDefinition } from '../core/injector.ts';

const quickSchema = z.strictObject({
  kind: z.literal('quick-migration').describe('the injector kind'),
  arp: z.boolean().default(false).describe('drop ARP too while the network is cut'),
});
export const quickMigration: InjectorDefinition<z.infer<typeof quickSchema>> = {
  kind: 'quick-migration',
  summary: 'freeze every target process (cgroup freezer) and cut its network for N s, then restore and thaw',
  schema: quickSchema,
  create: (config, ctx) => frozenCut('quick-migration', 'quick', ctx, config.arp),
};
