/**
 * `lab up` is idempotent, `lab status --json` tells the address and ports,
 * `lab down` leaves nothing: no namespace, veth, nft table, cgroup, route or
 * process of the lab.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/transport/exec.ts';
import { readLabState } from '../../src/lab/state.ts';
import { runCli } from '../helpers/lab.ts';

describe('lab lifecycle', () => {
  it('up (twice), status, down leaves nothing behind', async () => {
    const name = 'tlife';
    await runCli(['lab', 'down', '--name', name]);
    const up1 = await runCli(['lab', 'up', '--name', name]);
    expect(up1.code, up1.stderr).toBe(0);
    const state = readLabState(name)!;
    const pids = (await run('ip', ['netns', 'pids', state.targetNs])).stdout.trim().split('\n').map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    const up2 = await runCli(['lab', 'up', '--name', name]);
    expect(up2.code).toBe(0);
    expect(up2.stdout).toMatch(/already up/);
    expect(readLabState(name)!.createdAtMs).toBe(state.createdAtMs);

    const st = await runCli(['lab', 'status', '--name', name, '--json']);
    const status = JSON.parse(st.stdout);
    expect(status).toMatchObject({ up: true, target: { address: state.targetAddress }, services: { echo: { port: 7 }, ssh: { port: 22 }, postgres: { port: 5432 } } });

    const down = await runCli(['lab', 'down', '--name', name]);
    expect(down.code).toBe(0);
    const ns = (await run('ip', ['netns', 'list'])).stdout;
    expect(ns).not.toContain(state.targetNs);
    expect(ns).not.toContain(state.switchNs);
    expect((await run('ip', ['link', 'show', state.clientIf], { allowFail: true })).code).not.toBe(0);
    expect((await run('nft', ['list', 'tables'])).stdout).not.toContain(state.guardTable);
    expect((await run('ip', ['route'])).stdout).not.toContain(state.subnet); // (the shared /16 guard stays while other labs exist)
    expect(existsSync(state.cgroup)).toBe(false);
    expect(existsSync(state.dir)).toBe(false);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
    const st2 = await runCli(['lab', 'status', '--name', name, '--json']);
    expect(JSON.parse(st2.stdout).up).toBe(false);
  });

  it('down leaves a foreign namespace and nft table alone', async () => {
    await run('ip', ['netns', 'add', 'not-blackout-x']);
    await run('nft', ['add', 'table', 'inet', 'bo_guard_250']);
    try {
      await runCli(['lab', 'down', '--name', 'x']);
      expect((await run('ip', ['netns', 'list'])).stdout).toContain('not-blackout-x');
      expect((await run('nft', ['list', 'tables'])).stdout).toContain('bo_guard_250');
    } finally {
      await run('ip', ['netns', 'del', 'not-blackout-x']);
      await run('nft', ['delete', 'table', 'inet', 'bo_guard_250']);
    }
  });
});
