/**
 * hyperv: a Hyper-V host or failover cluster through PowerShell over SSH
 * (Windows OpenSSH). Every script is sent as `powershell.exe -EncodedCommand`,
 * built from single-quoted literals (no suite text is ever parsed as code).
 *
 *   injector:
 *     kind: hyperv
 *     ssh: { host: hv01.example.internal, user: 'EXAMPLE\ops', privateKeyFile: ~/.ssh/id_ed25519, hostKey: "SHA256:…" }
 *     vm: app01
 *     mode: quick-migration      # quick-migration | live-migration | save | pause | cable
 *     node: HV02                 # migrations: destination node (optional: the cluster picks)
 *     cluster: CL01              # migrations: optional
 *     adapter: "Network Adapter" # cable: optional when the VM has one adapter
 *     switch: vSwitch-Prod       # cable: optional, read from the adapter before the cut
 *
 *  - quick-migration / live-migration: `Move-ClusterVirtualMachineRole
 *    -MigrationType Quick|Live` (self-timed);
 *  - save: `Save-VM` / `Start-VM` (what a quick migration does, on one host);
 *  - pause: `Suspend-VM` / `Resume-VM`;
 *  - cable: `Disconnect-VMNetworkAdapter` / `Connect-VMNetworkAdapter
 *    -SwitchName` (a virtual cable pull).
 * Guaranteed restore: a one-shot scheduled task (SYSTEM) at the deadline.
 */
import { z } from 'zod';
import type { MigrationKind } from '../core/events.ts';
import { duration } from '../core/schema-util.ts';
import { psQuote } from '../transport/ssh-exec.ts';
import { armPowershellWatchdog, exactName, psStrict, remoteFields, runTag, sshSchema } from './shared/remote.ts';
import { hypervisorInjector, type Step } from './shared/hypervisor.ts';
import type { InjectorDefinition } from '../core/injector.ts';

const name = exactName(256);

const schema = z.strictObject({
  kind: z.literal('hyperv').describe('the injector kind'),
  ...remoteFields,
  ssh: sshSchema.describe('the Hyper-V host (Windows OpenSSH) the PowerShell commands run on'),
  vm: name.describe("the VM's name"),
  mode: z
    .enum(['quick-migration', 'live-migration', 'save', 'pause', 'cable'])
    .describe('quick-migration / live-migration: a cluster move; save: Save-VM / Start-VM; pause: Suspend-VM / Resume-VM; cable: the virtual adapter disconnected and reconnected'),
  node: name.optional().describe('migrations: the destination node (default: the cluster picks)'),
  cluster: name.optional().describe('migrations: the failover cluster'),
  adapter: name.optional().describe('cable: the network adapter (optional when the VM has one)'),
  switch: name.optional().describe('cable: the virtual switch to reconnect to (default: read from the adapter before the cut)'),
  migrationTimeout: duration({ min: 1000, max: 3_600_000 }).default(600_000).describe('a self-timed migration taking longer than this is aborted'),
});
export type HypervConfig = z.infer<typeof schema>;

const ps = (label: string, body: string, instant = false): Step => ({ label, cmd: { powershell: psStrict(body) }, instant });

