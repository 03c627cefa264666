/**
 * The Debian packages a probe kind or a lab service needs are declared in its
 * own file; scripts/setup.sh reads them with scripts/plugin-packages.sh (grep
 * over the sources, before any npm module is installed). That script must see
 * exactly what the loaded plug-ins declare. The lab's services are found by
 * their folder alone, and start in name order after the ones they name.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { probes } from '../../src/probes/index.ts';
import { services, startOrder } from '../../src/lab/services/index.ts';
import type { LabService } from '../../src/lab/service.ts';
import { ROOT } from '../helpers/lab.ts';

describe('plug-in packages and lab services', () => {
  it("the setup's reading of the sources equals what the plug-ins declare", () => {
    const read = execFileSync('bash', ['scripts/plugin-packages.sh'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    const declared = new Set<string>();
    for (const p of probes) for (const pkg of p.packages ?? []) declared.add(pkg);
    for (const s of services) for (const pkg of s.packages) declared.add(pkg);
    expect(read).toEqual([...declared].sort());
    // the clients that are system programs say so
    expect(probes.find((p) => p.kind === 'smb')?.packages).toContain('smbclient');
    expect(services.find((s) => s.name === 'redis')?.packages).toContain('redis-server');
  });

  it('every service file in the folder is found, and the smb share starts after the files service', () => {
    const names = services.map((s) => s.name);
    expect([...names].sort()).toEqual(['echo', 'files', 'mariadb', 'nginx', 'postgres', 'rdp', 'redis', 'smb', 'ssh', 'web']);
    expect(names.indexOf('smb')).toBeGreaterThan(names.indexOf('files'));
  });

  it('start order: name order, after what each names; a circle or an unknown name is refused', () => {
    const svc = (name: string, after?: string[]): LabService => ({ name, packages: [], ...(after ? { after } : {}), start: async () => ({ port: 0 }) });
    expect(startOrder([svc('c'), svc('a', ['d']), svc('b'), svc('d')]).map((s) => s.name)).toEqual(['d', 'a', 'b', 'c']);
    expect(() => startOrder([svc('a', ['b']), svc('b', ['a'])])).toThrow(/circle: a → b → a/);
    expect(() => startOrder([svc('a', ['nope'])])).toThrow(/starts after nope, which is no lab service/);
    expect(() => startOrder([svc('a'), svc('a')])).toThrow(/two lab services are named a/);
  });
});
