// A worker thread that lives in the lab switch's network namespace and runs
// nft commands through libnftables (koffi FFI), stamping CLOCK_MONOTONIC right
// around the call: the cut's instants are the syscall's, not the moment the
// busy main thread got round to noticing a child process had finished.
// setns(CLONE_NEWNET) changes this thread's namespace only; the harness's main
// thread (and its probes' sockets) stay in the root namespace.
// Plain JavaScript: worker threads do not inherit the TypeScript loader.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

const CLONE_NEWNET = 0x40000000;
const libc = koffi.load('libc.so.6');
const setns = libc.func('int setns(int fd, int nstype)');
const fd = openSync(workerData.netnsPath, 'r');
const rc = setns(fd, CLONE_NEWNET);
closeSync(fd);
if (rc !== 0) throw new Error(`setns(${workerData.netnsPath}) failed`);

// Real-time priority for this thread alone (pid 0 = the calling thread): on a
// loaded machine a runnable thread can wait tens of milliseconds for a CPU, and
// a wait between the kernel's commit and the clock reading after it would
// widen [before, t]. The thread runs one short command at a time and sleeps
// otherwise; the kernel's RT throttling bounds it regardless. Without the
// privilege it stays a normal thread.
const SchedParam = koffi.struct('blackout_sched_param', { sched_priority: 'int' });
const schedSetscheduler = libc.func('int sched_setscheduler(int pid, int policy, const blackout_sched_param *param)');
const SCHED_FIFO = 1;
schedSetscheduler(0, SCHED_FIFO, { sched_priority: 10 });

const lib = koffi.load('libnftables.so.1');
const nftCtxNew = lib.func('void *nft_ctx_new(uint32_t flags)');
const nftBufferError = lib.func('int nft_ctx_buffer_error(void *ctx)');
const nftBufferOutput = lib.func('int nft_ctx_buffer_output(void *ctx)');
const nftGetError = lib.func('const char *nft_ctx_get_error_buffer(void *ctx)');
const nftGetOutput = lib.func('const char *nft_ctx_get_output_buffer(void *ctx)');
const nftRun = lib.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)');
const ctx = nftCtxNew(0);
nftBufferError(ctx);
nftBufferOutput(ctx);

parentPort.on('message', ({ id, cmd }) => {
  const before = process.hrtime.bigint();
  const code = nftRun(ctx, cmd);
  const after = process.hrtime.bigint();
  // reading the buffers also resets them for the next command
  const error = nftGetError(ctx) ?? '';
  const output = nftGetOutput(ctx) ?? '';
  parentPort.postMessage({ id, before, after, code, error, output });
});
parentPort.postMessage({ ready: true });
