import { test, expect, open, signIn, signInAs, admin, clientUser } from './fixtures';

// One journey through the portal's foundation, in order: each step builds on the one before.
test.describe.configure({ mode: 'serial' });

test('the first administrator is created from the setup link and signs in', async ({ page, server, consoleErrors }) => {
  await open(page, server.setupLink);
  await expect(page.getByRole('heading', { name: 'Create the first administrator' })).toBeVisible();
  await page.getByLabel('Your name').fill(admin.name);
  await page.getByLabel('E-mail address').fill(admin.email);
  await page.getByLabel('Password', { exact: true }).fill(admin.password);
  await page.getByLabel('Repeat the password').fill(admin.password);
  await page.getByRole('button', { name: 'Create administrator' }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByTestId('signed-in-as')).toHaveText('Ada Admin · Administrator');
  // An empty server: the first steps, none done yet, each a link to where it is done.
  const steps = page.getByRole('region', { name: 'Getting started' }).getByRole('listitem');
  await expect(steps).toHaveCount(4);
  await expect(steps.nth(0)).toContainText(/^To do:.*Create a product/);
  await expect(steps.nth(3)).toContainText(/^To do:.*Activate a licence/);
  await expect(steps.nth(0).getByRole('link', { name: 'Create a product' })).toHaveAttribute('href', '/admin/products/new');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByTestId('signed-in-as')).toHaveCount(0);

  await signIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(page.getByRole('cell', { name: admin.email })).toBeVisible();

  // The link worked once.
  await open(page, server.setupLink);
  await expect(page.getByRole('alert')).toContainText('expired or was already used');
});

test('a wrong password is refused with a message', async ({ page, consoleErrors }) => {
  await signIn(page, admin.email, 'not the password');
  await expect(page.getByRole('alert')).toHaveText('Wrong e-mail address or password.');
  await expect(page).toHaveURL(/\/login$/);
  // An unknown account gets exactly the same answer.
  await page.getByLabel('E-mail address').fill('nobody@vendor.test');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Wrong e-mail address or password.');
});

test('an administrator creates a client with a user', async ({ page, consoleErrors }) => {
  await signIn(page, admin.email, admin.password);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Clients' }).click();
  await expect(page.getByRole('heading', { name: 'Clients', level: 1 })).toBeVisible();
  await expect(page.getByText('No clients yet')).toBeVisible();

  // "New client" opens a page of its own (it once answered "client was not found").
  await page.getByRole('link', { name: 'New client' }).click();
  await expect(page).toHaveURL(/\/admin\/clients\/new$/);
  await expect(page.getByRole('heading', { name: 'New client', level: 1 })).toBeVisible();
  await expect(page.getByText('was not found')).toHaveCount(0);
  await page.getByLabel('Client name').fill(clientUser.organisation);
  await page.getByLabel('Contact e-mail (optional)').fill('buyer@acme.test');
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page).toHaveURL(/\/admin\/clients\/\d+(\?done=created)?$/);
  await expect(page.getByTestId('done-banner')).toHaveText(`Client ${clientUser.organisation} was created.`);
  // Said once: the address forgets it, so a reload does not say it again.
  await expect(page).toHaveURL(/\/admin\/clients\/\d+$/);
  await expect(page.getByRole('heading', { name: clientUser.organisation, level: 1 })).toBeVisible();

  await page.getByLabel('Name', { exact: true }).fill(clientUser.name);
  await page.getByLabel('E-mail address').fill(clientUser.email);
  await page.getByLabel('First password').fill(clientUser.password);
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByRole('status')).toHaveText('User added.');
  await expect(page.getByRole('cell', { name: clientUser.email })).toBeVisible();
  await expect(page.getByLabel('First password')).toHaveValue('');

  // A second client with the same name is refused in words, and nothing is added.
  await page.getByRole('link', { name: 'Clients' }).first().click();
  await page.getByLabel('Client name').fill('acme tools');
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page.getByRole('alert')).toHaveText('A client named “acme tools” already exists.');

  // Names with SQL metacharacters are only text.
  const odd = `O'Brien "; DROP TABLE users; --`;
  await page.getByLabel('Client name').fill(odd);
  await page.getByRole('button', { name: 'Create client' }).click();
  await expect(page.getByRole('heading', { name: odd, level: 1 })).toBeVisible();

  // The list searches and sorts.
  await page.getByRole('link', { name: 'Clients' }).first().click();
  const rows = page.locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(page.getByTestId('clients-count')).toHaveText('2 clients');
  await page.getByRole('searchbox').fill('acme');
  await page.getByRole('searchbox').press('Enter');
  await expect(page).toHaveURL(/\/admin\/clients\?(.*&)?q=acme(&|$)/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText(clientUser.organisation);
  await expect(page.getByTestId('clients-count')).toHaveText('1 client');
  await page.getByRole('searchbox').fill('');
  await page.getByRole('searchbox').press('Enter');
  await expect(rows).toHaveCount(2);
  await expect(rows.first()).toContainText(clientUser.organisation);
  await page.getByRole('link', { name: 'Name ▲' }).click();
  await expect(page.getByRole('columnheader', { name: /^Name/ })).toHaveAttribute('aria-sort', 'descending');
  await expect(rows.first()).toContainText("O'Brien");
});

