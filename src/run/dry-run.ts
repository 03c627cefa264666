/**
 * `blackout run SUITE --dry-run`: prints the injector's exact command
 * transcript — preflight, heal, then every trial's cut and restore with their
 * times on the run clock — without touching anything. Secrets appear as
 * placeholders (<secret from env NAME>). No probe is started, nothing is
 * connected to: every command is answered "exit 0, no output" by the dry-run
 * executor.
 */
import { createClock } from '../core/clock.ts';
import { resolveTarget } from './resolve-target.ts';
import type { Suite } from './suite.ts';
import type { ResolvedTarget } from '../core/target.ts';
import { injectorDefinition } from '../injectors/index.ts';
import { formatMs } from '../core/format.ts';

export async function dryRun(suite: Suite, opts: { lab?: string; write: (line: string) => void }): Promise<number> {
  const w = opts.write;
  let target: ResolvedTarget;
  try {
    target = await resolveTarget(suite.target, { lab: opts.lab });
  } catch (e) {
    // a lab that is not up: the transcript can still be shown
    target = { name: typeof suite.target === 'string' ? suite.target : 'target', address: '<target address>', services: {} };
    w(`# target not resolved (${(e as Error).message}); using placeholders`);
  }
  // a virtual run clock: the transcript shows when each command would go out
  const real = createClock();
  let offset = 0;
  const clock = { ...real, now: () => real.now() + offset };
  const def = injectorDefinition(suite.injector.kind)!;
  const stamp = () => `t+${(clock.now() / 1000).toFixed(3)}s`;
  const injector = def.create(suite.injector, {
    target,
    clock,
    runDir: '/nonexistent/dry-run',
    log: (l) => w(`# ${l}`),
    info: () => {},
    dryRun: { transcript: (line) => w(`${stamp()} ${line}`) },
  });
  w(`# blackout --dry-run: suite "${suite.name}", target ${target.name}, injector ${suite.injector.kind}`);
  w(`# ${JSON.stringify(injector.describe())}`);
  if (!injector.dryRunCapable) {
    w(`# injector ${suite.injector.kind} acts on the lab directly and has no command transcript; nothing was done`);
    return 0;
  }
  w('# preflight');
  await injector.preflight();
  w('# heal (undo what a dead run left)');
  await injector.heal();
  const sweep = suite.sweep;
  let lengths = suite.blackouts.length ? suite.blackouts : (injector.defaultBlackoutsMs ?? []);
  if (sweep?.mode === 'search') {
    // the search picks each length from what the probes did: show its two ends
    w(`# an adaptive search between ${formatMs(sweep.from)} and ${formatMs(sweep.to)} (up to ${sweep.maxTrials} trials); shown: its two ends`);
    lengths = [sweep.from, sweep.to];
  }
  for (const [i, ms] of lengths.entries()) {
    w(`# trial ${i + 1}/${lengths.length}: ${injector.selfTimed ? 'self-timed (it lasts what the operation lasts)' : `${formatMs(ms)} blackout`}`);
    const cut = await injector.cut(ms);
    w(`#   ${injector.selfTimed ? 'started' : 'cut'}; deadline ${formatMs(cut.deadline - cut.before)} after it (the watchdog, the kernel timeout or the operation's bound)`);
    if (!injector.selfTimed) {
      offset += Math.max(0, cut.before + ms - clock.now());
      w(`#   … ${formatMs(ms)} blackout …`);
    }
    await injector.restore('scheduled');
  }
  await injector.dispose?.();
  w('# dry run: nothing was executed');
  return 0;
}
