import { readFileSync } from 'node:fs';
import { test, expect, open, confirmIt, signInAs, admin, Page, Workstation, createProduct } from './fixtures';

// The web licensing journey: serials generated in the portal, real licentia-client processes
// activating by serial alone, a counter edit reaching the application, revoke and reissue.
test.describe.configure({ mode: 'serial' });

const serialCells = (page: Page) => page.locator('tr[data-serial]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-serial')!));

test('serials: generate, export, activate, limit, counters, revoke and reissue', async ({ page, server, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await createProduct(page, 'WEBCAD', 'Web CAD', false);

  // Three serials carrying a feature set, two licences each.
  await open(page, '/admin/serials');
  await page.getByLabel('Product').selectOption({ label: 'WEBCAD · Web CAD' });
  await page.getByLabel('Number of serials').fill('3');
  await page.getByLabel('Licences per serial').fill('2');
  await page.getByLabel('Printing (print)').check();
  await page.getByLabel('Export to PDF (export)').check();
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('status')).toContainText('3 serial(s) for WEBCAD');
  await expect(page.getByTestId('batch-filter')).toBeVisible();
  await expect(page.locator('tr[data-serial]')).toHaveCount(3);
  const serials = await serialCells(page);
  for (const s of serials) expect(s).toMatch(/^([0-9A-HJKMNP-TV-Z]{4}-){7}[0-9A-HJKMNP-TV-Z]{4}$/);
  await expect(page.locator('tr[data-serial]').first()).toContainText('print, export');

  // The batch exports as CSV, one line per serial.
  const batchRow = page.locator('tr[data-batch]').first();
  await expect(batchRow).toContainText('WEBCAD');
  const [download] = await Promise.all([page.waitForEvent('download'), batchRow.getByRole('link', { name: 'Export CSV' }).click()]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  expect(csv[0]).toBe('serial,product,features,licences,status,replaced_by,on_machines,machines,created_at_utc');
  expect(csv.slice(1).map((l) => l.split(',')[0]).sort()).toEqual([...serials].sort());
  expect(csv[1]).toContain(',WEBCAD,print export,2,valid,');

  // Two machines activate with the same serial; a third is refused, naming the limit.
  const serial = serials[0];
  const a = new Workstation(server, 'web-ws-a', 'WEBCAD');
  const b = new Workstation(server, 'web-ws-b', 'WEBCAD');
  const c = new Workstation(server, 'web-ws-c', 'WEBCAD');
  let r = a.run('activate', '--serial', serial);
  expect(r.ok, r.out).toBe(true);
  expect(r.out).toContain('Features:   print, export');
  expect(r.out).toContain('users = 5');
  r = b.run('activate', '--serial', serial.toLowerCase().replaceAll('-', ''));
  expect(r.ok, r.out).toBe(true);
  r = c.run('activate', '--serial', serial);
  expect(r.ok).toBe(false);
  expect(r.out).toContain('allows 2 licences and all are in use');

  // Search finds the serial by a machine holding it; its page shows both licences in use.
  await open(page, '/admin/serials');
  await page.getByPlaceholder('Search by serial number or machine name').fill('web-ws-b');
  await expect(page.locator('tr[data-serial]')).toHaveCount(1);
  await expect(page.locator('tr[data-serial]')).toContainText('2 of 2');
  await page.locator('tr[data-serial]').getByRole('link').click();
  await expect(page.getByTestId('serial')).toHaveText(serial);

  // The administrator edits a counter of machine A's licence; A's next validation carries it.
  const rowA = page.locator('tr[data-licence]', { hasText: 'web-ws-a' });
  await rowA.getByText('Edit').click();
  // The counters as rows: the product's users = 5 is the first.
  await expect(rowA.getByLabel('Name of counter 1')).toHaveValue('users');
  await rowA.getByLabel('Value of counter 1').fill('42');
  await rowA.getByRole('button', { name: 'Save licence' }).click();
  await expect(page.getByRole('status')).toContainText('picks it up at its next validation');
  r = a.run('validate');
  expect(r.ok, r.out).toBe(true);
  expect(r.out).toContain('users = 42');

  // Revoke and reissue (folded away: a deliberate step): the page moves to the replacement and
  // says so, with the destructive action folded again.
  await page.getByText('Revoke and reissue…').click();
  await page.getByLabel('Why (kept with the revoked serial)').fill('posted on a forum');
  // Enter in the field does not skip the question: nothing is sent until it is answered.
  const before = page.url();
  await page.getByLabel('Why (kept with the revoked serial)').press('Enter');
  await page.waitForTimeout(500);
  await expect(page).toHaveURL(before);
  await expect(page.getByRole('alertdialog')).toHaveCount(0);
  await page.getByRole('button', { name: 'Revoke and reissue' }).click();
  await confirmIt(page);
  await expect(page.getByTestId('serial')).not.toHaveText(serial);
  const replacement = (await page.getByTestId('serial').textContent())!.trim();
  await expect(page.getByTestId('reissued')).toHaveText(
    `Serial ${serial} was revoked. This is its replacement, ${replacement}: give it to the customer. ` +
      'Machines activated with the old serial must activate again with this one at their next validation.');
  await expect(page.getByRole('button', { name: 'Revoke and reissue' })).toBeHidden();
  await expect(page.locator('dd', { hasText: serial })).toBeVisible(); // "Replaces"
  await expect(page.locator('tr[data-licence]', { hasText: 'web-ws-a' })).toBeVisible();

  // The old serial is refused for new activations, saying it was revoked.
  r = c.run('activate', '--serial', serial);
  expect(r.ok).toBe(false);
  expect(r.out).toContain('revoked');
  // Machine A learns at its next validation, and activates again with the new serial.
  r = a.run('validate');
  expect(r.ok).toBe(false);
  expect(r.out).toContain('Activate again with the replacement serial number');
  r = a.run('activate', '--serial', replacement);
  expect(r.ok, r.out).toBe(true);
  expect(r.out).toContain(`Licence:    ${replacement}`);
  expect(r.out).toContain('users = 42');
  r = a.run('status');
  expect(r.ok, r.out).toBe(true);

  // The revoked serial's page says what replaced it.
  await open(page, '/admin/serials');
  await page.getByPlaceholder('Search by serial number or machine name').fill(serial.slice(0, 9));
  await expect(page.locator('tr[data-serial]', { hasText: 'Revoked' })).toContainText(replacement);
});

test('a client user makes an API token, sees it once, and revokes it', async ({ page, server, consoleErrors }) => {
  // Gina (made in the Activation Center journey): Carla's account is locked by the throttling test.
  await signInAs(page, 'gina@globex.test', 'globex password 1');
  await open(page, '/client/tokens');
  await page.getByLabel('Name').fill('inventory script');
  await page.getByLabel('Read only').check();
  // A token acts as its owner: making one asks for the password again.
  await page.getByLabel('Your password').fill('globex password 1');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.getByTestId('new-token').textContent())!.trim();
  expect(secret).toMatch(/^lic_[A-Za-z0-9_-]{43}$/);
  // Shown once, with a button that copies it.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByRole('button', { name: 'Copy the token' }).click();
  await expect(page.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);

  const me = await page.request.get(`${server.url}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  expect(me.status()).toBe(200);
  expect((await me.json()).client.name).toBe('Globex Labs');
  await open(page, '/client/tokens');
  const row = page.locator('tr[data-token="inventory script"]');
  await expect(row).toContainText('Read only');
  await expect(row).not.toContainText(secret);
  await row.getByRole('button', { name: 'Revoke' }).click();
  await confirmIt(page);
  await expect(row).toContainText('Revoked');
  await expect(page.getByTestId('done-banner')).toHaveText('The token \u201cinventory script\u201d was revoked.');
  const after = await page.request.get(`${server.url}/api/v1/me`, { headers: { Authorization: `Bearer ${secret}` } });
  expect(after.status()).toBe(401);
});
