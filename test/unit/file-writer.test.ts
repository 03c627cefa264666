/**
 * The thread that writes the reports' many small files: every file it is sent
 * lands, in batches larger than one message, the first ones written before the
 * thread starts; a write that fails is reported by done() with its path, and
 * nothing after it is written; the sender never gets more than a few batches
 * ahead of the thread, and never fills a slot again before the thread wrote it.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileWriter } from '../../src/reporters/file-writer.ts';
import { tempDir } from '../helpers/lab.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('FileWriter', () => {
  it('writes every file sent (texts and copies), across batches, here and then on the thread', async () => {
    const dir = tempDir('blackout-writer-');
    dirs.push(dir);
    writeFileSync(join(dir, 'source.bin'), 'copied bytes');
    // the first 10 here, synchronously; the thread from the 11th
    const w = new FileWriter(10);
    // 1 000 small files (a batch of 1 MiB holds them), then a 2 MiB text: a batch of its own
    for (let i = 0; i < 1000; i++) w.put(join(dir, `f${i}.json`), { content: `{"i":${i}}` });
    w.put(join(dir, 'big.txt'), { content: 'x'.repeat(2 << 20) });
    w.put(join(dir, 'copy.bin'), { copyFrom: join(dir, 'source.bin') });
    // UTF-8 of 1, 2, 3 and 4 bytes per character, and an empty file
    w.put(join(dir, 'wide.txt'), { content: 'a é ≤ 😀 ' + '≤'.repeat(400_000) });
    w.put(join(dir, 'empty.txt'), { content: '' });
    expect(existsSync(join(dir, 'f9.json'))).toBe(true);
    await w.done();
    await w.close();
    expect(readdirSync(dir).length).toBe(1005);
    expect(readFileSync(join(dir, 'wide.txt'), 'utf8')).toBe('a é ≤ 😀 ' + '≤'.repeat(400_000));
    expect(readFileSync(join(dir, 'empty.txt'), 'utf8')).toBe('');
    expect(readFileSync(join(dir, 'f0.json'), 'utf8')).toBe('{"i":0}');
    expect(readFileSync(join(dir, 'f999.json'), 'utf8')).toBe('{"i":999}');
    expect(readFileSync(join(dir, 'big.txt'), 'utf8').length).toBe(2 << 20);
    expect(readFileSync(join(dir, 'copy.bin'), 'utf8')).toBe('copied bytes');
  });

  it('a failed write rejects done() naming the file; nothing after it is written (on the thread and before it)', async () => {
    for (const threadFrom of [0, 10]) {
      const dir = tempDir('blackout-writer-');
      dirs.push(dir);
      const w = new FileWriter(threadFrom);
      w.put(join(dir, 'first.txt'), { content: 'ok' });
      w.put(join(dir, 'no-such-folder', 'second.txt'), { content: 'lost' });
      w.put(join(dir, 'third.txt'), { content: 'not reached' });
      await expect(w.done()).rejects.toThrow(/writing the report's files: ENOENT.*no-such-folder\/second\.txt/);
      await w.close();
      expect(readFileSync(join(dir, 'first.txt'), 'utf8')).toBe('ok');
      expect(existsSync(join(dir, 'third.txt'))).toBe(false);
    }
  });

  it('the sender waits for the thread: never more than 4 batches of 1 MiB ahead of it, and no slot refilled before it is written', async () => {
    const dir = tempDir('blackout-writer-');
    dirs.push(dir);
    const w = new FileWriter(0);
    // 4 000 files of 16 KiB: 62 MiB, far more than the 4 slots, put as fast as the loop goes; each file its own text,
    // so a slot filled again before the thread wrote it shows as a file with another's text
    const text = (i: number) => `${i}:`.padEnd(16 << 10, String.fromCharCode(97 + (i % 26)));
    let most = 0;
    let roomy = 0;
    for (let i = 0; i < 4000; i++) {
      // `room` promises a put that does not wait: then the thread cannot have fallen further behind
      const before = w.ahead;
      if (w.room) roomy++;
      w.put(join(dir, `f${i}`), { content: text(i) });
      most = Math.max(most, w.ahead, before);
    }
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(4);
    expect(roomy).toBeGreaterThan(0);
    await w.done();
    await w.close();
    expect(readdirSync(dir).length).toBe(4000);
    for (let i = 0; i < 4000; i++) expect(readFileSync(join(dir, `f${i}`), 'utf8') === text(i), `f${i}`).toBe(true);
  });

  it('close() without done() ends the thread (a report that failed to render)', async () => {
    const dir = tempDir('blackout-writer-');
    dirs.push(dir);
    // the first file starts the thread
    const w = new FileWriter(0);
    w.put(join(dir, 'x'), { content: 'x' });
    await w.close();
    await expect(w.done()).rejects.toThrow(/ended .* before it was done/);
  });
});
