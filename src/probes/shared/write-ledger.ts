/**
 * The write ledger of the database probes (postgres, odbc): what the client
 * sent, what the server acknowledged, and what the client never learned
 * (an error or a timeout after the INSERT was sent: indeterminate).
 *
 * At close the probe reads the table back and `verify()` reports:
 *  - every acknowledged write must be present; a missing one is data loss
 *    (a failing `verify` event → the trial's outcome is `failed`);
 *  - each indeterminate write is checked: did it land or not (a note, not a
 *    failure: the client was told it did not know).
 */
import type { ProbeContext } from '../../core/probe.ts';

export class WriteLedger {
  readonly acked = new Set<number>();
  /** seq → the client's error text when its outcome became unknown */
  readonly indeterminate = new Map<number, string>();
  /** seq → the server's error: definitely not written */
  readonly rejected = new Map<number, string>();

  ack(seq: number): void {
    this.acked.add(seq);
    this.indeterminate.delete(seq);
  }

  /** the INSERT failed: `serverSaidNo` when the server answered with an error (the statement was rolled back) */
  fail(seq: number, message: string, serverSaidNo: boolean): void {
    if (this.acked.has(seq)) return;
    if (serverSaidNo) this.rejected.set(seq, message);
    else this.indeterminate.set(seq, message);
  }

  /** Emits the verification for the rows found in the table. */
  verify(ctx: ProbeContext, present: Iterable<number>, table: string): { lost: number[]; landed: number[]; notLanded: number[] } {
    const found = new Set<number>(present);
    const lost = [...this.acked].filter((s) => !found.has(s)).sort((a, b) => a - b);
    const landed = [...this.indeterminate.keys()].filter((s) => found.has(s)).sort((a, b) => a - b);
    const notLanded = [...this.indeterminate.keys()].filter((s) => !found.has(s)).sort((a, b) => a - b);
    const rejectedButPresent = [...this.rejected.keys()].filter((s) => found.has(s));
    const data = {
      table,
      acknowledged: this.acked.size,
      lostWrites: lost.length,
      lost: lost.slice(0, 50),
      indeterminate: this.indeterminate.size,
      indeterminateLanded: landed,
      indeterminateNotLanded: notLanded,
      rejected: this.rejected.size,
      ...(rejectedButPresent.length ? { rejectedButPresent } : {}),
    };
    if (this.indeterminate.size) {
      ctx.emit({
        type: 'probe-note',
        message: `${this.indeterminate.size} write(s) with an unknown outcome (error after sending): ${landed.length} landed${landed.length ? ` (seq ${landed.join(', ')})` : ''}, ${notLanded.length} did not${notLanded.length ? ` (seq ${notLanded.join(', ')})` : ''}`,
        data: { indeterminate: Object.fromEntries(this.indeterminate), landed, notLanded },
      });
    }
    if (lost.length) {
      ctx.emit({
        type: 'verify',
        ok: false,
        message: `data loss: ${lost.length} of ${this.acked.size} acknowledged writes missing from ${table} (seq ${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ', …' : ''})`,
        data,
      });
    } else if (rejectedButPresent.length) {
      ctx.emit({ type: 'verify', ok: false, message: `${rejectedButPresent.length} write(s) the server rejected are present in ${table} (seq ${rejectedButPresent.join(', ')})`, data });
    } else {
      ctx.emit({ type: 'verify', ok: true, message: `all ${this.acked.size} acknowledged writes present in ${table}`, data });
    }
    return { lost, landed, notLanded };
  }
}

/** A table name for one probe in one trial: bo_<probe>_t<trial>, lower case, [a-z0-9_] only. */
export function tableName(probe: string, trial: number): string {
  return `bo_${probe.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_t${trial}`.slice(0, 63);
}
