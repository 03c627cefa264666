/**
 * The lab's silent cable: nft set elements with a timeout in the lab switch.
 * Shared by cable-pull, quick-migration and live-migration.
 *
 * One `nft -f -` batch is one kernel transaction, so both directions (and ARP,
 * for the same-LAN variant) go silent at the same instant. The element's
 * timeout is the kill -9 guarantee: the kernel deletes it at the deadline.
 */
import { run } from '../src/exec.ts';
import type { Clock } from '../src/clock.ts';
import type { LabState } from '../src/lab/lab.ts';
import type { CutInstant, Instant } from './types.ts';

/** restore happens this long after the requested end at the latest, even with the harness dead */
export const KERNEL_GRACE_MS = 500;

export class LabCut {
  private active = false;
  constructor(
    private readonly lab: LabState,
    private readonly clock: Clock,
    private readonly address: string,
    private readonly arp: boolean,
  ) {}

  private sets(): string[] {
    return this.arp ? ['cut4', 'cutarp'] : ['cut4'];
  }

  private nft(input: string, allowFail = false) {
    return run('ip', ['netns', 'exec', this.lab.switchNs, 'nft', '-f', '-'], { input, timeoutMs: 10_000, allowFail });
  }

  async cut(requestedMs: number, extraMs = 0): Promise<CutInstant> {
    const timeout = Math.ceil(requestedMs + extraMs + KERNEL_GRACE_MS);
    const batch = this.sets().map((s) => `add element netdev ${this.lab.cutTable} ${s} { ${this.address} timeout ${timeout}ms }`).join('\n') + '\n';
    this.active = true; // before: a failure half-way must still be restored
    const before = this.clock.now();
    await this.nft(batch);
    const t = this.clock.now();
    return { before, t, deadline: before + timeout, detail: { mechanism: 'nft netdev ingress drop in the lab switch', sets: this.sets(), kernelTimeoutMs: timeout } };
  }

  async restore(): Promise<Instant> {
    const batch = this.sets().map((s) => `delete element netdev ${this.lab.cutTable} ${s} { ${this.address} }`).join('\n') + '\n';
    const before = this.clock.now();
    const r = await this.nft(batch, true);
    const t = this.clock.now();
    this.active = false;
    // "No such file": the kernel timeout already removed it (the harness was late)
    const expired = r.code !== 0 && /No such file|does not exist/i.test(r.stderr);
    if (r.code !== 0 && !expired) {
      // make sure: flush both sets, the blunt way
      await this.flush();
    }
    return { before, t, detail: expired ? { expiredByKernelTimeout: true } : {} };
  }

  /** removes every element of the lab's cut sets: what a dead run left */
  async flush(): Promise<string[]> {
    const actions: string[] = [];
    for (const s of ['cut4', 'cutarp']) {
      const r = await run('ip', ['netns', 'exec', this.lab.switchNs, 'nft', 'list', 'set', 'netdev', this.lab.cutTable, s], { allowFail: true });
      if (/elements = \{/.test(r.stdout)) {
        await this.nft(`flush set netdev ${this.lab.cutTable} ${s}\n`);
        actions.push(`removed a stale cut (nft set ${s}) from lab ${this.lab.name}`);
      }
    }
    return actions;
  }

  get isActive(): boolean {
    return this.active;
  }
}

export function requireLab(target: { lab?: LabState; name: string }, kind: string): LabState {
  if (!target.lab) {
    throw new Error(`injector ${kind} acts on the lab switch: use target: lab (on a real estate use linux-gateway, libvirt, hyperv or command)`);
  }
  return target.lab;
}
