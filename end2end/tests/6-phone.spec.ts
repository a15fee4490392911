import { test, expect, signInAs, admin } from './fixtures';

// At a phone's width the navigation folds away behind the top bar's Menu button; two pages read
// without scrolling sideways.
test.use({ viewport: { width: 390, height: 844 } });

test('on a phone the menu opens from the top bar and closes when a page is chosen', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  // (By its id: a role query would not find it while it is folded away.)
  const nav = page.locator('nav#main-nav');
  const menu = page.getByRole('button', { name: 'Menu' });
  await expect(menu).toBeVisible();
  await expect(nav).toHaveCount(1);
  await expect(nav).toBeHidden();
  await expect(menu).toHaveAttribute('aria-expanded', 'false');
  await menu.click();
  await expect(nav).toBeVisible();
  await expect(page.getByRole('button', { name: 'Close menu' })).toHaveAttribute('aria-expanded', 'true');
  // Grouped by area.
  for (const area of ['Catalogue', 'Customers', 'Licences', 'Floating', 'Web API', 'Settings']) {
    await expect(nav.getByRole('heading', { name: area })).toBeVisible();
  }
  await nav.getByRole('link', { name: 'Orders' }).click();
  await expect(page).toHaveURL(/\/admin\/orders$/);
  await expect(nav).toBeHidden();
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  const sideways = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(await sideways()).toBeLessThanOrEqual(0);

  // A second page: a client with its users, their actions at hand.
  await menu.click();
  await nav.getByRole('link', { name: 'Clients' }).click();
  await expect(nav).toBeHidden();
  await page.getByRole('link', { name: 'Acme Tools' }).click();
  await expect(page.getByRole('heading', { name: 'Acme Tools', level: 1 })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Add user' })).toBeVisible();
  expect(await sideways()).toBeLessThanOrEqual(0);
  // Escape folds it too.
  await menu.click();
  await expect(nav).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(nav).toBeHidden();
});

test.describe('at 1366 px', () => {
  test.use({ viewport: { width: 1366, height: 768 } });
  test('the navigation stays beside the page, and row actions are in view', async ({ page, consoleErrors }) => {
    await signInAs(page, admin.email, admin.password);
    await expect(page.getByRole('button', { name: 'Menu' })).toBeHidden();
    const nav = page.getByRole('navigation', { name: 'Main' });
    await expect(nav).toBeVisible();
    await nav.getByRole('link', { name: 'Clients' }).click();
    await page.getByRole('link', { name: 'Acme Tools' }).click();
    await expect(page.getByRole('button', { name: 'Send reset link' }).first()).toBeInViewport();
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  });
});
