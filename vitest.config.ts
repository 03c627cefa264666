import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // one private TMPDIR for the whole run, removed at its end: nothing is left in /tmp
    globalSetup: ['test/global-tmp.ts'],
    // lab tests wait out real blackouts; each file brings up its own lab, so files run in parallel
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // 2 cores: three files at once keeps the machine busy without starving the timing-sensitive ones
    maxWorkers: 3,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
