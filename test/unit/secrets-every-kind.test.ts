/**
 * Secrets, for every probe and injector kind (no lab needed): a sentinel value
 * held in environment variables, files, and — where a suite can hold a literal
 * (a command's `env:`) — under a secret's name (API_KEY, *_TOKEN, pass …),
 * appears neither in the run's recorded config (run-start of events.jsonl) nor
 * in any injector's --dry-run transcript. Child processes get a minimal
 * environment, never the harness's. libvirt's no_verify is refused.
 * The live run with the real servers is test/trust-secrets.test.ts.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { probes } from '../../src/probes/index.ts';
import { injectors } from '../../src/injectors/index.ts';
import { validateSuite, SuiteError } from '../../src/run/suite.ts';
import { isSecretName, redactConfig } from '../../src/core/secrets.ts';
import { dryRun } from '../../src/run/dry-run.ts';
import { LocalExecutor } from '../../src/transport/ssh-exec.ts';
import { run } from '../../src/transport/exec.ts';
import { tempDir } from '../helpers/lab.ts';

const SENTINEL = 'S3ntinel-9f2c7d1e-secret';
const dir = tempDir('blackout-sec-');
const secretFile = join(dir, 'secret');
writeFileSync(secretFile, `${SENTINEL}\n`, { mode: 0o600 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { BO_SENT_PASSWORD: SENTINEL, BO_SENT_TOKEN: SENTINEL, BO_SENT_KEY: SENTINEL };
const ssh = { host: 'hv01.example.internal', user: 'ops', passwordEnv: 'BO_SENT_PASSWORD', hostKey: 'SHA256:Q2hhbmdlTWVUb1RoZUhvc3RLZXlPZkh2MDEuLi4uLi4' };

/** one block per kind, each handing it the sentinel every way it takes a secret */
const probeBlocks: Record<string, Record<string, unknown>> = {
  icmp: { kind: 'icmp' },
  tcp: { kind: 'tcp' },
  postgres: { kind: 'postgres', passwordEnv: 'BO_SENT_PASSWORD' },
  odbc: { kind: 'odbc', passwordFile: secretFile },
  console: { kind: 'console' },
  sftp: { kind: 'sftp' },
  smb: { kind: 'smb', passwordEnv: 'BO_SENT_PASSWORD' },
  web: { kind: 'web', passwordFile: secretFile, journey: { login: [{ goto: '/' }], check: [{ expectText: 'ok' }] }, secrets: { apiKey: { env: 'BO_SENT_KEY' } } },
  rdp: { kind: 'rdp', passwordEnv: 'BO_SENT_PASSWORD' },
  http: { kind: 'http', url: 'https://app01.example.internal/health', secretHeaders: { Authorization: { env: 'BO_SENT_TOKEN' }, 'X-Api-Key': { file: secretFile } } },
};
const injectorBlocks: Record<string, Record<string, unknown>> = {
  'cable-pull': { kind: 'cable-pull' },
  'quick-migration': { kind: 'quick-migration' },
  'live-migration': { kind: 'live-migration' },
  'qemu-quick': { kind: 'qemu-quick' },
  'qemu-live': { kind: 'qemu-live' },
  // a literal under a secret's name, and one from the environment
  command: { kind: 'command', ssh, cut: ['fw-cut'], restore: ['fw-restore'], env: { API_KEY: SENTINEL, GW_TOKEN: { env: 'BO_SENT_TOKEN' }, pass: SENTINEL } },
  libvirt: { kind: 'libvirt', ssh, domain: 'app01', mode: 'suspend' },
  hyperv: { kind: 'hyperv', ssh, vm: 'app01', mode: 'pause' },
  vsphere: { kind: 'vsphere', ssh, url: 'https://vc.example.internal/sdk', username: { env: 'BO_SENT_KEY' }, password: { file: secretFile }, vm: 'app01', mode: 'suspend' },
  proxmox: { kind: 'proxmox', ssh, vmid: 101, mode: 'suspend' },
  'linux-gateway': { kind: 'linux-gateway', ssh, family: 'netdev', devices: ['eth1'], addresses: ['10.20.0.15'] },
  'snmp-switch-port': {
    kind: 'snmp-switch-port',
    host: '10.20.0.2',
    version: '3',
    v3: { user: 'ops', level: 'authPriv', authProtocol: 'sha', authKey: { env: 'BO_SENT_KEY' }, privProtocol: 'aes', privKey: { file: secretFile } },
    ifName: 'Gi1/0/12',
  },
  manual: { kind: 'manual' },
};

function suiteFor(probe: Record<string, unknown>, injector: Record<string, unknown>) {
  try {
    return validateSuite({ name: 'sentinel', target: { host: 'app01.example.internal' }, probes: [{ name: 'p', ...probe }], injector, blackouts: ['2s'] }, 'sentinel.yaml');
  } catch (e) {
    if (e instanceof SuiteError) throw new Error(e.message);
    throw e;
  }
}

