/** The process exit codes of every command (a module of its own: the CLI needs them without loading the runner). */
export const EXIT = { ok: 0, expectationFailed: 1, badInput: 2, injectorFailed: 3, restoreFailed: 4, labUnsafe: 5, interrupted: 130 } as const;
