import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // lab tests wait out real blackouts; each file brings up its own lab, so files run in parallel
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 4,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
