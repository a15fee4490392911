import { test, expect, open, signInAs, admin, mailTo, linkIn } from './fixtures';

// Invitations and password resets by e-mail, through a real SMTP server (aiosmtpd, started by the
// test setup): the links are read from the messages it received.
const ivy = { name: 'Ivy Invited', password: 'ivy chooses her own words', newPassword: 'ivy forgot and chose anew' };
const ivyEmail = (project: string) => `ivy.${project}@acme.test`;

test('an administrator invites a client user by e-mail, who chooses a password through the link', async ({ page, server, consoleErrors }, testInfo) => {
  const email = ivyEmail(testInfo.project.name);
  await signInAs(page, admin.email, admin.password);
  await open(page, '/admin/clients');
  await page.getByRole('link', { name: 'Acme Tools' }).click();
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByLabel('Name', { exact: true }).fill(ivy.name);
  await page.getByLabel('E-mail address', { exact: true }).fill(email);
  // No first password: an invitation.
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.getByText(`An invitation was sent to ${email}.`)).toBeVisible();
  await expect(page.getByRole('row', { name: new RegExp(ivy.name) })).toContainText('Invited, not yet arrived');

  const mail = await mailTo(server, email, 'You are invited to Licentia');
  expect(mail.body).toContain('Acme Tools');
  const link = linkIn(mail, server);
  expect(link).toMatch(/^\/password-link\/[A-Za-z0-9_-]{43}$/);

  await page.context().clearCookies();
  await open(page, link);
  await expect(page.getByRole('heading', { name: 'Welcome to Licentia' })).toBeVisible();
  await expect(page.getByText(email)).toBeVisible();
  await page.getByLabel('Password', { exact: true }).fill(ivy.password);
  await page.getByLabel('Repeat the password').fill(ivy.password);
  await page.getByRole('button', { name: 'Set password' }).click();
  await expect(page).toHaveURL(/\/client\/licences$/);
  await expect(page.getByRole('heading', { name: 'My licences', level: 1 })).toBeVisible();

  // The link worked once.
  await page.context().clearCookies();
  await open(page, link);
  await expect(page.getByRole('heading', { name: 'This link cannot be used' })).toBeVisible();
});

test('a forgotten password is reset through the link e-mailed from the sign-in page', async ({ page, server, consoleErrors }, testInfo) => {
  const email = ivyEmail(testInfo.project.name);
  await open(page, '/login');
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await expect(page).toHaveURL(/\/password-reset$/);
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByLabel('E-mail address').fill(email);
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await expect(page.getByText('If an account uses that address, a link to choose a new password is on its way.')).toBeVisible();

  const mail = await mailTo(server, email, 'Reset your Licentia password');
  await open(page, linkIn(mail, server));
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
  await page.getByLabel('Password', { exact: true }).fill(ivy.newPassword);
  await page.getByLabel('Repeat the password').fill(ivy.newPassword);
  await page.getByRole('button', { name: 'Set password' }).click();
  await expect(page.getByText('Your new password is set. Sign in with it.')).toBeVisible();
  await page.getByRole('link', { name: 'Sign in' }).click();
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(ivy.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await signInAs(page, email, ivy.newPassword);
  await expect(page).toHaveURL(/\/client\/licences$/);
});
