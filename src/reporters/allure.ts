/**
 * Allure: `allure-results/` in the run folder — one test per probe per trial
 * (steps warm-up → cut → restore → recovery, attachments: the trial's
 * timeline for that probe, its error log, screenshots; labels suite / probe /
 * injector so Allure groups them) — and `generateAllureReport` that turns it
 * into Allure's HTML with allure-commandline (an npm package that ships the
 * Allure CLI; it needs Java).
 *
 * The results are a pure function of the analysis (plus the screenshot files
 * they copy); names are derived from the run id, so rebuilding gives the same
 * files.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import type { Analysis, ProbeTrialResult, TrialResult } from '../analysis/analysis.ts';
import type { EventOf } from '../core/events.ts';
import { caseRules, expectedSurvivals, sessionCase, type CaseRules, type CaseStatus, type TestCase } from '../analysis/test-cases.ts';
import { timelineSvg } from './html.ts';
import { writeFileNow } from './file-writer.ts';
import { lengthLabel } from './matrix.ts';
import { formatMs } from '../core/format.ts';
import { carriedHistory, foldIntoHistory, type CarriedHistory, type NextHistory, type ResultRecord } from './allure-history.ts';

type Status = 'passed' | 'failed' | 'broken' | 'skipped' | 'unknown';

interface AllureAttachment {
  name: string;
  source: string;
  type: string;
}

interface AllureStep {
  name: string;
  status: Status;
  stage: 'finished';
  start: number;
  stop: number;
  steps: AllureStep[];
  attachments: AllureAttachment[];
  /** excluded: left out of the key Allure files the history under (its test case and parameters) */
  parameters: Array<{ name: string; value: string; excluded?: boolean }>;
  statusDetails?: { message?: string; trace?: string; flaky?: boolean };
}

export interface AllureResult extends AllureStep {
  uuid: string;
  historyId: string;
  testCaseId: string;
  fullName: string;
  description: string;
  labels: Array<{ name: string; value: string }>;
  links: Array<{ name: string; url: string; type: string }>;
}

export interface AllureFile {
  name: string;
  /** text content, or a file to copy */
  content?: string;
  copyFrom?: string;
  /** a result file's result, as written */
  result?: AllureResult;
}

