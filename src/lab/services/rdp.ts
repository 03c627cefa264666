/**
 * RDP in the lab: Debian's xrdp + xrdp-sesman with an Xorg (xorgxrdp) session
 * backend, in the target namespace and its freezer cgroup.
 *
 *  - its own xrdp.ini / sesman.ini in the lab dir (nothing under /etc/xrdp is
 *    used but the keymaps and xorgxrdp's xorg.conf); `--nodaemon` writes no PID
 *    file, so several labs run side by side;
 *  - TLS only, with the lab's own self-signed certificate; its SHA-256
 *    fingerprint is recorded in the lab state so clients pin it;
 *  - one lab user per lab (`bordp-<lab>`, shell nologin, home in the lab dir)
 *    with a generated password in the lab's root-only secrets folder; removed
 *    again by `lab down`;
 *  - the desktop is one xterm showing a clock that changes 4× a second and the
 *    time its session started (the same after a reconnect: the same session);
 *    a second user (`bordps-<lab>`, same password) has a static desktop: a
 *    terminal that changes only when typed into (its own ~/startwm.sh);
 *  - X displays start at 100 + 5 × lab index, so labs never race for one;
 *  - disconnected sessions are kept (KillDisconnected=false), like a terminal
 *    server: a client that reconnects gets its desktop back.
 *
 * Sessions are per user and screen size (Policy=UBD): two clients with the
 * same user and size share one session and take it from each other.
 *
 * Idle, it costs two small daemons; the Xorg session starts at the first login.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run, runIn, pidAlive } from '../../transport/exec.ts';
import { sleep } from '../../core/clock.ts';
import { selfSignedCert, startInTarget, type LabService } from '../service.ts';
import type { Topology } from '../topology.ts';
import { waitForPort } from '../wait.ts';

export const RDP_PORT = 3389;
const SESMAN_PORT = 3350;
/** sessions a lab may hold at once (one per user and screen size) */
const MAX_SESSIONS = 5;
const XRDP_SOCKDIR = '/run/xrdp/sockdir';

export function rdpUser(labName: string): string {
  return `bordp-${labName}`;
}

/** the second lab user, whose desktop is static: a terminal that changes only when typed into */
export function rdpStaticUser(labName: string): string {
  return `bordps-${labName}`;
}

export function displayOffset(index: number): number {
  return 100 + index * MAX_SESSIONS;
}

