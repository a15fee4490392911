import { readFileSync } from 'node:fs';
import { test, expect, open, signInAs, admin } from './fixtures';

// The audit log, read back after the journeys before it (1 to 4, on the same server): every kind
// of action they took in the portal, through the API, with real workstations, is there — who,
// from where, and for a licence's terms what they were before and after. Run after the others.
test.describe.configure({ mode: 'serial' });

const gina = { email: 'gina@globex.test', password: 'globex password 1' };

// What journeys 1–4 do, as the audit log names it.
const JOURNEY_ACTIONS = [
  'admin.setup', // 1: the setup link
  'sign-in', // every journey
  'sign-in.failed', // 1: a wrong password
  'sign-in.locked', // 1: repeated failures
  'client.create', // 1, 2
  'user.create', // 1, 2
  'product.create', // 2
  'order.create', // 2
  'activation.create', // 2, 3: workstations, and the offline answer
  'activation.remove', // 2: the client removes where allowed; a removal code
  'licence.edit', // 2, 3: "Save licence"
  'serials.generate', // 3
  'serials.export', // 3: "Export CSV"
  'serial.reissue', // 3
  'token.create', // 3
  'token.revoke', // 3
  'pool.create', // 4
  'pool.feature-key.add', // 4
  'seat.disconnect', // 4
  'pool.key.replace', // 4: Gina replaces her pool's key
  'pool.bundle.add', // 4
  'pool.bundle.remove', // 4
  'pool.access-rule.add', // 4: Gina blocks a user from the monitor, keeps seats for a group
  'pool.access-rule.remove', // 4
  'pool.access-group.save', // 4
  'pool.delete', // 4
  'borrow.answer', // 4: a mobile licence by code
  'borrow.extend', // 4
];

/** The rows of a CSV export, split into fields (RFC 4180 quoting). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field.replace(/\r$/, '')); rows.push(row); row = []; field = ''; }
    else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

test('the audit log holds every action of the journeys, and exports them', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log', level: 1 })).toBeVisible();
  await expect(page.locator('tr[data-action]').first()).toBeVisible();

  // The whole log, as CSV: each action the journeys took is there.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-csv').click()]);
  const rows = parseCsv(readFileSync(await download.path(), 'utf8'));
  expect(rows[0]).toEqual(['id', 'time_utc', 'actor', 'channel', 'address', 'action', 'subject', 'client_id', 'detail', 'changes']);
  const actions = new Set(rows.slice(1).map((r) => r[5]));
  for (const action of JOURNEY_ACTIONS) expect(actions, `${action} in the audit log`).toContain(action);
  // Channels: the portal's clicks, the workstations' activations through the API.
  expect(rows.some((r) => r[5] === 'client.create' && r[2] === admin.email && r[3] === 'portal')).toBe(true);
  expect(rows.some((r) => r[5] === 'activation.create' && r[2] === 'application' && r[3] === 'api')).toBe(true);

  // Filtered to licence edits in the page: before → after of the terms.
  await page.getByLabel('Action').selectOption('licence.edit');
  const edits = page.locator('tr[data-action="licence.edit"]');
  await expect(edits.first()).toBeVisible();
  await expect(page.locator('tr[data-action]:not([data-action="licence.edit"])')).toHaveCount(0);
  await expect(edits.first().locator('ul.changes li').first()).toContainText('→');

  // The CSV link follows the filter.
  await expect(page.getByTestId('audit-csv')).toHaveAttribute('href', '/audit.csv?action=licence.edit');
  expect(consoleErrors).toEqual([]);
});

test('a client user reads only their own organisation\'s entries', async ({ page, consoleErrors }) => {
  await signInAs(page, gina.email, gina.password);
  await open(page, '/client/audit');
  await expect(page.getByRole('heading', { name: 'Audit log', level: 1 })).toBeVisible();
  await expect(page.locator('tr[data-action="pool.key.replace"]').first()).toBeVisible();
  // The catalogue and other organisations are not theirs to read.
  await page.getByLabel('Action').selectOption('product.create');
  await expect(page.getByText('No entry matches.')).toBeVisible();
  await page.getByLabel('Who').fill(admin.email);
  await page.getByLabel('Who').press('Enter');
  await page.getByLabel('Action').selectOption('');
  await expect(page.locator('tr[data-action]').first()).toBeVisible();
  const subjects = await page.locator('tr[data-action] td:nth-child(5)').allTextContents();
  expect(subjects.some((s) => s.includes('Acme'))).toBe(false);
  expect(consoleErrors).toEqual([]);
});
