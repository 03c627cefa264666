/**
 * The lab's migration emulation, shared by quick-migration and live-migration:
 * the target's every process is frozen (cgroup freezer, v1 or v2) and its
 * network cut as by cable-pull; then the network is restored and the
 * processes thawed. A watchdog outside the harness thaws at the same deadline
 * the kernel restores the network.
 */
import { LabCut, requireLab, KERNEL_GRACE_MS } from './lab-cut.ts';
import { Freezer } from './freezer.ts';
import type { MigrationKind } from '../../core/events.ts';
import type { Injector, InjectorContext } from '../../core/injector.ts';

export function frozenCut(kind: string, migration: MigrationKind, ctx: InjectorContext, arp: boolean, defaults?: number[]): Injector {
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
