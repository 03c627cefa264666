// The thread behind file-writer.ts: writes the files it is sent, in order, synchronously
// (one open, write and close each: the cheapest way to create many small files), and
// answers `done` with the first failure, after which it writes nothing more.
import { copyFileSync, writeFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

let error = null;
parentPort.on('message', (m) => {
  if (m.what === 'files') {
    if (error) return;
    const bytes = m.buffer ? new Uint8Array(m.buffer) : null;
    for (const f of m.jobs) {
      try {
        if (f.copyFrom) copyFileSync(f.copyFrom, f.path);
        else writeFileSync(f.path, bytes.subarray(f.start, f.end));
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
        return;
      }
    }
  } else if (m.what === 'done') {
    parentPort.postMessage({ what: 'done', error });
    parentPort.close();
  }
});
