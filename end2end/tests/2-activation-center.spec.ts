import { mkdtempSync, readFileSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { test, expect, open, confirmIt, signInAs, admin, Page, Workstation, createProduct } from './fixtures';

// The Activation Center journey: an administrator sets up products, a client and orders; the
// client user sees only its own; real licentia-client processes act as workstations.
test.describe.configure({ mode: 'serial' });

const gina = { organisation: 'Globex Labs', name: 'Gina Globex', email: 'gina@globex.test', password: 'globex password 1' };

async function createOrder(page: Page, client: string, product: string, quantity: string) {
  await open(page, '/admin/orders');
  await page.getByRole('link', { name: 'New order' }).click();
  await expect(page).toHaveURL(/\/admin\/orders\/new$/);
  await page.getByLabel('Client').selectOption({ label: client });
  await page.getByLabel('Product').selectOption({ label: product });
  await page.getByLabel('Number of licences').fill(quantity);
  await page.getByRole('button', { name: 'Create order' }).click();
  await expect(page).toHaveURL(/\/admin\/orders\/\d+(\?done=created)?$/);
  await expect(page.getByTestId('done-banner')).toContainText('was created.');
  return page.url();
}

const licenceKeys = (page: Page) => page.locator('tr[data-licence]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-licence')!));

let calcOrder = '';
let drawOrder = '';

test('an administrator sets up products, a client and orders', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await createProduct(page, 'CALC', 'Calc Pro', true);
  await createProduct(page, 'DRAW', 'Draw', false);

  // Bad input is refused in words and saves nothing.
  await open(page, '/admin/products/new');
  await page.getByLabel('Code', { exact: true }).fill('CALC');
  await page.getByLabel('Name', { exact: true }).fill('Duplicate');
  await page.getByRole('button', { name: 'Save product' }).click();
  await expect(page.getByRole('alert')).toHaveText('A product with the code CALC already exists.');
  // Each error beside its field, which gets the focus: a feature code, then the product code.
  await page.getByLabel('Code', { exact: true }).fill('bad code!');
  await page.getByRole('button', { name: 'Add a feature' }).click();
  await page.getByLabel('Code of feature 1').fill('has space');
  await page.getByLabel('Name of feature 1').fill('Spaced');
  await page.getByRole('button', { name: 'Save product' }).click();
  await expect(page.locator('#product-features-error')).toContainText('feature code');
  await expect(page.getByLabel('Code of feature 1')).toBeFocused();
  await page.getByLabel('Code of feature 1').fill('spaced');
  await page.getByRole('button', { name: 'Save product' }).click();
  const code = page.getByLabel('Code', { exact: true });
  await expect(page.locator('#product-code-error')).toBeVisible();
  await expect(page.locator('#product-features-error')).toHaveCount(0);
  await expect(code).toHaveAttribute('aria-invalid', 'true');
  await expect(code).toBeFocused();
  // What was typed is still there.
  await expect(page.getByLabel('Name', { exact: true })).toHaveValue('Duplicate');
  // Limited-licence terms show only once "limited" is ticked.
  await expect(page.getByLabel('Validity in days')).toHaveCount(0);
  await page.getByLabel('Limited licences (they expire)').check();
  await expect(page.getByLabel('Validity in days')).toBeVisible();
  await open(page, '/admin/products');
  await expect(page.locator('tbody tr')).toHaveCount(2);

  await open(page, '/admin/clients');
  await page.getByLabel('Client name').fill(gina.organisation);
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page).toHaveURL(/\/admin\/clients\/\d+(\?done=created)?$/);
  await page.getByLabel('Name', { exact: true }).fill(gina.name);
  await page.getByLabel('E-mail address').fill(gina.email);
  await page.getByLabel('First password').fill(gina.password);
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status')).toHaveText('User added.');

  // A refused field is marked where it is: the message beside it, the focus on it.
  await open(page, '/admin/orders/new');
  await page.getByLabel('Client').selectOption({ label: gina.organisation });
  const quantity = page.getByLabel('Number of licences');
  await quantity.fill('20000');
  await page.getByRole('button', { name: 'Create order' }).click();
  await expect(page.getByRole('alert')).toHaveText('The quantity must be from 1 to 10000.');
  await expect(quantity).toBeFocused();
  await expect(quantity).toHaveAttribute('aria-invalid', 'true');
  expect(await quantity.evaluate((e: HTMLInputElement) => e.validationMessage)).toBe('The quantity must be from 1 to 10000.');
  await quantity.fill('2');
  await expect(quantity).not.toHaveAttribute('aria-invalid', 'true');

  calcOrder = await createOrder(page, gina.organisation, 'CALC · Calc Pro', '2');
  await expect(page.locator('tr[data-licence]')).toHaveCount(2);
  drawOrder = await createOrder(page, gina.organisation, 'DRAW · Draw', '1');
  await createOrder(page, 'Acme Tools', 'DRAW · Draw', '1');
});

