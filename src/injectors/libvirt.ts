/**
 * libvirt: a KVM/QEMU host's own mechanisms through `virsh`, on this machine or
 * over SSH.
 *
 *   injector:
 *     kind: libvirt
 *     ssh: { host: kvm01, user: root, privateKeyFile: ~/.ssh/id_ed25519, hostKey: "SHA256:…" }   # optional
 *     uri: qemu:///system            # virsh -c URI (optional)
 *     domain: app01
 *     mode: save                     # save | suspend | migrate-live
 *     saveFile: /var/lib/libvirt/qemu/save/blackout-app01.save   # mode save
 *     destination: qemu+ssh://kvm02/system                       # mode migrate-live
 *     migrateFlags: [--persistent, --undefinesource]             # mode migrate-live, optional
 *
 *  - save (a real quick migration on one host): `virsh suspend` is the cut
 *    (the guest stops there), then `virsh save` writes its memory to the
 *    file; after the blackout `virsh restore FILE --running` brings it back
 *    and the file is removed. The blackout is max(requested, suspend+save)
 *    plus the restore.
 *  - suspend: `virsh suspend` / `virsh resume` (a pause, e.g. a live
 *    migration's stop-and-copy stretched to N s).
 *  - migrate-live: `virsh migrate --live DOMAIN DESTINATION` (self-timed); on
 *    timeout `virsh domjobabort`.
 *
 * The cut and restore instants are libvirt's own lifecycle events
 * ("Suspended", "Resumed"), heard by a `virsh event` listener started before
 * the cut, within the calls' [start, return]: `virsh restore` does more work
 * after the guest runs again, and under load it returned a second later. If
 * the listener heard nothing, a call's return is the instant.
 *
 * Guaranteed restore: a detached watchdog where virsh runs (nohup sh) that,
 * at the deadline, resumes a paused domain or restores it from the save file,
 * retrying for up to 2 minutes (a save still being written finishes first).
 */
import { dirname } from 'node:path';
import { z } from 'zod';
import type { MigrationKind } from '../core/events.ts';
import { duration } from '../core/schema-util.ts';
import { armPosixWatchdog, exactName, remoteFields } from './shared/remote.ts';
import { hypervisorInjector, type Step } from './shared/hypervisor.ts';
import type { InjectorDefinition } from '../core/injector.ts';

/**
 * A libvirt URI. `no_verify=1` turns off the TLS / SSH host verification of the
 * connection to the hypervisor (anyone in the path can then pause every guest
 * in its name): refused, as is anything that is not one plain token.
 */
