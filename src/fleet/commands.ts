/**
 * The fleet commands (merge, import, campaign, worker, the fleet report),
 * registered on the CLI from here so src/cli.ts only gains one call.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import pc from 'picocolors';
import { EXIT } from '../runner.ts';
import { writeReports } from '../reporters/index.ts';
import { matrixMarkdown } from '../reporters/markdown.ts';
import { mergeRunDirs, MergeError } from './merge.ts';
import { RunStoreSink } from '../store/sink.ts';
import { checkStoreUrl, StoreError } from '../store/db.ts';
import type { BlackoutEvent } from '../events.ts';

export interface RunStoreHandle {
  onEvent: (e: BlackoutEvent) => void;
  close(): Promise<unknown>;
}

/** The store sink of `run --store` (the URL checked here: a bad one is bad input, nothing injected). */
export function openRunStore(url: string, opts: { outDir: string; log: (l: string) => void }): RunStoreHandle {
  checkStoreUrl(url, process.env.BLACKOUT_STORE === url ? 'BLACKOUT_STORE' : '--store');
  const sink = new RunStoreSink(url, { outDir: opts.outDir, log: opts.log, closeWaitMs: Number(process.env.BLACKOUT_STORE_WAIT_MS ?? 60_000) });
  return {
    onEvent: sink.onEvent,
    close: async () => {
      const s = await sink.close();
      if (s.notStored === 0) opts.log(`store: ${s.stored} events of run ${s.runId} stored${s.reconnects ? ` (the database was away ${(s.downMs / 1000).toFixed(1)} s; caught up)` : ''}`);
      return s;
    },
  };
}

function fail(program: Command, message: string, code: number = EXIT.badInput): void {
  process.stderr.write(pc.red(`${message}\n`));
  program.setOptionValue('exitCode', code);
}

export async function fleetReportCommand(campaign: string | undefined, store: string | undefined, out: string): Promise<number> {
  if (campaign === undefined) {
    process.stderr.write(pc.red('report: give a run folder, or --campaign NAME with --store\n'));
    return EXIT.badInput;
  }
  try {
    checkStoreUrl(store);
  } catch (e) {
    process.stderr.write(pc.red(`${(e as Error).message}\n`));
    return EXIT.badInput;
  }
  const { writeFleetReport } = await import('./fleet-report.ts');
  return writeFleetReport(store!, campaign, out);
}

export function registerFleetCommands(program: Command, _deps: { runCommand: unknown }): void {
  program
    .command('merge')
    .description("one run folder and every report from the run folders of a sweep's shards (`run --shard i/n`), as if it had run unsharded")
    .argument('<dirs...>', 'the shards\' run folders')
    .requiredOption('-o, --out <dir>', 'the merged run folder')
    .action((dirs: string[], o: { out: string }) => {
      try {
        const r = mergeRunDirs(dirs, o.out);
        const { analysis, files } = writeReports(r.outDir);
        process.stdout.write(`${matrixMarkdown(analysis)}\n\n${analysis.decision.verdict.headline}\n\nmerged ${r.runs} run(s), ${r.trials} trial(s)\n${files.join('\n')}\n`);
        if (r.missingShards.length) fail(program, `shard(s) ${r.missingShards.join(', ')} of ${dirs.length + r.missingShards.length} missing: the merged report lacks their trials`, 1);
      } catch (e) {
        if (!(e instanceof MergeError)) throw e;
        fail(program, e.message);
      }
    });

  program
    .command('import')
    .description('add a run folder to the results store (a run made without --store, or one whose database went away); resumes after what is stored')
    .argument('<dirs...>', 'run folders')
    .option('--store <url>', 'results store, postgres://… (or $BLACKOUT_STORE)')
    .action(async (dirs: string[], o: { store?: string }) => {
      let url: string;
      try {
        url = checkStoreUrl(o.store ?? process.env.BLACKOUT_STORE);
      } catch (e) {
        return fail(program, (e as Error).message);
      }
      for (const d of dirs) {
        if (!existsSync(join(d, 'events.jsonl'))) return fail(program, `${join(resolve(d), 'events.jsonl')}: not found`);
      }
      const { importRunDir } = await import('../store/sink.ts');
      for (const d of dirs) {
        try {
          const s = await importRunDir(url, resolve(d), (l) => process.stderr.write(pc.dim(`${l}\n`)));
          if (s.notStored || s.refused) return fail(program, `${d}: ${s.notStored + s.refused} event(s) could not be stored`, 1);
          process.stdout.write(`${d}: run ${s.runId}, ${s.stored} event(s) in the store\n`);
        } catch (e) {
          if (!(e instanceof StoreError)) throw e;
          return fail(program, e.message, 1);
        }
      }
    });
}
