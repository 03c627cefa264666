/**
 * The rdp probe's active mode: the input it sends through the session (a key
 * or a click, as xdotool names them) on its own X screen, which FreeRDP
 * forwards as user input, so a static desktop answers with a change.
 */
import { z } from 'zod';

/** an X keysym or a chord of them, as xdotool names them: a, BackSpace, Escape, ctrl+alt+t */
const KEY = /^[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,4}$/;
export const inputStepSchema = z.union([
  z.strictObject({
    key: z
      .string()
      .regex(KEY, 'expected a key name or chord as xdotool names them (a, BackSpace, Escape, ctrl+alt+t)')
      .describe('a key or chord to press, as xdotool names them (a, BackSpace, Escape, ctrl+alt+t)'),
  }),
  z.strictObject({
    click: z.tuple([z.number().int().min(0).max(9999), z.number().int().min(0).max(9999)]).describe("a mouse click at [x, y] on the client's screen"),
    button: z
      .union([z.literal(1), z.literal(2), z.literal(3)])
      .default(1)
      .describe('the mouse button: 1 left, 2 middle, 3 right'),
  }),
]);
export type InputStep = z.infer<typeof inputStepSchema>;

/** the xdotool calls for one step: a click moves the pointer first (that is drawn locally, before the baseline) */
export function xdotoolArgs(step: InputStep): { before?: string[]; send: string[] } {
  if ('key' in step) return { send: ['key', '--clearmodifiers', step.key] };
  return { before: ['mousemove', String(step.click[0]), String(step.click[1])], send: ['click', String(step.button)] };
}
