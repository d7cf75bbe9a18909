import { defineConfig } from 'vitest/config';

/**
 * Two projects: unit tests run in parallel; integration and end-to-end tests share real servers
 * (Kafka, the registry, Keycloak) and child processes, so they run one file at a time.
 */
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 240_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['**/*.unit.test.ts'], exclude: ['node_modules/**'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts', '**/*.e2e.test.ts'],
          exclude: ['node_modules/**'],
          fileParallelism: false,
          testTimeout: 120_000,
        },
      },
    ],
  },
});
