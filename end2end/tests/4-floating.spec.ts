import { spawn, ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, expect, open, confirmIt, signInAs, admin, Workstation } from './fixtures';

// The floating licence journey: an administrator gives a client a pool of two seats; real
// licentia-client processes hold seats; the client user watches and frees one; a killed
// workstation's seat comes back after its lease.
test.describe.configure({ mode: 'serial' });

// Gina's organisation (made in the Activation Center journey; Carla's account is locked by the
// throttling test).
const gina = { organisation: 'Globex Labs', email: 'gina@globex.test', password: 'globex password 1' };

function clientBin(): string {
  const bin = process.env.LICENTIA_CLIENT_BIN;
  if (!bin) throw new Error('LICENTIA_CLIENT_BIN is not set: run the tests with scripts/test');
  return bin;
}

function checkoutArgs(server: string, host: string, poolKey: string, user: string, feature = 'F'): string[] {
  return ['--server', server, '--hostname', host, '--store', mkdtempSync(join(tmpdir(), 'licentia-seat-')), 'checkout', '--pool-key', poolKey, '--feature', feature, '--user', user, '--process', 'cad.exe'];
}

/** A workstation holding a seat: resolves once the CLI says it holds it. */
function hold(server: string, host: string, poolKey: string, user: string, feature = 'F'): Promise<{ proc: ChildProcess; output: () => string }> {
  const proc = spawn(clientBin(), [...checkoutArgs(server, host, poolKey, user, feature), '--hold'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Holding the seat')) resolve({ proc, output: () => out });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`the workstation ${host} exited (${code}) before holding a seat: ${out}`)));
  });
}