/** The desktop: an xterm with a clock (tenths, 4 Hz) and the session's start time. */
function desktopScript(): string {
  // two short lines in a 3-line terminal: nothing wraps or scrolls, the clock line always changes
  const loop = [
    'started=$(date +%H:%M:%S); printf "\\033[?25l"',
    'while :; do',
    `  printf '\\033[H%s\\n\\033[2Ksession %s %s' "$(date +%H:%M:%S.%1N)" "$started" "\${DISPLAY%.0}"`,
    '  sleep 0.25',
    'done',
  ].join('\n');
  return [
    '#!/bin/sh',
    '# blackout lab desktop: something that changes every second, so a client can see frames arrive',
    `exec xterm -geometry 22x3+0+0 -bg white -fg black -fa 'DejaVu Sans Mono' -fs 34 -title 'blackout lab clock' +cm -e sh -c '${loop.replace(/'/g, `'\\''`)}'`,
    '',
  ].join('\n');
}

/**
 * The static desktop (the second user's): a terminal running `cat`, nothing else. It never
 * changes by itself (no clock, no blinking cursor); a typed character is echoed by the
 * terminal and a BackSpace erases it, as on a real terminal server's idle desktop.
 */
function staticDesktopScript(): string {
  return [
    '#!/bin/sh',
    '# blackout lab static desktop: a terminal that changes only when the user types',
    // larger than any client screen: with no window manager the keyboard goes to the window under the
    // pointer, so the terminal must be under it wherever the pointer is
    "exec xterm -geometry 120x50+0+0 -bg white -fg black -fa 'DejaVu Sans Mono' -fs 28 -title 'blackout lab terminal' +cm +bc -e cat",
    '',
  ].join('\n');
}

function xrdpIni(dir: string): string {
  return `; blackout lab: xrdp, TLS only, straight into the Xorg session (autologon with the client's credentials)
[Globals]
ini_version=1
fork=true
port=${RDP_PORT}
tcp_nodelay=true
tcp_keepalive=true
security_layer=tls
crypt_level=high
certificate=${dir}/cert.pem
key_file=${dir}/key.pem
ssl_protocols=TLSv1.2, TLSv1.3
autorun=Xorg
allow_channels=true
allow_multimon=false
bitmap_cache=true
bitmap_compression=true
bulk_compression=true
max_bpp=32
new_cursors=true
use_fastpath=both

[Logging]
LogFile=${dir}/xrdp.log
LogLevel=INFO
EnableSyslog=false

[Channels]
rdpdr=false
rdpsnd=false
drdynvc=true
cliprdr=true
rail=true
xrdpvr=true
tcutils=true

[Xorg]
name=Xorg
lib=libxup.so
username=ask
password=ask
ip=127.0.0.1
port=-1
code=20
`;
}

function sesmanIni(dir: string, offset: number): string {
  return `; blackout lab: xrdp-sesman, Xorg sessions kept across disconnects
[Globals]
ListenAddress=127.0.0.1
ListenPort=${SESMAN_PORT}
EnableUserWindowManager=true
UserWindowManager=startwm.sh
DefaultWindowManager=${dir}/desktop.sh
ReconnectScript=/etc/xrdp/reconnectwm.sh

[Security]
AllowRootLogin=false
MaxLoginRetry=4
AlwaysGroupCheck=false

[Sessions]
X11DisplayOffset=${offset}
MaxSessions=${MAX_SESSIONS}
KillDisconnected=false
DisconnectedTimeLimit=0
IdleTimeLimit=0
Policy=UBD

[Logging]
LogFile=${dir}/sesman.log
LogLevel=INFO
EnableSyslog=false

[Xorg]
param=/usr/lib/xorg/Xorg
param=-config
param=xrdp/xorg.conf
param=-noreset
param=-nolisten
param=tcp
param=-logfile
param=${dir}/xlogs/xorg.%s.log

[Chansrv]
FuseMountName=thinclient_drives

[SessionVariables]
`;
}

export const rdp: LabService = {
  name: 'rdp',
  packages: ['xrdp', 'xorgxrdp', 'xserver-xorg-core', 'xterm', 'fonts-dejavu-core', 'openssl'],
  async start(lab) {
    for (const bin of ['/usr/sbin/xrdp', '/usr/sbin/xrdp-sesman', '/usr/lib/xorg/Xorg', '/usr/bin/xterm']) {
      if (!existsSync(bin)) throw new Error(`rdp: ${bin} is missing: run \`npm run setup\` (installs xrdp, xorgxrdp, xterm)`);
    }
    const dir = `${lab.dir}/rdp`;
    const home = `${dir}/home`;
    const user = rdpUser(lab.name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(home, { recursive: true, mode: 0o755 });
    // what the package and an X server would create on a desktop machine (a clean CI machine may lack them)
    mkdirSync(XRDP_SOCKDIR, { recursive: true });
    chmodSync(XRDP_SOCKDIR, 0o3777);
    if (!existsSync('/tmp/.X11-unix')) mkdirSync('/tmp/.X11-unix', { mode: 0o1777 });
    chmodSync('/tmp/.X11-unix', 0o1777);

    // the lab users: a fresh password every `lab up`, kept only in the root-only secrets folder;
    // the second one (same password) gets the static desktop through its own startwm.sh
    const password = randomBytes(18).toString('base64url');
    const passwordFile = `${lab.dir}/secrets/rdp-password`;
    const staticUser = rdpStaticUser(lab.name);
    const staticHome = `${dir}/home-static`;
    mkdirSync(staticHome, { recursive: true, mode: 0o755 });
    mkdirSync(`${dir}/xlogs`, { mode: 0o1777 });
    chmodSync(`${dir}/xlogs`, 0o1777);
    writeFileSync(`${staticHome}/startwm.sh`, staticDesktopScript(), { mode: 0o755 });
    for (const [u, h] of [
      [user, home],
      [staticUser, staticHome],
    ] as const) {
      await removeUser(u);
      await run('useradd', ['--system', '--no-create-home', '--home-dir', h, '--shell', '/usr/sbin/nologin', '--comment', `blackout lab ${lab.name} rdp`, u]);
      await run('chpasswd', [], { input: `${u}:${password}\n` });
      const uid = Number((await run('id', ['-u', u])).stdout.trim());
      const gid = Number((await run('id', ['-g', u])).stdout.trim());
      chownSync(h, uid, gid);
    }
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });

    // TLS: the lab's own certificate, pinned by its fingerprint
    const certFingerprint = await selfSignedCert(dir, `blackout-lab-${lab.name}`, lab.targetAddress);

    writeFileSync(`${dir}/desktop.sh`, desktopScript(), { mode: 0o755 });
    writeFileSync(`${dir}/xrdp.ini`, xrdpIni(dir));
    const offset = displayOffset(lab.index);
    writeFileSync(`${dir}/sesman.ini`, sesmanIni(dir, offset));
    clearStaleDisplays(offset);

    startInTarget(lab, 'xrdp-sesman', '/usr/sbin/xrdp-sesman', ['--nodaemon', '--config', `${dir}/sesman.ini`]);
    startInTarget(lab, 'xrdp', '/usr/sbin/xrdp', ['--nodaemon', '--config', `${dir}/xrdp.ini`]);
    await waitForPort(lab.targetAddress, RDP_PORT, 15_000);
    await waitForSesman(lab);
    return {
      port: RDP_PORT,
      user,
      passwordFile,
      certFingerprint,
      certFile: `${dir}/cert.pem`,
      security: 'tls',
      desktop: 'xterm clock, 4 updates a second',
      /** a second user (same password) whose desktop is static: a terminal that changes only when typed into */
      staticUser,
      displays: `:${offset}–:${offset + MAX_SESSIONS - 1}`,
    };
  },
  async stop(name, lab) {
    const removed: string[] = [];
    for (const u of [rdpUser(name), rdpStaticUser(name)]) if (await removeUser(u)) removed.push(`user ${u}`);
    if (lab) clearStaleDisplays(displayOffset(lab.index));
    return removed;
  },
};

