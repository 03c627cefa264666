/**
 * rdp: a real RDP session, the way a terminal-server user has one. FreeRDP's
 * xfreerdp logs in (TLS, the server certificate pinned by its fingerprint) and
 * keeps the session open on its own virtual screen (an Xvfb per probe). Every
 * interval the probe reads that screen straight from Xvfb's framebuffer file:
 * a changed, non-empty screen is a fresh frame, i.e. one good sample. The
 * desktop must change on its own (the lab's shows a clock, 4 updates a second)
 * — or, in active mode (`input`), the probe types or clicks through the
 * session (xdotool on its own screen, so FreeRDP sends it as a user's input)
 * and measures the time until the screen answers: a static desktop, as on
 * a real terminal server, can be probed too.
 *
 * What it records, from the client's own point of view:
 *  - samples: fresh frames; a freeze is simply a gap in them;
 *  - probe-notes when frames stop and resume, and for each FreeRDP
 *    auto-reconnect attempt ("Attempting reconnect (2 of 5)");
 *  - session-lost on FreeRDP's "Network disconnect!" (or when xfreerdp exits),
 *    with FreeRDP's own error lines; session-open {reconnect: true} when frames
 *    flow again after an auto-reconnect; a fatal probe-error when the client
 *    gives up (its exit code spelled out);
 *  - screenshots (PNG): the desktop when the session opened, the last fresh
 *    frame before the first failure (plus the screen at that moment when it
 *    differs), and the desktop after recovery; at close, the client's log.
 *
 * The policy is FreeRDP's own, made explicit: auto-reconnect on/off and its
 * retries, `/timeout` (FreeRDP 2 uses it as TCP_USER_TIMEOUT and as the
 * activation timeout), its fixed TCP keepalive (5 s idle, 2 s interval) and
 * connect timeout (15 s). A passive viewer sends nothing during a blackout, so
 * its connection is dropped by the keepalive after about max(7 s, timeout
 * rounded up to 5 + 2k s) of silence.
 *
 * Two rdp probes with the same user and screen size share one xrdp session
 * (the lab's sesman policy is UBD: user, colour depth, size) and take it from each other: give them different
 * sizes or users.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { sleep } from '../core/clock.ts';
import { pidAlive } from '../transport/exec.ts';
import { passwordRef, readSecret, scrub } from '../core/secrets.ts';
import { duration, probeBase, secretRef } from '../core/schema-util.ts';
import { request, sessionFacts, userTimeout } from './shared/facts.ts';
import type { RdpAccess } from '../core/target.ts';
import type { ProbeContext, ProbeDefinition } from '../core/probe.ts';
import { isBlank, parseXwdHeader, pixels, type XwdLayout, xwdToPng } from './shared/xwd-frame.ts';
import { childEnv } from '../transport/child-env.ts';
import { exitMeaning, expectedDropAfterMs, FINGERPRINT, FREERDP_DEFAULTS, normaliseFingerprint, parseFreerdpLine } from './shared/freerdp.ts';
import { inputStepSchema, xdotoolArgs, type InputStep } from './shared/rdp-input.ts';

export { exitMeaning, expectedDropAfterMs, normaliseFingerprint, parseFreerdpLine, xdotoolArgs };

const schema = z.strictObject({
  ...probeBase('rdp', { interval: 250, tolerance: 1000 }),
  /** defaults: the target's address and its rdp service (the lab records user, password file and fingerprint) */
  host: z
    .string()
    .regex(/^[A-Za-z0-9._:[\]-]{1,253}$/, 'expected a host name or an IP address')
    .optional()
    .describe("the RDP server (default: the target's address and its rdp service, which also gives user, password and fingerprint)"),
  port: z.number().int().min(1).max(65535).optional().describe("the port (default: the target's rdp service, else 3389)"),
  user: z
    .string()
    .regex(/^[^\s\x00-\x1f/\\:]{1,256}$/, 'expected a user name (DOMAIN\\user is not supported; no spaces)')
    .optional()
    .describe('the user to log in as (DOMAIN\\user is not supported)'),
  ...secretRef,
  certFingerprint: z
    .string()
    .regex(FINGERPRINT, 'expected "sha256:" and 32 hex bytes (AB:CD:… or 64 hex digits)')
    .optional()
    .describe('the server certificate\'s SHA-256 fingerprint, "sha256:AB:CD:…" (64 hex digits); never connects unverified'),
  security: z.enum(['tls', 'nla', 'rdp']).default('tls').describe('the RDP security protocol FreeRDP negotiates: tls, nla or rdp'),
  size: z
    .string()
    .regex(/^\d{3,4}x\d{3,4}$/, 'expected WIDTHxHEIGHT, e.g. 800x600')
    .default('800x600')
    .describe("the client's screen, WIDTHxHEIGHT"),
  autoReconnect: z.boolean().default(false).describe('FreeRDP +auto-reconnect: after a network disconnect it reconnects to the same session by itself'),
  maxRetries: z.number().int().min(0).max(1000).default(20).describe('FreeRDP /auto-reconnect-max-retries (0: unlimited)'),
  timeout: duration({ min: 100, max: 600_000 }).optional().describe('FreeRDP /timeout: TCP_USER_TIMEOUT and activation timeout (FreeRDP 2 default 9 s)'),
  loginTimeout: duration({ min: 1000, max: 120_000 }).default(20_000).describe('how long opening may take: login until the desktop is seen changing (or, active, answering input)'),
  input: z
    .array(inputStepSchema)
    .min(1)
    .max(20)
    .optional()
    .describe(
      'active mode, for a desktop that does not change by itself: one input step through the session every interval (in turn), and the time until the screen changes is the sample. Each step must change the screen: e.g. [{ key: a }, { key: BackSpace }] in a terminal, or [{ click: [20, 10] }, { key: Escape }] to open and close a menu.',
    ),
});
export type RdpConfig = z.infer<typeof schema>;

