/**
 * quick-migration (emulated on the lab): the target's every process is frozen
 * (cgroup freezer) and its network cut as by cable-pull for N s; then the
 * network is restored and the processes thawed — the "save, move, restore" of
 * a quick migration, seen from the network.
 *
 * live-migration is the same with a sub-second pause (default 150 ms).
 */
import { z } from 'zod';
import { duration } from '../core/schema-util.ts';
import { LabCut, requireLab, KERNEL_GRACE_MS } from './shared/lab-cut.ts';
import { Freezer } from './shared/freezer.ts';
import type { MigrationKind } from '../core/events.ts';
import type { Injector, InjectorContext, InjectorDefinition } from '../core/injector.ts';

function frozenCut(kind: string, migration: MigrationKind, ctx: InjectorContext, arp: boolean, defaults?: number[]): Injector {
  let parts: { cut: LabCut; freezer: Freezer } | null = null;
  const get = () => {
    if (!parts) {
      const lab = requireLab(ctx.target, kind);
      parts = { cut: new LabCut(lab, ctx.clock, ctx.target.address, arp), freezer: new Freezer(lab) };
    }
    return parts;
  };
  return {
    kind,
    migration,
    defaultBlackoutsMs: defaults,
    describe: () => ({ kind, arp, ...(defaults ? { pauseMs: defaults[0] } : {}) }),
    async preflight() {
      const { freezer, cut } = get();
      if (freezer.state() === 'MISSING') throw new Error(`the lab's freezer cgroup is missing: run blackout lab up`);
      await cut.warm();
    },
    async dispose() {
      parts?.cut.close();
    },
    async heal() {
      const { cut, freezer } = get();
      return [...(await cut.flush()), ...freezer.heal()];
    },
    async cut(ms) {
      const { cut, freezer } = get();
      // the watchdog outlives the harness: thaw at the same deadline the kernel restores the network
      freezer.armWatchdog(ms + KERNEL_GRACE_MS);
      const instant = await cut.cut(ms);
      const freezeStart = ctx.clock.now();
      await freezer.freeze();
      return { ...instant, detail: { ...instant.detail, frozenAt: ctx.clock.now(), freezeTookMs: ctx.clock.now() - freezeStart } };
    },
    async restore() {
      const { cut, freezer } = get();
      const net = await cut.restore();
      freezer.thaw();
      const t = ctx.clock.now();
      freezer.disarmWatchdog();
      return { before: net.before, t, detail: { ...net.detail, networkRestoredAt: net.t, thawedAt: t } };
    },
  };
}

const quickSchema = z.strictObject({
  kind: z.literal('quick-migration'),
  arp: z.boolean().default(false),
});
const liveSchema = z.strictObject({
  kind: z.literal('live-migration'),
  arp: z.boolean().default(false),
  pause: duration({ min: 1, max: 5000 }).default(150),
});

export const quickMigration: InjectorDefinition<z.infer<typeof quickSchema>> = {
  kind: 'quick-migration',
  summary: 'freeze every target process (cgroup freezer) and cut its network for N s, then restore and thaw',
  schema: quickSchema,
  create: (config, ctx) => frozenCut('quick-migration', 'quick', ctx, config.arp),
};

export const liveMigration: InjectorDefinition<z.infer<typeof liveSchema>> = {
  kind: 'live-migration',
  summary: 'the same freeze + cut with a sub-second pause (default 150 ms)',
  schema: liveSchema,
  create: (config, ctx) => frozenCut('live-migration', 'live', ctx, config.arp, [config.pause]),
};
