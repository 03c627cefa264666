/**
 * Live metrics: `blackout run --metrics HOST:PORT` serves OpenMetrics
 * (Prometheus' exposition format) at /metrics while the run lasts, so a long
 * campaign can be watched from a dashboard (examples/grafana-dashboard.json).
 *
 * A sink of the event stream, like the live view: it reads events, keeps a
 * little live state, and computes time-dependent values (a probe's current
 * gap, stalled or not, the elapsed blackout) when scraped. After each trial it
 * publishes the observed outage and outcome per probe, from the same fold the
 * reports use (AnalysisBuilder), so the dashboard and the report agree.
 *
 * Per probe: state (ok / stalled / lost, one-hot), last latency, current gap
 * since the last good sample, samples, errors, sessions lost; per run: the
 * trial, its phase, the cut state, the requested and elapsed blackout.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, type OpenMetricsContentType } from 'prom-client';
import { AnalysisBuilder } from '../analysis/analysis.ts';
import type { BlackoutEvent, EventOf, Outcome, ProbeInfo } from '../core/events.ts';

const PHASES = ['open', 'warmup', 'cut', 'recovery', 'drain', 'idle'] as const;
const STATES = ['ok', 'stalled', 'lost'] as const;
const OUTCOMES: Outcome[] = ['transparent', 'stalled', 'recovered', 'failed', 'unknown'];

interface ProbeLive {
  info: ProbeInfo;
  lastOkAt: number | null;
  latencyMs: number | null;
  lost: boolean;
}

export type ProbeLiveState = (typeof STATES)[number] | null;

export class MetricsSink {
  readonly registry = new Registry<OpenMetricsContentType>();
  private runStart: EventOf<'run-start'> | null = null;
  private builder: AnalysisBuilder | null = null;
  private probes = new Map<string, ProbeLive>();
  private trial: EventOf<'trial-start'> | null = null;
  private phase: (typeof PHASES)[number] = 'idle';
  private cut: EventOf<'cut'> | null = null;
  private restore: EventOf<'restore'> | null = null;
  /** sessions are open (between the trial's open phase and its drain) */
  private sessions = false;
  private server: Server | null = null;

  private readonly samples: Counter<'probe' | 'kind'>;
  private readonly errors: Counter<'probe' | 'kind'>;
  private readonly lostTotal: Counter<'probe' | 'kind'>;
  private readonly outage: Gauge<'probe' | 'kind'>;
  private readonly outcome: Gauge<'probe' | 'kind' | 'outcome'>;
  private readonly lastTrial: Gauge;

  constructor(private readonly now: () => number) {
    this.registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const registers = [this.registry];
    const probeLabels = ['probe', 'kind'] as const;
    const self = this;
    new Gauge({
      name: 'blackout_run_info',
      help: 'the run: suite, run id, target, injector (always 1)',
      labelNames: ['suite', 'run_id', 'target', 'address', 'injector'],
      registers,
      collect() {
        this.reset();
        const s = self.runStart;
        if (s) this.set({ suite: s.suite, run_id: s.runId, target: s.target.name, address: s.target.address, injector: s.injector.kind }, 1);
      },
    });
    new Gauge({
      name: 'blackout_trial',
      help: 'the current trial (0-based; -1 before the first)',
      registers,
      collect() {
        this.set(self.trial?.trial ?? -1);
      },
    });
    new Gauge({
      name: 'blackout_phase',
      help: "the current trial's phase (one-hot; idle between trials)",
      labelNames: ['phase'],
      registers,
      collect() {
        for (const p of PHASES) this.set({ phase: p }, p === self.phase ? 1 : 0);
      },
    });
    new Gauge({
      name: 'blackout_cut_active',
      help: '1 while the blackout is injected (between the cut and the restore)',
      registers,
      collect() {
        this.set(self.cutActive() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'blackout_blackout_requested_seconds',
      help: "the current trial's requested blackout length (0: the injector's own length)",
      registers,
      collect() {
        this.set((self.trial?.requestedMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'blackout_blackout_elapsed_seconds',
      help: "the current trial's blackout so far: cut → now while it lasts, cut → restore after",
      registers,
      collect() {
        const c = self.cut;
        this.set(c ? ((self.restore?.t ?? self.now()) - c.t) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'blackout_probe_state',
      help: "each probe's session state while the trial's sessions are open (one-hot: ok, stalled = no good sample for longer than interval + tolerance, lost)",
      labelNames: [...probeLabels, 'state'],
      registers,
      collect() {
        for (const [name, p] of self.probes) {
          const st = self.stateOf(name);
          for (const s of STATES) this.set({ probe: name, kind: p.info.kind, state: s }, st === s ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'blackout_probe_gap_seconds',
      help: "time since the probe's last good sample (the current gap; 0 when no session is open)",
      labelNames: probeLabels,
      registers,
      collect() {
        const now = self.now();
        for (const [name, p] of self.probes) this.set({ probe: name, kind: p.info.kind }, self.sessions && p.lastOkAt !== null ? Math.max(0, now - p.lastOkAt) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'blackout_probe_last_latency_seconds',
      help: "the latency of the probe's last good sample",
      labelNames: probeLabels,
      registers,
      collect() {
        this.reset();
        for (const [name, p] of self.probes) if (p.latencyMs !== null) this.set({ probe: name, kind: p.info.kind }, p.latencyMs / 1000);
      },
    });
    this.samples = new Counter({ name: 'blackout_probe_samples_total', help: 'good samples (answers) per probe over the run', labelNames: probeLabels, registers });
    this.errors = new Counter({ name: 'blackout_probe_errors_total', help: 'errors per probe over the run', labelNames: probeLabels, registers });
    this.lostTotal = new Counter({ name: 'blackout_probe_sessions_lost_total', help: 'sessions lost per probe over the run', labelNames: probeLabels, registers });
    this.outage = new Gauge({
      name: 'blackout_probe_observed_outage_seconds',
      help: 'the outage each probe saw in the last finished trial (absent when its session never came back)',
      labelNames: probeLabels,
      registers,
    });
    this.outcome = new Gauge({ name: 'blackout_probe_outcome', help: "each probe's outcome in the last finished trial (one-hot)", labelNames: [...probeLabels, 'outcome'], registers });
    this.lastTrial = new Gauge({ name: 'blackout_last_finished_trial', help: 'the trial the observed outage and outcome belong to (-1 before the first ends)', registers });
    this.lastTrial.set(-1);
  }

  private cutActive(): boolean {
    return this.cut !== null && this.restore === null;
  }

  /** a probe's live state: null when no session is open or it has not answered yet */
  stateOf(probe: string): ProbeLiveState {
    const p = this.probes.get(probe);
    if (!p || !this.sessions) return null;
    if (p.lost) return 'lost';
    if (p.lastOkAt === null) return null;
    return this.now() - p.lastOkAt > p.info.intervalMs + p.info.toleranceMs ? 'stalled' : 'ok';
  }

  onEvent = (e: BlackoutEvent): void => {
    this.builder?.add(e);
    switch (e.type) {
      case 'run-start':
        this.runStart = e;
        this.builder = new AnalysisBuilder();
        this.builder.add(e);
        for (const info of e.probes) {
          this.probes.set(info.name, { info, lastOkAt: null, latencyMs: null, lost: false });
          // every series exists from the start, so a dashboard sees 0, not "no data"
          for (const c of [this.samples, this.errors, this.lostTotal]) c.inc({ probe: info.name, kind: info.kind }, 0);
        }
        return;
      case 'trial-start':
        this.trial = e;
        this.cut = null;
        this.restore = null;
        for (const p of this.probes.values()) Object.assign(p, { lastOkAt: null, latencyMs: null, lost: false });
        return;
      case 'phase':
        this.phase = e.phase;
        this.sessions = e.phase !== 'drain';
        return;
      case 'cut':
        this.cut = e;
        return;
      case 'restore':
        this.restore = e;
        return;
      case 'trial-end':
        this.phase = 'idle';
        this.sessions = false;
        this.publishTrial(e.trial);
        return;
      case 'sample': {
        const p = this.probes.get(e.probe);
        if (!p) return;
        p.lastOkAt = Math.max(p.lastOkAt ?? -Infinity, e.t);
        p.latencyMs = e.latencyMs ?? p.latencyMs;
        p.lost = false;
        this.samples.inc({ probe: e.probe, kind: p.info.kind });
        return;
      }
      case 'probe-error': {
        const p = this.probes.get(e.probe);
        if (p) this.errors.inc({ probe: e.probe, kind: p.info.kind });
        return;
      }
      case 'session-lost': {
        const p = this.probes.get(e.probe);
        if (!p) return;
        p.lost = true;
        this.lostTotal.inc({ probe: e.probe, kind: p.info.kind });
        return;
      }
      default:
        return;
    }
  };

  private publishTrial(index: number): void {
    const t = this.builder?.trial(index);
    if (!t) return;
    this.lastTrial.set(index);
    for (const [name, r] of Object.entries(t.probes)) {
      const labels = { probe: name, kind: r.kind };
      // a session that never came back has no outage length: the series is left out, not NaN
      if (r.observedOutageMs === null) this.outage.remove(labels);
      else this.outage.set(labels, r.observedOutageMs / 1000);
      for (const o of OUTCOMES) this.outcome.set({ ...labels, outcome: o }, o === r.outcome ? 1 : 0);
    }
  }

  /** the exposition text, as a scrape gets it */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  /** Serves GET /metrics on host:port (port 0: a free one); resolves with the address it listens on. */
  listen(host: string, port: number): Promise<{ host: string; port: number; url: string }> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path !== '/metrics') {
        res.writeHead(path === '/' ? 200 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(path === '/' ? 'blackout: metrics at /metrics\n' : 'not found\n');
        return;
      }
      this.scrape().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${e.message}\n`),
      );
    });
    // a scraper's keep-alive connection must not hold the process open after the run
    server.keepAliveTimeout = 1000;
    return new Promise((res, rej) => {
      server.once('error', rej);
      server.listen(port, host, () => {
        server.off('error', rej);
        this.server = server;
        const a = server.address() as AddressInfo;
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        res({ host: a.address, port: a.port, url: `http://${h}:${a.port}/metrics` });
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    return new Promise((res) => {
      s.close(() => res());
      s.closeAllConnections();
    });
  }
}