/** what each mode does to the VM: a save/restore is a quick migration's pause, a pause or a cable is neither */
const MIGRATION: Record<z.infer<typeof schema>['mode'], MigrationKind> = { 'quick-migration': 'quick', 'live-migration': 'live', save: 'quick', pause: 'none', cable: 'none' };
export const hyperv: InjectorDefinition<HypervConfig> = {
  kind: 'hyperv',
  summary: 'Hyper-V over SSH (PowerShell): cluster quick/live migration, Save-VM/Start-VM, Suspend/Resume, virtual cable pull',
  schema,
  create(config, ctx) {
    const vm = psQuote(config.vm);
    let adapter = config.adapter ?? null;
    let sw = config.switch ?? null;
    const adapterArg = () => (adapter ? ` -Name ${psQuote(adapter)}` : '');
    const cluster = config.cluster ? ` -Cluster ${psQuote(config.cluster)}` : '';
    const restoreBody = (): string | null => {
      switch (config.mode) {
        case 'save':
          return `Start-VM -Name ${vm}`;
        case 'pause':
          return `Resume-VM -Name ${vm}`;
        case 'cable':
          return `Connect-VMNetworkAdapter -VMName ${vm}${adapterArg()} -SwitchName ${psQuote(sw ?? '')}`;
        default:
          return null;
      }
    };
    // idempotent: after a cut that failed half-way, undo whatever took effect
    const ensureBody = () =>
      [
        `$vm = Get-VM -Name ${vm}`,
        `if ($vm.State -eq 'Saved') { Start-VM -Name ${vm} }`,
        `if ($vm.State -eq 'Paused') { Resume-VM -Name ${vm} }`,
        ...(config.mode === 'cable'
          ? [
              `Get-VMNetworkAdapter -VMName ${vm}${adapterArg()} | Where-Object { -not $_.SwitchName } | ForEach-Object { Connect-VMNetworkAdapter -VMNetworkAdapter $_ -SwitchName ${psQuote(sw ?? '')} }`,
            ]
          : []),
      ].join('\n');
    const selfTimed = config.mode === 'quick-migration' || config.mode === 'live-migration';
    // heal: bring a Saved/Paused VM back, reconnect a disconnected adapter (a dead run's own watchdog task is ended by name, from the journal)
    const healBody = [
      `$vm = Get-VM -Name ${vm}`,
      `if ($vm.State -eq 'Saved') { Start-VM -Name ${vm}; 'healed: started saved VM ' + $vm.Name }`,
      `if ($vm.State -eq 'Paused') { Resume-VM -Name ${vm}; 'healed: resumed paused VM ' + $vm.Name }`,
      ...(config.mode === 'cable' && config.switch
        ? [
            `Get-VMNetworkAdapter -VMName ${vm}${config.adapter ? ` -Name ${psQuote(config.adapter)}` : ''} | Where-Object { -not $_.SwitchName } | ForEach-Object { Connect-VMNetworkAdapter -VMNetworkAdapter $_ -SwitchName ${psQuote(config.switch)}; 'healed: reconnected adapter ' + $_.Name }`,
          ]
        : []),
    ].join('\n');
    return hypervisorInjector(
      {
        kind: 'hyperv',
        mode: config.mode,
        migration: MIGRATION[config.mode],
        ssh: config.ssh,
        timeoutMs: config.timeout,
        graceMs: config.grace ?? 60_000, // the task scheduler fires to the second, but give it room
        selfTimed,
        describe: { vm: config.vm, node: config.node, cluster: config.cluster, adapter: config.adapter, switch: config.switch },
        preflight: [
          // exactly one VM by that name (-Name matches case-insensitively; the schema refused wildcards)
          ps(
            'VM state',
            `$v = @(Get-VM -Name ${vm} | Where-Object { $_.Name -eq ${vm} })\nif ($v.Count -ne 1) { throw ('expected exactly one VM named ' + ${vm} + ', found ' + $v.Count) }\n($v[0]).State`,
            false,
          ),
          ...(selfTimed ? [ps('cluster role', `(Get-ClusterGroup -Name ${vm}${cluster}).State`)] : []),
        ].map((p, i) => (i === 0 ? { ...p, expect: /Running/, hint: `VM ${config.vm} must be Running` } : p)),
        async prepare(ex) {
          if (config.mode !== 'cable' || (adapter && sw)) return;
          const r = await ex.exec(
            { powershell: psStrict(`Get-VMNetworkAdapter -VMName ${vm}${adapterArg()} | ForEach-Object { $_.Name + [char]9 + $_.SwitchName }`) },
            { timeoutMs: config.timeout, label: 'read adapter' },
          );
          if (r.dryRun) {
            adapter ??= '<adapter>';
            sw ??= '<switch read from the adapter>';
            return;
          }
          const rows = r.stdout
            .split(/\r?\n/)
            .filter(Boolean)
            .map((l) => l.split('\t'));
          if (rows.length !== 1) throw new Error(`hyperv cable: VM ${config.vm} has ${rows.length} network adapters (${rows.map((x) => x[0]).join(', ')}): name one with adapter:`);
          adapter ??= rows[0]![0]!;
          sw ??= rows[0]![1] ?? '';
          if (!sw) throw new Error(`hyperv cable: adapter ${adapter} of ${config.vm} is not connected to a switch now: connect it, or give switch:`);
        },
        heal: ps('heal', healBody),
        plan() {
          if (selfTimed) {
            const type = config.mode === 'quick-migration' ? 'Quick' : 'Live';
            return {
              selfTimed: true,
              migrate: ps('migrate', `Move-ClusterVirtualMachineRole -Name ${vm}${config.node ? ` -Node ${psQuote(config.node)}` : ''}${cluster} -MigrationType ${type} | Out-Null`),
              migrationTimeoutMs: config.migrationTimeout,
            };
          }
          const cut = config.mode === 'save' ? `Save-VM -Name ${vm}` : config.mode === 'pause' ? `Suspend-VM -Name ${vm}` : `Disconnect-VMNetworkAdapter -VMName ${vm}${adapterArg()}`;
          const label = config.mode === 'save' ? 'Save-VM' : config.mode === 'pause' ? 'Suspend-VM' : 'Disconnect-VMNetworkAdapter';
          return {
            cut: [ps(label, cut)],
            restore: (started: number, completed: number) => (completed ? [ps('restore', restoreBody()!)] : started ? [ps('ensure restored', ensureBody())] : []),
            watchdog: (ex, delayMs) => armPowershellWatchdog(ex, ctx.clock, delayMs, restoreBody()!, config.timeout, runTag(ctx.runDir)),
          };
        },
      },
      ctx,
    );
  },
};