export const rdp: ProbeDefinition<RdpConfig> = {
  kind: 'rdp',
  summary: 'a real RDP session (FreeRDP under Xvfb) watching the desktop for fresh frames; FreeRDP auto-reconnect on or off',
  packages: ['freerdp2-x11', 'xvfb', 'xdotool'],
  schema,
  facts: (c) => {
    const ack = c.timeout ?? FREERDP_DEFAULTS.tcpAckTimeoutMs;
    // FreeRDP applies its ack timeout as TCP_USER_TIMEOUT; its fixed keepalive timer closes the session at the first firing past it
    return sessionFacts(
      [...userTimeout(ack, c.timeout ? 'FreeRDP /tcp-ack-timeout' : "FreeRDP's default /tcp-ack-timeout"), ...request(expectedDropAfterMs(ack), 'FreeRDP keepalive drop after silence')],
      [`connect timeout ${FREERDP_DEFAULTS.connectTimeoutMs} ms (FreeRDP default): applies to opening a session only`],
      c.autoReconnect,
    );
  },
  policy: (c) => {
    const ack = c.timeout ?? FREERDP_DEFAULTS.tcpAckTimeoutMs;
    if (c.input) {
      // input leaves data unacknowledged during a blackout: the ack timeout (TCP_USER_TIMEOUT) ends
      // the connection, not the keepalive of an idle one
      return {
        client: 'FreeRDP 2 xfreerdp under Xvfb (an active user: input through the session, xdotool)',
        input: c.input.map((st) => ('key' in st ? `key ${st.key}` : `click ${st.click.join(',')}`)).join(', '),
        security: c.security,
        certificate: c.certFingerprint ? 'pinned (suite fingerprint)' : 'pinned (target fingerprint)',
        reconnect: c.autoReconnect ? 'auto-reconnect' : 'none',
        autoReconnect: c.autoReconnect,
        ...(c.autoReconnect ? { maxRetries: c.maxRetries === 0 ? 'unlimited' : c.maxRetries } : {}),
        tcpAckTimeoutMs: ack,
        connectTimeoutMs: `${FREERDP_DEFAULTS.connectTimeoutMs} (FreeRDP default)`,
        answerCheck: `one input step every ${c.interval} ms; no screen change for ${c.interval + c.tolerance} ms is a stall`,
        size: c.size,
      };
    }
    return {
      client: 'FreeRDP 2 xfreerdp under Xvfb (a passive viewer: sends no input)',
      security: c.security,
      certificate: c.certFingerprint ? 'pinned (suite fingerprint)' : 'pinned (target fingerprint)',
      reconnect: c.autoReconnect ? 'auto-reconnect' : 'none',
      autoReconnect: c.autoReconnect,
      ...(c.autoReconnect ? { maxRetries: c.maxRetries === 0 ? 'unlimited' : c.maxRetries } : {}),
      tcpAckTimeoutMs: c.timeout ?? `${FREERDP_DEFAULTS.tcpAckTimeoutMs} (FreeRDP default)`,
      keepalive: `${FREERDP_DEFAULTS.keepaliveIdleMs / 1000} s idle, ${FREERDP_DEFAULTS.keepaliveIntervalMs / 1000} s interval (FreeRDP default)`,
      dropsAfterSilenceMs: expectedDropAfterMs(ack),
      connectTimeoutMs: `${FREERDP_DEFAULTS.connectTimeoutMs} (FreeRDP default)`,
      frameCheck: `every ${c.interval} ms; no fresh frame for ${c.interval + c.tolerance} ms is a stall`,
      size: c.size,
    };
  },
  create: (config, ctx) => new RdpProbe(config, ctx),
};