function tryCheckout(server: string, host: string, poolKey: string, user: string, feature = 'F'): { ok: boolean; out: string } {
  try {
    return { ok: true, out: execFileSync(clientBin(), checkoutArgs(server, host, poolKey, user, feature), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e: any) {
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const running: ChildProcess[] = [];
// Globex Labs' first pool, as its client user opens it, and its pool key after it was replaced
// (set by the first journey).
let firstPoolPath = '';
let firstPoolKey = '';
test.afterAll(() => running.forEach((p) => p.kill('SIGKILL')));

test('a pool of two seats: hold, refuse, watch, disconnect, reclaim', async ({ page, server, consoleErrors }) => {
  test.setTimeout(150_000);

  // The administrator gives Globex Labs a pool with a key of 2 ConcurrentUser seats of F.
  await signInAs(page, admin.email, admin.password);
  await open(page, '/admin/pools');
  await page.getByRole('link', { name: 'New pool' }).click();
  await expect(page).toHaveURL(/\/admin\/pools\/new$/);
  await page.getByLabel('Client', { exact: true }).selectOption({ label: gina.organisation });
  await page.getByLabel('Lease in seconds').fill('30');
  await page.getByRole('button', { name: 'Create pool' }).click();
  // The pool key is shown this once (only its digest is kept), then the pool opens.
  const poolKey = (await page.getByTestId('pool-key').textContent())!.trim();
  expect(poolKey).toMatch(/^POOL-/);
  await page.getByRole('link', { name: 'Open the pool' }).click();
  await expect(page).toHaveURL(/\/admin\/pools\/\d+$/);
  await expect(page.getByTestId('pool-key-head')).toHaveText(`${poolKey.slice(0, 9)}…`);
  const clientPoolPath = new URL(page.url()).pathname.replace('/admin/', '/client/');
  firstPoolPath = clientPoolPath;
  await page.locator('#key-editor').fill('Vendor');
  await page.locator('#key-feature').fill('F');
  await page.locator('#key-quantity').fill('2');
  await page.getByRole('button', { name: 'Add key' }).click();
  await expect(page.getByRole('status')).toHaveText('Added 2 × F (ConcurrentUser).');
  await expect(page.locator('tr[data-key]')).toContainText('0 / 2');

  // The explanation of a checkout for F: the key ranks first.
  await page.locator('#explain-feature').fill('F');
  await page.getByRole('button', { name: 'Explain' }).click();
  await expect(page.getByTestId('explain')).toContainText('rank 1');

  // Two workstations hold seats; the third is refused, naming F and its 2 seats.
  const ws1 = await hold(server.url, 'ws-floor-1', poolKey, 'ann');
  running.push(ws1.proc);
  const ws2 = await hold(server.url, 'ws-floor-2', poolKey, 'bob');
  running.push(ws2.proc);
  const refused = tryCheckout(server.url, 'ws-floor-3', poolKey, 'cat');
  expect(refused.ok).toBe(false);
  expect(refused.out).toContain('All 2 seats of feature F are in use');

  // The client user sees 2 of 2 for F, marked full, with who holds them.
  await page.context().clearCookies();
  await signInAs(page, gina.email, gina.password);
  await open(page, '/client/usage');
  const row = page.locator('tr[data-feature="F"]');
  await expect(row).toContainText('2');
  await expect(row).toHaveClass(/full/);
  await expect(row).toContainText('Full');
  await row.click();
  const detail = page.getByTestId('detail');
  await expect(detail.locator('tr[data-seat]')).toHaveCount(2);
  const seat2 = detail.locator('tr[data-seat="ws-floor-2"]');
  await expect(seat2).toContainText('bob');
  await expect(seat2).toContainText('cad.exe');
  await expect(detail.locator('tr[data-seat="ws-floor-1"]')).toContainText('ann');

  // She disconnects bob's session; the refused workstation then gets a seat.
  await seat2.getByRole('button', { name: 'Disconnect' }).click();
  await confirmIt(page);
  await expect(detail.locator('tr[data-seat]')).toHaveCount(1);
  await expect(row).not.toHaveClass(/full/);
  const ws3 = await hold(server.url, 'ws-floor-3', poolKey, 'cat');
  running.push(ws3.proc);
  await page.getByRole('button', { name: 'Refresh' }).click();
  await expect(row).toHaveClass(/full/);

  // A killed workstation releases nothing: its seat comes back once its lease (30 s) ran out.
  ws1.proc.kill('SIGKILL');
  // (One refresh may fetch the table just before the reclaim and the detail just after: both
  // must agree after the same refresh.)
  await expect(async () => {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect(detail.locator('tr[data-seat]')).toHaveCount(1, { timeout: 2_000 });
    await expect(row).not.toHaveClass(/full/, { timeout: 2_000 });
  }).toPass({ timeout: 60_000, intervals: [2_000] });
  await expect(detail.locator('tr[data-seat="ws-floor-3"]')).toBeVisible();

  // Bob's workstation learned at its heartbeat that it lost the seat, and says why.
  await expect.poll(() => ws2.proc.exitCode, { timeout: 30_000 }).toBe(2);
  expect(ws2.output()).toContain('a user of your organisation disconnected it');
  ws3.proc.kill('SIGTERM');

  // Gina replaces the pool key with no grace: the new key is shown once and works at once; a
  // workstation still on the old one is told it was replaced.
  await open(page, clientPoolPath);
  await page.getByText('Replace the pool key', { exact: true }).click();
  await page.getByLabel('The old key keeps working for (hours)').fill('0');
  await page.getByRole('button', { name: 'Replace key' }).click();
  await confirmIt(page);
  const newKey = (await page.getByTestId('new-pool-key').textContent())!.trim();
  expect(newKey).toMatch(/^POOL-/);
  expect(newKey).not.toBe(poolKey);
  firstPoolKey = newKey;
  await expect(page.getByTestId('pool-key-head')).toHaveText(`${newKey.slice(0, 9)}…`);
  const late = tryCheckout(server.url, 'ws-late', poolKey, 'dan');
  expect(late.ok).toBe(false);
  expect(late.out).toContain('This pool key was replaced on');
  const fresh = tryCheckout(server.url, 'ws-fresh', newKey, 'dan');
  expect(fresh.ok, fresh.out).toBe(true);
});

test('the pool\'s history: refusals in Usage, the chart by day, hour and month, the ended seats', async ({ page, consoleErrors }) => {
  expect(firstPoolPath, 'the first journey ran').not.toBe('');
  await signInAs(page, gina.email, gina.password);
  // Usage Per Feature counts today's refusal of cat's workstation.
  await open(page, '/client/usage');
  await expect(page.locator('tr[data-feature="F"]').getByTestId('refused-today')).toHaveText('1');

  await open(page, firstPoolPath);
  await page.getByRole('link', { name: 'Use over time and ended seats' }).click();
  await expect(page).toHaveURL(/\/client\/pools\/\d+\/history$/);
  const chart = page.locator('figure[data-feature="F"]');
  await expect(chart.locator('svg[role="img"]')).toBeVisible();
  await expect(chart.locator('figcaption')).toContainText('peak 2, refused 1');
  // The figures beside the chart: by day (today's line first), then by hour, then by month.
  await chart.getByText('Figures of F (Vendor)').click();
  const figures = chart.getByTestId('chart-figures');
  await expect(figures.locator('tbody tr')).toHaveCount(30);
  const today = new Date().toISOString().slice(0, 10);
  await expect(figures.locator('tbody tr').first()).toContainText(today);
  await expect(figures.locator('tbody tr').first().locator('td')).toHaveText([today, '2', '2', '1']);
  await page.getByLabel('Period').selectOption('48h');
  await expect(figures.locator('tbody tr')).toHaveCount(48);
  await expect(figures.locator('tbody tr').first().locator('td').first()).toHaveText(/^\d\d-\d\d \d\d:00$/);
  await page.getByLabel('Period').selectOption('12m');
  await expect(figures.locator('tbody tr')).toHaveCount(12);
  await expect(figures.locator('tbody tr').first().locator('td')).toHaveText([today.slice(0, 7), '2', '2', '1']);
  const [chartCsv] = await Promise.all([page.waitForEvent('download'), page.getByTestId('chart-csv').click()]);
  const chartLines = readFileSync(await chartCsv.path(), 'utf8').trim().split('\r\n');
  expect(chartLines[0]).toBe('editor,feature,period_start_utc,peak_in_use,count,refusals');
  expect(chartLines.length).toBe(13);

  // The ended seats: ann's ran out (her workstation was killed), Gina disconnected bob's, cat's
  // and dan's were released.
  const sessions = page.locator('tr[data-session]');
  await expect(sessions).toHaveCount(4);
  const perUser = page.getByTestId('per-user');
  for (const user of ['ann', 'bob', 'cat', 'dan']) await expect(perUser).toContainText(user);
  await expect(page.locator('tr[data-session]', { hasText: 'ann' })).toContainText('lease expired');
  await page.getByLabel('User', { exact: true }).fill('bob');
  await page.getByLabel('User', { exact: true }).press('Enter');
  await expect(sessions).toHaveCount(1);
  await expect(sessions.first()).toContainText(`disconnected by ${gina.email}`);
  await expect(sessions.first()).toContainText('ws-floor-2');
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByTestId('history-csv').click()]);
  const lines = readFileSync(await csv.path(), 'utf8').trim().split('\r\n');
  expect(lines.length).toBe(2);
  expect(lines[1]).toContain(',bob,ws-floor-2,cad.exe,');
  expect(consoleErrors).toEqual([]);
});

test('a casual key: the form asks its monthly maximum, Detailed usage shows the month\'s minutes', async ({ page, server, consoleErrors }) => {
  expect(firstPoolKey, 'the first journey ran').not.toBe('');
  await signInAs(page, admin.email, admin.password);
  await open(page, firstPoolPath.replace('/client/', '/admin/'));
  // Only a NamedUser key can be casual: the box appears with that model.
  await expect(page.locator('#key-casual')).toHaveCount(0);
  await page.locator('#key-editor').fill('Vendor');
  await page.locator('#key-feature').fill('LIV');
  await page.locator('#key-model').selectOption('NamedUser');
  await page.locator('#key-casual').check();
  await page.getByLabel('Monthly maximum per user (minutes)').fill('30');
  await page.getByRole('button', { name: 'Add key' }).click();
  await expect(page.getByRole('status')).toHaveText('Added 1 × LIV (NamedUser).');
  await expect(page.locator('tr[data-key]', { hasText: 'LIV' })).toContainText('casual: 30 mn per user per month');

  // Ann holds it: Detailed usage gets the Casual usage (mn) column with her minutes.
  const ws = await hold(server.url, 'ws-casual', firstPoolKey, 'ann', 'LIV');
  running.push(ws.proc);
  await open(page, '/admin/usage');
  await page.locator('tr[data-feature="LIV"]').click();
  const detail = page.getByTestId('detail');
  await expect(detail.getByRole('columnheader', { name: 'Casual usage (mn)' })).toBeVisible();
  await expect(detail.locator('tr[data-seat="ws-casual"]').getByTestId('casual')).toHaveText(/^[01]$/);
  await expect(page.getByTestId('casual-reports')).toContainText('No report yet.');
  ws.proc.kill('SIGTERM');
  await expect.poll(() => ws.proc.exitCode, { timeout: 15_000 }).not.toBeNull();
});

test('a client\'s second pool: a bundle refused, added and removed, then the pool deleted', async ({ page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  await open(page, '/admin/pools/new');
  await page.getByLabel('Client', { exact: true }).selectOption({ label: gina.organisation });
  await page.getByLabel('Name').fill('Lab');
  await page.getByRole('button', { name: 'Create pool' }).click();
  await page.getByRole('link', { name: 'Open the pool' }).click();
  await expect(page).toHaveURL(/\/admin\/pools\/\d+$/);
  await expect(page.getByRole('heading', { name: `Pool Lab of ${gina.organisation}`, level: 1 })).toBeVisible();
  for (const feature of ['F', 'G']) {
    await page.locator('#key-editor').fill('Vendor');
    await page.locator('#key-feature').fill(feature);
    await page.locator('#key-quantity').fill('1');
    await page.getByRole('button', { name: 'Add key' }).click();
    await expect(page.getByRole('status')).toHaveText(`Added 1 × ${feature} (ConcurrentUser).`);
  }

  // A bundle taking a feature the pool has no key of is refused; one with a key is added, then removed.
  await page.locator('#bundle-feature').fill('F');
  await page.locator('#bundle-also').fill('H');
  await page.getByRole('button', { name: 'Add bundle' }).click();
  await expect(page.getByRole('alert')).toHaveText('No key of this pool is for H: add a key of H first.');
  await page.locator('#bundle-also').fill('G');
  await page.getByRole('button', { name: 'Add bundle' }).click();
  const bundle = page.locator('li[data-bundle="F>G"]');
  await expect(bundle).toContainText('Checking out F also takes G');
  await bundle.getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByText('The bundle was removed.')).toBeVisible();
  await expect(bundle).toHaveCount(0);

  // Deleting asks in the page first, saying what goes with the pool; Cancel (or Escape)
  // leaves everything as it was.
  await page.getByRole('button', { name: 'Delete pool' }).click();
  const asked = page.getByRole('alertdialog', { name: 'Delete pool' });
  await expect(asked).toBeVisible();
  await expect(asked).toContainText('with its keys, bundles and usage history? Workstations can no longer check out with its pool key.');
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(asked).toBeHidden();
  await page.getByRole('button', { name: 'Delete pool' }).click();
  await page.keyboard.press('Escape');
  await expect(asked).toBeHidden();
  await expect(page).toHaveURL(/\/admin\/pools\/\d+$/);
  // The pool is deleted; the client's first pool stays.
  await page.getByRole('button', { name: 'Delete pool' }).click();
  await confirmIt(page);
  await expect(page).toHaveURL(/\/admin\/pools(\?deleted=\d+)?$/);
  await expect(page.getByTestId('done-banner')).toHaveText(/^Pool #\d+ was deleted\.$/);
  await expect(page.locator(`tr[data-pool="Lab (${gina.organisation})"]`)).toHaveCount(0);
  await expect(page.locator(`tr[data-pool="${gina.organisation}"]`)).toHaveCount(1);
  // The list is searched by name or owner, any case.
  const pools = page.locator('tr[data-pool]');
  await page.getByPlaceholder('Search pools').fill('no such pool');
  await expect(pools).toHaveCount(0);
  await page.getByPlaceholder('Search pools').fill(gina.organisation.toUpperCase());
  await expect(pools.first()).toBeVisible();
  await expect(pools.filter({ hasNotText: gina.organisation })).toHaveCount(0);
});

test('a mobile licence by code: assigned by the client user, watched offline, extended and returned early', async ({ page, server, consoleErrors }) => {
  // The administrator gives Globex Labs a site pool that lends mobile licences for up to 14 days.
  await signInAs(page, admin.email, admin.password);
  await open(page, '/admin/pools/new');
  await page.getByLabel('Client', { exact: true }).selectOption({ label: gina.organisation });
  await page.getByLabel('Name').fill('Site');
  await page.getByRole('button', { name: 'Create pool' }).click();
  const poolKey = (await page.getByTestId('pool-key').textContent())!.trim();
  await page.getByRole('link', { name: 'Open the pool' }).click();
  await expect(page).toHaveURL(/\/admin\/pools\/\d+$/);
  const poolPath = new URL(page.url()).pathname.replace('/admin/', '/client/');
  await page.locator('#key-editor').fill('Vendor');
  await page.locator('#key-feature').fill('M');
  await page.locator('#key-quantity').fill('1');
  await page.getByRole('button', { name: 'Add key' }).click();
  await expect(page.getByRole('status')).toHaveText('Added 1 × M (ConcurrentUser).');
  await expect(page.getByTestId('lending')).toContainText('no longest borrowing is set');
  await page.getByLabel('Longest borrowing (days)').fill('14');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByTestId('lending')).toHaveText('Workstations may borrow a seat for up to 14 days.');

  // A site laptop without a network asks by code; the code is the same when asked again.
  const laptop = new Workstation(server, 'site-laptop', 'FLOOR');
  const ask = ['borrow-request', '--pool-key', poolKey, '--feature', 'M', '--days', '5', '--user', 'dan'];
  const request = laptop.run(...ask);
  expect(request.ok, request.out).toBe(true);
  expect(laptop.run(...ask).out).toBe(request.out);

  // Gina assigns it on her pool's page and sends the response code back.
  await page.context().clearCookies();
  await signInAs(page, gina.email, gina.password);
  await open(page, poolPath);
  await expect(page.getByTestId('lending')).toHaveText('Workstations may borrow a seat for up to 14 days.');
  await expect(page.getByLabel('Longest borrowing (days)')).toHaveCount(0);
  await page.getByLabel('Borrow request code').fill(request.out.trim());
  await page.getByLabel('Days', { exact: true }).fill('5');
  await page.getByRole('button', { name: 'Assign a licence to the user' }).click();
  const response = page.locator('#borrow-response');
  await expect(response).toBeVisible();
  await expect(page.getByText('A mobile licence of M for site-laptop until')).toBeVisible();
  const imported = laptop.run('borrow-import', await response.inputValue());
  expect(imported.ok, imported.out).toBe(true);
  expect(laptop.run('borrow-import', await response.inputValue()).ok).toBe(false);
  const mobile = page.locator('tr[data-mobile="site-laptop"]');
  await page.reload();
  await expect(mobile).toContainText('dan');

  // The monitor shows it out offline, marked Offline with its end, and offers no disconnect.
  await open(page, '/client/usage');
  const row = page.locator('tr[data-feature="M"]');
  await expect(row).toContainText('1');
  await row.click();
  const seat = page.getByTestId('detail').locator('tr[data-seat="site-laptop"]');
  await expect(seat).toContainText('Offline');
  await expect(seat).toContainText('until');
  await expect(seat.getByRole('button', { name: 'Disconnect' })).toHaveCount(0);
  await expect(seat).toContainText('Mobile licence');

  // Extended by two days: a new response code the laptop imports.
  await open(page, poolPath);
  const before = laptop.run('status', '--feature', 'M');
  expect(before.ok, before.out).toBe(true);
  await mobile.getByLabel('Days to extend site-laptop by').fill('2');
  await mobile.getByRole('button', { name: 'Extend' }).click();
  const extension = page.locator('#extension-code');
  await expect(extension).toBeVisible();
  const extended = laptop.run('borrow-import', await extension.inputValue());
  expect(extended.ok, extended.out).toBe(true);
  const until = (out: string) => out.match(/valid until (.*)/)?.[1];
  const after = laptop.run('status', '--feature', 'M');
  expect(until(after.out)).toBeTruthy();
  expect(until(after.out)).not.toBe(until(before.out));

  // Returned early by code: the seat is back in the pool at once.
  const giveBack = laptop.run('return-code', '--feature', 'M');
  expect(giveBack.ok, giveBack.out).toBe(true);
  await page.getByLabel('Return code').fill(giveBack.out.trim());
  await page.getByRole('button', { name: 'Return the seat' }).click();
  await expect(page.getByText('The seat is back in the pool.')).toBeVisible();
  await expect(page.getByText('No seat is out on a mobile licence.')).toBeVisible();
  expect(laptop.run('status', '--feature', 'M').ok).toBe(false);

  // Gina switches mobile licences off for her pool: a new request is refused, and says why.
  await page.getByLabel('Allow the mobile licence conversion').uncheck();
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await expect(page.getByTestId('lending')).toContainText('switched mobile licences off');
  const again = laptop.run(...ask);
  expect(again.ok, again.out).toBe(true);
  await page.getByLabel('Borrow request code').fill(again.out.trim());
  await page.getByRole('button', { name: 'Assign a licence to the user' }).click();
  await expect(page.getByRole('alert')).toContainText('switched mobile licences off');
});

test('access rules: the owner blocks a user from the monitor, and the next checkout is refused naming the rule', async ({ page, server, consoleErrors }) => {
  test.setTimeout(120_000);
  // The administrator gives Globex Labs a pool "Studio" with 2 seats of CAD (30 s lease).
  await signInAs(page, admin.email, admin.password);
  await open(page, '/admin/pools/new');
  await page.getByLabel('Client', { exact: true }).selectOption({ label: gina.organisation });
  await page.getByLabel('Name').fill('Studio');
  await page.getByLabel('Lease in seconds').fill('30');
  await page.getByRole('button', { name: 'Create pool' }).click();
  const poolKey = (await page.getByTestId('pool-key').textContent())!.trim();
  await page.getByRole('link', { name: 'Open the pool' }).click();
  await expect(page).toHaveURL(/\/admin\/pools\/\d+$/);
  const clientPoolPath = new URL(page.url()).pathname.replace('/admin/', '/client/');
  await page.locator('#key-editor').fill('Vendor');
  await page.locator('#key-feature').fill('CAD');
  await page.locator('#key-quantity').fill('2');
  await page.getByRole('button', { name: 'Add key' }).click();
  await expect(page.getByRole('status')).toHaveText('Added 2 × CAD (ConcurrentUser).');

  // Hal's workstation holds a seat of CAD.
  const hal = await hold(server.url, 'ws-hal', poolKey, 'hal', 'CAD');
  running.push(hal.proc);

  // Gina, the pool's owner, blocks Hal from the monitor.
  await page.context().clearCookies();
  await signInAs(page, gina.email, gina.password);
  await open(page, '/client/usage');
  await page.locator('tr[data-feature="CAD"]').click();
  const halSeat = page.getByTestId('detail').locator('tr[data-seat="ws-hal"]');
  await expect(halSeat).toContainText('hal');
  await halSeat.getByRole('button', { name: 'Block user' }).click();
  await confirmIt(page);
  const blocked = page.getByTestId('blocked');
  await expect(blocked).toContainText('(deny user hal, every feature)');
  const rule = (await blocked.textContent())!.match(/rule \d+ \(deny user hal, every feature\)/)![0];

  // His application loses the seat at its next heartbeat (every 10 s), told which rule...
  await expect.poll(() => hal.proc.exitCode, { timeout: 40_000 }).toBe(2);
  expect(hal.output()).toContain(rule);
  // ...and his next checkout is refused with the rule named, while others still get seats.
  const again = tryCheckout(server.url, 'ws-hal', poolKey, 'hal', 'CAD');
  expect(again.ok).toBe(false);
  expect(again.out).toContain(`Access ${rule} of this pool refuses feature CAD to user hal`);
  const ivy = await hold(server.url, 'ws-ivy', poolKey, 'ivy', 'CAD');
  running.push(ivy.proc);

  // The rule is on the pool's page, and Explain names it for Hal.
  await open(page, clientPoolPath);
  const rules = page.getByTestId('access-rule-list');
  await expect(rules.locator('tr[data-rule]')).toHaveCount(1);
  await expect(rules).toContainText('user hal');
  await expect(rules).toContainText('Blocked from the usage monitor');
  await page.locator('#explain-feature').fill('CAD');
  await page.locator('#explain-user').fill('hal');
  await page.getByRole('button', { name: 'Explain' }).click();
  await expect(page.getByTestId('explain')).toContainText(`filtered: denied by access ${rule}`);

  // She keeps one seat for the designers' group: a form with fields, errors beside them.
  await page.getByText('Make or change a group').click();
  await page.locator('#group-name').fill('designers');
  await page.locator('#group-kind').selectOption('user');
  await page.locator('#group-members').fill('jo\nkim');
  await page.getByRole('button', { name: 'Save group' }).click();
  await expect(page.getByTestId('access-group-list').locator('tr[data-group="designers"]')).toContainText('jo, kim');
  await page.locator('#rule-effect').selectOption('reserve');
  await page.locator('#rule-kind').selectOption('group');
  await page.locator('#rule-subject').fill('designers');
  await page.locator('#rule-feature').fill('CAD');
  await page.getByRole('button', { name: 'Add rule' }).click();
  await expect(page.getByRole('alert')).toContainText('A reserve rule keeps 1 to 100000 seats');
  await page.locator('#rule-seats').fill('1');
  await page.getByRole('button', { name: 'Add rule' }).click();
  await expect(rules.locator('tr[data-rule]')).toHaveCount(2);
  // Ivy holds one seat; the other is kept for the designers, so Lea is refused, naming it.
  const lea = tryCheckout(server.url, 'ws-lea', poolKey, 'lea', 'CAD');
  expect(lea.ok).toBe(false);
  expect(lea.out).toContain('reserve 1 seat for group designers, feature CAD');

  // She lifts the block: Hal is no longer denied — but the one free seat is kept for the
  // designers, and his refusal now says that instead.
  await rules.locator('tr[data-rule]', { hasText: 'user hal' }).getByRole('button', { name: 'Remove rule' }).click();
  await confirmIt(page);
  await expect(page.getByText('The rule was removed.')).toBeVisible();
  await expect(rules.locator('tr[data-rule]')).toHaveCount(1);
  const back = tryCheckout(server.url, 'ws-hal', poolKey, 'hal', 'CAD');
  expect(back.ok).toBe(false);
  expect(back.out).toContain('kept for others');
  expect(back.out).not.toContain('deny user hal');
});

