/** The injector registry: every injector kind, registered explicitly. */
import type { InjectorDefinition } from '../core/injector.ts';
import { cablePull } from './cable-pull.ts';
import { quickMigration } from './quick-migration.ts';
import { liveMigration } from './live-migration.ts';
import { qemuQuick } from './qemu-quick.ts';
import { qemuLive } from './qemu-live.ts';
import { command } from './command.ts';
import { libvirt } from './libvirt.ts';
import { hyperv } from './hyperv.ts';
import { vsphere } from './vsphere.ts';
import { proxmox } from './proxmox.ts';
import { linuxGateway } from './linux-gateway.ts';
import { snmpSwitchPort } from './snmp-switch-port.ts';
import { manual } from './manual.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const injectors: InjectorDefinition<any>[] = [cablePull, quickMigration, liveMigration, qemuQuick, qemuLive, command, libvirt, hyperv, vsphere, proxmox, linuxGateway, snmpSwitchPort, manual];

export function injectorDefinition(kind: string): InjectorDefinition<{ kind: string }> | undefined {
  return injectors.find((d) => d.kind === kind);
}
