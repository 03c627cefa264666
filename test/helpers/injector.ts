/** Creating an injector straight from a suite-style block, with a context tests can inspect. */
import { createClock, type Clock } from '../../src/core/clock.ts';
import { injectorDefinition } from '../../src/injectors/index.ts';
import type { Injector } from '../../src/core/injector.ts';
import type { ResolvedTarget } from '../../src/core/target.ts';
import { tempDir } from './lab.ts';

export interface Made {
  injector: Injector;
  clock: Clock;
  logs: string[];
  infos: Record<string, unknown>[];
  transcript: string[];
}

export function makeInjector(block: Record<string, unknown>, opts: { dryRun?: boolean; target?: ResolvedTarget } = {}): Made {
  const def = injectorDefinition(String(block.kind));
  if (!def) throw new Error(`no injector ${String(block.kind)}`);
  const config = def.schema.parse(block);
  const clock = createClock();
  const logs: string[] = [];
  const infos: Record<string, unknown>[] = [];
  const transcript: string[] = [];
  const injector = def.create(config, {
    target: opts.target ?? { name: 'test', address: '192.0.2.10', services: {} },
    clock,
    runDir: tempDir('blackout-inj-'),
    log: (l) => logs.push(l),
    info: (d) => infos.push(d),
    dryRun: opts.dryRun ? { transcript: (l) => transcript.push(l) } : undefined,
  });
  return { injector, clock, logs, infos, transcript };
}
