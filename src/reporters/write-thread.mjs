// The thread behind file-writer.ts: writes the files it is sent, in order, synchronously
// (one open, write and close each: the cheapest way to create many small files), counts
// each batch done in the shared `progress` (the sender keeps only a few batches ahead and
// waits on it), and answers `done` with the first failure, after which it writes nothing more.
// A batch's bytes are in one slot of the shared `ring` (the sender fills that slot again only
// after this thread has counted the batch), or in a buffer of its own that came with it.
import { copyFileSync, writeFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const progress = new Int32Array(workerData.progress);
const { slotBytes } = workerData;
const slots = Array.from({ length: workerData.ring.byteLength / slotBytes }, (_, i) => new Uint8Array(workerData.ring, i * slotBytes, slotBytes));
let error = null;

function write(batch) {
  const bytes = batch.buffer ? new Uint8Array(batch.buffer) : slots[batch.slot];
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