type Phase = 'connecting' | 'up' | 'lost' | 'reconnecting' | 'exited';

interface Access {
  host: string;
  port: number;
  user: string;
  password: string;
  fingerprint: string;
}

function resolveAccess(config: RdpConfig, ctx: ProbeContext): Access {
  const svc = ctx.target.services.rdp as RdpAccess | undefined;
  const host = config.host ?? svc?.host ?? ctx.target.address;
  const port = config.port ?? svc?.port ?? 3389;
  const user = config.user ?? svc?.user;
  if (!user) throw new Error('no user: set `user` (and passwordEnv or passwordFile) on the probe, or use a target with an rdp service');
  // the probe's own reference, else the target's rdp service's
  const ref = config.passwordEnv || config.passwordFile ? passwordRef(config) : passwordRef(svc ?? {});
  if (!ref.env && !ref.file) throw new Error('no password: set passwordEnv or passwordFile');
  const password = readSecret(ref, 'rdp password');
  const fp = config.certFingerprint ?? svc?.certFingerprint;
  if (!fp) throw new Error('no certificate fingerprint to pin: set certFingerprint ("sha256:AB:CD:…"); the probe never connects unverified');
  if (!FINGERPRINT.test(fp)) throw new Error(`certificate fingerprint ${JSON.stringify(fp)}: expected "sha256:" and 32 hex bytes`);
  return { host, port, user, password, fingerprint: normaliseFingerprint(fp) };
}

class RdpProbe {
  private readonly dir: string;
  private readonly width: number;
  private readonly height: number;
  private xvfb: ChildProcess | null = null;
  private client: ChildProcess | null = null;
  private fb: FileHandle | null = null;
  private layout: XwdLayout | null = null;
  /** the last fresh frame, and the buffer the next read goes to (swapped when a read is fresh) */
  private fresh: Buffer | null = null;
  private scratch: Buffer | null = null;
  private lastReadFresh = false;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private phase: Phase = 'connecting';
  private seq = 0;
  private lastFreshAt = 0;
  private stalledSince: number | null = null;
  /** fresh frames seen since connecting / reconnecting started */
  private pendingFrames: number[] = [];
  private attempt = 0;
  private maxAttempts = 0;
  private failureShot = false;
  private recoveredShot = false;
  private afterFailureFrames = 0;
  private log: string[] = [];
  private problems: string[] = [];
  private closing = false;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private secrets: string[] = [];
  private pinned = '';
  private opened: { resolve: () => void; reject: (e: Error) => void } | null = null;

  constructor(
    private readonly config: RdpConfig,
    private readonly ctx: ProbeContext,
  ) {
    const [w, h] = config.size.split('x').map(Number) as [number, number];
    this.width = w;
    this.height = h;
    this.dir = mkdtempSync(join(tmpdir(), 'blackout-rdp-'));
  }

