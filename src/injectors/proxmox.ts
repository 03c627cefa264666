/**
 * proxmox: a Proxmox VE node through `qm` over SSH (or on the node itself).
 *
 *   injector:
 *     kind: proxmox
 *     ssh: { host: pve01, user: root, privateKeyFile: ~/.ssh/id_ed25519, hostKey: "SHA256:…" }
 *     vmid: 101
 *     mode: hibernate          # suspend | hibernate | cable | migrate
 *     net: net0                # cable: which NIC (default net0)
 *     target: pve02            # migrate: destination node
 *
 *  - suspend: `qm suspend VMID` / `qm resume VMID` (a pause in RAM)
 *  - hibernate: `qm suspend VMID --todisk 1` / `qm start VMID` (memory saved to
 *    disk and restored: Proxmox's quick migration on one node)
 *  - cable: `qm set VMID --net0 …,link_down=1` / the NIC's line without it
 *    (read with `qm config` before the cut)
 *  - migrate: `qm migrate VMID TARGET --online` (live, self-timed)
 * Guaranteed restore: a detached nohup watchdog on the node.
 */
import { z } from 'zod';
import type { MigrationKind } from '../core/events.ts';
import { duration } from '../core/schema-util.ts';
import { armPosixWatchdog, remoteFields } from './shared/remote.ts';
import { hypervisorInjector, type Step } from './shared/hypervisor.ts';
import type { InjectorDefinition } from '../core/injector.ts';

const schema = z
  .strictObject({
    kind: z.literal('proxmox').describe('the injector kind'),
    ...remoteFields,
    vmid: z.number().int().min(100).max(999_999_999).describe("the VM's id"),
    mode: z
      .enum(['suspend', 'hibernate', 'cable', 'migrate'])
      .describe("suspend: qm suspend / resume; hibernate: memory saved to disk and restored (a quick migration on one node); cable: the NIC's link_down; migrate: qm migrate --online"),
    net: z
      .string()
      .regex(/^net\d{1,2}$/, 'expected net0 … net31')
      .default('net0')
      .describe('cable: which NIC'),
    target: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/, 'expected a node name')
      .optional()
      .describe('migrate: the destination node'),
    migrationTimeout: duration({ min: 1000, max: 3_600_000 }).default(600_000).describe('a self-timed migration taking longer than this is aborted'),
  })
  .refine((c) => c.mode !== 'migrate' || c.target, { message: 'mode migrate needs target: (a node name)', path: ['target'] });
export type ProxmoxConfig = z.infer<typeof schema>;

/** heal: resume a paused VM, start a hibernated one, bring a downed link up; `healed:` lines. */
const HEAL = `id=$1; net=$2
st=$(qm status "$id" --verbose)
case "$st" in *"qmpstatus: paused"*) qm resume "$id" && echo "healed: resumed paused VM $id" ;; esac
if qm config "$id" | grep -q '^lock: suspended'; then qm start "$id" && echo "healed: started hibernated VM $id"; fi
line=$(qm config "$id" | sed -n "s/^$net: //p")
case "$line" in *link_down=1*)
  up=$(printf '%s' "$line" | sed -e 's/,link_down=1//' -e 's/link_down=1,//')
  qm set "$id" "--$net" "$up" >/dev/null && echo "healed: brought $net of VM $id up" ;;
esac
exit 0
`;

/** what each mode does to the VM: a save/restore is a quick migration's pause, a pause or a cable is neither */
const MIGRATION: Record<z.infer<typeof schema>['mode'], MigrationKind> = { suspend: 'none', hibernate: 'quick', cable: 'none', migrate: 'live' };
export const proxmox: InjectorDefinition<ProxmoxConfig> = {
  kind: 'proxmox',
  summary: 'Proxmox VE through qm over SSH: suspend/resume, hibernate (to disk)/start, NIC link_down, online migration',
  schema,
  create(config, ctx) {
    const id = String(config.vmid);
    const qm = (label: string, ...args: string[]): Step => ({ label, cmd: { argv: ['qm', ...args] } });
    let nicUp: string | null = null;
    const nicDown = () => `${nicUp},link_down=1`;
    const restoreArgv = (): string[] => (config.mode === 'suspend' ? ['qm', 'resume', id] : config.mode === 'hibernate' ? ['qm', 'start', id] : ['qm', 'set', id, `--${config.net}`, nicUp!]);
    const healStep: Step = { label: 'heal', cmd: { posixScript: HEAL, args: [id, config.net] } };
    return hypervisorInjector(
      {
        kind: 'proxmox',
        mode: config.mode,
        migration: MIGRATION[config.mode],
        ssh: config.ssh,
        timeoutMs: config.timeout,
        graceMs: config.grace ?? 5000,
        selfTimed: config.mode === 'migrate',
        describe: { vmid: config.vmid, net: config.mode === 'cable' ? config.net : undefined, target: config.target },
        preflight: [{ ...qm('status', 'status', id), expect: /status: running/, hint: `VM ${id} must be running` }],
        async prepare(ex) {
          if (config.mode !== 'cable') return;
          const r = await ex.exec({ argv: ['qm', 'config', id] }, { timeoutMs: config.timeout, label: 'read NIC' });
          if (r.dryRun) {
            nicUp = `<${config.net} line from qm config>`;
            return;
          }
          const line = new RegExp(`^${config.net}: (.+)$`, 'm').exec(r.stdout)?.[1]?.trim();
          if (!line) throw new Error(`proxmox cable: VM ${id} has no ${config.net}`);
          // what "up" means: the line without a link_down flag
          nicUp = line
            .split(',')
            .filter((p) => !/^link_down=/.test(p))
            .join(',');
        },
        heal: healStep,
        plan() {
          if (config.mode === 'migrate') {
            return { selfTimed: true, migrate: qm('migrate', 'migrate', id, config.target!, '--online'), migrationTimeoutMs: config.migrationTimeout };
          }
          const cut =
            config.mode === 'suspend'
              ? qm('suspend', 'suspend', id)
              : config.mode === 'hibernate'
                ? qm('hibernate', 'suspend', id, '--todisk', '1')
                : qm('link_down', 'set', id, `--${config.net}`, nicDown());
          return {
            cut: [cut],
            restore: (started: number, completed: number) => (completed ? [{ label: 'restore', cmd: { argv: restoreArgv() } }] : started ? [healStep] : []),
            watchdog: (ex, delayMs) => armPosixWatchdog(ex, ctx.clock, delayMs, { argv: restoreArgv() }, undefined, config.timeout),
          };
        },
      },
      ctx,
    );
  },
};
