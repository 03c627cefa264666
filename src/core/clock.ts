/**
 * The run clock: one monotonic clock shared by the injector and every probe.
 *
 * Times are milliseconds (float, sub-microsecond resolution) since the run's
 * origin, read from CLOCK_MONOTONIC through process.hrtime. CLOCK_MONOTONIC is
 * system-wide, so a child process or a watchdog can be put on the same clock by
 * passing it `originNs`.
 *
 * Some tools only print wall-clock timestamps (`ping -D` prints gettimeofday):
 * `fromWallMs` maps those onto the run clock with the realtime−monotonic offset
 * measured once at start; that is exact as long as the wall clock is not
 * stepped during the run (NTP slewing is well below the probe precision).
 */
export interface Clock {
  /** ms since the run's origin on the monotonic clock */
  now(): number;
  /** the origin on CLOCK_MONOTONIC, in ns */
  readonly originNs: bigint;
  /** wall time (epoch ms) of the origin, for humans */
  readonly originWallMs: number;
  /** run-clock ms for a wall-clock epoch-ms timestamp taken on this machine */
  fromWallMs(epochMs: number): number;
  /** wall-clock epoch ms for a run-clock time */
  toWallMs(t: number): number;
}

export function createClock(originNs: bigint = process.hrtime.bigint()): Clock {
  // performance.timeOrigin is the wall time of performance.now()'s zero with
  // µs precision; performance.now() runs on the same monotonic source as hrtime.
  const monoNowNs = process.hrtime.bigint();
  const wallNowMs = performance.timeOrigin + performance.now();
  const originWallMs = wallNowMs - Number(monoNowNs - originNs) / 1e6;
  return {
    originNs,
    originWallMs,
    now: () => Number(process.hrtime.bigint() - originNs) / 1e6,
    fromWallMs: (epochMs) => epochMs - originWallMs,
    toWallMs: (t) => originWallMs + t,
  };
}

/** setTimeout fires at once for a delay of 2^31 ms or more: longer sleeps are chained */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves after `ms`, or rejects with the signal's reason when aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    let left = Math.max(0, ms);
    let timer: NodeJS.Timeout;
    const arm = () => {
      const step = Math.min(left, MAX_TIMER_MS);
      left -= step;
      timer = setTimeout(() => {
        if (left > 0) return arm();
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, step);
    };
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    arm();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Resolves once `clock` reads `t` or later (rejects when aborted). A Node timer can fire up to a
 * millisecond before its delay has passed: the event loop's clock is in whole milliseconds, read
 * when the timer was set (300 sleeps of 1-6 ms: 265 ended early, by up to 0.9 ms). So a sleep alone
 * ended 2 s blackouts at 1 999.9 ms; the rest is slept again.
 */
export async function sleepUntil(clock: Clock, t: number, signal?: AbortSignal): Promise<void> {
  for (let left = t - clock.now(); left > 0; left = t - clock.now()) await sleep(left, signal);
}

/** Parses "250ms", "10s", "2m", "1.5s", "1h" or a number of ms; throws a readable message otherwise. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`expected a finite number of ms, got ${value}`);
    return value;
  }
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m) throw new Error(`expected a duration like 250ms, 10s or 2m, got "${value}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return n * factor;
}

/** Waits for `p` at most `ms`; never keeps the process alive after `p` settles. */
export async function atMost<T>(p: Promise<T> | null | undefined, ms: number): Promise<T | undefined> {
  if (!p) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
