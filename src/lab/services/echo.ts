import { fileURLToPath } from 'node:url';
import { startInTarget, type LabService } from '../service.ts';

const script = fileURLToPath(new URL('../../../lab/echo-server.mjs', import.meta.url));

export const echo: LabService = {
  name: 'echo',
  packages: [],
  async start(lab) {
    startInTarget(lab, 'echo', process.execPath, [script, lab.targetAddress, '7']);
    return { port: 7 };
  },
};
