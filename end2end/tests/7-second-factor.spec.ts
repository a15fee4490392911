import { createHmac } from 'node:crypto';
import { test, expect, open, signIn, admin } from './fixtures';

// Two-factor authentication, as an administrator would live it: set up an authenticator app on
// My account (its key typed into the "app" — here RFC 6238 computed by the test), sign in with
// the password then a code, then with a recovery code, which works once. (Runs last: the
// administrator keeps a second factor until the end.)
test.describe.configure({ mode: 'serial' });

function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/\s+/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** What an authenticator app shows `offsetSteps` steps from now (RFC 6238, SHA-1, 6 digits). */
function totp(secret: Buffer, offsetSteps = 0): string {
  const counter = Math.floor(Date.now() / 1000 / 30) + offsetSteps;
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const hash = createHmac('sha1', secret).update(msg).digest();
  const offset = hash[hash.length - 1] & 0x0f;
  const value = (hash.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, '0');
}

let secret: Buffer;
let recovery: string[] = [];

test('an administrator sets up an authenticator app and gets recovery codes', async ({ page, consoleErrors }) => {
  await signIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/admin$/);
  await open(page, '/admin/account');
  const section = page.locator('#second-factor');
  await expect(section.getByText('Off.')).toBeVisible();
  await section.getByRole('button', { name: 'Set up an authenticator app' }).click();
  secret = base32Decode(await page.getByTestId('second-factor-secret').innerText());
  expect(secret.length).toBe(20);
  await expect(section.getByRole('link', { name: 'Open in the app' })).toHaveAttribute('href', /^otpauth:\/\/totp\/Licentia:ada%40vendor\.test\?secret=/);
  // A wrong code is told beside its field, and nothing is turned on.
  await section.getByLabel('Code from your app').fill('000000');
  await section.getByLabel('Your password').fill(admin.password);
  await section.getByRole('button', { name: 'Turn on' }).click();
  await expect(section.getByRole('alert')).toContainText('does not match');
  await section.getByLabel('Code from your app').fill(totp(secret));
  await section.getByRole('button', { name: 'Turn on' }).click();
  const codes = page.getByTestId('recovery-codes').locator('li');
  await expect(codes).toHaveCount(10);
  recovery = (await codes.allInnerTexts()).map((c) => c.trim());
  await expect(page.getByTestId('second-factor-on')).toContainText('Recovery codes left: 10');
  expect(consoleErrors).toEqual([]);
});

test('signing in asks for the code after the password', async ({ page, consoleErrors }) => {
  await signIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/login\/code$/);
  await expect(page.getByRole('heading', { name: 'Authentication code' })).toBeVisible();
  // The password alone reaches nothing.
  const refused = await page.request.post('/rpc/list_clients', { form: {} });
  expect(refused.status()).toBe(401);
  // The code used at setup is spent; the app's next one is taken (a step ahead is allowed).
  await page.getByLabel('Code').fill(totp(secret, 1));
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await expect(page.getByTestId('signed-in-as')).toContainText('Ada Admin');
  expect(consoleErrors).toEqual([]);
});

test('a recovery code signs in once', async ({ page, consoleErrors }) => {
  await signIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/login\/code$/);
  await page.getByLabel('Code').fill(recovery[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);

  await signIn(page, admin.email, admin.password);
  await expect(page).toHaveURL(/\/login\/code$/);
  await page.getByLabel('Code').fill(recovery[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByRole('alert')).toContainText('wrong or was already used');
  await expect(page).toHaveURL(/\/login\/code$/);
  await page.getByLabel('Code').fill(recovery[1]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/admin$/);
  await open(page, '/admin/account');
  await expect(page.getByTestId('second-factor-on')).toContainText('Recovery codes left: 8');

  // The audit log has the setup and how each sign-in was made.
  await open(page, '/admin/audit');
  await page.getByLabel('Action').selectOption('second-factor.on');
  await expect(page.locator('tr[data-action="second-factor.on"]')).toHaveCount(1);
  await page.getByLabel('Action').selectOption('sign-in');
  await expect(page.locator('tr[data-action="sign-in"]').filter({ hasText: 'With a recovery code; 8 left.' })).toHaveCount(1);
  expect(consoleErrors).toEqual([]);
});
