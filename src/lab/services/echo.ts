import { fileURLToPath } from 'node:url';
import { startInTarget, type LabService } from '../service.ts';
import { waitForPort } from '../wait.ts';

const script = fileURLToPath(new URL('../../../servers/echo-server.mjs', import.meta.url));

export const echo: LabService = {
  name: 'echo',
  packages: [],
  async start(lab) {
    startInTarget(lab, 'echo', process.execPath, [script, lab.targetAddress, '7']);
    // a loaded machine (parallel test files) can take seconds to start node
    await waitForPort(lab.targetAddress, 7, 30_000);
    return { port: 7 };
  },
};
