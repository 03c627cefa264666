/**
 * A lab instance's state as `lab up` wrote it (its topology and the services
 * it started), and the few operations that other lab modules (the VM) build
 * on. Kept apart from lab.ts so that lab.ts can use the VM module without an
 * import cycle.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { runIn } from '../transport/exec.ts';
import type { ServiceInfo } from './service.ts';
import { LAB_RUN_DIR, type Topology } from './topology.ts';

export interface LabState extends Topology {
  createdAtMs: number;
  services: Record<string, ServiceInfo>;
}

export const DEFAULT_LAB = 'blackout';

export function statePath(name: string): string {
  return `${LAB_RUN_DIR}/${name}/state.json`;
}

export function readLabState(name: string): LabState | null {
  const p = statePath(name);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as LabState;
  } catch {
    return null;
  }
}

export function listLabs(): string[] {
  if (!existsSync(LAB_RUN_DIR)) return [];
  return readdirSync(LAB_RUN_DIR).filter((n) => !n.startsWith('.') && existsSync(statePath(n)));
}

/** Every port of the lab switch gets the same drop chain (the VM's taps too). */
export async function addSwitchPortChain(t: Topology, port: string): Promise<void> {
  await runIn(t.switchNs, 'nft', ['-f', '-'], {
    input: `table netdev ${t.cutTable} {
  chain port_${port} {
    type filter hook ingress device "${port}" priority -500; policy accept;
    ip saddr @cut4 counter drop
    ip daddr @cut4 counter drop
    arp saddr ip @cutarp counter drop
    arp daddr ip @cutarp counter drop
  }
}
`,
  });
}

/**
 * The full lab state behind a target's opaque lab reference (the core keeps
 * it opaque; run/resolve-target.ts puts the state read from disk there).
 */
export function labStateOf(ref: { name: string }): LabState {
  const s = ref as Partial<LabState>;
  if (typeof s.switchNs !== 'string' || typeof s.cutTable !== 'string' || typeof s.targetNs !== 'string') {
    throw new Error(`the target's lab reference "${ref.name}" carries no lab state (resolve the target with resolveTarget)`);
  }
  return s as LabState;
}