test('a client user signs in to the client area and signs out', async ({ page, consoleErrors }) => {
  await signIn(page, clientUser.email, clientUser.password);
  // A client user lands on their licences; their organisation's figures are a link away.
  await expect(page).toHaveURL(/\/client\/licences$/);
  await expect(page.getByRole('heading', { name: 'My licences', level: 1 })).toBeVisible();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My organisation' }).click();
  await expect(page.getByRole('heading', { name: clientUser.organisation, level: 1 })).toBeVisible();
  await expect(page.getByTestId('signed-in-as')).toHaveText(`${clientUser.name} · ${clientUser.organisation}`);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'My organisation' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Clients' })).toHaveCount(0);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await open(page, '/client');
  await expect(page).toHaveURL(/\/login$/);
});

test('a client user is refused administrator pages and server functions', async ({ page, consoleErrors }) => {
  await signIn(page, clientUser.email, clientUser.password);
  await expect(page).toHaveURL(/\/client\/licences$/);

  const response = await open(page, '/admin/clients');
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  await expect(page.getByText(clientUser.organisation, { exact: true })).toHaveCount(0);

  // The same session calling an administrator's server function directly.
  const list = await page.request.post('/rpc/list_clients', { form: {} });
  expect(list.status()).toBe(403);
  expect(await list.json()).toBe('NotAllowed');
  const create = await page.request.post('/rpc/create_client', {
    form: { 'client[name]': 'Sneaky', 'client[contact_email]': '', 'client[notes]': '' },
  });
  expect(create.status()).toBe(403);
});

test('repeated failed sign-ins are throttled', async ({ page, consoleErrors }) => {
  await open(page, '/login');
  for (let i = 0; i < 4; i++) {
    await page.getByLabel('E-mail address').fill(clientUser.email);
    await page.getByLabel('Password').fill(`wrong password ${i}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toHaveText('Wrong e-mail address or password.');
    await expect(page.getByRole('button', { name: 'Sign in' })).toBeEnabled();
  }
  await page.getByLabel('Password').fill('wrong password 5');
  await page.getByRole('button', { name: 'Sign in' }).click();
  // A first lock is short (1 minute); each further one in a row lasts twice as long.
  await expect(page.getByRole('alert')).toHaveText('Too many failed sign-in attempts. Try again in 1 minute.');
  // Now even the right password waits.
  await page.getByLabel('Password').fill(clientUser.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('Too many failed sign-in attempts');
  await expect(page).toHaveURL(/\/login$/);

  // The administrator confirms nothing was created by the refused calls.
  await signIn(page, admin.email, admin.password);
  await open(page, '/admin/clients');
  await expect(page.getByRole('link', { name: 'Sneaky' })).toHaveCount(0);
});

test('an empty list says what to do, and pages and the portal are sent compressed', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  const response = await open(page, '/admin/products');
  expect(response?.headers()['content-encoding']).toBe('br');
  await expect(page.getByText('No products yet. Create the first with New product')).toBeVisible();
  await expect(page.getByText('No products match.')).toHaveCount(0);
  for (const [accept, encoding] of [['br', 'br'], ['gzip', 'gzip']]) {
    const wasm = await page.request.get('/pkg/licentia_bg.wasm', { headers: { 'accept-encoding': accept } });
    expect(wasm.status()).toBe(200);
    expect(wasm.headers()['content-encoding']).toBe(encoding);
  }
});
