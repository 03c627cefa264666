/** The probe registry: every probe kind, one file each, registered explicitly. */
import type { ProbeDefinition, ProbeConfigBase } from '../core/probe.ts';
import { icmp } from './icmp.ts';
import { tcp } from './tcp.ts';
import { rdp } from './rdp.ts';
import { postgres } from './postgres.ts';
import { odbc } from './odbc.ts';
import { console_ } from './console.ts';
import { sftp } from './sftp.ts';
import { smb } from './smb.ts';
import { web } from './web.ts';
import { httpProbe } from './http.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const probes: ProbeDefinition<any>[] = [icmp, tcp, postgres, odbc, console_, sftp, smb, web, rdp, httpProbe];

export function probeDefinition(kind: string): ProbeDefinition<ProbeConfigBase> | undefined {
  return probes.find((d) => d.kind === kind);
}
