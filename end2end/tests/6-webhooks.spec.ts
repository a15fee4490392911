import { createServer, IncomingHttpHeaders } from 'node:http';
import { createHmac } from 'node:crypto';
import { AddressInfo } from 'node:net';
import { test, expect, open, confirmIt, signInAs, admin } from './fixtures';

// Webhooks: the administrator registers a receiver (a real HTTP server here) for "licence
// created", makes an order of two licences, and the receiver gets two signed events, which the
// portal then lists as delivered.
test('a webhook registered in the portal is told of new licences, signed', async ({ page, consoleErrors }) => {
  const got: { headers: IncomingHttpHeaders; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('received');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  try {
    await signInAs(page, admin.email, admin.password);
    await open(page, '/admin/webhooks');
    await page.getByLabel('URL').fill(url);
    await page.getByRole('button', { name: 'Register webhook' }).click();
    await expect(page.getByText('Choose at least one event.')).toBeVisible();
    await page.getByLabel('a licence is created (licence.created)').check();
    await page.getByRole('button', { name: 'Register webhook' }).click();
    const secret = (await page.getByTestId('webhook-secret').textContent())!.trim();
    expect(secret).toMatch(/^whsec_/);

    await open(page, '/admin/orders/new');
    await page.getByLabel('Client').selectOption({ label: 'Globex Labs' });
    await page.getByLabel('Product').selectOption({ label: 'DRAW · Draw' });
    await page.getByLabel('Number of licences').fill('2');
    await page.getByRole('button', { name: 'Create order' }).click();
    await expect(page).toHaveURL(/\/admin\/orders\/\d+(\?done=created)?$/);

    // Within seconds, two events, each signed with the secret.
    await expect.poll(() => got.length, { timeout: 20_000 }).toBe(2);
    for (const { headers, body } of got) {
      expect(headers['licentia-event']).toBe('licence.created');
      const [t, v1] = String(headers['licentia-signature']).split(',');
      const expected = createHmac('sha256', secret).update(`${t.slice(2)}.${body}`).digest('hex');
      expect(v1).toBe(`v1=${expected}`);
      expect(JSON.parse(body).type).toBe('licence.created');
    }
    expect(new Set(got.map((g) => JSON.parse(g.body).id)).size).toBe(2);

    // The portal lists them as delivered, with the receiver's answer (the sender records the
    // answer just after the receiver has it: look again until it has).
    const card = page.locator(`article[data-webhook="${url}"]`);
    await expect(async () => {
      await open(page, '/admin/webhooks');
      await card.getByRole('button', { name: 'Show deliveries' }).click();
      await expect(card.locator('tr[data-delivery]')).toHaveCount(2, { timeout: 2_000 });
      for (const row of await card.locator('tr[data-delivery]').all()) {
        await expect(row).toContainText('200 received', { timeout: 2_000 });
        await expect(row).toContainText('delivered', { timeout: 2_000 });
      }
    }).toPass({ timeout: 20_000, intervals: [1_000] });
    // Removed (once confirmed), it is gone from the list.
    await card.getByRole('button', { name: 'Remove' }).click();
    await confirmIt(page);
    await expect(card).toHaveCount(0);
    await expect(page.getByTestId('done-banner')).toHaveText(`The webhook ${url} was removed.`);
  } finally {
    receiver.close();
  }
});
