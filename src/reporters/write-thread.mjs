// The thread behind file-writer.ts: writes the files it is sent, in order, synchronously
// (one open, write and close each: the cheapest way to create many small files), counts
// each batch done in the shared `progress` (the sender keeps only a few batches ahead and
// waits on it), and answers `done` with the first failure, after which it writes nothing more.
import { copyFileSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const progress = new Int32Array(workerData.progress);
let error = null;

function write(batch) {
  const bytes = batch.buffer ? new Uint8Array(batch.buffer) : null;
  for (const f of batch.jobs) {
    try {
      if (f.copyFrom) copyFileSync(f.copyFrom, f.path);
      else writeFileSync(f.path, bytes.subarray(f.start, f.end));
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      return;
    }
  }
}

parentPort.on('message', (m) => {
  if (m.what === 'files') {
    if (!error) write(m);
    Atomics.add(progress, 0, 1);
    Atomics.notify(progress, 0);
  } else if (m.what === 'done') {
    parentPort.postMessage({ what: 'done', error });
    parentPort.close();
  }
});
