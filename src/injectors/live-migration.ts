/**
 * live-migration (emulated on the lab): the same freeze and cut as
 * quick-migration, with the sub-second pause of a live migration's final
 * switch-over (default 150 ms). A run with it is judged as live-migration
 * evidence (its `migration` is "live").
 */
import { z } from 'zod';
import { duration } from '../core/schema-util.ts';
import { frozenCut } from './shared/frozen-cut.ts';
import type { InjectorDefinition } from '../core/injector.ts';

const liveSchema = z.strictObject({
  kind: z.literal('live-migration').describe('the injector kind'),
  arp: z.boolean().default(false).describe('drop ARP too while the network is cut'),
  pause: duration({ min: 1, max: 5000 }).default(150).describe("the length of the freeze and cut, the live migration's switch-over pause"),
});

export const liveMigration: InjectorDefinition<z.infer<typeof liveSchema>> = {
  kind: 'live-migration',
  summary: 'the same freeze + cut with a sub-second pause (default 150 ms)',
  schema: liveSchema,
  create: (config, ctx) => frozenCut('live-migration', 'live', ctx, config.arp, [config.pause]),
};
