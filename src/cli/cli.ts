/**
 * The `blackout` command line. Every command explains itself with --help.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { pc, pcErr } from '../core/color.ts';
import { EXIT } from '../run/exit-codes.ts';
import { abortOnSignals } from '../run/interrupt.ts';
import { analyzeRunDir, writeReports } from '../reporters/index.ts';
import { AllureError, generateAllureReport } from '../reporters/allure.ts';
import { compareHtml, compareMarkdown } from '../reporters/compare.ts';
import { linearSweepTrials } from '../analysis/search.ts';
import { DEFAULT_LAB } from '../lab/state.ts';
import type { MetricsSink } from '../reporters/metrics.ts';
import { testsSummaryText } from '../analysis/test-cases.ts';
import { createClock, sleep } from '../core/clock.ts';
import { EventLogError } from '../core/event-log.ts';
import { COMPILED } from '../core/runtime.ts';
import type { BlackoutEvent } from '../core/events.ts';
import { matrixMarkdown } from '../reporters/markdown.ts';
import { inShard, resolveShard, ShardError, type Shard } from '../fleet/shard.ts';
import { registerFleetCommands, openRunStore, type RunStoreHandle } from '../fleet/commands.ts';
import { VERSION } from '../core/version.ts';
import { LeaseBusyError } from '../transport/lease.ts';

/** `--wait SECONDS` → ms; a clear error naming the option otherwise */
function waitMs(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 86_400) {
    const msg = `--wait: expected seconds (0–86400), got "${v}"`;
    process.stderr.write(pcErr.red(`${msg}\n`));
    throw new CommanderError(2, 'blackout.wait', msg);
  }
  return Math.round(n * 1000);
}

const ROOT = resolve(new URL('../..', import.meta.url).pathname);