async function waitForSesman(lab: Topology): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = await runIn(lab.targetNs, 'ss', ['-Hltn', `sport = :${SESMAN_PORT}`], { allowFail: true });
    if (r.stdout.trim()) return;
    await sleep(100);
  }
  throw new Error(`rdp: xrdp-sesman did not listen on 127.0.0.1:${SESMAN_PORT} within 10 s (see ${lab.dir}/xrdp-sesman.log)`);
}

async function removeUser(user: string): Promise<boolean> {
  const exists = await run('id', ['-u', user], { allowFail: true });
  if (exists.code !== 0) return false;
  await run('userdel', [user], { allowFail: true });
  return true;
}

/**
 * A killed Xorg leaves its lock file and sockets behind, and sesman skips a
 * display whose socket exists: remove those of the lab's display range whose
 * owner is gone.
 */
function clearStaleDisplays(offset: number): void {
  for (let d = offset; d < offset + MAX_SESSIONS; d++) {
    const lock = `/tmp/.X${d}-lock`;
    if (existsSync(lock)) {
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) continue;
    }
    for (const f of [
      lock,
      `/tmp/.X11-unix/X${d}`,
      `${XRDP_SOCKDIR}/xrdp_display_${d}`,
      `${XRDP_SOCKDIR}/xrdpapi_${d}`,
      `${XRDP_SOCKDIR}/xrdp_chansrv_socket_${d}`,
      `${XRDP_SOCKDIR}/xrdp_chansrv_audio_in_socket_${d}`,
      `${XRDP_SOCKDIR}/xrdp_chansrv_audio_out_socket_${d}`,
    ]) {
      rmSync(f, { force: true });
    }
  }
}
