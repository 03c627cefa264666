/**
 * Ctrl-C and SIGTERM while runs are under way, for every command that runs
 * suites (`run`, a fleet's shard): the first signal aborts (the runner
 * restores the target at once, then the reports of what completed are
 * written); a second only says that the restore is under way, because the
 * kernel's own timeout restores the target at the latest, whatever happens
 * to this process.
 */
import { pcErr } from '../core/color.ts';

export function abortOnSignals(whatNow: string): { signal: AbortSignal; dispose: () => void } {
  const abort = new AbortController();
  let signals = 0;
  const on = (sig: 'SIGINT' | 'SIGTERM') => {
    if (++signals === 1) {
      process.stderr.write(pcErr.yellow(`\n${sig}: ${whatNow}\n`));
      abort.abort(new Error(sig));
    } else process.stderr.write(pcErr.yellow(`${sig} again: still restoring the target; it is restored by the kernel timeout at the latest\n`));
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: abort.signal,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
