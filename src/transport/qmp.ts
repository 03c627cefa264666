/**
 * A small QMP (QEMU Machine Protocol) client over a unix socket.
 *
 * - the capabilities handshake is done by `QmpClient.connect`;
 * - every command carries an `id`, and its reply is matched by it;
 * - every call is bounded by a timeout: a wedged QEMU gives an error, never a hang;
 * - asynchronous events are kept (the last few hundred) so a caller can wait
 *   for an event that may already have arrived, and carry QEMU's own wall-clock
 *   timestamp, which `eventWallMs` turns into epoch ms (map it onto the run
 *   clock with `clock.fromWallMs`): the instant QEMU paused or resumed the
 *   guest, independent of how late we read it.
 *
 * One connection per QEMU monitor at a time: a QMP socket serves one client,
 * others wait in its backlog. vm.ts gives each QEMU two monitors, one for the
 * harness and one (`aux`) for heal and the watchdog.
 */
import { connect, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
  /** position in this client's event history (for `waitForEvent({ after })`) */
  seq: number;
}

export class QmpError extends Error {
  constructor(
    message: string,
    /** QEMU's error class (GenericError, CommandNotFound, …) or "Timeout" / "Closed" */
    readonly errorClass: string,
  ) {
    super(message);
  }
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  match(ev: QmpEvent): boolean;
  resolve(ev: QmpEvent): void;
}

export interface QmpConnectOptions {
  /** for the socket connect plus the greeting and the handshake; default 5 s */
  timeoutMs?: number;
}

/** Epoch ms of a QMP event (QEMU stamps events with g_get_real_time()). */
export function eventWallMs(ev: Pick<QmpEvent, 'timestamp'>): number {
  return ev.timestamp.seconds * 1000 + ev.timestamp.microseconds / 1000;
}

const HISTORY = 500;

export class QmpClient {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<Waiter>();
  private readonly history: QmpEvent[] = [];
  private eventSeq = 0;
  private closedErr: QmpError | null = null;
  private greeting: ((v: Record<string, unknown>) => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.onData(d));
    socket.on('error', (e) => this.fail(new QmpError(`QMP ${path}: ${e.message}`, 'Closed')));
    socket.on('close', () => this.fail(new QmpError(`QMP ${path}: connection closed`, 'Closed')));
  }

  /** Connects, reads the greeting and negotiates capabilities; bounded by `timeoutMs`. */
  static connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const socket = connect({ path });
      const client = new QmpClient(socket, path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new QmpError(`QMP ${path}: no greeting within ${timeoutMs} ms`, 'Timeout'));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new QmpError(`QMP ${path}: ${e.message}`, 'Closed'));
      });
      client.greeting = () => {
        client
          .execute('qmp_capabilities', undefined, { timeoutMs })
          .then(() => {
            clearTimeout(timer);
            resolve(client);
          })
          .catch((e: Error) => {
            clearTimeout(timer);
            socket.destroy();
            reject(e);
          });
      };
    });
  }

  get closed(): boolean {
    return this.closedErr !== null;
  }

  /** Runs one command; resolves with its `return` value, rejects with QmpError on an error reply, a timeout or a close. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    const id = `bo-${this.nextId++}`;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new QmpError(`QMP ${command}: no reply within ${timeoutMs} ms`, 'Timeout'));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args) msg.arguments = args;
      this.socket.write(`${JSON.stringify(msg)}\n`);
    });
  }

  /** The sequence number the next event will get: pass it as `after` to wait only for later events. */
  mark(): number {
    return this.eventSeq;
  }

  /** Events received so far (the most recent few hundred). */
  events(): readonly QmpEvent[] {
    return this.history;
  }

  /**
   * Resolves with the first event named `name` (and matching `predicate`) whose
   * seq is ≥ `after` (default: any kept event, so one that already arrived counts).
   */
  waitForEvent(name: string, opts: { after?: number; timeoutMs: number; predicate?: (ev: QmpEvent) => boolean }): Promise<QmpEvent> {
    const after = opts.after ?? 0;
    const match = (ev: QmpEvent) => ev.event === name && ev.seq >= after && (opts.predicate?.(ev) ?? true);
    const seen = this.history.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (ev) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(ev);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new QmpError(`QMP: no ${name} event within ${opts.timeoutMs} ms`, 'Timeout'));
      }, opts.timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Closes the connection (pending calls are rejected). */
  close(): void {
    this.socket.destroy();
    this.fail(new QmpError(`QMP ${this.path}: closed by us`, 'Closed'));
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // QEMU only speaks JSON here; ignore a torn line rather than die
      }
      this.onMessage(msg);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      const g = this.greeting;
      this.greeting = null;
      g?.(msg);
      return;
    }
    if (typeof msg.event === 'string') {
      const ev: QmpEvent = {
        event: msg.event,
        data: msg.data as Record<string, unknown> | undefined,
        timestamp: (msg.timestamp as QmpEvent['timestamp']) ?? { seconds: 0, microseconds: 0 },
        seq: this.eventSeq++,
      };
      this.history.push(ev);
      if (this.history.length > HISTORY) this.history.shift();
      for (const w of [...this.waiters]) if (w.match(ev)) w.resolve(ev);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p || !id) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const err = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(`QMP ${p.command}: ${err.desc ?? 'error'}`, err.class ?? 'GenericError'));
    } else {
      p.resolve(msg.return);
    }
  }

  private fail(err: QmpError): void {
    if (this.closedErr) return;
    this.closedErr = err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
    this.waiters.clear();
  }
}

/** What `query-migrate` returns (the fields we use). */
export interface MigrationInfo {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'expected-downtime'?: number;
  'setup-time'?: number;
  'error-desc'?: string;
  ram?: { transferred?: number; total?: number; remaining?: number; duplicate?: number; normal?: number; mbps?: number; 'dirty-sync-count'?: number };
}

export interface RunStatus {
  status: string;
  running: boolean;
}

/** Connects with a bounded retry: right after QEMU starts its socket may not exist yet. */
export async function connectQmp(path: string, timeoutMs: number): Promise<QmpClient> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | null = null;
  while (Date.now() < deadline) {
    try {
      return await QmpClient.connect(path, { timeoutMs: Math.max(500, Math.min(5000, deadline - Date.now())) });
    } catch (e) {
      last = e as Error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new QmpError(`QMP ${path}: could not connect within ${timeoutMs} ms (${last?.message ?? 'no attempt'})`, 'Timeout');
}

/**
 * Polls `query-migrate` until the status is final (completed / failed /
 * cancelled) or `timeoutMs` passes; returns the last answer.
 */
export async function pollMigration(qmp: QmpClient, opts: { timeoutMs: number; intervalMs?: number; until?: (s: MigrationInfo) => boolean }): Promise<MigrationInfo> {
  const deadline = Date.now() + opts.timeoutMs;
  const done = opts.until ?? ((s: MigrationInfo) => s.status === 'completed' || s.status === 'failed' || s.status === 'cancelled');
  for (;;) {
    const s = await qmp.execute<MigrationInfo>('query-migrate', undefined, { timeoutMs: 5000 });
    if (done(s)) return s;
    if (Date.now() > deadline) {
      throw new QmpError(`migration still "${s.status ?? 'none'}" after ${opts.timeoutMs} ms`, 'Timeout');
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
