/** The process exit codes of every command (a module of its own: the CLI needs them without loading the runner). */
export const EXIT = { ok: 0, expectationFailed: 1, badInput: 2, injectorFailed: 3, restoreFailed: 4, labUnsafe: 5, interrupted: 130 } as const;

/**
 * Most serious first, for one code that stands for several runs (merged shards, a fleet's jobs): a target that may
 * still be cut off (restore failed) outweighs everything; an unsafe lab or a failed injector means the figures are not
 * a blackout's; an interrupted run is incomplete; bad input ran nothing; an expectation failed is a finished run's verdict.
 */
const SEVERITY: readonly number[] = [EXIT.restoreFailed, EXIT.labUnsafe, EXIT.injectorFailed, EXIT.interrupted, EXIT.badInput, EXIT.expectationFailed];

/** The most serious of several runs' exit codes (0 when all passed; an unknown non-zero code counts as a failed expectation's). */
export function worstExit(codes: Iterable<number>): number {
  let worst = -1;
  let other = false;
  for (const c of codes) {
    const i = SEVERITY.indexOf(c);
    if (i >= 0) worst = worst < 0 ? i : Math.min(worst, i);
    else if (c !== EXIT.ok) other = true;
  }
  if (worst >= 0) return SEVERITY[worst]!;
  return other ? EXIT.expectationFailed : EXIT.ok;
}
