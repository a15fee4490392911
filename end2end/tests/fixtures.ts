import { test as base, expect, Page } from '@playwright/test';
export type { Page };
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const SERVERS_FILE = join(__dirname, '..', '.servers.json');

export type Server = { url: string; setupLink: string };

// Each project (sqlite, postgres) talks to its own server; pages must hydrate without errors.
export const test = base.extend<{ server: Server; consoleErrors: string[] }>({
  server: async ({}, use, testInfo) => {
    const servers = JSON.parse(readFileSync(SERVERS_FILE, 'utf8')) as Record<string, Server>;
    await use(servers[testInfo.project.name]);
  },
  baseURL: async ({ server }, use) => {
    await use(server.url);
  },
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`page error on ${page.url()}: ${e.message}`));
    page.on('console', (m) => {
      // Refused requests (401, 403, 429) are expected in these tests and logged by the browser.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`${page.url()}: ${m.text().split('\n')[0]}`);
    });
    await use(errors);
    expect(errors, 'browser console errors').toEqual([]);
  },
});

export { expect };

export const admin = {
  name: 'Ada Admin',
  email: 'ada@vendor.test',
  password: 'correct horse battery staple',
};

export const clientUser = {
  organisation: 'Acme Tools',
  name: 'Carla Client',
  email: 'carla@acme.test',
  password: 'client password 123',
};

/** Opens a page and waits until the WebAssembly has hydrated it. */
export async function open(page: Page, path: string) {
  const response = await page.goto(path);
  await page.locator('body[data-hydrated="true"]').waitFor();
  return response;
}

export async function signIn(page: Page, email: string, password: string) {
  await open(page, '/login');
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Signs in and waits for the user's start page. */
export async function signInAs(page: Page, email: string, password: string) {
  await signIn(page, email, password);
  await expect(page).toHaveURL(/\/(admin|client)$/);
}
