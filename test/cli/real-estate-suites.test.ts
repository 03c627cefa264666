/**
 * The bundled real-estate example suites: each one is valid and its
 * `--dry-run` transcript prints the adapter's commands with secrets as
 * placeholders, without connecting anywhere.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/lab.ts';

const dir = join(ROOT, 'suites/real-estate');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

describe('suites/real-estate', () => {
  it('has an example for every real-estate adapter', () => {
    const kinds = ['command', 'hyperv', 'libvirt', 'linux-gateway', 'manual', 'proxmox', 'snmp-switch-port', 'vsphere'];
    const text = files.map((f) => readFileSync(join(dir, f))).join('\n');
    for (const k of kinds) expect(text).toContain(`kind: ${k}`);
  });

  it.each(files)('%s: --dry-run (which validates first) prints its transcript with placeholders only', async (f) => {
    const secrets = { VSPHERE_PASSWORD: 'vs-secret-value', SNMP_AUTH_KEY: 'snmp-auth-value', SNMP_PRIV_KEY: 'snmp-priv-value' };
    const r = await runCli(['run', join(dir, f), '--dry-run'], { env: secrets, timeoutMs: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('# dry run: nothing was executed');
    expect(r.stdout).toMatch(/^t\+\d+\.\d{3}s \[/m);
    for (const s of Object.values(secrets)) expect(r.stdout).not.toContain(s);
  });
});