describe('the sentinel secret, every kind', () => {
  it('every probe and injector kind has a block here', () => {
    expect(Object.keys(probeBlocks).sort()).toEqual(probes.map((p) => p.kind).sort());
    expect(Object.keys(injectorBlocks).sort()).toEqual(injectors.map((i) => i.kind).sort());
  });

  it.each(Object.keys(probeBlocks))('probe %s: the recorded config holds the reference, never the value', (kind) => {
    const recorded = JSON.stringify(redactConfig(suiteFor(probeBlocks[kind]!, { kind: 'cable-pull' })));
    expect(recorded).not.toContain(SENTINEL);
  });

  it.each(Object.keys(injectorBlocks))('injector %s: neither the recorded config nor the dry-run transcript holds the value', async (kind) => {
    const suite = suiteFor({ kind: 'tcp' }, injectorBlocks[kind]!);
    const recorded = JSON.stringify(redactConfig(suite));
    expect(recorded).not.toContain(SENTINEL);
    const lines: string[] = [];
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      await dryRun(suite, { write: (l) => lines.push(l) });
    } finally {
      for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
    }
    const transcript = lines.join('\n');
    expect(transcript).not.toContain(SENTINEL);
    if (kind === 'command') {
      expect(recorded).toContain('"API_KEY":"[redacted]"');
      expect(recorded).toContain('"GW_TOKEN":{"env":"BO_SENT_TOKEN"}');
      expect(transcript).toContain('<value of API_KEY withheld>');
      expect(transcript).toContain('<secret from env BO_SENT_TOKEN>');
    }
  });

  it('secret names', () => {
    for (const n of ['API_KEY', 'GW_TOKEN', 'pass', 'password', 'dbPassword', 'authKey', 'privKey', 'SNMP_COMMUNITY', 'apiKey', 'client_secret']) expect(isSecretName(n), n).toBe(true);
    for (const n of ['passwordEnv', 'passwordFile', 'privateKeyFile', 'hostKey', 'knownHostsFile', 'bypass', 'name', 'keepalive']) expect(isSecretName(n), n).toBe(false);
  });
});

describe('child processes get a minimal environment', () => {
  it('a local command and an internal tool see none of the harness variables', async () => {
    process.env.BO_HARNESS_ONLY_TOKEN = SENTINEL;
    try {
      const local = await new LocalExecutor().exec({ argv: ['env'], env: { GIVEN: 'yes' } });
      expect(local.stdout).not.toContain(SENTINEL);
      expect(local.stdout).toMatch(/^GIVEN=yes$/m);
      expect(local.stdout).toMatch(/^PATH=/m);
      const internal = await run('env', []);
      expect(internal.stdout).not.toContain(SENTINEL);
      expect(internal.stdout).toMatch(/^PATH=/m);
    } finally {
      delete process.env.BO_HARNESS_ONLY_TOKEN;
    }
  });
});

describe('libvirt URIs', () => {
  it.each(['qemu+tls://kvm01/system?no_verify=1', 'qemu+ssh://kvm01/system?keyfile=/k&no_verify=1', 'qemu+tls://kvm01/system?NO_VERIFY=yes'])('%s is refused', (uri) => {
    expect(() => suiteFor({ kind: 'tcp' }, { kind: 'libvirt', domain: 'app01', mode: 'suspend', uri })).toThrow(/injector\.uri: no_verify is refused/);
  });
  it('a plain URI and no_verify=0 are accepted', () => {
    expect(() => suiteFor({ kind: 'tcp' }, { kind: 'libvirt', domain: 'app01', mode: 'suspend', uri: 'qemu+tls://kvm01/system?no_verify=0' })).not.toThrow();
    expect(() => suiteFor({ kind: 'tcp' }, { kind: 'libvirt', domain: 'app01', mode: 'suspend', uri: 'qemu:///system' })).not.toThrow();
  });
});

describe('the SMB password never stays on disk', () => {
  it('a probe that opened (and was never closed, as after kill -9) leaves no file holding the password', async () => {
    const { smb } = await import('../../src/probes/smb.ts');
    const { readdirSync, readFileSync: read, statSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { createClock } = await import('../../src/core/clock.ts');
    const filesUnder = (d: string): string[] =>
      readdirSync(d).flatMap((f) => {
        const p = join(d, f);
        try {
          return statSync(p).isDirectory() ? filesUnder(p) : [p];
        } catch {
          return [];
        }
      });
    process.env.BO_SMB_SENTINEL = SENTINEL;
    try {
      const config = smb.schema.parse({ name: 'cp', kind: 'smb', host: '127.0.0.1', port: 1, share: 'files', user: 'ops', passwordEnv: 'BO_SMB_SENTINEL', file: 'big.bin', timeout: '1s' });
      const probe = smb.create(config, {
        name: 'cp',
        trial: 0,
        clock: createClock(),
        target: { name: 't', address: '127.0.0.1', services: {} },
        runDir: dir,
        signal: new AbortController().signal,
        emit: () => {},
        attach: () => '',
      });
      // smbclient really starts, reads its authentication from fd 3, and fails to connect
      await expect(probe.open()).rejects.toThrow(/smbclient/);
      const holding = filesUnder(tmpdir()).filter((f) => {
        try {
          return read(f).includes(SENTINEL);
        } catch {
          return false;
        }
      });
      expect(holding.filter((f) => !f.startsWith(dir))).toEqual([]);
    } finally {
      delete process.env.BO_SMB_SENTINEL;
    }
  });
});
