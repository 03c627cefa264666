/**
 * The lab's silent cable: nft set elements with a timeout in the lab switch.
 * Shared by cable-pull, quick-migration and live-migration.
 *
 * One `nft -f -` batch is one kernel transaction, so both directions (and ARP,
 * for the same-LAN variant) go silent at the same instant. The element's
 * timeout is the kill -9 guarantee: the kernel deletes it at the deadline.
 */
import { Worker } from 'node:worker_threads';
import { run } from '../../transport/exec.ts';
import type { Clock } from '../../core/clock.ts';
import { labStateOf, type LabState } from '../../lab/state.ts';
import type { LabRef } from '../../core/target.ts';
import type { CutInstant, Instant } from '../../core/injector.ts';

/** restore happens this long after the requested end at the latest, even with the harness dead */
export const KERNEL_GRACE_MS = 500;

/**
 * nft inside the lab switch's namespace, from a worker thread that has
 * entered it (src/injectors/shared/nft-thread.mjs): commands run through libnftables and
 * are stamped on CLOCK_MONOTONIC right around the call, so [before, t] is the
 * syscall itself (well under a millisecond), not process start-up (7–30 ms
 * per `ip netns exec nft`) or the main thread's event-loop delay.
 */
class NftChannel {
  private worker: Worker;
  private ready: Promise<void>;
  private pending = new Map<number, (r: NftReply) => void>();
  private nextId = 1;
  dead = false;

  constructor(
    ns: string,
    private readonly clock: Clock,
  ) {
    this.worker = new Worker(new URL('./nft-thread.mjs', import.meta.url), { workerData: { netnsPath: `/run/netns/${ns}` } });
    this.worker.unref();
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
    });
    this.worker.on('message', (m: NftReply & { ready?: boolean }) => {
      if (m.ready) return;
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
    this.worker.on('error', () => (this.dead = true));
    this.worker.on('exit', () => {
      this.dead = true;
      for (const [, done] of this.pending) done({ id: 0, before: 0n, after: 0n, code: -1, error: 'nft worker exited', output: '' });
      this.pending.clear();
    });
  }

  async exec(cmd: string): Promise<{ before: number; t: number; error: string; output: string }> {
    await this.ready;
    if (this.dead) throw new Error('nft worker exited');
    const id = this.nextId++;
    const r = await new Promise<NftReply>((resolve) => {
      this.pending.set(id, resolve);
      this.worker.postMessage({ id, cmd });
    });
    if (r.code === -1 && r.error === 'nft worker exited') throw new Error(r.error);
    const ms = (ns: bigint) => Number(ns - this.clock.originNs) / 1e6;
    return { before: ms(r.before), t: ms(r.after), error: r.code === 0 ? '' : r.error.trim() || `nft exit ${r.code}`, output: r.output };
  }

  close(): void {
    void this.worker.terminate();
  }
}

interface NftReply {
  id: number;
  before: bigint;
  after: bigint;
  code: number;
  error: string;
  output: string;
}

export class LabCut {
  private active = false;
  private channel: NftChannel | null = null;
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

  private getChannel(): NftChannel {
    if (!this.channel || this.channel.dead) this.channel = new NftChannel(this.lab.switchNs, this.clock);
    return this.channel;
  }

  /** Starts the nft worker ahead of the first cut (and checks the cut table is there). */
  async warm(): Promise<void> {
    const r = await this.getChannel().exec(`list table netdev ${this.lab.cutTable}`);
    if (r.error) throw new Error(`the lab's cut table is not usable: ${r.error}`);
  }

  async cut(requestedMs: number, extraMs = 0): Promise<CutInstant> {
    const timeout = Math.ceil(requestedMs + extraMs + KERNEL_GRACE_MS);
    // one buffer = one nft transaction: both sets (IP and ARP) go silent together
    const cmd = this.sets()
      .map((s) => `add element netdev ${this.lab.cutTable} ${s} { ${this.address} timeout ${timeout}ms }`)
      .join('\n');
    this.active = true; // before: a failure half-way must still be restored
    const r = await this.getChannel().exec(cmd);
    if (r.error) throw new Error(`nft: ${r.error}`);
    return { before: r.before, t: r.t, deadline: r.before + timeout, detail: { mechanism: 'nft netdev ingress drop in the lab switch', sets: this.sets(), kernelTimeoutMs: timeout } };
  }

  async restore(): Promise<Instant> {
    const cmd = this.sets()
      .map((s) => `delete element netdev ${this.lab.cutTable} ${s} { ${this.address} }`)
      .join('\n');
    let before: number;
    let t: number;
    let error = '';
    try {
      ({ before, t, error } = await this.getChannel().exec(cmd));
    } catch (e) {
      // the worker is gone: do it the slow way
      before = this.clock.now();
      const r = await this.nft(cmd + '\n', true);
      t = this.clock.now();
      error = r.code === 0 ? '' : r.stderr || (e as Error).message;
    }
    this.active = false;
    // "No such file": the kernel timeout already removed it (the harness was late)
    const expired = error !== '' && /No such file|does not exist/i.test(error);
    if (error && !expired) await this.flush(); // make sure, the blunt way
    return { before, t, detail: expired ? { expiredByKernelTimeout: true } : {} };
  }

  close(): void {
    this.channel?.close();
    this.channel = null;
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

export function requireLab(target: { lab?: LabRef; name: string }, kind: string): LabState {
  if (!target.lab) {
    throw new Error(`injector ${kind} acts on the lab switch: use target: lab (on a real estate use linux-gateway, libvirt, hyperv or command)`);
  }
  return labStateOf(target.lab);
}
