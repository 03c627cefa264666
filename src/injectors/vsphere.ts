/**
 * vsphere: vCenter / ESXi through `govc`, on this machine or on a jump host
 * over SSH.
 *
 *   injector:
 *     kind: vsphere
 *     ssh: { host: jump01, user: ops, privateKeyFile: ~/.ssh/id_ed25519, hostKey: "SHA256:…" }   # optional
 *     url: https://vcenter.example.internal/sdk
 *     username: { env: GOVC_USER }          # or a plain user name
 *     password: { env: VSPHERE_PASSWORD }   # or { file: /run/secrets/vsphere }
 *     insecure: false                        # true: skip TLS verification (GOVC_INSECURE=1)
 *     vm: app01
 *     mode: cable                            # cable | suspend | vmotion
 *     device: ethernet-0                     # cable
 *     host: esx02.example.internal           # vmotion destination
 *     datastore: ds02                        # vmotion, optional (storage vMotion as well)
 *
 *  - cable: `govc device.disconnect -vm VM ethernet-0` / `govc device.connect`
 *  - suspend: `govc vm.power -suspend VM` / `govc vm.power -on VM`
 *  - vmotion: `govc vm.migrate -host H [-ds DS] VM` (self-timed)
 * The credentials reach govc as GOVC_* environment variables fed on stdin (never
 * on a command line). Guaranteed restore: a detached nohup watchdog where govc runs.
 */
import { z } from 'zod';
import type { MigrationKind } from '../core/events.ts';
import { duration } from '../core/schema-util.ts';
import type { SecretRef } from '../transport/ssh-exec.ts';
import { armPosixWatchdog, exactName, remoteFields, secretSchema } from './shared/remote.ts';
import { hypervisorInjector, type Step } from './shared/hypervisor.ts';
import type { InjectorDefinition } from '../core/injector.ts';

const name = exactName(512);

const schema = z
  .strictObject({
    kind: z.literal('vsphere').describe('the injector kind'),
    ...remoteFields,
    url: z
      .string()
      .regex(/^https?:\/\/[^\s@]+$/, 'expected https://HOST/sdk without credentials in it')
      .describe('the vCenter or ESXi SDK URL, https://HOST/sdk (no credentials in it)'),
    username: z.union([name, secretSchema]).describe('the user name, or a secret { env: NAME } / { file: PATH }'),
    password: secretSchema.describe('the password, { env: NAME } or { file: PATH }'),
    insecure: z.boolean().default(false).describe('skip TLS verification (GOVC_INSECURE=1)'),
    datacenter: name.optional().describe('the datacenter (GOVC_DATACENTER)'),
    vm: name.describe("the VM's name"),
    mode: z.enum(['cable', 'suspend', 'vmotion']).describe('cable: the virtual NIC disconnected and reconnected; suspend: suspend / power on; vmotion: govc vm.migrate'),
    device: z
      .string()
      .regex(/^[a-z]+-\d+$/, 'expected a govc device name such as ethernet-0')
      .default('ethernet-0')
      .describe('cable: the virtual NIC (govc device name)'),
    host: name.optional().describe('vmotion: the destination host'),
    datastore: name.optional().describe('vmotion: the destination datastore (storage vMotion as well)'),
    pool: name.optional().describe('vmotion: the destination resource pool'),
    migrationTimeout: duration({ min: 1000, max: 3_600_000 }).default(600_000).describe('a self-timed migration taking longer than this is aborted'),
  })
  .refine((c) => c.mode !== 'vmotion' || c.host || c.datastore || c.pool, { message: 'mode vmotion needs host:, datastore: or pool:', path: ['host'] });
export type VsphereConfig = z.infer<typeof schema>;

/** heal: reconnect a disconnected NIC, power on a suspended VM; `healed:` lines. */
const HEAL = `vm=$1; dev=$2; mode=$3
if [ "$mode" = cable ]; then
  if govc device.info -vm "$vm" -- "$dev" | grep -Eq 'Connected: +false'; then govc device.connect -vm "$vm" -- "$dev" && echo "healed: reconnected $dev of $vm"; fi
fi
if govc vm.info -- "$vm" | grep -Eq 'Power state: +suspended'; then govc vm.power -on -- "$vm" >/dev/null && echo "healed: powered on suspended $vm"; fi
exit 0
`;

/** what each mode does to the VM: a save/restore is a quick migration's pause, a pause or a cable is neither */
const MIGRATION: Record<z.infer<typeof schema>['mode'], MigrationKind> = { cable: 'none', suspend: 'quick', vmotion: 'live' };
export const vsphere: InjectorDefinition<VsphereConfig> = {
  kind: 'vsphere',
  summary: 'vSphere through govc (local or on a jump host over SSH): NIC disconnect/connect, suspend/power on, vMotion',
  schema,
  create(config, ctx) {
    const env: Record<string, string | SecretRef> = {
      GOVC_URL: config.url,
      GOVC_USERNAME: config.username,
      GOVC_PASSWORD: config.password,
      ...(config.insecure ? { GOVC_INSECURE: '1' } : {}),
      ...(config.datacenter ? { GOVC_DATACENTER: config.datacenter } : {}),
    };
    const govc = (label: string, ...args: string[]): Step => ({ label, cmd: { argv: ['govc', ...args], env } });
    const cutStep = config.mode === 'cable' ? govc('device.disconnect', 'device.disconnect', '-vm', config.vm, '--', config.device) : govc('suspend', 'vm.power', '-suspend', '--', config.vm);
    const restoreArgv = config.mode === 'cable' ? ['govc', 'device.connect', '-vm', config.vm, '--', config.device] : ['govc', 'vm.power', '-on', '--', config.vm];
    const healStep: Step = { label: 'heal', cmd: { posixScript: HEAL, args: [config.vm, config.device, config.mode], env } };
    return hypervisorInjector(
      {
        kind: 'vsphere',
        mode: config.mode,
        migration: MIGRATION[config.mode],
        ssh: config.ssh,
        timeoutMs: config.timeout,
        graceMs: config.grace ?? 10_000,
        selfTimed: config.mode === 'vmotion',
        describe: { url: config.url, vm: config.vm, device: config.mode === 'cable' ? config.device : undefined, host: config.host, datastore: config.datastore, insecure: config.insecure },
        preflight: [{ ...govc('vm.info', 'vm.info', '--', config.vm), expect: /Power state: +poweredOn/, hint: `VM ${config.vm} must exist and be powered on` }],
        heal: healStep,
        plan() {
          if (config.mode === 'vmotion') {
            const args = [
              'vm.migrate',
              ...(config.host ? ['-host', config.host] : []),
              ...(config.datastore ? ['-ds', config.datastore] : []),
              ...(config.pool ? ['-pool', config.pool] : []),
              '--',
              config.vm,
            ];
            return { selfTimed: true, migrate: govc('vmotion', ...args), migrationTimeoutMs: config.migrationTimeout };
          }
          return {
            cut: [cutStep],
            restore: (started: number, completed: number) => (completed ? [{ label: 'restore', cmd: { argv: restoreArgv, env } }] : started ? [healStep] : []),
            watchdog: (ex, delayMs) => armPosixWatchdog(ex, ctx.clock, delayMs, { argv: restoreArgv }, env, config.timeout),
          };
        },
      },
      ctx,
    );
  },
};
