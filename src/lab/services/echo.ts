import { fileURLToPath } from 'node:url';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';

const script = fileURLToPath(new URL('../../../lab/echo-server.mjs', import.meta.url));

export const echo: LabService = {
  name: 'echo',
  packages: [],
  async start(lab) {
    startInTarget(lab, 'echo', process.execPath, [script, lab.targetAddress, '7']);
    // a Node process: its start takes seconds on a machine loaded by parallel test files
    await waitForPort(lab.targetAddress, 7, 30_000);
    return { port: 7 };
  },
};
