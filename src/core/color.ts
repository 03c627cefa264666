/**
 * Terminal colour, decided once per stream: off with NO_COLOR (no-color.org:
 * set and not empty), on with FORCE_COLOR (not "0"), otherwise only when the
 * stream is a terminal (TERM not "dumb"). A CI log or a pipe gets plain text
 * (picocolors alone would colour any process with CI set).
 */
import { createColors } from 'picocolors';

export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

/** for stdout */
export const pc = createColors(colorEnabled(process.stdout));
/** for stderr */
export const pcErr = createColors(colorEnabled(process.stderr));
