/**
 * The `blackout` command line. Every command explains itself with --help.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import pc from 'picocolors';
import { loadSuite, SuiteError } from './suite.ts';
import { runSuite, EXIT } from './runner.ts';
import { analyzeRunDir, writeReports } from './reporters/index.ts';
import { AllureError, generateAllureReport } from './reporters/allure.ts';
import { compareHtml, compareMarkdown } from './reporters/compare.ts';
import { linearSweepTrials } from './search.ts';
import { labUp, labDown, labStatus, DEFAULT_LAB } from './lab/lab.ts';
import { vmUp } from './lab/vm.ts';
import { LiveView } from './live-view.ts';
import { createClock } from './clock.ts';
import { EventLogError } from './event-log.ts';
import { probes } from '../probes/index.ts';
import { injectors } from '../injectors/index.ts';
import { matrixMarkdown } from './reporters/markdown.ts';
import { VERSION } from './version.ts';
import { dryRun } from './dry-run.ts';

const ROOT = resolve(new URL('..', import.meta.url).pathname);

function defaultOutDir(suiteName: string): string {
  const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..+$/, '');
  const base = join(ROOT, 'reports', `${stamp}-${suiteName.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40)}`);
  // the same suite twice within a second gets its own folder too
  let dir = base;
  for (let i = 2; existsSync(dir); i++) dir = `${base}-${i}`;
  return dir;
}

interface RunCliOptions {
  out?: string;
  lab?: string;
  live: boolean;
  dryRun?: boolean;
}

/** Runs a suite with signal handling, the live view and the reports; returns the exit code. */
export async function runCommand(file: string, o: RunCliOptions): Promise<number> {
  let suite;
  try {
    suite = await loadSuite(file);
  } catch (e) {
    if (e instanceof SuiteError) {
      process.stderr.write(pc.red(`invalid suite ${e.message}\n`));
      return EXIT.badInput;
    }
    throw e;
  }
  if (o.dryRun) return dryRun(suite, { lab: o.lab, write: (l) => process.stdout.write(`${l}\n`) });
  const outDir = resolve(o.out ?? defaultOutDir(suite.name));
  if (existsSync(join(outDir, 'events.jsonl'))) {
    process.stderr.write(pc.red(`--out ${outDir}: that folder already holds a run (events.jsonl); choose another folder\n`));
    return EXIT.badInput;
  }
  const clock = createClock();
  // the manual injector owns the terminal during a blackout (instructions, count, the probes' state)
  const view = o.live && suite.injector.kind !== 'manual' ? new LiveView(clock.now, process.stdout, suite.blackouts.length) : null;
  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals === 1) {
      process.stderr.write(pc.yellow(`\n${sig}: restoring the target, then writing the reports of what completed…\n`));
      abort.abort(new Error(sig));
    } else process.stderr.write(pc.yellow(`${sig} again: still restoring the target; it is restored by the kernel timeout at the latest\n`));
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  view?.start();
  let result;
  try {
    result = await runSuite(suite, {
      outDir,
      lab: o.lab,
      signal: abort.signal,
      clock,
      onEvent: view?.onEvent,
      log: view ? () => {} : (l) => process.stdout.write(`${l}\n`),
    });
  } finally {
    view?.stop();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  const { analysis, files } = writeReports(outDir);
  if (result.exitCode === EXIT.badInput) {
    process.stderr.write(pc.red(`preflight failed, nothing was injected: ${result.reason.replace(/^preflight: /, '')}\n`));
    return EXIT.badInput;
  }
  process.stdout.write(`\n${matrixMarkdown(analysis)}\n\n${analysis.decision.verdict.headline}\n${analysis.decision.verdict.second}\n`);
  for (const f of analysis.decision.findings.filter((x) => x.severity !== 'info')) process.stdout.write(pc.yellow(`${f.severity}: ${f.text}\n`));
  for (const e of analysis.expectations) process.stdout.write(`${e.passed ? pc.green('✓') : pc.red('✗')} ${e.message}\n`);
  process.stdout.write(`\nreport: ${join(outDir, 'report.html')}\n`);
  process.stdout.write(pc.dim(`also: ${files.filter((f) => !f.endsWith('.html')).map((f) => f.slice(outDir.length + 1)).join(', ')}, events.jsonl\n`));
  if (result.exitCode === EXIT.injectorFailed) process.stderr.write(pc.red(`the injector failed (exit ${EXIT.injectorFailed}); the target was restored: ${result.reason.replace(/^the injector failed; the target was restored: /, '')}\n`));
  if (result.exitCode === EXIT.restoreFailed) process.stderr.write(pc.red(`the injector failed and the restore failed too (exit ${EXIT.restoreFailed}): ${result.reason}\n`));
  if (result.exitCode !== EXIT.ok) return result.exitCode;
  return analysis.expectations.every((e) => e.passed) ? EXIT.ok : EXIT.expectationFailed;
}

