/** The process exit codes of every command (a module of its own: the CLI needs them without loading the runner). */
export const EXIT = { ok: 0, expectationFailed: 1, badInput: 2, injectorFailed: 3, restoreFailed: 4, labUnsafe: 5, interrupted: 130 } as const;

/**
 * When one command stands for several runs (a fleet shard runs its jobs one after another), its exit
 * code is the one among theirs that most needs a person, first to last: a target the restore may have
 * left cut (4), the lab's safety net gone (5), an injector that failed (3), an interrupted run (130:
 * later jobs did not run), bad input (2: nothing injected), a failed expectation (1), ok (0).
 */
export const EXIT_SEVERITY: readonly number[] = [EXIT.restoreFailed, EXIT.labUnsafe, EXIT.injectorFailed, EXIT.interrupted, EXIT.badInput, EXIT.expectationFailed, EXIT.ok];

/** The worst of several runs' exit codes (EXIT_SEVERITY; a code not in it ranks just above ok); ok for none. */
export function worstExit(codes: readonly number[]): number {
  const rank = (c: number) => {
    const i = EXIT_SEVERITY.indexOf(c);
    return i === -1 ? EXIT_SEVERITY.length - 1.5 : i;
  };
  return codes.reduce((worst, c) => (rank(c) < rank(worst) ? c : worst), EXIT.ok as number);
}