function defaultOutDir(suiteName: string): string {
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
  // a checkout keeps its runs in its own reports/; an installed blackout (its
  // package folder is no place for them) in reports/ under the working directory
  const base = join(
    COMPILED ? process.cwd() : ROOT,
    'reports',
    `${stamp}-${suiteName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 40)}`,
  );
  // the same suite twice within a second gets its own folder too
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

interface RunCliOptions {
  /** `--shard i/n` (or JOB_COMPLETION_INDEX with --shard-count) */
  shard?: string;
  shardCount?: string;
  /** results store (postgres://…), or BLACKOUT_STORE */
  store?: string;
  out?: string;
  /** seconds to wait for another run that holds the same target or lab */
  wait?: string;
  lab?: string;
  live: boolean;
  dryRun?: boolean;
  metrics?: MetricsAddress;
  metricsLinger?: number;
}

export interface MetricsAddress {
  host: string;
  port: number;
}

/** `15s`, `500ms`, `2m` or a number of ms */
export function parseDurationOption(value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration such as 15s, 500ms or 2m, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  const ms = m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n;
  if (ms > 3_600_000) throw new InvalidArgumentError('expected at most 1 hour');
  return ms;
}

/** `--metrics HOST:PORT` (IPv6 as [::1]:9464); port 0 picks a free one */
export function parseMetricsAddress(value: string): MetricsAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new InvalidArgumentError(`expected HOST:PORT (e.g. 127.0.0.1:9464), got ${JSON.stringify(value)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Runs a suite with signal handling, the live view and the reports; returns the exit code. */
export async function runCommand(file: string, o: RunCliOptions): Promise<number> {
  // a fleet file (campaign: + targets:): this shard's jobs of it, one after another, with no store
  const { isFleetFile } = await import('../fleet/fleet-shard.ts');
  if (isFleetFile(file)) {
    const { runFleetCommand } = await import('../fleet/commands.ts');
    return runFleetCommand(file, { ...o, leaseWaitMs: waitMs(o.wait), defaultOut: defaultOutDir });
  }
  const { loadSuite, SuiteError } = await import('../run/suite.ts');
  let suite;
  try {
    suite = await loadSuite(file);
  } catch (e) {
    if (e instanceof SuiteError) {
      process.stderr.write(pcErr.red(`invalid suite ${e.message}\n`));
      return EXIT.badInput;
    }
    throw e;
  }
  let shard: Shard | null;
  try {
    shard = resolveShard(o);
  } catch (e) {
    if (!(e instanceof ShardError)) throw e;
    process.stderr.write(pcErr.red(`${e.message}\n`));
    return EXIT.badInput;
  }
  if (shard && suite.sweep?.mode === 'search') {
    process.stderr.write(pcErr.red("--shard: the suite's sweep is an adaptive search (each length depends on every earlier outcome); shard a list of blackouts\n"));
    return EXIT.badInput;
  }
  if (o.dryRun) {
    const { dryRun } = await import('../run/dry-run.ts');
    return dryRun(suite, { lab: o.lab, write: (l) => process.stdout.write(`${l}\n`) });
  }
  const outDir = resolve(o.out ?? defaultOutDir(shard ? `${suite.name}-shard-${shard.index}-of-${shard.total}` : suite.name));
  if (existsSync(join(outDir, 'events.jsonl'))) {
    process.stderr.write(pcErr.red(`--out ${outDir}: that folder already holds a run (events.jsonl); choose another folder\n`));
    return EXIT.badInput;
  }
  const [{ runSuite }, { injectorDefinition }, { LiveView }, { MetricsSink }, { storeHistory, storedHistory, withStore }] = await Promise.all([
    import('../run/runner.ts'),
    import('../injectors/index.ts'),
    import('../reporters/live-view.ts'),
    import('../reporters/metrics.ts'),
    import('../store/allure-history.ts'),
  ]);
  const clock = createClock();
  // an injector that talks to the operator owns the terminal during a blackout
  const view = o.live && !injectorDefinition(suite.injector.kind)?.ownsTerminal ? new LiveView(clock.now, process.stdout, suite.blackouts.length) : null;
  let metrics: MetricsSink | null = null;
  if (o.metrics) {
    // listening is part of the preflight: a taken port is bad input, and nothing was injected
    metrics = new MetricsSink(clock.now);
    try {
      const at = await metrics.listen(o.metrics.host, o.metrics.port);
      process.stdout.write(`metrics: ${at.url}\n`);
    } catch (e) {
      process.stderr.write(pcErr.red(`--metrics ${o.metrics.host}:${o.metrics.port}: cannot listen (${(e as Error).message}); nothing was injected\n`));
      return EXIT.badInput;
    }
  }
  // the store is a second sink of the event stream: it never blocks or stops the run
  let store: RunStoreHandle | null = null;
  const storeUrl = o.store ?? process.env.BLACKOUT_STORE;
  if (storeUrl) {
    try {
      store = await openRunStore(storeUrl, { outDir, log: (l) => process.stderr.write(pcErr.dim(`${l}\n`)) });
    } catch (e) {
      process.stderr.write(pcErr.red(`${(e as Error).message}\n`));
      return EXIT.badInput;
    }
  }
  // the metrics endpoint serves until the reports are written (and the linger is over), and closes whatever happens
  const runAndReport = async (): Promise<number> => {
    const sinks: Array<(e: BlackoutEvent, line?: string) => void> = [view?.onEvent, metrics?.onEvent, store?.onEvent].filter((f): f is NonNullable<typeof f> => f !== undefined);
    const interrupt = abortOnSignals('restoring the target, then writing the reports of what completed…');
    view?.start();
    let result;
    try {
      result = await runSuite(suite, {
        outDir,
        lab: o.lab,
        leaseWaitMs: waitMs(o.wait),
        signal: interrupt.signal,
        clock,
        onEvent: sinks.length ? (e, line) => sinks.forEach((f) => f(e, line)) : undefined,
        log: view ? () => {} : (l) => process.stdout.write(`${l}\n`),
        ...(shard ? { shard, only: (k: number) => inShard(shard, k) } : {}),
      });
    } finally {
      view?.stop();
      interrupt.dispose();
      await store?.close();
    }
    // Allure history: the previous run of this suite may have run on another host (see store/allure-history.ts)
    const storeLog = (l: string) => process.stderr.write(pcErr.dim(`${l}\n`));
    const history = storeUrl ? await withStore(storeUrl, 'Allure history', storeLog, (db) => storedHistory(db, outDir)) : null;
    const { analysis, files, nextAllureHistory } = await writeReports(outDir, { history });
    if (storeUrl) await withStore(storeUrl, 'Allure history', storeLog, (db) => storeHistory(db, outDir, nextAllureHistory));
    if (result.exitCode === EXIT.badInput) {
      process.stderr.write(pcErr.red(`preflight failed, nothing was injected: ${result.reason.replace(/^preflight: /, '')}\n`));
      return EXIT.badInput;
    }
    if (result.exitCode === EXIT.labUnsafe) process.stderr.write(pcErr.red(`${result.reason}\n`));
    process.stdout.write(`\n${matrixMarkdown(analysis)}\n\n${analysis.decision.verdict.headline}\n${analysis.decision.verdict.second}\n`);
    for (const f of analysis.decision.findings.filter((x) => x.severity !== 'info')) process.stdout.write(pc.yellow(`${f.severity}: ${f.text}\n`));
    for (const e of analysis.expectations) process.stdout.write(`${e.passed ? pc.green('✓') : pc.red('✗')} ${e.message}\n`);
    process.stdout.write(`\nreport: ${join(outDir, 'report.html')}\n`);
    process.stdout.write(
      pc.dim(
        `also: ${files
          .filter((f) => !f.endsWith('.html'))
          .map((f) => f.slice(outDir.length + 1))
          .join(', ')}, events.jsonl\n`,
      ),
    );
    process.stdout.write(`${testsSummaryText(analysis.tests.counts, analysis.exitCode)}\n`);
    if (result.exitCode === EXIT.injectorFailed)
      process.stderr.write(pcErr.red(`the injector failed (exit ${EXIT.injectorFailed}); the target was restored: ${result.reason.replace(/^the injector failed; the target was restored: /, '')}\n`));
    if (result.exitCode === EXIT.restoreFailed) process.stderr.write(pcErr.red(`the injector failed and the restore failed too (exit ${EXIT.restoreFailed}): ${result.reason}\n`));
    if (result.exitCode !== EXIT.ok) return result.exitCode;
    // the analysis' exit code is the one junit.xml, Allure and summary.json count (src/analysis/test-cases.ts)
    return analysis.exitCode ?? EXIT.expectationFailed;
  };
  try {
    const code = await runAndReport();
    // a scraper that polls every few seconds still sees the last trial's outcome
    if (metrics && o.metricsLinger) await sleep(o.metricsLinger);
    return code;
  } finally {
    await metrics?.close();
  }
}

/** `blackout compare`: the side-by-side report of several runs; returns the exit code. */
export function compareCommand(dirs: string[], labels: string[] | undefined, out: string): number {
  if (labels && labels.length !== dirs.length) {
    process.stderr.write(pcErr.red(`--label: ${labels.length} label(s) for ${dirs.length} run(s)\n`));
    return EXIT.badInput;
  }
  const runs = [];
  for (const [i, d] of dirs.entries()) {
    if (!existsSync(join(d, 'events.jsonl'))) {
      process.stderr.write(pcErr.red(`${join(d, 'events.jsonl')}: not found\n`));
      return EXIT.badInput;
    }
    try {
      runs.push({ label: labels?.[i] ?? basename(resolve(d)), analysis: analyzeRunDir(d).analysis });
    } catch (e) {
      if (!(e instanceof EventLogError)) throw e;
      process.stderr.write(pcErr.red(`${d}: ${e.message}\n`));
      return EXIT.badInput;
    }
  }
  mkdirSync(out, { recursive: true });
  const html = join(out, 'compare.html');
  const md = join(out, 'compare.md');
  writeFileSync(html, compareHtml(runs));
  const mdText = compareMarkdown(runs);
  writeFileSync(md, mdText);
  process.stdout.write(`${mdText}\n${html}\n${md}\n`);
  return EXIT.ok;
}

/** every exit code of every command (issue-wide: CI reads them) */
export const EXIT_CODES_HELP = `
Exit codes:
  0    ok: every expectation held (and, with strict: true, every session survived)
  1    an expectation did not hold (with strict: true, also a session that did not survive);
       junit.xml, Allure and summary.json count exactly these failures;
       lab status: the lab is not up; report --allure: Allure could not build its report
  2    bad input: unknown command or option, invalid suite, preflight failure (nothing was injected)
  3    the injector failed mid-run (a cut or restore command failed); the target was restored, the run stopped with its reports
  4    the injector failed and so did the restore: the target is restored by its kernel timeout / watchdog at the deadline at the latest
  5    the lab's guard or blackhole routes vanished mid-run: the run stopped, the target restored
  130  interrupted (Ctrl-C / SIGTERM); the target was restored first

Output is plain (no colour) when it is not a terminal or NO_COLOR is set.`;

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('blackout')
    .description(
      'Application downtime-tolerance test harness. Injects a blackout of N seconds into a target ' +
        '(a pulled cable, a quick or live migration) while probes keep real client sessions open against it, ' +
        'and reports which sessions survive which blackout length, and where each one breaks.',
    )
    .version(VERSION)
    // the error and its "(Did you mean …?)" stay the last thing on screen; the help is one flag away
    .showSuggestionAfterError()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP)
    .exitOverride();

  program
    .command('run')
    .description('run a suite: every blackout length is a trial (warm-up → cut → restore → recovery watch); writes events.jsonl and the reports')
    .argument('<suite>', 'suite file (.yaml, or .ts exporting defineSuite(...)); or a fleet file (campaign: and targets:): its jobs one after another, each in OUT/runs/<job>/, no store needed')
    .option('-o, --out <dir>', 'run folder (default: reports/<date>-<suite name>)')
    .option('--lab <name>', `lab instance for "target: lab" (default: ${DEFAULT_LAB}, or $BLACKOUT_LAB)`)
    .option('--no-live', 'no live terminal view; one line per step instead')
    .option('--dry-run', "print the injector's exact command transcript (secrets as placeholders) and touch nothing")
    .option('--wait <seconds>', 'when another run holds the same target (or lab): wait up to this long for it to finish (default: refuse at once, exit 2)')
    .option(
      '--shard <i/n>',
      "run only shard i of n of the sweep (every n-th planned trial), or of a fleet file's jobs (whole lanes: a target's jobs stay on one shard); `blackout merge` joins the shards' folders",
    )
    .option('--shard-count <n>', 'with JOB_COMPLETION_INDEX (a Kubernetes Indexed Job): the number of shards (or $BLACKOUT_SHARD_COUNT)')
    .option('--store <url>', 'also stream the run into a PostgreSQL results store, postgres://… (or $BLACKOUT_STORE); the run folder stays complete if the database goes away')
    .option('--metrics <host:port>', 'serve live OpenMetrics (Prometheus) at http://HOST:PORT/metrics during the run: probe states, latency, gaps, the cut', parseMetricsAddress)
    .option('--metrics-linger <duration>', 'with --metrics: keep serving the final metrics this long after the run (e.g. 15s, a scrape interval)', parseDurationOption)
    .addHelpText(
      'after',
      "\nOne run per target: a run holds a lease on its target (or lab) until it ends (kill -9 included), so two runs never undo each other's blackout; a second run is refused (exit 2, naming the run that holds it) or, with --wait, waits.\n" +
        EXIT_CODES_HELP,
    )
    .action(async (file: string, o: RunCliOptions) => {
      program.setOptionValue('exitCode', await runCommand(file, o));
    });

  program
    .command('report')
    .description(
      "rebuild summary.json, junit.xml, summary.md, report.html and allure-results/ from a run folder's events.jsonl (also for a run that died half-way); with --campaign, the fleet report from the results store",
    )
    .argument('[dir]', 'run folder')
    .option('--allure', 'also build the Allure HTML report into DIR/allure-report (allure-commandline; needs Java)')
    .option('--single-file', 'with --allure: one self-contained index.html')
    .option('--campaign <name>', 'the fleet report of a campaign: a row per application, its history across runs (needs --store)')
    .option('--store <url>', 'results store, postgres://… (or $BLACKOUT_STORE)')
    .option('-o, --out <dir>', 'with --campaign: where to write fleet-report.html/.json/.md (default: the current folder)', '.')
    .action(async (dir: string | undefined, o: { allure?: boolean; singleFile?: boolean; campaign?: string; store?: string; out: string }) => {
      if (o.campaign !== undefined || dir === undefined) {
        const { fleetReportCommand } = await import('../fleet/commands.ts');
        program.setOptionValue('exitCode', await fleetReportCommand(o.campaign, o.store ?? process.env.BLACKOUT_STORE, o.out));
        return;
      }
      const path = join(dir, 'events.jsonl');
      if (!existsSync(path)) {
        process.stderr.write(pcErr.red(`${path}: not found\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
        return;
      }
      try {
        const { analysis, files, tornTail, tornLines } = await writeReports(dir);
        if (tornTail) process.stderr.write(pcErr.yellow('the last line of events.jsonl was torn (the run died while writing it); it was skipped\n'));
        const inner = tornLines - (tornTail ? 1 : 0);
        if (inner > 0) process.stderr.write(pcErr.yellow(`${inner} torn line${inner > 1 ? 's' : ''} inside events.jsonl (a write failed half-way) ${inner > 1 ? 'were' : 'was'} skipped\n`));
        if (!analysis.complete) process.stderr.write(pcErr.yellow('the run did not finish: the reports are marked incomplete\n'));
        process.stdout.write(`${analysis.decision.verdict.headline}\n${analysis.decision.verdict.second}\n\n${matrixMarkdown(analysis)}\n\n${files.join('\n')}\n`);
        if (o.allure) {
          const r = await generateAllureReport(dir, { singleFile: o.singleFile });
          process.stdout.write(`${join(r.reportDir, 'index.html')} (Allure, built in ${(r.ms / 1000).toFixed(1)} s)\n`);
        }
      } catch (e) {
        if (e instanceof AllureError) {
          process.stderr.write(pcErr.red(`${e.message}\n`));
          program.setOptionValue('exitCode', 1);
          return;
        }
        if (!(e instanceof EventLogError)) throw e;
        process.stderr.write(pcErr.red(`${e.message}\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
      }
    });

  program
    .command('compare')
    .description('compare runs side by side (vendor A vs B, quick vs live migration): verdicts, breaking points, survival curves, matrices, what differs; writes compare.html and compare.md')
    .argument('<dirs...>', 'run folders (each with events.jsonl)')
    .option('--label <names...>', 'a label per run, in order (default: each folder name)')
    .option('-o, --out <dir>', 'where to write compare.html and compare.md (default: the current folder)', '.')
    .action((dirs: string[], o: { label?: string[]; out: string }) => {
      program.setOptionValue('exitCode', compareCommand(dirs, o.label, o.out));
    });

  program
    .command('validate')
    .description('check a suite file without running it; names every wrong field')
    .argument('<suite>')
    .option('--json', 'machine-readable: { file, valid, … } on stdout (also when invalid: { valid: false, problems })')
    .action(async (file: string, o: { json?: boolean }) => {
      const { loadSuite, SuiteError } = await import('../run/suite.ts');
      try {
        const s = await loadSuite(file);
        if (o.json) {
          process.stdout.write(
            JSON.stringify(
              {
                file,
                valid: true,
                name: s.name,
                target: typeof s.target === 'string' ? s.target : 'host' in s.target ? { host: s.target.host } : s.target,
                injector: s.injector.kind,
                probes: s.probes.map((p) => ({ name: p.name, kind: p.kind, intervalMs: p.interval, toleranceMs: p.tolerance })),
                sweep: s.sweep,
                blackoutsMs: s.blackouts,
                expect: s.expect,
                strict: s.strict,
              },
              null,
              2,
            ) + '\n',
          );
          return;
        }
        const sw = s.sweep;
        const how = !sw
          ? 'blackouts (injector default)'
          : sw.mode === 'search'
            ? `search ${sw.from}–${sw.to} ms at ${sw.resolution} ms resolution (≤ ${sw.maxTrials} trials; a linear sweep would take ${linearSweepTrials(sw.from, sw.to, sw.resolution)})`
            : `blackouts ${s.blackouts.map((b) => `${b} ms`).join(', ')}`;
        process.stdout.write(`${file}: valid — ${s.probes.length} probes, injector ${s.injector.kind}, ${how}\n`);
      } catch (e) {
        if (!(e instanceof SuiteError)) throw e;
        if (o.json) process.stdout.write(JSON.stringify({ file, valid: false, problems: e.problems }, null, 2) + '\n');
        else process.stderr.write(pcErr.red(`invalid suite ${e.message}\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
      }
    });

  program
    .command('init')
    .description('find which well-known services answer on a target (TCP connection attempts only, nothing injected) and write a starter suite with a probe for each')
    .argument('[host]', 'host name or address of the target, or "lab" (with --lab NAME for another lab instance)')
    .option('--lab <name>', 'a lab instance as the target (also tries the ports its services listen on)')
    .option('--ports <list>', 'more ports to try, comma-separated (e.g. 8000,9443)')
    .option('--only-ports', 'try only the --ports, not the well-known ones')
    .option('--timeout <ms>', 'connection attempt timeout, ms', '1500')
    .option('-o, --out <file>', 'where to write the suite (default: <host>.yaml in the current folder)')
    .option('--force', 'overwrite an existing file')
    .action(async (host: string | undefined, o: { lab?: string; ports?: string; onlyPorts?: boolean; timeout: string; out?: string; force?: boolean }) => {
      const fail = (m: string) => {
        process.stderr.write(pcErr.red(`${m}\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
      };
      if (!host && !o.lab) return fail('init: name a host (or "lab", or --lab NAME)');
      const ports: number[] = [];
      for (const p of (o.ports ?? '')
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const n = Number(p);
        if (!Number.isInteger(n) || n < 1 || n > 65535) return fail(`--ports: "${p}" is not a port (1–65535)`);
        ports.push(n);
      }
      const timeoutMs = Number(o.timeout);
      if (!Number.isFinite(timeoutMs) || timeoutMs < 50 || timeoutMs > 60_000) return fail(`--timeout: expected 50–60000 ms, got "${o.timeout}"`);
      const target = host ?? 'lab';
      const out = resolve(o.out ?? `${(o.lab ?? target).replace(/[^A-Za-z0-9.-]+/g, '_')}.yaml`);
      if (existsSync(out) && !o.force) return fail(`${out} exists: choose another file with --out, or --force`);
      const { initSuite, InitError } = await import('./init.ts');
      let r;
      try {
        r = await initSuite(target, { ports, onlyPorts: o.onlyPorts, timeoutMs, lab: o.lab });
      } catch (e) {
        if (e instanceof InitError) return fail(e.message);
        throw e;
      }
      for (const c of r.checks) {
        const f = r.found.find((x) => x.port === c.port);
        if (c.open) process.stdout.write(`${pc.green('open  ')} ${String(c.port).padStart(5)}  ${f?.service ?? ''}${f?.probes.length ? ` → probe ${f.probes.join(', ')}` : ''}\n`);
        else process.stdout.write(pc.dim(`closed ${String(c.port).padStart(5)}  ${c.detail}\n`));
      }
      writeFileSync(out, r.yaml);
      process.stdout.write(
        `\nwrote ${out}: ${r.found.length} service(s) on ${r.address}${r.env.length ? `; set ${r.env.map((e) => `$${e}`).join(', ')} before running it` : ''}\nnext: blackout validate ${out}\n`,
      );
    });

  const lab = program
    .command('lab')
    .description('the lab target: a host in a network namespace with real servers (PostgreSQL, OpenSSH, Samba, xrdp, nginx, Redis, TCP echo), behind a lab switch where the cable is pulled');
  lab
    .command('up')
    .description('bring the lab up (idempotent); installs nothing: run `npm run setup` once as root first')
    .option('--name <name>', 'lab instance name', DEFAULT_LAB)
    .option('--vm', 'also boot the QEMU guest on the lab switch (target: lab-vm; real quick and live migration)')
    .option('--vm-memory <MB>', 'guest memory in MB', '128')
    .option('--wait <seconds>', 'when it must be rebuilt while a run holds it: wait up to this long for the run to end (default: refuse at once)')
    .action(async (o: { name: string; vm?: boolean; vmMemory: string; wait?: string }) => {
      const log = (l: string) => process.stdout.write(`${l}\n`);
      const { labUp } = await import('../lab/lab.ts');
      let s;
      try {
        s = await labUp(o.name, { log, waitMs: waitMs(o.wait) });
      } catch (e) {
        if (!(e instanceof LeaseBusyError)) throw e;
        process.stderr.write(pcErr.red(`lab up refused: ${e.message}\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
        return;
      }
      process.stdout.write(
        `lab ${s.name} is up: target ${s.targetAddress} (namespace ${s.targetNs}), services ${Object.entries(s.services)
          .map(([k, v]) => `${k}:${v.port}`)
          .join(' ')}\n`,
      );
      if (o.vm) {
        const { vmUp } = await import('../lab/vm.ts');
        const vm = await vmUp(s, { memoryMB: Number(o.vmMemory), log });
        process.stdout.write(
          `VM is up: ${vm.address} (booted in ${(vm.bootMs / 1000).toFixed(1)} s), services ${Object.entries(vm.ports)
            .map(([k, p]) => `${k}:${p}`)
            .join(' ')}\n`,
        );
      }
    });
  lab
    .command('down')
    .description('tear the lab down: no namespace, veth, nft table, cgroup, route or process of it remains')
    .option('--name <name>', 'lab instance name', DEFAULT_LAB)
    .option('--wait <seconds>', 'while a run uses the lab: wait up to this long for it to finish (default: refuse at once)')
    .option('--force', 'tear the lab down even under a run that uses it (its probes then fail; the shared guard stays while the run lives)')
    .addHelpText(
      'after',
      '\nA run holds a lease on its lab until it ends (it dies with the run, kill -9 included). While it is held, `lab down` refuses ' +
        '(exit 2, naming the run: its PID, suite and out dir), or with --wait waits up to that long for the run to end. --force tears the lab down under the run.' +
        '\n\nThe shared guard of the lab range (the blackhole route for 10.213.0.0/16 and the nft table inet blackout_guard) is removed with the last lab, ' +
        'but never while a blackout run, or a process a run started (a ping that outlived a killed harness), could still send to the lab range: ' +
        'then it stays, `lab down` says which processes hold it, and the next `lab down` after they end removes it.',
    )
    .action(async (o: { name: string; wait?: string; force?: boolean }) => {
      const { labDown } = await import('../lab/lab.ts');
      try {
        await labDown(o.name, { log: (l) => process.stdout.write(`${l}\n`), waitMs: waitMs(o.wait), force: o.force });
      } catch (e) {
        if (!(e instanceof LeaseBusyError)) throw e;
        process.stderr.write(pcErr.red(`lab down refused: ${e.message}\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
      }
    });
  lab
    .command('status')
    .description("the lab target's address, its services' ports, and whether it is up")
    .option('--name <name>', 'lab instance name', DEFAULT_LAB)
    .option('--json', 'machine-readable')
    .action(async (o: { name: string; json?: boolean }) => {
      const { labStatus } = await import('../lab/lab.ts');
      const s = await labStatus(o.name);
      if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      else if (!s.up) process.stdout.write(`lab ${s.name}: down (${s.problems.join('; ')})\n`);
      else
        process.stdout.write(
          `lab ${s.name}: up — target ${s.target?.address}, ${Object.entries(s.services ?? {})
            .map(([k, v]) => `${k}:${v.port}`)
            .join(' ')}${s.vm ? `; VM ${s.vm.address} ${s.vm.up ? 'up' : 'DOWN'}` : ''}\n`,
        );
      if (!s.up) program.setOptionValue('exitCode', 1);
    });

  program
    .command('demo')
    .description('bring the lab up, run the bundled suite(s) and print where the report is')
    .option('--suite <file...>', 'suites to run', [join(ROOT, 'suites/lab-cable-pull.yaml'), join(ROOT, 'suites/lab-quick-migration.yaml')])
    .option('--vm', 'the real-VM comparison instead: boot the QEMU guest, run a live and a quick migration suite, compare them')
    .action(async (o: { suite: string[]; vm?: boolean }) => {
      const log = (l: string) => process.stdout.write(pc.dim(`${l}\n`));
      const [{ labUp }, { vmUp }] = await Promise.all([import('../lab/lab.ts'), import('../lab/vm.ts')]);
      const lab = await labUp(DEFAULT_LAB, { log });
      let code = 0;
      if (!o.vm) {
        for (const s of o.suite) code = Math.max(code, await runCommand(s, { live: true }));
        program.setOptionValue('exitCode', code);
        return;
      }
      await vmUp(lab, { log });
      const dirs: string[] = [];
      for (const s of ['suites/vm-live.yaml', 'suites/vm-quick.yaml']) {
        const out = defaultOutDir(basename(s, '.yaml'));
        dirs.push(out);
        code = Math.max(code, await runCommand(join(ROOT, s), { live: true, out }));
      }
      const cmp = defaultOutDir('vm-live-vs-quick');
      compareCommand(dirs, ['live migration', 'quick migration (1GbE)'], cmp);
      process.stdout.write(`\ncomparison: ${join(cmp, 'compare.html')}\n`);
      program.setOptionValue('exitCode', code);
    });

  registerFleetCommands(program, { runCommand });

  program
    .command('schema')
    .description('print the JSON Schema of the suite format, for editor completion and checks of YAML suites')
    .option('-o, --out <file>', 'write it to a file instead of stdout')
    .addHelpText('after', '\nIn a YAML suite, a first line "# yaml-language-server: $schema=PATH-TO-THE-FILE" lets an editor with the YAML language server use it.')
    .action(async (o: { out?: string }) => {
      const { suiteJsonSchemaText } = await import('../run/suite-schema.ts');
      const text = suiteJsonSchemaText();
      if (o.out) writeFileSync(o.out, text);
      else process.stdout.write(text);
    });

  program
    .command('kinds')
    .description('list the probe and injector kinds')
    .option('--json', 'machine-readable: { probes: [{ kind, summary, packages }], injectors: [{ kind, summary }] }')
    .action(async (o: { json?: boolean }) => {
      const [{ probes }, { injectors }] = await Promise.all([import('../probes/index.ts'), import('../injectors/index.ts')]);
      // the Debian packages a probe's client needs on this machine (a clone's setup installs them; an npm install does not)
      const needs = (p: (typeof probes)[number]) => p.packages ?? [];
      if (o.json) {
        process.stdout.write(
          JSON.stringify({ probes: probes.map((p) => ({ kind: p.kind, summary: p.summary, packages: needs(p) })), injectors: injectors.map((p) => ({ kind: p.kind, summary: p.summary })) }, null, 2) +
            '\n',
        );
        return;
      }
      const line = (p: (typeof probes)[number]) => `  ${p.kind.padEnd(16)} ${p.summary}${needs(p).length ? ` (Debian: ${needs(p).join(', ')})` : ''}`;
      process.stdout.write('probes:\n' + probes.map(line).join('\n') + '\n');
      process.stdout.write('injectors:\n' + injectors.map((p) => `  ${p.kind.padEnd(16)} ${p.summary}`).join('\n') + '\n');
    });
  return program;
}

/**
 * `blackout nonsense --help`: commander would print the top-level help and
 * exit 0 (help wins over the unknown command). An unknown command is an
 * error whatever flags follow: drop the help flags so commander reports it,
 * with its suggestion, and the exit code is 2.
 */
function unknownCommandWithHelp(program: Command, argv: string[]): string[] {
  const args = argv.slice(2);
  let cmd = program;
  // walk the command groups (blackout → lab → …): their operands are only command names
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('-')) continue;
    if (!cmd.commands.length) return argv;
    const find = (name: string) => cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (a === 'help') {
      // `help nonsense`: the same unknown command error as `nonsense`
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith('-') && !find(next)) return [...argv.slice(0, 2), ...args.slice(0, i), ...args.slice(i + 1).filter((x) => x !== '--help' && x !== '-h')];
      return argv;
    }
    const sub = find(a);
    if (!sub) return [...argv.slice(0, 2), ...args.filter((x) => x !== '--help' && x !== '-h')];
    cmd = sub;
  }
  return argv;
}

export type ParsedCommandLine = { ok: true; command: string[]; options: Record<string, unknown>; operands: string[] } | { ok: false; exitCode: number; message: string };

/**
 * Parses a blackout command line with the real program and runs nothing (every
 * command's action is replaced): CI recipes and docs are checked with it.
 * `--help`/`--version` parse as ok with command [].
 */
export async function parseCommandLine(args: string[]): Promise<ParsedCommandLine> {
  const program = buildProgram();
  let hit: ParsedCommandLine | null = null;
  let err = '';
  const every = (c: Command): Command[] => [c, ...c.commands.flatMap(every)];
  for (const c of every(program)) {
    c.exitOverride().configureOutput({ writeOut: () => {}, writeErr: (t) => (err += t), outputError: (t) => (err += t) });
    if (!c.commands.length && c !== program) {
      c.action((...a: unknown[]) => {
        const cmd = a.at(-1) as Command;
        const names: string[] = [];
        for (let x: Command | null = cmd; x && x !== program; x = x.parent) names.unshift(x.name());
        hit = { ok: true, command: names, options: cmd.opts(), operands: cmd.args };
      });
    }
  }
  try {
    await program.parseAsync(unknownCommandWithHelp(program, ['node', 'blackout', ...args]));
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.exitCode === 0) return { ok: true, command: [], options: {}, operands: [] };
    return { ok: false, exitCode: EXIT.badInput, message: err.trim() || e.message };
  }
  return hit ?? { ok: false, exitCode: EXIT.badInput, message: 'no command' };
}

/**
 * A reader that went away (a closed pipe, a parent that died: `blackout run | head`, a CI step
 * killed) must not stop a run that may hold a cut: its events still go to the log and its restore
 * still runs; only the printing stops. Without this, the stream's EPIPE reached the run's crash
 * guard, which printed it to the same stream: one run whose test process had died spun a core that
 * way for 40 minutes, holding its lab.
 */
export function quietOnBrokenPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    stream.write = (() => true) as typeof stream.write;
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnBrokenPipe(process.stdout);
  quietOnBrokenPipe(process.stderr);
  const program = buildProgram();
  try {
    await program.parseAsync(unknownCommandWithHelp(program, argv));
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT.badInput;
    process.stderr.write(pcErr.red(`blackout: ${(e as Error).message}\n`));
    return 1;
  }
  return (program.getOptionValue('exitCode') as number | undefined) ?? 0;
}
