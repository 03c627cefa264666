/**
 * sftp: a large file copy over SSH SFTP (ssh2) that spans the blackout — the
 * seeds' "file copies fail". Download, upload, or both at once over one SSH
 * connection. The copy starts at open, so it is under way when the blackout
 * hits (the lab throttles file-copy ports so a 64 MB copy takes ~15 s).
 *
 * Checks: sha256 on both ends — the server's (`sha256sum` over an exec
 * channel: before a download, after an upload) against the client's (of the
 * bytes it received / sent). A mismatch is a failing `verify`.
 * Timeline: a sample per interval while bytes move, value = bytes so far.
 * Policy: keepalive (ServerAlive), an optional application stall timeout, a
 * ready timeout. No reconnect: a broken copy is a failed copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Client, SFTPWrapper } from 'ssh2';
import { z } from 'zod';
import { byteSize, duration, probeBase } from '../core/schema-util.ts';
import { CopyProgress } from './shared/copy-progress.ts';
import { errorText } from './shared/session-loop.ts';
import { scrubbed } from '../core/secrets.ts';
import { connectSsh, sshFields, sshPolicy, sshTarget } from './shared/ssh-util.ts';
import { keepalive, request, sessionFacts } from './shared/facts.ts';
import type { ProbeDefinition } from '../core/probe.ts';

const schema = z.strictObject({
  ...probeBase('sftp', { interval: 250, tolerance: 750 }),
  ...sshFields,
  direction: z.enum(['download', 'upload', 'both']).default('download').describe('what the copy does: download, upload, or both at once'),
  size: byteSize()
    .default(64 * 1024 * 1024)
    .describe('the size of the file copied ("64MB", "1GB" or a number of bytes)'),
  remotePath: z.string().min(1).optional().describe("the file to download (default: the lab's large file, or blackout-<size>.bin in `remoteDir`, created on the server when missing)"),
  remoteDir: z.string().min(1).optional().describe("where downloads are found / created and uploads are written (default: the lab's file-copy folder, else /tmp)"),
  stallTimeout: duration().default(0).describe('the application aborts a copy that made no progress this long (0: never, like OpenSSH sftp)'),
  closeWait: duration().default(13_000).describe('close() waits this long for a copy still running at the end of the trial'),
  depth: z.number().int().min(1).max(64).default(8).describe('requests in flight per direction'),
});
export type SftpConfig = z.infer<typeof schema>;

const CHUNK = 32 * 1024;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function exec(client: Client, cmd: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`"${cmd.slice(0, 60)}" on the server took longer than ${timeoutMs} ms`)), timeoutMs);
    client.exec(cmd, (err, ch) => {
      if (err) {
        clearTimeout(timer);
        return reject(err);
      }
      let out = '';
      let errOut = '';
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
      ch.on('close', (code: number | null) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`"${cmd.slice(0, 60)}" on the server: exit ${code}: ${errOut.trim().slice(0, 200)}`));
      });
    });
  });
}

const call = <T>(fn: (cb: (err: Error | null | undefined, v: T) => void) => void): Promise<T> => new Promise((res, rej) => fn((err, v) => (err ? rej(err) : res(v))));

async function readFully(sftp: SFTPWrapper, handle: Buffer, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = await new Promise<number>((res, rej) => sftp.read(handle, buf, got, len - got, pos + got, (err, bytesRead) => (err ? rej(err) : res(bytesRead))));
    if (n === 0) throw new Error(`the remote file ended at ${pos + got} bytes, expected more`);
    got += n;
  }
  return buf;
}

/** pipelined in-order transfer: `depth` chunk operations in flight, results consumed in order */
async function pipeline(size: number, depth: number, op: (pos: number, len: number) => Promise<Buffer>, consume: (b: Buffer) => void): Promise<void> {
  let next = 0;
  const inflight: Array<Promise<Buffer>> = [];
  const issue = () => {
    while (inflight.length < depth && next < size) {
      const len = Math.min(CHUNK, size - next);
      const p = op(next, len);
      p.catch(() => {}); // awaited below, in order; keeps an early failure from being "unhandled"
      inflight.push(p);
      next += len;
    }
  };
  issue();
  while (inflight.length) {
    consume(await inflight.shift()!);
    issue();
  }
}

