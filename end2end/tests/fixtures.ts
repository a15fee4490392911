import { test as base, expect, Page } from '@playwright/test';
export type { Page };
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SERVERS_FILE = join(__dirname, '..', '.servers.json');

export type Server = { url: string; setupLink: string; root?: string; maildir?: string };

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

/** Answers the in-page confirmation a destructive button opened: its "Yes, …" button. */
export async function confirmIt(page: Page) {
  await page.getByRole('alertdialog').getByRole('button', { name: /^Yes, / }).click();
}

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
  // An administrator lands on the Overview, a client user on their licences.
  await expect(page).toHaveURL(/\/(admin|client\/licences)$/);
}

/** A workstation: the CLI with its own state directory and machine identity. */
export class Workstation {
  store = mkdtempSync(join(tmpdir(), 'licentia-ws-'));
  witness = mkdtempSync(join(tmpdir(), 'licentia-witness-'));
  constructor(private server: Server, private machine: string, private product: string) {}
  run(...args: string[]): { ok: boolean; out: string } {
    return this.fed(undefined, ...args);
  }
  /** `run`, with `input` on the command's standard input (a code file given to it). */
  fed(input: string | undefined, ...args: string[]): { ok: boolean; out: string } {
    const bin = process.env.LICENTIA_CLIENT_BIN;
    if (!bin) throw new Error('LICENTIA_CLIENT_BIN is not set: run the tests with scripts/test');
    try {
      const root = this.server.root ? ['--root', this.server.root] : [];
      const stdin = input === undefined ? 'ignore' : 'pipe';
      const out = execFileSync(bin, ['--server', this.server.url, ...root, '--product', this.product, '--store', this.store, '--machine-id', this.machine, '--hostname', this.machine, ...args], { encoding: 'utf8', input, stdio: [stdin, 'pipe', 'pipe'], env: { ...process.env, LICENTIA_WITNESS_DIR: this.witness } });
      return { ok: true, out };
    } catch (e: any) {
      return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }
}

export async function createProduct(page: Page, code: string, name: string, limited: boolean) {
  await open(page, '/admin/products');
  await page.getByRole('link', { name: 'New product' }).click();
  await expect(page.getByRole('heading', { name: 'New product' })).toBeVisible();
  await page.getByLabel('Code', { exact: true }).fill(code);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Editor').fill('Vendor Ltd');
  // The catalogue and the counters as rows; the defaults ticked from the catalogue.
  for (const [n, [featureCode, featureName]] of [['print', 'Printing'], ['export', 'Export to PDF']].entries()) {
    await page.getByRole('button', { name: 'Add a feature' }).click();
    await page.getByLabel(`Code of feature ${n + 1}`).fill(featureCode);
    await page.getByLabel(`Name of feature ${n + 1}`).fill(featureName);
  }
  await page.getByLabel('print (Printing)').check();
  await page.getByRole('button', { name: 'Add a counter' }).click();
  await page.getByLabel('Name of counter 1').fill('users');
  await page.getByLabel('Value of counter 1').fill('5');
  if (limited) {
    await page.getByLabel('Limited licences (they expire)').check();
    await page.getByLabel('Validity in days').fill('30');
    // Users never remove a limited licence: the box is off and says why.
    await expect(page.getByLabel('End users may remove (transfer) their licences')).toBeDisabled();
    await expect(page.getByLabel('End users may remove (transfer) their licences')).not.toBeChecked();
    await expect(page.getByText('Not for limited licences')).toBeVisible();
  }
  await page.getByRole('button', { name: 'Save product' }).click();
  await expect(page).toHaveURL(/\/admin\/products\/\d+(\?done=created)?$/);
  await expect(page.getByTestId('done-banner')).toHaveText(`Product ${code} was created.`);
  await expect(page.getByRole('heading', { name: `${code} · ${name}` })).toBeVisible();
}

/** A message the SMTP sink received: its headers and its decoded text. */
export type Mail = { to: string; subject: string; body: string };

function parseMail(raw: string): Mail {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  const head = text.slice(0, split).replace(/\n[ \t]/g, ' ');
  let body = text.slice(split + 2);
  const header = (name: string) =>
    head.split('\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.slice(name.length + 1).trim() ?? '';
  const encoding = header('Content-Transfer-Encoding').toLowerCase();
  if (encoding === 'quoted-printable') {
    const bytes = body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
    body = Buffer.from(bytes, 'latin1').toString('utf8');
  } else if (encoding === 'base64') {
    body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { to: header('To'), subject: header('Subject'), body };
}

/** Waits (up to 15 s) for a message to `address` with `subject` in the sink, and returns it. */
export async function mailTo(server: Server, address: string, subject: string): Promise<Mail> {
  const dir = join(server.maildir!, 'new');
  for (let i = 0; i < 300; i++) {
    const found = existsSync(dir)
      ? readdirSync(dir)
          .map((f) => parseMail(readFileSync(join(dir, f), 'utf8')))
          .find((m) => m.to.includes(address) && m.subject === subject)
      : undefined;
    if (found) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no message "${subject}" to ${address}`);
}

/** The path of the first link in `mail` to `server` (e.g. /password-link/…). */
export function linkIn(mail: Mail, server: Server): string {
  const at = mail.body.indexOf(server.url);
  if (at < 0) throw new Error(`no link to ${server.url} in ${mail.body}`);
  return mail.body.slice(at + server.url.length).split(/\s/)[0];
}
