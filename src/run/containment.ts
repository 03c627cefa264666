/**
 * Containment: a probe that throws from a timer or a socket callback, or
 * leaves a promise rejected, must not crash the run. Every probe runs inside
 * an AsyncLocalStorage scope naming it; the process-level handlers installed
 * for the run attribute a crash to its probe, which the runner then records
 * (a fatal probe-error and a lost session) and stops. The run goes on, and the
 * target is restored as always.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface ProbeScope {
  probe: string;
  trial: number;
  onCrash(err: unknown): void;
}

export const probeScope = new AsyncLocalStorage<ProbeScope>();

/** Installs the crash guards for the duration of a run; returns the uninstaller. */
export function installCrashGuards(onUnattributed: (err: unknown) => void): () => void {
  const handler = (err: unknown) => {
    const scope = probeScope.getStore();
    if (scope) scope.onCrash(err);
    else onUnattributed(err);
  };
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
  return () => {
    process.off('uncaughtException', handler);
    process.off('unhandledRejection', handler);
  };
}