/** `blackout compare`: the side-by-side report of several runs; returns the exit code. */
export function compareCommand(dirs: string[], labels: string[] | undefined, out: string): number {
  if (labels && labels.length !== dirs.length) {
    process.stderr.write(pc.red(`--label: ${labels.length} label(s) for ${dirs.length} run(s)\n`));
    return EXIT.badInput;
  }
  const runs = [];
  for (const [i, d] of dirs.entries()) {
    if (!existsSync(join(d, 'events.jsonl'))) {
      process.stderr.write(pc.red(`${join(d, 'events.jsonl')}: not found\n`));
      return EXIT.badInput;
    }
    try {
      runs.push({ label: labels?.[i] ?? basename(resolve(d)), analysis: analyzeRunDir(d).analysis });
    } catch (e) {
      if (!(e instanceof EventLogError)) throw e;
      process.stderr.write(pc.red(`${d}: ${e.message}\n`));
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
    .showHelpAfterError()
    .exitOverride();

  program
    .command('run')
    .description('run a suite: every blackout length is a trial (warm-up → cut → restore → recovery watch); writes events.jsonl and the reports')
    .argument('<suite>', 'suite file (.yaml, or .ts exporting defineSuite(...))')
    .option('-o, --out <dir>', 'run folder (default: reports/<date>-<suite name>)')
    .option('--lab <name>', `lab instance for "target: lab" (default: ${DEFAULT_LAB}, or $BLACKOUT_LAB)`)
    .option('--no-live', 'no live terminal view; one line per step instead')
    .option('--dry-run', "print the injector's exact command transcript (secrets as placeholders) and touch nothing")
    .addHelpText(
      'after',
      '\nExit codes: 0 every expectation held · 1 one did not · 2 bad suite or preflight failure (nothing injected) · ' +
        '3 the injector failed mid-run (a cut or restore command failed); the target was restored, the run stopped with its reports · ' +
        '4 the injector failed and so did the restore: the target is restored by its kernel timeout / watchdog at the deadline at the latest · ' +
        '130 interrupted (target restored first)',
    )
    .action(async (file: string, o: RunCliOptions) => {
      program.setOptionValue('exitCode', await runCommand(file, o));
    });

  program
    .command('report')
    .description("rebuild summary.json, junit.xml, summary.md, report.html and allure-results/ from a run folder's events.jsonl (also for a run that died half-way)")
    .argument('<dir>', 'run folder')
    .option('--allure', 'also build the Allure HTML report into DIR/allure-report (allure-commandline; needs Java)')
    .option('--single-file', 'with --allure: one self-contained index.html')
    .action(async (dir: string, o: { allure?: boolean; singleFile?: boolean }) => {
      const path = join(dir, 'events.jsonl');
      if (!existsSync(path)) {
        process.stderr.write(pc.red(`${path}: not found\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
        return;
      }
      try {
        const { analysis, files, tornTail, tornLines } = writeReports(dir);
        if (tornTail) process.stderr.write(pc.yellow('the last line of events.jsonl was torn (the run died while writing it); it was skipped\n'));
        const inner = tornLines - (tornTail ? 1 : 0);
        if (inner > 0) process.stderr.write(pc.yellow(`${inner} torn line${inner > 1 ? 's' : ''} inside events.jsonl (a write failed half-way) ${inner > 1 ? 'were' : 'was'} skipped\n`));
        if (!analysis.complete) process.stderr.write(pc.yellow('the run did not finish: the reports are marked incomplete\n'));
        process.stdout.write(`${analysis.decision.verdict.headline}\n${analysis.decision.verdict.second}\n\n${matrixMarkdown(analysis)}\n\n${files.join('\n')}\n`);
        if (o.allure) {
          const r = await generateAllureReport(dir, { singleFile: o.singleFile });
          process.stdout.write(`${join(r.reportDir, 'index.html')} (Allure, built in ${(r.ms / 1000).toFixed(1)} s)\n`);
        }
      } catch (e) {
        if (e instanceof AllureError) {
          process.stderr.write(pc.red(`${e.message}\n`));
          program.setOptionValue('exitCode', 1);
          return;
        }
        if (!(e instanceof EventLogError)) throw e;
        process.stderr.write(pc.red(`${e.message}\n`));
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
    .action(async (file: string) => {
      try {
        const s = await loadSuite(file);
        const sw = s.sweep;
        const how = !sw
          ? 'blackouts (injector default)'
          : sw.mode === 'search'
            ? `search ${sw.from}–${sw.to} ms at ${sw.resolution} ms resolution (≤ ${sw.maxTrials} trials; a linear sweep would take ${linearSweepTrials(sw.from, sw.to, sw.resolution)})`
            : `blackouts ${s.blackouts.map((b) => `${b} ms`).join(', ')}`;
        process.stdout.write(`${file}: valid — ${s.probes.length} probes, injector ${s.injector.kind}, ${how}\n`);
      } catch (e) {
        if (!(e instanceof SuiteError)) throw e;
        process.stderr.write(pc.red(`invalid suite ${e.message}\n`));
        program.setOptionValue('exitCode', EXIT.badInput);
      }
    });

  const lab = program.command('lab').description('the lab target: a host in a network namespace with real servers (PostgreSQL, OpenSSH, TCP echo), behind a lab switch where the cable is pulled');
  lab
    .command('up')
    .description('bring the lab up (idempotent); installs nothing: run `npm run setup` once as root first')
    .option('--name <name>', 'lab instance name', DEFAULT_LAB)
    .option('--vm', 'also boot the QEMU guest on the lab switch (target: lab-vm; real quick and live migration)')
    .option('--vm-memory <MB>', 'guest memory in MB', '128')
    .action(async (o: { name: string; vm?: boolean; vmMemory: string }) => {
      const log = (l: string) => process.stdout.write(`${l}\n`);
      const s = await labUp(o.name, { log });
      process.stdout.write(`lab ${s.name} is up: target ${s.targetAddress} (namespace ${s.targetNs}), services ${Object.entries(s.services).map(([k, v]) => `${k}:${v.port}`).join(' ')}\n`);
      if (o.vm) {
        const vm = await vmUp(s, { memoryMB: Number(o.vmMemory), log });
        process.stdout.write(`VM is up: ${vm.address} (booted in ${(vm.bootMs / 1000).toFixed(1)} s), services ${Object.entries(vm.ports).map(([k, p]) => `${k}:${p}`).join(' ')}\n`);
      }
    });
  lab
    .command('down')
    .description('tear the lab down: no namespace, veth, nft table, cgroup, route or process of it remains')
    .option('--name <name>', 'lab instance name', DEFAULT_LAB)
    .action(async (o: { name: string }) => {
      await labDown(o.name, { log: (l) => process.stdout.write(`${l}\n`) });
    });
  lab
    .command('status')
    .description("the lab target's address, its services' ports, and whether it is up")
    .option('--name <name>', 'lab instance name', DEFAULT_LAB)
    .option('--json', 'machine-readable')
    .action(async (o: { name: string; json?: boolean }) => {
      const s = await labStatus(o.name);
      if (o.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
      else if (!s.up) process.stdout.write(`lab ${s.name}: down (${s.problems.join('; ')})\n`);
      else process.stdout.write(`lab ${s.name}: up — target ${s.target?.address}, ${Object.entries(s.services ?? {}).map(([k, v]) => `${k}:${v.port}`).join(' ')}${s.vm ? `; VM ${s.vm.address} ${s.vm.up ? 'up' : 'DOWN'}` : ''}\n`);
      if (!s.up) program.setOptionValue('exitCode', 1);
    });

  program
    .command('demo')
    .description('bring the lab up, run the bundled suite(s) and print where the report is')
    .option('--suite <file...>', 'suites to run', [join(ROOT, 'suites/lab-cable-pull.yaml'), join(ROOT, 'suites/lab-quick-migration.yaml')])
    .option('--vm', 'the real-VM comparison instead: boot the QEMU guest, run a live and a quick migration suite, compare them')
    .action(async (o: { suite: string[]; vm?: boolean }) => {
      const log = (l: string) => process.stdout.write(pc.dim(`${l}\n`));
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

  program
    .command('kinds')
    .description('list the probe and injector kinds')
    .action(() => {
      process.stdout.write('probes:\n' + probes.map((p) => `  ${p.kind.padEnd(16)} ${p.summary}`).join('\n') + '\n');
      process.stdout.write('injectors:\n' + injectors.map((p) => `  ${p.kind.padEnd(16)} ${p.summary}`).join('\n') + '\n');
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT.badInput;
    process.stderr.write(pc.red(`blackout: ${(e as Error).message}\n`));
    return 1;
  }
  return (program.getOptionValue('exitCode') as number | undefined) ?? 0;
}