test('the client user sees only its own orders', async ({ page, consoleErrors }) => {
  await signInAs(page, gina.email, gina.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My orders' }).click();
  await expect(page.getByRole('heading', { name: 'My orders' })).toBeVisible();
  const rows = page.locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(page.getByRole('cell', { name: 'Acme Tools' })).toHaveCount(0);
  // Searched on the server, the search kept in the address.
  await page.getByRole('searchbox').fill('draw');
  await page.getByRole('searchbox').press('Enter');
  await expect(page).toHaveURL(/\/client\/orders\?(.*&)?q=draw(&|$)/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('DRAW · Draw');
  // Another client's order is not reachable by its address either.
  const acmeOrder = drawOrder.replace(/\d+$/, (n) => String(Number(n) + 1)).replace('/admin/', '/client/');
  await open(page, new URL(acmeOrder).pathname);
  await expect(page.getByRole('alert')).toHaveText('You are not allowed to do this.');
});

test('workstations activate, the client removes where allowed, the administrator extends', async ({ page, server, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await open(page, new URL(calcOrder).pathname);
  const [calc1] = await licenceKeys(page);
  await open(page, new URL(drawOrder).pathname);
  const [draw1] = await licenceKeys(page);

  const ws1 = new Workstation(server, 'workstation-1', 'CALC');
  const activated = ws1.run('activate', '--key', calc1);
  expect(activated.ok, activated.out).toBe(true);
  expect(activated.out).toContain('Features:   print');
  const ws2 = new Workstation(server, 'workstation-2', 'DRAW');
  expect(ws2.run('activate', '--key', draw1).ok).toBe(true);

  // The client user: removal refused for the limited product, allowed for the other.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signInAs(page, gina.email, gina.password);
  await open(page, new URL(calcOrder).pathname.replace('/admin/', '/client/'));
  const calcRow = page.locator(`tr[data-licence="${calc1}"]`);
  await expect(calcRow).toContainText('workstation-1');
  await calcRow.getByRole('button', { name: 'Remove' }).click();
  await confirmIt(page);
  await expect(page.getByRole('alert')).toHaveText("This is a limited licence: only your vendor's administrator can remove it.");
  await expect(calcRow).toContainText('workstation-1');

  await open(page, new URL(drawOrder).pathname.replace('/admin/', '/client/'));
  const drawRow = page.locator(`tr[data-licence="${draw1}"]`);
  await drawRow.getByRole('button', { name: 'Remove' }).click();
  await confirmIt(page);
  // Removed without its machine: the licence frees when that machine's code stops working offline.
  await expect(page.getByRole('status')).toContainText('The licence was removed from its machine. It frees on');
  await expect(drawRow.getByTestId('pending-free')).toContainText('Removed from workstation-2 without it; frees on');
  const gone = ws2.run('validate');
  expect(gone.ok).toBe(false);
  expect(gone.out).toContain('removed from this machine');

  // The administrator extends the limited licence; the next validation shows the new end date.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signInAs(page, admin.email, admin.password);
  await open(page, new URL(calcOrder).pathname);
  const row = page.locator(`tr[data-licence="${calc1}"]`);
  await row.getByText('Edit').click();
  const newEnd = new Date(Date.now() + 400 * 86_400_000).toISOString().slice(0, 10);
  await row.getByLabel('Expires on').fill(newEnd);
  await row.getByRole('button', { name: 'Save licence' }).click();
  await expect(page.getByRole('status')).toContainText('The licence was changed');
  await expect(page.locator(`tr[data-licence="${calc1}"]`)).toContainText(newEnd);
  const validated = ws1.run('validate');
  expect(validated.ok, validated.out).toBe(true);
  expect(validated.out).toContain(newEnd);

  // Who holds what: the activations list finds the machine.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activations' }).click();
  await page.getByRole('searchbox').fill('workstation-1');
  await page.getByRole('searchbox').press('Enter');
  await expect(page).toHaveURL(/q=workstation-1/);
  await expect(page.locator('tbody tr')).toHaveCount(1);
  await expect(page.locator('tbody tr')).toContainText(calc1);
  await expect(page.locator('tbody tr')).toContainText(newEnd);
});

test('an offline request and response through the client area activate licence 2', async ({ page, server, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await open(page, new URL(calcOrder).pathname);
  const [, calc2] = await licenceKeys(page);
  await page.getByRole('button', { name: 'Sign out' }).click();

  const ws3 = new Workstation(server, 'offline-pc', 'CALC');
  const request = ws3.run('request-code', '--key', calc2);
  expect(request.ok, request.out).toBe(true);
  const requestCode = request.out.trim().split('\n').pop()!;

  await signInAs(page, gina.email, gina.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Offline activation' }).click();
  await page.getByLabel('Request code').fill('LRQ1-garbage');
  await page.getByRole('button', { name: 'Make the response code' }).click();
  await expect(page.getByRole('alert')).toContainText('damaged');
  // The request arrives as a file (mailed, or carried on a stick): loaded into the field.
  const requestFile = join(mkdtempSync(join(tmpdir(), 'licentia-codes-')), 'request.txt');
  writeFileSync(requestFile, `${requestCode}\n`);
  await page.locator('#request-code-file').setInputFiles(requestFile);
  await expect(page.getByLabel('Request code')).toHaveValue(requestCode);
  // Before answering, the page says what the request is for.
  const summary = page.getByTestId('request-summary');
  await expect(summary).toContainText('CALC');
  await expect(summary).toContainText(calc2);
  await expect(summary).toContainText('offline-pc');
  await expect(page.getByTestId('request-state')).toHaveText('Not activated on any machine: answering activates it on this one.');
  await page.getByRole('button', { name: 'Make the response code' }).click();
  const response = await page.getByLabel('Response code').inputValue();
  expect(response.split('.')).toHaveLength(3);
  // The copy button puts the code on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByRole('button', { name: 'Copy the response code' }).click();
  await expect(page.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(response);

  // Saved as a file, and the file given to the machine's import as it is.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('response-code-file').click()]);
  expect(download.suggestedFilename()).toBe('licentia-response-code.txt');
  const responseFile = readFileSync((await download.path())!, 'utf8');
  expect(responseFile.trim()).toBe(response);
  const imported = ws3.fed(responseFile, 'import');
  expect(imported.ok, imported.out).toBe(true);
  expect(imported.out).toContain('Activated (offline)');
  expect(ws3.run('import', response).ok).toBe(false);
  const status = ws3.run('status');
  expect(status.ok, status.out).toBe(true);

  await open(page, new URL(calcOrder).pathname.replace('/admin/', '/client/'));
  await expect(page.locator(`tr[data-licence="${calc2}"]`)).toContainText('offline-pc');

  // The offline transfer: the machine gives the licence up with a removal code. The same rules
  // hold as for any removal: the client user may not free a limited licence; the
  // administrator may, and the licence is free for another machine at once.
  const given = ws3.run('removal-code');
  expect(given.ok, given.out).toBe(true);
  const removalCode = given.out.trim().split('\n').pop()!;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Offline activation' }).click();
  await page.getByLabel('Removal code').fill(removalCode);
  await page.getByRole('button', { name: 'Free the licence' }).click();
  await expect(page.getByRole('alert')).toHaveText("This is a limited licence: only your vendor's administrator can remove it.");
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signInAs(page, admin.email, admin.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Offline activation' }).click();
  await page.getByLabel('Removal code').fill(removalCode);
  await page.getByRole('button', { name: 'Free the licence' }).click();
  await expect(page.getByRole('status')).toHaveText('The licence was freed from offline-pc: another machine can activate it now.');
  await open(page, new URL(calcOrder).pathname);
  await expect(page.locator(`tr[data-licence="${calc2}"]`)).toContainText('Not activated');
});

test('the dashboard sums up the journey, each figure a link to its list', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await expect(page.getByRole('heading', { name: 'Getting started' })).toHaveCount(0);
  // Three activations (calc 1 and 2, draw 1), one still on its machine (calc 1).
  await expect(page.getByTestId('activations-30-days')).toHaveText('3');
  const products = page.getByRole('region', { name: 'Licences by product' });
  await expect(products.getByRole('row', { name: /CALC · Calc Pro/ })).toHaveText(/CALC · Calc Pro\s*2\s*1/);
  await expect(products.getByRole('row', { name: /DRAW · Draw/ })).toHaveText(/DRAW · Draw\s*2\s*0/);
  await products.getByRole('row', { name: /CALC · Calc Pro/ }).getByRole('link', { name: '1' }).click();
  // The figure's list: exactly that product's live activations (not DRAW's).
  await expect(page).toHaveURL(/\/admin\/activations\?product=CALC$/);
  await expect(page.getByLabel('Product', { exact: true })).toHaveValue('CALC');
  await expect(page.locator('tbody tr')).toHaveCount(1);
  await expect(page.locator('tbody tr').first()).toContainText('CALC');

  // A product's licences figure leads to its licences; the time-limited figure to the list of
  // them, counting as many.
  await open(page, '/admin');
  await products.getByRole('row', { name: /DRAW · Draw/ }).getByRole('link', { name: '2' }).click();
  await expect(page).toHaveURL(/\/admin\/licences\?product=DRAW$/);
  await expect(page.getByTestId('licences-count')).toHaveText('2 licences');
  await open(page, '/admin');
  const limited = await page.getByTestId('time-limited-count').innerText();
  expect(Number(limited)).toBeGreaterThan(0);
  await page.getByTestId('time-limited-count').click();
  await expect(page).toHaveURL(/\/admin\/licences\?time_limited=true/);
  await expect(page.getByLabel('Time-limited only (trials among them)')).toBeChecked();
  await expect(page.getByTestId('licences-count')).toHaveText(`${limited} licence${limited === '1' ? '' : 's'}`);
});

test('the activations list filters and pages on the server and exports CSV; a licence page holds its history', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Activations' }).click();
  // Every CALC activation, past ones too: workstation-1 still on its machine, offline-pc freed.
  await page.getByLabel('Product', { exact: true }).selectOption('CALC');
  await page.getByLabel('Status').selectOption('all');
  await page.getByLabel('Rows per page').selectOption('25');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/product=CALC/);
  await expect(page).toHaveURL(/status=all/);
  await expect(page.getByTestId('activations-count')).toHaveText('2 activations');
  const rows = page.locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText('offline-pc');
  await expect(rows.nth(1)).toContainText('workstation-1');

  // Sorted by machine, one row a page: the server gives the next page.
  await page.getByRole('link', { name: 'Machine' }).click();
  await expect(page).toHaveURL(/sort=machine&order=asc/);
  await expect(rows.nth(0)).toContainText('offline-pc');
  // The form follows the address: filtering again keeps the sort.
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/sort=machine&order=asc/);
  await expect(page.getByRole('columnheader', { name: 'Machine ▲' })).toHaveAttribute('aria-sort', 'ascending');
  await open(page, new URL(page.url()).pathname + new URL(page.url()).search.replace('limit=25', 'limit=1'));
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('offline-pc');
  await expect(page.getByTestId('activations-count')).toHaveText('2 activations match; 1 on this page');
  await page.getByTestId('activations-next').click();
  await expect(rows.first()).toContainText('workstation-1');
  await expect(page.getByTestId('activations-next')).toHaveCount(0);

  // The CSV holds every row the filters pick, not only the page's.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('activations-csv').click()]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  expect(csv[0]).toBe('activation_id,licence_id,licence_key,serial,client,product,machine,mode,activated_at_utc,last_validated_at_utc,validations,removed_at_utc,expires_on');
  expect(csv).toHaveLength(3);
  expect(csv[1]).toContain(',Globex Labs,CALC,offline-pc,offline,');
  expect(csv[2]).toContain(',Globex Labs,CALC,workstation-1,online,');

  // The licence that went offline and was given up: its page holds its past activation.
  await open(page, '/admin/activations?product=CALC&status=all&sort=machine&order=asc');
  await rows.filter({ hasText: 'offline-pc' }).getByRole('link').first().click();
  await expect(page).toHaveURL(/\/admin\/licences\/\d+$/);
  const history = page.getByRole('table', { name: 'Activations of this licence' });
  await expect(history.locator('tbody tr')).toHaveCount(1);
  await expect(history.locator('tr[data-live="false"]')).toContainText('offline-pc');
  await expect(history.locator('tr[data-live="false"]')).toContainText('offline');
  const changes = page.getByRole('table', { name: 'Audit log entries' });
  await expect(changes.locator('tr[data-action="activation.create"]')).toHaveCount(1);
  await expect(changes.locator('tr[data-action="activation.remove"]')).toHaveCount(1);
  await expect(page.getByTestId('licence-machine')).toHaveText('Not activated');
  // Notes for the vendor's team, kept across a reload.
  await page.getByLabel('Notes', { exact: true }).fill('Customer asked to move it back online in January.');
  await page.getByRole('button', { name: 'Save notes' }).click();
  await expect(page.getByRole('status')).toHaveText('Notes saved.');
  await page.reload();
  await expect(page.getByLabel('Notes', { exact: true })).toHaveValue('Customer asked to move it back online in January.');
  await expect(changes.locator('tr[data-action="licence.edit"]')).toHaveCount(1);

  // The licence on its machine: extended by 30 days from its end, in one click.
  await open(page, '/admin/activations?product=CALC');
  await rows.first().getByRole('link').first().click();
  const end = (await page.getByTestId('licence-end').textContent())!.trim();
  await page.getByRole('button', { name: 'Extend by 30 days' }).click();
  await expect(page.getByRole('status')).toContainText('The licence was extended');
  const later = new Date(Date.parse(end + 'T00:00:00Z') + 30 * 86_400_000).toISOString().slice(0, 10);
  await expect(page.getByTestId('licence-end')).toHaveText(later);
  await expect(page.getByRole('table', { name: 'Activations of this licence' }).locator('tr[data-live="true"]')).toContainText('workstation-1');

  // From its order's table: ticked, extended by 30 days more in one bulk action.
  const licencePath = new URL(page.url()).pathname;
  await open(page, new URL(calcOrder).pathname);
  const calcRow = page.locator('tr[data-licence]').filter({ hasText: 'workstation-1' });
  await calcRow.getByRole('checkbox').check();
  await page.getByLabel('Action').selectOption('extend-30');
  await page.getByRole('button', { name: 'Apply' }).click();
  await confirmIt(page);
  await expect(page.getByRole('status')).toHaveText('Done for 1 licence.');
  const evenLater = new Date(Date.parse(later + 'T00:00:00Z') + 30 * 86_400_000).toISOString().slice(0, 10);
  await expect(page.locator('tr[data-licence]').filter({ hasText: 'workstation-1' })).toContainText(evenLater);
  // The order's licences download as CSV, the new end in it.
  const [licencesFile] = await Promise.all([page.waitForEvent('download'), page.getByTestId('licences-csv').click()]);
  const licencesCsv = readFileSync(await licencesFile.path(), 'utf8').trim().split(/\r?\n/);
  expect(licencesCsv[0]).toBe('licence_id,licence_key,features,counters,expires_on,activations,machine,mode,activated_at_utc,last_validated_at_utc');
  expect(licencesCsv.find((l) => l.includes(',workstation-1,'))).toContain(`,${evenLater},`);

  // The client's user reads the same page without the vendor's notes or actions.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signInAs(page, gina.email, gina.password);
  await open(page, licencePath.replace('/admin/', '/client/'));
  await expect(page.getByTestId('licence-end')).toHaveText(evenLater);
  await expect(page.getByRole('table', { name: 'Activations of this licence' }).locator('tr[data-live="true"]')).toContainText('workstation-1');
  await expect(page.getByRole('heading', { name: 'Notes' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Extend by 30 days' })).toHaveCount(0);

  // Her start page sums up her organisation's licences; each figure leads to its list.
  await open(page, '/client');
  await expect(page.getByRole('heading', { name: 'Getting started' })).toHaveCount(0);
  const hers = page.getByRole('region', { name: 'Licences by product' });
  await expect(hers.getByRole('row', { name: /CALC · Calc Pro/ })).toHaveText(/CALC · Calc Pro\s*2\s*1/);
  await hers.getByRole('row', { name: /CALC · Calc Pro/ }).getByRole('link', { name: '1' }).click();
  await expect(page).toHaveURL(/\/client\/activations\?product=CALC$/);
  await expect(page.locator('tbody tr')).toHaveCount(1);
  await expect(page.locator('tbody tr')).toContainText('workstation-1');
});

test('the licences list finds every licence by status, product and feature, changes them in bulk and exports them', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Licences', exact: true }).click();
  await expect(page).toHaveURL(/\/admin\/licences$/);
  await expect(page.getByTestId('licences-count')).toHaveText('4 licences');
  const filters = page.getByRole('search');
  const rows = page.locator('tbody tr');

  // In use: the CALC licence on workstation-1, and the DRAW one removed without its machine
  // (it frees once that machine's code lapses).
  await filters.getByLabel('Status').selectOption('in_use');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=in_use/);
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: 'workstation-1' })).toContainText('In use');
  await expect(rows.filter({ hasText: 'Removed from workstation-2, not freed yet' })).toContainText('DRAW');

  // Available DRAW licences: Acme's, never activated. Ticked and given the export feature.
  await filters.getByLabel('Status').selectOption('available');
  await filters.getByLabel('Product', { exact: true }).selectOption('DRAW');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/product=DRAW/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Acme Tools');
  await rows.first().getByRole('checkbox').check();
  await page.getByLabel('Action').selectOption('add-feature');
  await page.locator('#bulk-feature').selectOption('export');
  await page.getByRole('button', { name: 'Apply' }).click();
  await confirmIt(page);
  await expect(page.getByRole('status')).toHaveText('Done for 1 licence.');
  await expect(rows.first()).toContainText('export, print');

  // The feature filter finds it across products; the CSV holds what the filters pick.
  await open(page, '/admin/licences');
  await filters.getByLabel('Feature').selectOption('export');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/feature=export/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('Acme Tools');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('licences-list-csv').click()]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  expect(csv[0]).toBe('licence_id,licence_key,serial,order_id,client,product,status,features,counters,expires_on,activations,machine,mode,activated_at_utc,last_validated_at_utc');
  expect(csv).toHaveLength(2);
  expect(csv[1]).toContain(',Acme Tools,DRAW,available,export print,users=5,');

  // Sorted by client on the server: A–Z, then Z–A.
  await open(page, '/admin/licences');
  await page.getByRole('link', { name: 'Client', exact: true }).click();
  await expect(page).toHaveURL(/sort=client&order=asc/);
  await expect(rows.first()).toContainText('Acme Tools');
  await page.getByRole('link', { name: 'Client ▲' }).click();
  await expect(page).toHaveURL(/sort=client&order=desc/);
  await expect(rows.first()).toContainText(gina.organisation);

  // The client's user: her organisation's licences only, nothing to tick.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signInAs(page, gina.email, gina.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My licences' }).click();
  await expect(page.getByTestId('licences-count')).toHaveText('3 licences');
  await expect(rows.filter({ hasText: 'Acme Tools' })).toHaveCount(0);
  // No ticking of licences for bulk actions (the filters' own box aside).
  await expect(page.getByRole('table').getByRole('checkbox')).toHaveCount(0);
});
