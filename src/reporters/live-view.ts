/**
 * The live terminal view, fed from the event stream like every reporter.
 * On a TTY: a block redrawn 4× a second with each probe's session state and,
 * while the cable is out, a countdown. Elsewhere (CI, pipes): one line per
 * notable event. After each trial: the per-probe outcomes.
 */
import { pc } from '../core/color.ts';
import { AnalysisBuilder } from '../analysis/analysis.ts';
import type { BlackoutEvent, EventOf } from '../core/events.ts';
import { formatMs, outcomeColour, sessionStateText } from '../core/format.ts';
import { LiveState } from '../core/live-state.ts';

export class LiveView {
  private runStart: EventOf<'run-start'> | null = null;
  /** the current trial, folded as its events come (at a 1 ms probe interval a trial has tens of thousands: none is kept) */
  private trialFold: AnalysisBuilder | null = null;
  private readonly live = new LiveState();
  private trial: EventOf<'trial-start'> | null = null;
  private cut: EventOf<'cut'> | null = null;
  private phase = '';
  private timer: NodeJS.Timeout | null = null;
  private drawn = 0;
  private readonly tty: boolean;

  constructor(
    private readonly now: () => number,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly totalTrials = 0,
  ) {
    this.tty = Boolean(out.isTTY) && process.env.CI !== 'true';
  }

  private print(line: string): void {
    this.clear();
    this.out.write(line + '\n');
    this.draw();
  }

  private clear(): void {
    if (this.tty && this.drawn) {
      this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
      this.drawn = 0;
    }
  }

  private draw(): void {
    if (!this.tty || !this.trial) return;
    const now = this.now();
    const lines: string[] = [];
    const len = formatMs(this.trial.requestedMs);
    if (this.cut && this.phase === 'cut') {
      const left = Math.max(0, this.cut.t + this.trial.requestedMs - now);
      const elapsed = (now - this.cut.t) / 1000;
      lines.push(pc.bold(pc.red(`  ✂ CABLE OUT  ${elapsed.toFixed(1)} s of ${len}   restore in ${(left / 1000).toFixed(1)} s`)));
    } else lines.push(pc.dim(`  trial ${this.trial.trial + 1}${this.totalTrials ? `/${this.totalTrials}` : ''} (${len}) — ${this.phase}`));
    for (const [name, s] of this.live.sessions) lines.push(`  ${name.padEnd(14)} ${pc.dim(s.kind.padEnd(9))} ${sessionStateText(s, now)}`);
    this.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }

  start(): void {
    if (this.tty)
      this.timer = setInterval(() => {
        this.clear();
        this.draw();
      }, 250);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }

  onEvent = (e: BlackoutEvent): void => {
    this.live.add(e);
    switch (e.type) {
      case 'run-start':
        this.runStart = e;
        this.print(pc.bold(`blackout: ${e.suite}`) + pc.dim(` — target ${e.target.name} ${e.target.address}, injector ${e.injector.kind}, ${e.probes.length} probes`));
        break;
      case 'heal':
        for (const a of e.actions) this.print(pc.yellow(`  healed: ${a}`));
        break;
      case 'preflight':
        if (!e.ok) this.print(pc.red(`  preflight: ${e.message}`));
        break;
      case 'trial-start':
        this.trial = e;
        this.cut = null;
        this.trialFold = new AnalysisBuilder();
        if (this.runStart) this.trialFold.add(this.runStart);
        this.trialFold.add(e);
        this.print(pc.bold(`trial ${e.trial + 1}${this.totalTrials ? `/${this.totalTrials}` : ''}: ${formatMs(e.requestedMs)} blackout`));
        break;
      case 'phase':
        this.phase = e.phase;
        this.trialFold?.add(e);
        break;
      case 'cut':
        this.cut = e;
        this.trialFold?.add(e);
        this.print(pc.red(`  cut at ${(e.t / 1000).toFixed(3)} s (took ${(e.t - e.before).toFixed(1)} ms; the kernel restores by itself at +${formatMs(e.deadline - e.t)})`));
        break;
      case 'restore':
        this.trialFold?.add(e);
        this.print(pc.green(`  restored after ${formatMs(e.t - (this.cut?.t ?? e.t))} (${e.reason})`));
        break;
      case 'trial-end': {
        this.trialFold?.add(e);
        if (this.runStart && this.trialFold) {
          const t = this.trialFold.trial(e.trial);
          for (const [name, r] of Object.entries(t?.probes ?? {})) {
            const color = outcomeColour(r.outcome);
            // the reason goes last and is cut to the terminal's width, so each probe stays one line
            const room = this.tty && this.out.columns ? Math.max(20, this.out.columns - 67) : Infinity;
            const reason = r.reason.length > room ? `${r.reason.slice(0, room - 1)}…` : r.reason;
            this.print(`  ${name.padEnd(14)} ${color(r.outcome.padEnd(11))} outage ${formatMs(r.observedOutageMs).padStart(8)}  recovery ${formatMs(r.recoveryMs).padStart(8)}  ${pc.dim(reason)}`);
          }
        }
        this.trial = null;
        this.trialFold = null;
        break;
      }
      case 'run-end':
        this.print(pc.dim(`run ended: ${e.reason}`));
        break;
      default:
        if ('probe' in e && typeof e.probe === 'string' && 'trial' in e) {
          this.trialFold?.add(e);
          if (e.type === 'session-lost') this.print(pc.red(`  ${e.probe}: session lost — ${e.message}`));
          else if (e.type === 'session-open' && e.reconnect) this.print(pc.cyan(`  ${e.probe}: reconnected`));
          else if (e.type === 'probe-error' && e.fatal) this.print(pc.red(`  ${e.probe}: ${e.message}`));
        }
    }
  };
}