export const sftp: ProbeDefinition<SftpConfig> = {
  kind: 'sftp',
  summary: 'large SFTP copy (ssh2) across the blackout: download/upload/both, sha256 on both ends, throughput timeline',
  schema,
  policy: (c) => ({
    ...sshPolicy(c),
    direction: c.direction,
    sizeBytes: c.size,
    stallTimeoutMs: c.stallTimeout || 'none (OpenSSH sftp default)',
    reconnect: 'none',
    verify: 'sha256 server vs client',
  }),
  facts: (c) =>
    sessionFacts(
      [...request(c.stallTimeout, 'stall timeout'), ...keepalive(c.serverAlive && { intervalMs: c.serverAlive.interval, count: c.serverAlive.countMax }, 'SSH keepalive')],
      [`ready timeout ${c.readyTimeout} ms: applies to opening a session only`],
      false,
    ),
  create(config, ctx) {
    let client: Client | null = null;
    let copy: Promise<void> | null = null;
    let progress: CopyProgress | null = null;
    let lostEmitted = false;
    let firstError: Error | null = null;
    let secrets: string[] = [];
    const uploadPath = () => `${(config.remoteDir ?? ctx.target.services.files?.dir ?? '/tmp').replace(/\/$/, '')}/blackout-upload-${config.name}-t${ctx.trial}.bin`;
    let uploaded = false;
    const openAbort = new AbortController();
    let markOpened: () => void = () => {};
    const opened = new Promise<void>((r) => (markOpened = r));

    const lose = (e: Error) => {
      firstError ??= scrubbed(e, secrets);
      if (lostEmitted || ctx.signal.aborted) return;
      lostEmitted = true;
      ctx.emit({ type: 'session-lost', ...errorText(firstError) });
      progress?.stop();
      client?.destroy();
    };

    async function downloadPath(c: Client, s: SFTPWrapper): Promise<string> {
      const files = ctx.target.services.files;
      if (config.remotePath) return config.remotePath;
      if (files && config.size === files.size && !config.remoteDir) return `${files.dir}/${files.file}`;
      const path = `${(config.remoteDir ?? files?.dir ?? '/tmp').replace(/\/$/, '')}/blackout-${config.size}.bin`;
      const st = await call<{ size: number }>((cb) => s.stat(path, cb)).catch(() => null);
      if (st?.size !== config.size) {
        await exec(c, `head -c ${config.size} /dev/urandom > ${q(path)}.tmp && mv ${q(path)}.tmp ${q(path)}`, 60_000);
        ctx.emit({ type: 'probe-note', message: `created ${path} (${config.size} random bytes) on the server for the download` });
      }
      return path;
    }

    return {
      async open() {
        const t = sshTarget(config, ctx);
        const stop = () => openAbort.abort();
        ctx.signal.addEventListener('abort', stop, { once: true }); // Ctrl-C / trial end while still opening
        opened.then(
          () => ctx.signal.removeEventListener('abort', stop),
          () => {},
        );
        secrets = t.password ? [t.password] : [];
        try {
          // not ctx.signal: the trial's end must not cut a copy that close() still waits for
          client = await connectSsh(t, config, openAbort.signal, lose);
        } catch (e) {
          throw scrubbed(e, secrets);
        }
        const c = client;
        const s = await call<SFTPWrapper>((cb) => c.sftp(cb));
        const jobs: Array<() => Promise<void>> = [];
        let total = 0;
        const results: Array<{ what: string; path: string; server: string; client: string }> = [];

        if (config.direction !== 'upload') {
          const path = await downloadPath(c, s);
          const st = await call<{ size: number }>((cb) => s.stat(path, cb)).catch((e: Error) => {
            throw new Error(`${path} on the server: ${e.message}`);
          });
          // the server's end: hashed before the copy starts
          const server = (await exec(c, `sha256sum -- ${q(path)}`, 60_000)).split(/\s+/)[0]!;
          const handle = await call<Buffer>((cb) => s.open(path, 'r', cb));
          total += st.size;
          jobs.push(async () => {
            const hash = createHash('sha256');
            await pipeline(
              st.size,
              config.depth,
              (pos, len) => readFully(s, handle, pos, len),
              (b) => {
                hash.update(b);
                progress!.add(b.length);
              },
            );
            await call<void>((cb) => s.close(handle, cb as never)).catch(() => {});
            results.push({ what: 'download', path, server, client: hash.digest('hex') });
          });
        }
        if (config.direction !== 'download') {
          const path = uploadPath();
          const handle = await call<Buffer>((cb) => s.open(path, 'w', cb));
          uploaded = true;
          total += config.size;
          jobs.push(async () => {
            const hash = createHash('sha256');
            await pipeline(
              config.size,
              config.depth,
              (pos, len) => {
                const b = randomBytes(len);
                return new Promise<Buffer>((res, rej) => s.write(handle, b, 0, len, pos, (err) => (err ? rej(err) : res(b))));
              },
              (b) => {
                hash.update(b); // written in order of offsets: the file's hash
                progress!.add(b.length);
              },
            );
            await call<void>((cb) => s.close(handle, cb as never));
            // the server's end: hashed after the upload completed
            const server = (await exec(c, `sha256sum -- ${q(path)}`, 60_000)).split(/\s+/)[0]!;
            results.push({ what: 'upload', path, server, client: hash.digest('hex') });
          });
        }

        markOpened();
        progress = new CopyProgress(ctx, config.interval, config.stallTimeout, (e) => lose(e));
        ctx.emit({ type: 'session-open', reconnect: false, message: `${config.direction} of ${total} bytes started` });
        progress.start();
        const p = progress;
        copy = Promise.all(jobs.map((j) => j())).then(
          () => {
            p.finish();
            ctx.emit({ type: 'probe-note', message: `copy finished: ${p.bytes} bytes in ${((p.finishedAt! - p.startedAt) / 1000).toFixed(1)} s`, data: p.summary(total) });
            for (const r of results) {
              const ok = r.server === r.client;
              ctx.emit({
                type: 'verify',
                ok,
                message: ok ? `${r.what} ${r.path}: sha256 matches on both ends` : `${r.what} ${r.path}: sha256 mismatch — server ${r.server}, client ${r.client}: the copy is corrupt`,
                data: { ...r },
              });
            }
          },
          (e: Error) => lose(e),
        );
      },
      async close() {
        if (copy && progress && !progress.done && !lostEmitted) {
          await progress.settleAtClose(copy, config.closeWait);
        }
        progress?.stop();
        if (uploaded && client && !lostEmitted) {
          await exec(client, `rm -f -- ${q(uploadPath())}`, 5000).catch(() => {});
        }
        client?.end();
        client?.destroy();
      },
    };
  },
};