  async open(): Promise<void> {
    const access = resolveAccess(this.config, this.ctx);
    this.secrets = [access.password];
    this.pinned = access.fingerprint;
    await this.startXvfb();
    const done = new Promise<void>((resolve, reject) => (this.opened = { resolve, reject }));
    this.startClient(access);
    if (this.config.input) this.activeRun = this.activeLoop(this.config.input).catch((e: Error) => this.problems.push(`input: ${e.message}`));
    else this.schedule();
    const timer = setTimeout(() => this.failOpen(this.loginTimeoutMessage()), this.config.loginTimeout);
    try {
      await done;
    } catch (e) {
      await this.stopProcesses();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- processes ----

  private async startXvfb(): Promise<void> {
    const fbdir = join(this.dir, 'fb');
    mkdirSync(fbdir);
    // Xvfb picks a free display itself and tells it on fd 3; PDEATHSIG: it dies with the harness
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'Xvfb', '-displayfd', '3', '-screen', '0', `${this.width}x${this.height}x24`, '-fbdir', fbdir, '-nolisten', 'tcp', '-noreset'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: childEnv(),
    });
    this.xvfb = child;
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const display = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`Xvfb did not start within 10 s: ${err.trim().split('\n').slice(-3).join('; ')}`)), 10_000);
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(Number(out.trim()));
        }
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot start Xvfb (package xvfb): ${e.message}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Xvfb exited (${code}): ${err.trim().split('\n').slice(-3).join('; ')}`));
      });
    });
    this.display = display;
    this.fb = await openFile(join(fbdir, 'Xvfb_screen0'), 'r');
    const whole = Buffer.alloc((await this.fb.stat()).size);
    await this.fb.read(whole, 0, whole.length, 0);
    this.layout = parseXwdHeader(whole);
    this.fresh = Buffer.alloc(whole.length);
    this.scratch = whole;
  }
  private display = -1;

  private startClient(a: Access): void {
    const args = [
      `/v:${a.host}:${a.port}`,
      `/u:${a.user}`,
      '/from-stdin:force',
      `/sec:${this.config.security}`,
      `/cert:fingerprint:${a.fingerprint},deny`,
      `/size:${this.config.size}`,
      `/t:blackout ${this.ctx.name}`,
      '/log-level:INFO',
      this.config.autoReconnect ? '+auto-reconnect' : '-auto-reconnect',
      ...(this.config.autoReconnect ? [`/auto-reconnect-max-retries:${this.config.maxRetries}`] : []),
      ...(this.config.timeout !== undefined ? [`/timeout:${Math.round(this.config.timeout)}`] : []),
    ];
    const home = join(this.dir, 'home');
    mkdirSync(home);
    // stdbuf: FreeRDP's log goes through stdio, block-buffered into a pipe otherwise
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'stdbuf', '-oL', '-eL', 'xfreerdp', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: childEnv({ DISPLAY: `:${this.display}`, HOME: home, XAUTHORITY: '' }),
    });
    this.client = child;
    // the password goes in on stdin, never on the command line
    child.stdin!.on('error', () => {});
    child.stdin!.end(`${a.password}\n`);
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.on('data', (d: Buffer) => {
        partial += d.toString();
        let nl: number;
        while ((nl = partial.indexOf('\n')) >= 0) {
          this.onLine(partial.slice(0, nl));
          partial = partial.slice(nl + 1);
        }
        if (partial.length > 10_000) partial = '';
      });
    }
    child.once('error', (e) => this.onExit(null, null, `cannot start xfreerdp (package freerdp2-x11): ${e.message}`));
    child.once('exit', (code, signal) => this.onExit(code, signal));
  }

  private async stopProcesses(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const child of [this.client, this.xvfb]) {
      if (!child?.pid || child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      const deadline = Date.now() + 3000;
      while (pidAlive(child.pid) && child.exitCode === null && child.signalCode === null && Date.now() < deadline) await sleep(50);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await this.fb?.close().catch(() => {});
    this.fb = null;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.race([this.activeRun, sleep(2000)]);
    // the trial may end before three fresh frames followed the failure (a loaded machine paints
    // slowly; a fresh-clone run lost the shot so): the last fresh frame still shows the recovery
    if (this.failureShot && !this.recoveredShot && this.afterFailureFrames > 0) {
      this.recoveredShot = true;
      this.shot('after-recovery.png', this.fresh);
    }
    await this.stopProcesses();
    const log = this.log.filter((l) => !/Caught signal|libwinpr|libfreerdp|libc\.so|xfreerdp\(|^\s*$/.test(l));
    if (log.length) this.ctx.attach('freerdp.log', scrub(log.join('\n') + '\n', this.secrets), 'text/plain');
    this.ctx.emit({
      type: 'probe-note',
      message: `closed: ${this.seq} fresh frames, ${this.attempt} auto-reconnect attempt(s)`,
      data: { frames: this.seq, reconnectAttempts: this.attempt, ...(this.exit ? { exit: exitMeaning(this.exit.code, this.exit.signal) } : {}) },
    });
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- what the client says ----

  private onLine(raw: string): void {
    const line = scrub(raw, this.secrets);
    if (this.log.length < 2000) this.log.push(line);
    if (this.closing || this.ctx.signal.aborted) return;
    const l = parseFreerdpLine(line);
    if (!l) return;
    if (l.level === 'ERROR' || l.level === 'WARN' || /^ERRINFO_/.test(l.message)) {
      if (!/Caught signal|^\d+: /.test(l.message)) {
        this.problems.push(l.message);
        if (this.problems.length > 8) this.problems.shift();
      }
    }
    if (l.message === 'Network disconnect!') this.onDisconnect();
    const attempt = /^Attempting reconnect \((\d+) of (\d+)\)/.exec(l.message);
    if (attempt) {
      this.attempt = Number(attempt[1]);
      this.maxAttempts = Number(attempt[2]);
      if (this.phase === 'lost' || this.phase === 'reconnecting' || this.phase === 'up') this.phase = 'reconnecting';
      this.pendingFrames = [];
      this.ctx.emit({ type: 'probe-note', message: `FreeRDP: ${l.message}`, data: { attempt: this.attempt, maxRetries: this.maxAttempts } });
    }
  }

  private clientWords(): string {
    const useful = this.problems.filter((p) => !/^Network disconnect!$/.test(p));
    return useful.length ? useful.slice(-3).join('; ') : 'no error text';
  }

  private onDisconnect(): void {
    if (this.phase === 'connecting') return; // the open fails through the exit
    if (this.phase === 'up') {
      this.failureShots('disconnect');
      this.phase = 'lost';
      this.stalledSince = null;
      this.ctx.emit({ type: 'session-lost', message: `FreeRDP: Network disconnect! (${this.clientWords()})` });
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    if (this.exit) return;
    this.exit = { code, signal };
    const before = this.phase;
    this.phase = 'exited';
    if (this.closing || this.ctx.signal.aborted) return;
    const how = spawnError ?? `xfreerdp ${exitMeaning(code, signal)}`;
    if (before === 'connecting') {
      this.failOpen(this.openFailureMessage(how));
      return;
    }
    if (before === 'up') {
      this.failureShots('exit');
      this.ctx.emit({ type: 'session-lost', message: `${how}: ${this.clientWords()}` });
    }
    const gaveUp = this.config.autoReconnect && this.attempt > 0 ? `auto-reconnect gave up after ${this.attempt} attempt(s); ` : '';
    this.ctx.emit({ type: 'probe-error', message: `${gaveUp}${how}: the RDP window closed (${this.clientWords()})`, fatal: true });
  }

  private openFailureMessage(how: string): string {
    const words = this.clientWords();
    if (/certificate|fingerprint/i.test(words) || (this.exit?.code === 143 && /TLS/.test(words))) {
      const fp = this.pinned;
      const short = `${fp.slice(0, 'sha256:'.length + 11)}…${fp.slice(-5)}`;
      const certWords =
        this.problems
          .filter((p) => /certificate|fingerprint/i.test(p))
          .slice(-2)
          .join('; ') || words;
      return `RDP server certificate rejected: it does not match the pinned fingerprint ${short} (xfreerdp ${how.replace(/^xfreerdp /, '')}; FreeRDP: ${certWords})`;
    }
    return `RDP login failed: ${how} (FreeRDP: ${words})`;
  }

  private loginTimeoutMessage(): string {
    if (this.config.input) {
      return (
        `the desktop did not answer input within ${this.config.loginTimeout} ms of connecting (${this.inputSent} input step(s) sent, none changed the screen): ` +
        `the login failed or the input does not reach anything visible (FreeRDP: ${this.clientWords()})`
      );
    }
    const seen = this.pendingFrames.length;
    return `no changing desktop within ${this.config.loginTimeout} ms of connecting (${seen} fresh frame(s) seen): ` + `the login failed or the desktop is static (FreeRDP: ${this.clientWords()})`;
  }

  private failOpen(message: string): void {
    if (!this.opened) return;
    const o = this.opened;
    this.opened = null;
    this.phase = 'exited';
    this.shot('login-failed.png', this.latest());
    o.reject(new Error(message));
  }

  // ---- what the screen shows ----

  private schedule(): void {
    if (this.closing || this.ctx.signal.aborted) return;
    this.timer = setTimeout(() => void this.poll(), this.config.interval);
  }

  /** the screen as last read */
  private latest(): Buffer | null {
    return this.lastReadFresh ? this.fresh : this.scratch;
  }

  private async poll(): Promise<void> {
    if (this.polling || !this.fb || !this.fresh || !this.scratch || !this.layout) return this.schedule();
    this.polling = true;
    try {
      const next = this.scratch;
      await this.fb.read(next, 0, next.length, 0);
      const now = this.ctx.clock.now();
      const changed = !pixels(next, this.layout).equals(pixels(this.fresh, this.layout));
      this.lastReadFresh = changed && !isBlank(next, this.layout);
      if (this.lastReadFresh) {
        this.scratch = this.fresh;
        this.fresh = next;
        this.onFrame(now);
      } else {
        this.onNoFrame(now);
      }
    } catch (e) {
      if (!this.closing && !this.ctx.signal.aborted) this.problems.push(`reading the screen: ${(e as Error).message}`);
    } finally {
      this.polling = false;
      this.schedule();
    }
  }

  private onFrame(t: number): void {
    if (this.closing || this.ctx.signal.aborted) return;
    switch (this.phase) {
      case 'connecting':
      case 'reconnecting': {
        // a session counts as open when its desktop is seen changing by itself: fresh frames with no
        // gap over interval + tolerance for 2 × that long (at least 2 s). A login screen, an error
        // dialog, or a static desktop drawing itself as the session starts changes in a burst, then
        // stays still; a pause starts the count again, so such a burst never opens the session
        const limit = this.config.interval + this.config.tolerance;
        const last = this.pendingFrames.at(-1);
        if (this.phase === 'connecting' && last !== undefined && t - last > limit) this.pendingFrames = [];
        this.pendingFrames.push(t);
        const need = this.phase === 'connecting' ? 3 : 2;
        const span = this.phase === 'connecting' ? Math.max(2000, 2 * limit) : 0;
        if (this.pendingFrames.length < need || t - this.pendingFrames[0]! < span) return;
        const reconnect = this.phase === 'reconnecting';
        this.phase = 'up';
        this.stalledSince = null;
        this.pendingFrames = [];
        this.lastFreshAt = t;
        if (reconnect) {
          // at the frame that proved it, the instant of the sample below (see onAnswer)
          this.ctx.emit({ t, type: 'session-open', reconnect: true, message: `FreeRDP auto-reconnect attempt ${this.attempt} of ${this.maxAttempts} brought the session back` });
        } else {
          this.ctx.emit({ type: 'session-open', reconnect: false, message: `logged in as the target's user; desktop frames flowing (display :${this.display})` });
          this.shot('session-open.png', this.fresh);
        }
        this.sample(t);
        if (this.opened) {
          const o = this.opened;
          this.opened = null;
          o.resolve();
        }
        return;
      }
      case 'up': {
        if (this.stalledSince !== null) {
          this.ctx.emit({ type: 'probe-note', message: `frames resumed after ${Math.round(t - this.lastFreshAt)} ms (same session)` });
          this.stalledSince = null;
        }
        this.sample(t);
        return;
      }
      default:
        return; // lost (waiting for the client to reconnect or quit), exited: not the session's frames
    }
  }

  private sample(t: number, latencyMs?: number): void {
    const gap = this.lastFreshAt ? t - this.lastFreshAt : 0;
    this.lastFreshAt = t;
    this.ctx.emit({ type: 'sample', t, seq: ++this.seq, value: Math.round(gap), ...(latencyMs !== undefined ? { latencyMs: Math.round(latencyMs) } : {}) });
    if (this.failureShot && !this.recoveredShot && ++this.afterFailureFrames >= 3) {
      this.recoveredShot = true;
      this.shot('after-recovery.png', this.fresh);
    }
  }

  private onNoFrame(t: number): void {
    if (this.phase !== 'up' || this.stalledSince !== null) return;
    const limit = this.config.interval + this.config.tolerance;
    if (t - this.lastFreshAt > limit) {
      this.stalledSince = this.lastFreshAt;
      this.ctx.emit({ type: 'probe-note', message: `frames stopped: no fresh frame for ${Math.round(t - this.lastFreshAt)} ms; the screen shows the last one` });
      this.failureShots('stall');
    }
  }

  /** at the first failure: the last fresh frame, and the screen now when it shows something else */
  private failureShots(why: 'stall' | 'disconnect' | 'exit'): void {
    if (this.failureShot || !this.fresh || !this.layout) return;
    this.failureShot = true;
    this.afterFailureFrames = 0;
    const lastFresh = this.fresh;
    this.shot('before-failure.png', lastFresh);
    const now = this.latest()!;
    if (why !== 'stall' && !pixels(now, this.layout).equals(pixels(lastFresh, this.layout)) && !isBlank(now, this.layout)) {
      this.shot('at-failure.png', now);
    }
  }

  private shot(name: string, buf: Buffer | null): void {
    if (!buf || !this.layout || isBlank(buf, this.layout)) return;
    try {
      this.ctx.attach(name, xwdToPng(buf, this.layout), 'image/png');
    } catch (e) {
      this.problems.push(`screenshot ${name}: ${(e as Error).message}`);
    }
  }

  // ---- active mode: input through the session, the screen's answer ----

  private activeRun: Promise<unknown> = Promise.resolve();
  private inputSent = 0;

  /** the phase as FreeRDP's log has moved it meanwhile (a method, so no narrowing holds across awaits) */
  private phaseNow(): Phase {
    return this.phase;
  }

  private alive(): boolean {
    return !this.closing && !this.ctx.signal.aborted && this.phase !== 'exited';
  }

  /** reads the screen into the scratch buffer (the one the shots call "latest") */
  private async readScreen(): Promise<Buffer> {
    const buf = this.scratch!;
    await this.fb!.read(buf, 0, buf.length, 0);
    this.lastReadFresh = false;
    return buf;
  }

  private xdo(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('xdotool', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DISPLAY: `:${this.display}`, HOME: join(this.dir, 'home') } });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.once('error', (e) => reject(new Error(`cannot run xdotool (package xdotool): ${e.message}`)));
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`xdotool ${args.join(' ')}: exit ${code} ${err.trim()}`))));
    });
  }

  /** waits until the desktop is drawn (not blank) and still for `quietMs`; false when the phase moved on */
  private async quietDesktop(quietMs: number, stillIn: () => boolean): Promise<boolean> {
    const layout = this.layout!;
    let last: Buffer | null = null;
    let since = this.ctx.clock.now();
    while (this.alive() && stillIn()) {
      const cur = await this.readScreen();
      const now = this.ctx.clock.now();
      if (isBlank(cur, layout)) {
        last = null;
      } else if (!last || !pixels(cur, layout).equals(pixels(last, layout))) {
        last = Buffer.from(cur);
        since = now;
      } else if (now - since >= quietMs) {
        return true;
      }
      await sleep(50);
    }
    return false;
  }

  /**
   * One input step every interval, one outstanding at a time (like a person who waits to see
   * the character before typing on): the screen's change after it is the sample, its delay the
   * latency. A step the session does not answer is waited for (a stall) until the client loses
   * the session; FreeRDP's auto-reconnect, when on, brings it back.
   */
  private async activeLoop(steps: InputStep[]): Promise<void> {
    const layout = this.layout!;
    const { interval, tolerance } = this.config;
    let k = 0;
    let provenBy = 0;
    let next = this.ctx.clock.now();
    while (this.alive()) {
      if (this.phaseNow() === 'lost') {
        await sleep(100);
        continue;
      }
      if ((this.phaseNow() === 'connecting' || this.phaseNow() === 'reconnecting') && provenBy === 0) {
        // the desktop drawn and still for a second (a session that is still starting draws on)
        const phase = this.phaseNow();
        if (!(await this.quietDesktop(1000, () => this.phaseNow() === phase))) continue;
      }
      const wait = next - this.ctx.clock.now();
      if (wait > 0) await sleep(wait);
      if (!this.alive() || this.phaseNow() === 'lost') continue;
      const step = steps[k % steps.length]!;
      const { before, send } = xdotoolArgs(step);
      if (before) {
        await this.xdo(before);
        await sleep(150); // the pointer is drawn locally: let that settle before the baseline
      }
      const base = Buffer.from(await this.readScreen());
      const phaseAtSend = this.phaseNow();
      const sentAt = this.ctx.clock.now();
      await this.xdo(send);
      this.inputSent++;
      let answeredAt: number | null = null;
      let stalled = false;
      // while the session is still being proven, an unanswered step is given up after a while: a key
      // typed before the desktop was there is lost, and the step after it (a BackSpace) has nothing to change
      const proving = phaseAtSend === 'connecting' || phaseAtSend === 'reconnecting';
      const giveUpAt = sentAt + Math.max(3000, 4 * interval);
      while (this.alive()) {
        await sleep(40);
        if (this.phaseNow() === 'lost' || this.phaseNow() !== phaseAtSend) break;
        if (proving && this.ctx.clock.now() > giveUpAt) {
          k++;
          break;
        }
        const cur = await this.readScreen();
        const t = this.ctx.clock.now();
        if (!isBlank(cur, layout) && !pixels(cur, layout).equals(pixels(base, layout))) {
          answeredAt = t;
          break;
        }
        if (this.phaseNow() === 'up' && !stalled && t - sentAt > interval + tolerance) {
          stalled = true;
          this.stalledSince = this.lastFreshAt;
          this.ctx.emit({ type: 'probe-note', message: `no answer to input: the screen has not changed for ${Math.round(t - sentAt)} ms after ${'key' in step ? `key ${step.key}` : 'a click'}` });
          this.failureShots('stall');
        }
      }
      if (answeredAt === null) {
        provenBy = 0;
        continue;
      }
      k++;
      // the answered screen: what the shots show as the last good one
      this.fresh!.set(this.scratch!);
      if (this.phaseNow() === 'connecting' || this.phaseNow() === 'reconnecting') {
        // two steps in a row answered before the session counts as open: one change could be the
        // desktop still appearing, not an answer
        if (++provenBy < 2) {
          next = Math.max(sentAt + interval, this.ctx.clock.now());
          continue;
        }
      }
      provenBy = 0;
      this.onAnswer(answeredAt, answeredAt - sentAt, stalled);
      next = Math.max(sentAt + interval, this.ctx.clock.now());
    }
  }

  private onAnswer(t: number, latencyMs: number, afterStall: boolean): void {
    if (this.closing || this.ctx.signal.aborted) return;
    if (this.phase === 'connecting' || this.phase === 'reconnecting') {
      const reconnect = this.phase === 'reconnecting';
      this.phase = 'up';
      this.stalledSince = null;
      this.lastFreshAt = t;
      if (reconnect) {
        // at the answer that proved it, the instant of the sample below: stamped "now" instead, the reopen came after
        // its own proof, and a trial that ended before the next answer (under load) read as a reconnect with no good
        // sample after it (failed)
        this.ctx.emit({ t, type: 'session-open', reconnect: true, message: `FreeRDP auto-reconnect attempt ${this.attempt} of ${this.maxAttempts} brought the session back; it answers input again` });
      } else {
        this.ctx.emit({ type: 'session-open', reconnect: false, message: `logged in as the target's user; the desktop answers input (display :${this.display})` });
        this.shot('session-open.png', this.fresh);
      }
      this.sample(t, latencyMs);
      if (this.opened) {
        const o = this.opened;
        this.opened = null;
        o.resolve();
      }
      return;
    }
    if (this.phase !== 'up') return;
    if (afterStall) {
      this.ctx.emit({ type: 'probe-note', message: `the screen answered input after ${Math.round(latencyMs)} ms (same session)` });
      this.stalledSince = null;
    }
    this.sample(t, latencyMs);
  }
}
