/** Tests run on the TypeScript sources (transformed by swc); arquero is ESM-only and is transformed too. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  transformIgnorePatterns: ['/node_modules/(?!(arquero|@uwdata)/)'],
  testTimeout: 120000,
  maxWorkers: 2,
  // one temporary directory per test run, removed at its end (test/helpers/tmp-root.js)
  globalSetup: '<rootDir>/test/helpers/tmp-root-setup.js',
  globalTeardown: '<rootDir>/test/helpers/tmp-root-teardown.js',
};
