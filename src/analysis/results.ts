/**
 * The shapes of an analysed run: per probe and trial results, expectations,
 * and the fold of the whole run. Types only, shared by the fold (analysis.ts)
 * and the decision drawn from it (decision.ts), so neither imports the other.
 */
import type { EventOf, MigrationKind, Outcome, ProbeInfo } from '../core/events.ts';
import type { Sweep } from './search.ts';

export interface ProbeErrorSummary {
  t: number;
  message: string;
  code?: string;
  fatal: boolean;
}

export interface ProbeTrialResult {
  kind: string;
  outcome: Outcome;
  /** the longest gap overlapping the blackout, minus one interval; null when the session never came back */
  observedOutageMs: number | null;
  /** restore → first good sample; null when none came */
  recoveryMs: number | null;
  /** the cut → the first sample that missed its interval (detection edge) */
  detectedAfterMs: number | null;
  effectiveIntervalMs: number;
  samples: number;
  /** first and last good sample around the outage, run clock */
  lastOkBeforeMs: number | null;
  firstOkAfterMs: number | null;
  sessionsLost: number;
  reconnects: number;
  errors: ProbeErrorSummary[];
  /** errors beyond the first MAX_ERRORS kept (counted, not listed) */
  errorsDropped: number;
  verifications: Array<{ ok: boolean; message: string; data?: Record<string, unknown> }>;
  /** one sentence: why this outcome */
  reason: string;
  /** spans of steady good samples [from, to] on the run clock, for timelines */
  segments: Array<[number, number]>;
}

export type Phase = EventOf<'phase'>['phase'];

export interface TrialResult {
  index: number;
  requestedMs: number;
  /** why this length was chosen (list position, search step) */
  reason: string | null;
  /** the planner's context (brackets before the trial) */
  plan: Record<string, unknown> | null;
  /** run-clock instant each phase began */
  phases: Partial<Record<Phase, number>>;
  /** false when the run ended before the trial did */
  complete: boolean;
  startedAt: number;
  endedAt: number | null;
  injected: {
    cutAt: number;
    /** the earliest evidence of the restore: the harness's, or the kernel timeout's / watchdog's when they came first */
    restoredAt: number;
    durationMs: number;
    cutBefore: number;
    restoreBefore: number;
    deadline: number;
    restoreReason: string;
    /** who restored first: 'harness', 'kernel timeout', 'watchdog' */
    restoredBy: string;
    /** the harness's own restore instant (later than restoredAt when something restored before it) */
    harnessRestoredAt: number;
    /** what would have restored the target had the harness died: a systemd timer, a detached process, a scheduled task, the kernel's nft timeout */
    guardedBy: string | null;
  } | null;
  injectorInfo: Array<Record<string, unknown>>;
  /** the injector failed in this trial (the run ended after it) */
  injectorError: { step: 'cut' | 'restore'; message: string; restored: boolean; restoreError?: string } | null;
  probes: Record<string, ProbeTrialResult>;
}

export interface ProbeRunResult {
  kind: string;
  info: ProbeInfo;
  maxSurvivedMs: number | null;
  minFailedMs: number | null;
  /** outcomes by trial index */
  outcomes: Outcome[];
}

export interface ExpectationResult {
  probe: string;
  survivesMs: number;
  passed: boolean;
  message: string;
}

/** Everything the fold of one run's events yields, before the decision is drawn from it. */
export interface RunFold {
  suite: string;
  runId: string;
  startedWallMs: number;
  host: string;
  version: string;
  target: { name: string; address: string };
  /** the injector as run-start recorded it; `migration` says what its mode does (absent in older logs: none) */
  injector: Record<string, unknown> & { kind: string; migration?: MigrationKind };
  config: unknown;
  probeInfo: ProbeInfo[];
  complete: boolean;
  /**
   * the run's exit code, as the CLI returns it: the runner's own when it did
   * not complete normally (2 preflight, 130 interrupted, …), else 1 when a
   * test case failed (analysis/test-cases.ts), else 0; null without a run-end
   */
  exitCode: number | null;
  endReason: string | null;
  preflight: Array<EventOf<'preflight'>>;
  heal: string[];
  trials: TrialResult[];
  probes: Record<string, ProbeRunResult>;
  expectations: ExpectationResult[];
  /** the run completed and no test case failed (exitCode 0) */
  passed: boolean;
  /** the run as test cases: what JUnit, Allure, summary.json and the exit code count */
  tests: TestCases;
  attachments: Array<EventOf<'attachment'>>;
  /** how the lengths were chosen (from the recorded suite); null for an old log or the injector's defaults */
  sweep: Sweep | null;
  /** events folded */
  eventCount: number;
}

// ---- the run as test cases (analysis/test-cases.ts builds them): what JUnit, Allure, summary.json and the exit code count

export type CaseStatus = 'passed' | 'failed' | 'error' | 'skipped';

export interface TestCase {
  /** session: one probe in one trial; expectation: one `expect:` entry; run: the run did not finish normally */
  group: 'session' | 'expectation' | 'run';
  /** stable identity across runs (the name below carries the outcome) */
  id: string;
  classname: string;
  name: string;
  status: CaseStatus;
  /** a session that did not survive and fails nothing: no expectation covers its length (and not strict) */
  observation: boolean;
  /** the failure, skip, error or observation in one line */
  message: string | null;
  /** the failure's kind: the outcome, "expectation" or the run's end */
  type: string | null;
  trial?: number;
  probe?: string;
  kind?: string;
  outcome?: Outcome;
  requestedMs?: number;
  /** the expectation a non-surviving session breaks, when one covers its length */
  breaks?: string;
}

export interface TestCounts {
  strict: boolean;
  tests: number;
  passed: number;
  failed: number;
  errors: number;
  skipped: number;
  /** passed cases whose session did not survive (no expectation covers it) */
  observations: number;
}

export interface TestCases {
  /**
   * every case in order: the sessions' (a probe in a trial each), then the
   * expectations' and the run's. Read it as often as needed: each reading
   * makes the sessions' cases anew from the trials (sessionCase), so a long
   * run's analysis holds none of them (they were 8.5 MiB of heap in a
   * 1 M-event log).
   */
  cases: Iterable<TestCase>;
  counts: TestCounts;
}
