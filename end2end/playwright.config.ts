import { defineConfig } from '@playwright/test';

// The portal in Debian's Chromium, against the release build, once per database backend.
// global-setup.ts starts one server per backend on a fresh database and tells the tests where.
const projects = [{ name: 'sqlite' }];
if (process.env.LICENTIA_E2E_POSTGRES_URL) projects.push({ name: 'postgres' });

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  outputDir: './test-results',
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects,
});