function libvirtUri(message: string) {
  return z
    .string()
    .max(1024)
    .regex(/^[a-z0-9+]+:\/\/[^\s"'`;\\]*$/, message)
    .refine((u) => !/[?&]no_verify=(?!0(&|$))/i.test(u), { message: "no_verify is refused: the hypervisor's identity must be verified (fix its certificate or known_hosts instead)" });
}

const schema = z
  .strictObject({
    kind: z.literal('libvirt').describe('the injector kind'),
    ...remoteFields,
    uri: libvirtUri('expected a libvirt URI such as qemu:///system').optional().describe('the libvirt connection URI, virsh -c (e.g. qemu:///system)'),
    domain: exactName(200).describe('the domain (VM) name'),
    mode: z
      .enum(['save', 'suspend', 'migrate-live'])
      .describe('save: suspend + save the memory to a file, then restore (a quick migration on one host); suspend: suspend / resume; migrate-live: virsh migrate --live'),
    saveFile: z
      .string()
      .regex(/^\/[^\0]*$/, 'expected an absolute path')
      .optional()
      .describe('save: where the memory is written (default: /var/lib/libvirt/qemu/save/blackout-DOMAIN.save)'),
    bypassCache: z.boolean().default(false).describe('save: virsh save/restore --bypass-cache'),
    destination: libvirtUri('expected a destination libvirt URI').optional().describe('migrate-live: the destination libvirt URI (qemu+ssh://kvm02/system)'),
    migrateFlags: z
      .array(z.string().regex(/^--[a-z0-9-]+(=.*)?$/, 'expected a virsh migrate flag such as --persistent'))
      .max(32)
      .default([])
      .describe('migrate-live: more virsh migrate flags, e.g. [--persistent, --undefinesource]'),
    migrationTimeout: duration({ min: 1000, max: 3_600_000 }).default(600_000).describe('a self-timed migration taking longer than this is aborted (virsh domjobabort)'),
  })
  .refine((c) => c.mode !== 'migrate-live' || c.destination, { message: 'mode migrate-live needs destination: (a libvirt URI)', path: ['destination'] });
export type LibvirtConfig = z.infer<typeof schema>;

/** "ensure the domain runs": resume it if paused, restore it from the save file if it is gone; `healed:` lines for what it did. */
const ENSURE_RUNNING = `tries=$1; file=$2; dom=$3; shift 3
i=0
while [ "$i" -lt "$tries" ]; do
  st=$("$@" domstate -- "$dom" 2>/dev/null)
  case "$st" in
    running*)
      # a save file of a running domain is stale (restoring it would roll the guest back)
      if [ -n "$file" ] && [ -f "$file" ]; then rm -f "$file" && echo "healed: removed the stale save file $file"; fi
      exit 0 ;;
    paused*)
      # right after a completed save the domain lingers, paused, while QEMU exits: the
      # file is the state to come back to, so wait for the domain to go (15 s at most)
      if [ -n "$file" ] && [ -f "$file" ] && [ "$i" -lt 15 ]; then :
      elif "$@" resume -- "$dom" >/dev/null 2>&1; then
        echo "healed: resumed paused domain $dom"
        [ -n "$file" ] && rm -f "$file"
      fi ;;
    *) if [ -n "$file" ] && [ -f "$file" ]; then
         "$@" restore --running -- "$file" >/dev/null && rm -f "$file" && echo "healed: restored domain $dom from $file"
       elif [ -n "$st" ]; then echo "domain $dom is $st and there is no saved state to restore" >&2; exit 1
       fi ;;
  esac
  i=$((i+1)); sleep 1
done
echo "domain $dom did not come back" >&2
exit 1
`;

/**
 * The state-change listener: `virsh "uri; event …"` in its own process group
 * (the stop ends it whole), writing to a fresh file; `uri` answers once it is
 * connected, and the event registration follows at once. It ends itself after
 * its lifetime and removes its file.
 */
const LISTEN = `t=$1; shift
f=$(mktemp "\${TMPDIR:-/tmp}/blackout-events.XXXXXX") || exit 1
setsid sh -c 'f=$1; t=$2; shift 2; "$@" "uri; event --event lifecycle --loop --timestamp --timeout $t" >"$f" 2>/dev/null; rm -f "$f"' blackout-events "$f" "$t" "$@" </dev/null >/dev/null 2>&1 &
p=$!
i=0
while [ ! -s "$f" ] && [ "$i" -lt 300 ]; do sleep 0.01; i=$((i + 1)); done
echo "$p $f"
`;
const READ_EVENTS = `cat -- "$1" 2>/dev/null; date +%s.%N`;
const STOP_LISTENING = `case $1 in ''|*[!0-9]*) exit 1 ;; esac
kill -s TERM -- "-$1" 2>/dev/null
case $2 in */blackout-events.*) rm -f -- "$2" ;; esac
`;

/** `virsh event --timestamp` lines of one domain: "2026-12-04 11:24:41.317+0000: event 'lifecycle' for domain 'app01': Resumed Snapshot" */
export function parseLifecycle(stdout: string, domain: string): { changes: Array<{ wallMs: number; running: boolean }>; nowWallMs: number } | null {
  const lines = stdout.trimEnd().split('\n');
  const now = Number(lines.pop());
  if (!Number.isFinite(now)) return null;
  const tag = `: event 'lifecycle' for domain '${domain}': `;
  const changes: Array<{ wallMs: number; running: boolean }> = [];
  for (const line of lines) {
    const at = line.indexOf(tag);
    const m = at > 0 ? /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(\d\d)$/.exec(line.slice(0, at)) : null;
    if (!m) continue;
    const wallMs = Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
    const what = line.slice(at + tag.length).split(' ')[0];
    // Suspended (paused) and Stopped (saved) mean it does not run; Resumed means it runs again
    if (Number.isFinite(wallMs) && (what === 'Suspended' || what === 'Stopped' || what === 'Resumed')) changes.push({ wallMs, running: what === 'Resumed' });
  }
  return { changes, nowWallMs: now * 1000 };
}

/** what each mode does to the VM: a save/restore is a quick migration's pause, a pause or a cable is neither */
const MIGRATION: Record<z.infer<typeof schema>['mode'], MigrationKind> = { save: 'quick', suspend: 'none', 'migrate-live': 'live' };
export const libvirt: InjectorDefinition<LibvirtConfig> = {
  kind: 'libvirt',
  summary: 'virsh save/restore (quick migration), suspend/resume, migrate --live; local or over SSH',
  schema,
  create(config, ctx) {
    const virsh = ['virsh', ...(config.uri ? ['-c', config.uri] : [])];
    const dom = config.domain;
    const file = config.saveFile ?? `/var/lib/libvirt/qemu/save/blackout-${dom.replace(/[^A-Za-z0-9_.-]/g, '_')}.save`;
    const cache = config.bypassCache ? ['--bypass-cache'] : [];
    const step = (label: string, ...args: string[]): Step => ({ label, cmd: { argv: [...virsh, ...args] } });
    const ensure = (tries: number, withFile: boolean) => ({ script: ENSURE_RUNNING, args: [String(tries), withFile ? file : '', dom, ...virsh] });
    const grace = config.grace ?? 5000;
    return hypervisorInjector(
      {
        kind: 'libvirt',
        mode: config.mode,
        migration: MIGRATION[config.mode],
        ssh: config.ssh,
        timeoutMs: config.timeout,
        graceMs: grace,
        selfTimed: config.mode === 'migrate-live',
        describe: {
          uri: config.uri ?? '(virsh default)',
          domain: dom,
          ...(config.mode === 'save' ? { saveFile: file, bypassCache: config.bypassCache } : {}),
          ...(config.mode === 'migrate-live' ? { destination: config.destination, migrateFlags: config.migrateFlags } : {}),
        },
        preflight: [
          { label: 'domain state', cmd: { argv: [...virsh, 'domstate', '--', dom] }, expect: /^running/m, hint: `domain ${dom} must be running` },
          ...(config.mode === 'save' ? [{ label: 'save folder', cmd: { argv: ['test', '-d', dirname(file)] } }] : []),
        ],
        heal: { label: 'heal', cmd: { posixScript: ENSURE_RUNNING, args: ensure(30, config.mode === 'save').args } },
        plan() {
          if (config.mode === 'migrate-live') {
            return {
              selfTimed: true,
              migrate: step('migrate', 'migrate', '--live', ...config.migrateFlags, '--', dom, config.destination!),
              abort: step('abort', 'domjobabort', '--', dom),
              migrationTimeoutMs: config.migrationTimeout,
            };
          }
          const events = {
            start: (lifetimeS: number) => ({ label: 'listen for state changes', cmd: { posixScript: LISTEN, args: [String(lifetimeS), ...virsh] } }),
            read: (h: string) => ({ label: 'read state changes', cmd: { posixScript: READ_EVENTS, args: [h.split(' ')[1] ?? ''] } }),
            stop: (h: string) => ({ label: 'stop listening', cmd: { posixScript: STOP_LISTENING, args: h.split(' ') } }),
            parse: (out: string) => parseLifecycle(out, dom),
          };
          const watchdog = (ex: Parameters<typeof armPosixWatchdog>[0], delayMs: number) => armPosixWatchdog(ex, ctx.clock, delayMs, ensure(120, config.mode === 'save'), undefined, config.timeout);
          if (config.mode === 'suspend') {
            return {
              cut: [step('suspend', 'suspend', '--', dom)],
              restore: (started: number, completed: number) =>
                completed ? [step('resume', 'resume', '--', dom)] : started ? [{ label: 'ensure running', cmd: { posixScript: ENSURE_RUNNING, args: ensure(30, false).args } }] : [],
              watchdog,
              events,
            };
          }
          return {
            // suspend first: the guest stops at a precise instant; the save then writes the paused guest
            cut: [step('suspend', 'suspend', '--', dom), step('save', 'save', ...cache, '--', dom, file)],
            restore: (started: number, completed: number) =>
              started === 0
                ? []
                : completed === 2
                  ? [
                      { ...step('restore', 'restore', '--running', ...cache, '--', file), instant: true },
                      { label: 'remove save file', cmd: { argv: ['rm', '-f', file] } },
                    ]
                  : // the suspend or the save failed half-way: resume, or restore from the file if the save did complete
                    [{ label: 'ensure running', cmd: { posixScript: ENSURE_RUNNING, args: ensure(30, true).args } }],
            watchdog,
            events,
          };
        },
      },
      ctx,
    );
  },
};