const hash = (s: string): string => createHash('sha1').update(s).digest('hex');
function uuidOf(s: string): string {
  const h = hash(s);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// the run's test cases decide the status (src/analysis/test-cases.ts), so Allure's counts are the exit code's
const STATUS: Record<CaseStatus, Status> = { passed: 'passed', failed: 'failed', error: 'broken', skipped: 'skipped' };

/** an observation's message: Allure files passed results under their own category by it */
const OBSERVED = 'observed';

const STANDALONE_CSS = `.band{fill:#c8323c;fill-opacity:.13;stroke:#c8323c;stroke-opacity:.5}.ok{fill:#2e9d57}.err{fill:#c8323c}.warn{fill:#d9a400}.axis{stroke:#c9ced6}.lbl,.tick{font:10px sans-serif;fill:#555}.name{font:12px sans-serif;fill:#1d2129}.oc{font:bold 11px sans-serif}`;

/** The results of one run: every file of allure-results/ (pure). */
export function allureResults(a: Analysis, runDir?: string): AllureFile[] {
  return [...allureFiles(a, runDir)];
}

/** what a trial's results need of the run: all known from its run-start on, but for the attachments recorded later */
type RunHead = Pick<Analysis, 'runId' | 'suite' | 'startedWallMs' | 'injector' | 'host' | 'probeInfo'> & { attachments: ReadonlyArray<EventOf<'attachment'>> };

/** looked up once per run, not once per result (15 000 of them in a long run) */
function runContext(head: RunHead, runDir: string | undefined, flaky: Set<string>): RunContext {
  return {
    wall: (t: number) => Math.round(head.startedWallMs + t),
    root: runDir ? resolve(runDir) : null,
    flaky,
    info: new Map(head.probeInfo.map((p) => [p.name, p])),
    hashOf: memoised(hash),
  };
}

/** The same, one file at a time (a long run has tens of thousands: they are written as they come). */
export function* allureFiles(a: Analysis, runDir?: string): Generator<AllureFile> {
  const run = runContext(a, runDir, flakyProbes(a));
  const rules = caseRules(a.suite, a.config, a.expectations);
  for (const t of a.trials) yield* trialFiles(a, t, rules, run);
  yield* runFiles(a);
}

const flakyProbes = (a: Analysis): Set<string> => new Set(a.decision.probes.filter((p) => p.flaky).map((p) => p.probe));

/** one trial's files: its timeline, and a result (and its attachments) per probe; `only`: those of one probe */
function* trialFiles(head: RunHead, t: TrialResult, rules: CaseRules, run: RunContext, only?: string): Generator<AllureFile> {
  // one timeline per trial (every session, the blackout band), shared by the trial's tests
  const timeline = `${uuidOf(`${head.runId}/${t.index}/timeline`)}-timeline-attachment.svg`;
  const hasTimeline = t.injected !== null;
  if (hasTimeline && only === undefined) {
    const svg = timelineSvg(head, t)
      .replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ')
      .replace(/(<svg[^>]*>)/, `$1<style>${STANDALONE_CSS}</style>`);
    yield { name: timeline, content: svg };
  }
  for (const info of head.probeInfo) {
    if (only !== undefined && info.name !== only) continue;
    const r = t.probes[info.name];
    if (!r) continue;
    yield* oneTest(head, t, info.name, r, sessionCase(rules, t, info, r), run, hasTimeline ? timeline : null);
  }
}

/** the files of the run as a whole: the expectations' and the run's own tests, environment, executor, categories */
function runFiles(a: Analysis): AllureFile[] {
  const wall = (t: number) => Math.round(a.startedWallMs + t);
  const files: AllureFile[] = [];
  for (const c of a.tests.cases) if (c.group !== 'session') files.push(runLevelTest(a, c, wall));
  files.push({
    name: 'environment.properties',
    content:
      [
        ['suite', a.suite],
        ['target', `${a.target.name} (${a.target.address})`],
        ['injector', a.injector.kind],
        ['host', a.host],
        ['blackout.version', a.version],
        ['run', a.runId],
        ['verdict', a.decision.verdict.headline],
        ['exitCode', a.exitCode === null ? '-' : String(a.exitCode)],
        ['strict', String(a.tests.counts.strict)],
        ...a.decision.findings.map((f, i) => [`finding.${i + 1}`, `[${f.severity}] ${f.text}`]),
      ]
        .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
        .join('\n') + '\n',
  });
  files.push({ name: 'executor.json', content: JSON.stringify({ name: 'blackout', type: 'blackout', buildName: a.runId, reportName: `blackout: ${a.suite}` }, null, 2) });
  files.push({
    name: 'categories.json',
    content: JSON.stringify(
      [
        { name: 'Session lost, reconnected by its policy (recovered)', matchedStatuses: ['failed'], messageRegex: '^recovered:[\\s\\S]*' },
        { name: 'Session lost (client error or close)', matchedStatuses: ['failed'], messageRegex: '^failed: session lost[\\s\\S]*' },
        { name: 'Error reached the application', matchedStatuses: ['failed'], messageRegex: '^failed: error reached[\\s\\S]*' },
        { name: 'No recovery within the recovery window', matchedStatuses: ['failed'], messageRegex: '^failed: no good sample[\\s\\S]*' },
        { name: 'Verification failed (data lost or corrupted)', matchedStatuses: ['failed'], messageRegex: '^failed: (?!session lost|error reached|no good sample)[\\s\\S]*' },
        { name: 'Expectation did not hold', matchedStatuses: ['failed'], messageRegex: '^expectation:[\\s\\S]*' },
        { name: 'The run did not complete (see its exit code)', matchedStatuses: ['broken'] },
        // passed results that still deserve a look: they fail no build (strict: true makes them failures)
        { name: 'Observed: a session did not survive a length no expectation covers', matchedStatuses: ['passed'], messageRegex: `^${OBSERVED}:[\\s\\S]*` },
        { name: 'Breaks an expectation (the expectation is the failing test)', matchedStatuses: ['passed'], messageRegex: '^breaks expect[\\s\\S]*' },
        { name: 'Flaky probe: not monotonic in the blackout length', matchedStatuses: ['passed', 'failed'], flaky: true },
        { name: 'Trial did not finish', matchedStatuses: ['skipped'] },
      ],
      null,
      2,
    ),
  });
  return files;
}

/** an expectation, or the run that did not complete: a test of its own beside the sessions */
function runLevelTest(a: Analysis, c: TestCase, wall: (t: number) => number): AllureFile {
  const status = STATUS[c.status];
  const end = a.trials.at(-1)?.endedAt ?? 0;
  const result: AllureResult = {
    uuid: uuidOf(`${a.runId}/${c.id}`),
    historyId: hash(c.id),
    testCaseId: hash(c.id),
    name: c.name,
    fullName: c.id,
    description:
      c.group === 'run'
        ? 'The run did not complete normally; its exit code is not 0.'
        : 'An expectation of the suite (expect:): every blackout up to this length survived, and one at least this long.',
    status,
    statusDetails: c.message ? { message: c.group === 'expectation' ? `expectation: ${c.message}` : c.message } : {},
    stage: 'finished',
    start: wall(0),
    stop: wall(end),
    steps: [],
    attachments: [],
    parameters: c.probe ? [{ name: 'probe', value: c.probe }] : [],
    labels: [
      { name: 'parentSuite', value: 'blackout' },
      { name: 'suite', value: a.suite },
      { name: 'subSuite', value: c.group === 'expectation' ? 'expectations' : 'run' },
      { name: 'feature', value: a.injector.kind },
      ...(c.probe ? [{ name: 'probe', value: c.probe }] : []),
      { name: 'host', value: a.host },
      { name: 'framework', value: 'blackout' },
      { name: 'severity', value: c.group === 'run' ? 'blocker' : 'critical' },
    ],
    links: [],
  };
  return { name: `${result.uuid}-result.json`, content: JSON.stringify(result), result };
}

interface RunContext {
  wall: (t: number) => number;
  root: string | null;
  flaky: Set<string>;
  info: Map<string, Analysis['probeInfo'][number]>;
  /** hash of a test case or history id: a few per probe and length, asked for once per result */
  hashOf: (s: string) => string;
}

function memoised(f: (s: string) => string): (s: string) => string {
  const seen = new Map<string, string>();
  return (s) => {
    let v = seen.get(s);
    if (v === undefined) seen.set(s, (v = f(s)));
    return v;
  };
}

function oneTest(a: RunHead, t: TrialResult, probe: string, r: ProbeTrialResult, c: TestCase, run: RunContext, timeline: string | null): AllureFile[] {
  const { wall, root } = run;
  const files: AllureFile[] = [];
  const uuid = uuidOf(`${a.runId}/${t.index}/${probe}`);
  const status = STATUS[c.status];
  const survivedIt = r.outcome === 'transparent' || r.outcome === 'stalled';
  const flaky = run.flaky.has(probe);
  const inj = t.injected;
  const start = t.phases.warmup ?? t.startedAt;
  const end = t.endedAt ?? r.firstOkAfterMs ?? inj?.restoredAt ?? start;
  const info = run.info.get(probe)!;
  const attachments: AllureAttachment[] = [];

  if (timeline) attachments.push({ name: 'timeline', source: timeline, type: 'image/svg+xml' });
  // the probe's log: when something went wrong (errors, a lost session, a failed check, not survived); built only then
  if (status !== 'passed' || !survivedIt || r.errors.length || r.sessionsLost || r.verifications.some((v) => !v.ok)) {
    const log = [
      `${probe} (${r.kind}) — trial ${t.index}, ${lengthLabel(t.requestedMs)} requested, ${formatMs(inj?.durationMs)} injected`,
      `outcome: ${r.outcome} — ${r.reason}`,
      `observed outage ${formatMs(r.observedOutageMs)}, recovery ${formatMs(r.recoveryMs)}, effective interval ${formatMs(r.effectiveIntervalMs)}, ${r.samples} samples, ${r.sessionsLost} session(s) lost, ${r.reconnects} reconnect(s)`,
      `policy: ${JSON.stringify(info.policy)}`,
      '',
      r.errors.length ? 'errors:' : 'no errors',
      ...r.errors.map((e) => `  ${formatMs(e.t - (inj?.cutAt ?? 0))} after cut${e.fatal ? ' [fatal]' : ''}: ${e.message}${e.code ? ` (${e.code})` : ''}`),
      ...(r.errorsDropped ? [`  … and ${r.errorsDropped} more`] : []),
      ...r.verifications.map((v) => `verify ${v.ok ? 'ok' : 'FAILED'}: ${v.message}`),
    ].join('\n');
    files.push({ name: `${uuid}-errors-attachment.txt`, content: log + '\n' });
    attachments.push({ name: 'error log', source: `${uuid}-errors-attachment.txt`, type: 'text/plain' });
  }
  for (const [i, att] of a.attachments.filter((x) => x.trial === t.index && x.probe === probe).entries()) {
    if (!root) continue;
    const src = resolve(root, att.path);
    if (!src.startsWith(root + sep) || !existsSync(src)) continue;
    const name = `${uuid}-file${i}-attachment${extname(att.path) || '.bin'}`;
    files.push({ name, copyFrom: src });
    attachments.push({ name: att.name, source: name, type: att.contentType });
  }

  const step = (name: string, s: number, e: number, st: Status = 'passed', params: Array<[string, string]> = [], message?: string): AllureStep => ({
    name,
    status: st,
    stage: 'finished',
    start: wall(s),
    stop: wall(Math.max(s, e)),
    steps: [],
    attachments: [],
    parameters: params.map(([n, v]) => ({ name: n, value: v })),
    ...(message ? { statusDetails: { message } } : {}),
  });
  const steps: AllureStep[] = [];
  steps.push(step('warm-up: steady session before the cut', t.phases.warmup ?? t.startedAt, inj?.cutBefore ?? t.phases.cut ?? end, 'passed', [['interval', formatMs(r.effectiveIntervalMs)]]));
  if (inj) {
    steps.push(
      step(`cut: ${lengthLabel(t.requestedMs)} blackout (${a.injector.kind})`, inj.cutBefore, inj.restoredAt, 'passed', [
        ['requested', lengthLabel(t.requestedMs)],
        ['injected', formatMs(inj.durationMs)],
      ]),
    );
    steps.push(step(`restore (${inj.restoreReason})`, inj.restoreBefore, inj.restoredAt, inj.restoreReason === 'scheduled' ? 'passed' : 'broken'));
    const recEnd = r.firstOkAfterMs !== null && r.firstOkAfterMs > inj.restoredAt ? r.firstOkAfterMs : end;
    steps.push(
      step(
        `recovery: ${r.outcome}${r.recoveryMs !== null ? `, answered ${formatMs(r.recoveryMs)} after the restore` : ''}`,
        inj.restoredAt,
        recEnd,
        r.outcome === 'unknown' ? 'skipped' : survivedIt ? 'passed' : 'failed',
        [
          ['observed outage', formatMs(r.observedOutageMs)],
          ['recovery', formatMs(r.recoveryMs)],
        ],
        survivedIt ? undefined : `${r.outcome}: ${r.reason}`,
      ),
    );
  } else steps.push(step('cut: not injected', start, end, 'skipped', [], r.reason));

  const result: AllureResult = {
    uuid,
    historyId: run.hashOf(`${a.suite}/${probe}/${t.requestedMs}`),
    testCaseId: run.hashOf(`${a.suite}/${probe}`),
    name: `${probe}, ${lengthLabel(t.requestedMs)} blackout: ${r.outcome}${c.observation ? ' (observed)' : ''}`,
    fullName: `blackout.${a.suite}.${probe}[${lengthLabel(t.requestedMs)}]#trial-${t.index}`,
    description: `${t.reason ? `${t.reason}\n\n` : ''}${r.reason}`,
    status,
    statusDetails: {
      ...(c.message === null
        ? {}
        : { message: status !== 'passed' ? c.message : c.observation ? `${OBSERVED}: ${c.message}` : `breaks ${c.breaks}: ${c.message}`, trace: r.errors.map((e) => e.message).join('\n') }),
      ...(flaky ? { flaky: true } : {}),
    },
    stage: 'finished',
    start: wall(start),
    stop: wall(Math.max(start, end)),
    steps,
    attachments,
    parameters: [
      { name: 'blackout', value: lengthLabel(t.requestedMs) },
      // measured, not identity: Allure keys a test's history by its test case and parameters, so a
      // parameter that differs from run to run (5.00 s vs 5.01 s injected) would cut its history
      { name: 'injected', value: formatMs(inj?.durationMs), excluded: true },
      { name: 'trial', value: String(t.index) },
      { name: 'outcome', value: r.outcome, excluded: true },
      { name: 'observed outage', value: formatMs(r.observedOutageMs), excluded: true },
    ],
    labels: [
      { name: 'parentSuite', value: 'blackout' },
      { name: 'suite', value: a.suite },
      { name: 'subSuite', value: probe },
      { name: 'feature', value: a.injector.kind },
      { name: 'story', value: probe },
      { name: 'probe', value: probe },
      { name: 'injector', value: a.injector.kind },
      { name: 'tag', value: r.kind },
      { name: 'tag', value: r.outcome },
      { name: 'host', value: a.host },
      { name: 'framework', value: 'blackout' },
      { name: 'severity', value: 'normal' },
    ],
    links: [],
  };
  files.push({ name: `${uuid}-result.json`, content: JSON.stringify(result), result });
  return files;
}

/**
 * Writes allure-results/ into the run folder (replacing what a previous build
 * wrote). A long run has tens of thousands of files (one result per probe per
 * trial, Allure's format): they are produced one at a time and each is handed
 * to `put`, which writes it synchronously or, from writeReports, on a thread
 * of its own (file-writer.ts). (fs/promises' writeFile opens, writes and
 * closes each through a FileHandle, several trips to the thread pool per
 * file: with 32 in flight the 15 150 results of a 1 M-event log cost 6.5–7.0 s
 * of CPU, written synchronously 3.7–4.0 s, in the same wall time, which the
 * file system's creates bound.)
 *
 * A trial's results can go while the log is still being folded (`trial`,
 * from AnalysisBuilder's onTrialEnd): the creates, the longest part of a long
 * run's report, then overlap the fold instead of following it. What a trial's
 * results need of the run is known from its run-start on, but for two things
 * only the whole run settles: whether a probe is flaky, and an attachment
 * recorded after its trial ended. `finish` writes again the results those
 * change, and every trial not written yet, so the folder is, byte for byte,
 * what allureFiles(analysis) gives. Trials are written early only into an
 * empty folder (a run's first report): a log that turns out invalid half-way
 * then changes nothing (`abort` removes what was written), where in a
 * rebuild it would have overwritten the last build. A trial is written
 * early only when the writer has room for it (`room`: its queue is bounded);
 * what it had no room for is written after the fold, between the pieces of
 * the other reports (`settle`). Its history/ is carried from the previous
 * run of the same suite beside it (allure-history.ts), so Allure shows each
 * test's earlier statuses and the trend.
 */
export class AllureResultsWriter {
  readonly dir: string;
  // overwrite in place and remove only what this build no longer has (cheaper than emptying a folder of thousands)
  private readonly stale: Set<string>;
  /** trials written while folding: index → how many attachments of the trial had been recorded */
  private readonly early = new Map<number, number>();
  private head: { rules: CaseRules; run: RunContext } | null = null;
  /** trials may be written while folding: the folder was empty */
  private readonly fresh: boolean;
  /** the folder was made here: abort removes it */
  private readonly made: boolean;

  constructor(
    private readonly runDir: string,
    /** where the files go: written here, synchronously, unless a writer (file-writer.ts) takes them */
    private readonly put: (path: string, f: AllureFile) => void = writeFileNow,
    /** whether `put` would take a file now without waiting (a writer's queue is bounded) */
    private readonly room: () => boolean = () => true,
  ) {
    this.dir = join(runDir, 'allure-results');
    this.made = !existsSync(this.dir);
    mkdirSync(this.dir, { recursive: true });
    this.stale = new Set(readdirSync(this.dir));
    this.fresh = this.stale.size === 0;
  }

  /** a trial just folded: its results now, as if no probe were flaky, when the writer has room for them (else `finish` writes them) */
  trial(t: TrialResult, start: EventOf<'run-start'>, attachments: ReadonlyArray<EventOf<'attachment'>>): void {
    if (!this.fresh || !this.room()) return;
    const head: RunHead = { runId: start.runId, suite: start.suite, startedWallMs: start.wallMs, injector: start.injector, host: start.host, probeInfo: start.probes, attachments };
    this.head ??= { rules: caseRules(start.suite, start.config, expectedSurvivals(start.config)), run: runContext(head, this.runDir, new Set()) };
    const { rules, run } = this.head;
    this.early.set(t.index, attachmentsOf(attachments, t.index));
    for (const f of trialFiles(head, t, rules, run)) this.write(f);
  }

  /** the rest, once the whole log is folded; returns the folder and the next run's history (folded when asked for) */
  finish(a: Analysis, opts: ReportOptions = {}): { dir: string; nextHistory: () => NextHistory } {
    return this.settle(a).end(opts);
  }

  /**
   * The rest, once the whole log is folded, in two steps: `pump` writes what
   * the writer has room for now (writeReports calls it between the other
   * reports' pieces, so the thread never runs dry while they render), `end`
   * writes what is left and the history, and returns what `finish` does.
   */
  settle(a: Analysis): { pump: () => void; end: (opts?: ReportOptions) => { dir: string; nextHistory: () => NextHistory } } {
    const flaky = flakyProbes(a);
    const run = runContext(a, this.runDir, flaky);
    const rules = caseRules(a.suite, a.config, a.expectations);
    const early = this.early;
    function* rest(): Generator<AllureFile> {
      for (const t of a.trials) {
        const written = early.get(t.index);
        if (written === undefined || written !== attachmentsOf(a.attachments, t.index)) yield* trialFiles(a, t, rules, run);
        else for (const probe of flaky) if (t.probes[probe]) yield* trialFiles(a, t, rules, run, probe);
      }
      yield* runFiles(a);
    }
    const files = rest();
    return {
      pump: () => {
        while (this.room()) {
          const next = files.next();
          if (next.done) return;
          this.write(next.value);
        }
      },
      end: (opts = {}) => {
        for (const f of files) this.write(f);
        return this.history(a, opts);
      },
    };
  }

  /** history/ (carried from the previous run), stale files removed; the folder and the next run's history */
  private history(a: Analysis, opts: ReportOptions): { dir: string; nextHistory: () => NextHistory } {
    const beside = carriedHistory(this.runDir, a.suite, a.startedWallMs, opts.historyFrom);
    // the store's previous run (maybe on another host) or the one in the folders here: the later one
    const given = opts.history;
    const history = given?.files.length && !(beside.files.length && (beside.wallMs ?? -Infinity) > (given.wallMs ?? -Infinity)) ? given : beside;
    if (history.files.length) {
      this.stale.delete('history');
      const h = join(this.dir, 'history');
      rmSync(h, { recursive: true, force: true });
      mkdirSync(h);
      for (const f of history.files) this.put(join(h, f.name), f);
    }
    for (const name of this.stale) rmSync(join(this.dir, name), { recursive: true, force: true });
    // what the next run carries (kept in the results store), from what was just written, only when asked for
    const prior = (name: string) => {
      const f = history.files.find((x) => x.name === name);
      const text = f?.content ?? (f?.copyFrom ? readFileSync(f.copyFrom, 'utf8') : null);
      return text === null ? null : JSON.parse(text);
    };
    return {
      dir: this.dir,
      // the results made again from the analysis (what was written, byte for byte): a long run's 15 000 are not held until then
      nextHistory: () => foldIntoHistory({ history: prior('history.json'), trend: prior('history-trend.json') }, resultRecords(allureFiles(a, this.runDir)), basename(this.runDir)),
    };
  }

  /**
   * the fold failed (an invalid event half-way through the log): removes what
   * the early trials wrote, so the folder is as it was (empty, or not there).
   * Call it once nothing is being written any more (the writer is closed).
   */
  abort(): void {
    if (!this.fresh) return;
    if (this.made) rmSync(this.dir, { recursive: true, force: true });
    else for (const name of readdirSync(this.dir)) rmSync(join(this.dir, name), { recursive: true, force: true });
  }

  private write(f: AllureFile): void {
    this.stale.delete(f.name);
    this.put(join(this.dir, f.name), f);
  }
}

/** what the next run's history needs of each result (not its text, which would be parsed again) */
function* resultRecords(files: Iterable<AllureFile>): Generator<ResultRecord> {
  for (const f of files) {
    if (!f.result) continue;
    const { uuid, testCaseId, fullName, historyId, parameters, status, statusDetails, start, stop } = f.result;
    yield { uuid, testCaseId, fullName, historyId, parameters, status, statusDetails: { message: statusDetails?.message }, start, stop };
  }
}

const attachmentsOf = (all: ReadonlyArray<EventOf<'attachment'>>, trial: number): number => all.reduce((n, x) => n + (x.trial === trial ? 1 : 0), 0);

/** allure-results/ of a folded run, all at once (AllureResultsWriter without the early trials) */
export function writeAllureResults(runDir: string, a: Analysis, opts: ReportOptions = {}, put?: (path: string, f: AllureFile) => void): { dir: string; nextHistory: () => NextHistory } {
  return new AllureResultsWriter(runDir, put).finish(a, opts);
}

export interface ReportOptions {
  /** more folders of run folders in which the previous run of the suite may be (beside the run's own folder) */
  historyFrom?: readonly string[];
  /** the previous run's history from elsewhere (the results store); carried when it is later than any run in the folders */
  history?: CarriedHistory | null;
}

export class AllureError extends Error {}

/** The Allure CLI shipped inside the allure-commandline npm package. */
export function allureCli(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('allure-commandline/package.json');
  return join(dirname(pkg), 'dist', 'bin', 'allure');
}

/**
 * Builds the Allure HTML report from `allure-results/` into `allure-report/`
 * with allure-commandline. `singleFile`: one index.html (Allure's
 * --single-file). Resolves with the time it took.
 */
export function generateAllureReport(runDir: string, opts: { singleFile?: boolean; timeoutMs?: number } = {}): Promise<{ reportDir: string; ms: number; output: string }> {
  const results = join(runDir, 'allure-results');
  const reportDir = join(runDir, 'allure-report');
  if (!existsSync(results)) return Promise.reject(new AllureError(`${results}: not found (run \`blackout report ${runDir}\` first)`));
  let cli: string;
  try {
    cli = allureCli();
  } catch {
    return Promise.reject(new AllureError('allure-commandline is not installed (npm ci)'));
  }
  const args = ['generate', results, '-o', reportDir, '--clean', '--name', 'blackout', ...(opts.singleFile ? ['--single-file'] : [])];
  const started = performance.now();
  return new Promise((res, rej) => {
    const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(new AllureError(`allure: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        const hint = /java/i.test(output) && /not found|JAVA_HOME/i.test(output) ? ' (Allure needs Java: apt-get install openjdk-17-jre-headless)' : '';
        return rej(new AllureError(`allure generate exited with ${code}${hint}: ${output.trim().split('\n').slice(-5).join(' | ')}`));
      }
      res({ reportDir, ms: performance.now() - started, output });
    });
  });
}
