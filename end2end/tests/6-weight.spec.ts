import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test, expect, open, signInAs, admin } from './fixtures';

// What the portal weighs: the WebAssembly bundle on disk and the bytes a first visit to /admin
// moves over the wire (an empty cache, compression as the server negotiates it). The budgets are
// what the build reaches today with a small margin, so that growth fails here; the goals of
// issue 16 (1 MB raw, 300 KB brotli, 400 KB for the first visit) are not reached yet — the
// README's Performance section says why.
// Raised on 2026-12-08 (3.49 MB, 718 KB brotli with issue 15's code files, counter rows and
// field marks) to leave room for the site servers' pages.
const BUDGET = {
  wasmRaw: 3_600_000,
  wasmBrotli: 740_000,
  firstVisit: 760_000,
};

test('the portal bundle stays within its budget', async () => {
  const root = process.env.LICENTIA_SITE_ROOT;
  if (!root) throw new Error('LICENTIA_SITE_ROOT is not set: run the tests with scripts/test');
  const size = (name: string) => statSync(join(root, 'pkg', name)).size;
  const raw = size('licentia_bg.wasm');
  const brotli = size('licentia_bg.wasm.br');
  console.log(`portal WebAssembly: ${raw} bytes raw, ${brotli} brotli`);
  expect(raw, 'WebAssembly bytes').toBeLessThanOrEqual(BUDGET.wasmRaw);
  expect(brotli, 'brotli bytes').toBeLessThanOrEqual(BUDGET.wasmBrotli);
});

test('a first visit to /admin transfers within its budget, compressed', async ({ browser, page, consoleErrors }) => {
  await signInAs(page, admin.email, admin.password);
  // A browser with the session and nothing cached.
  const fresh = await browser.newContext({ storageState: await page.context().storageState() });
  const visit = await fresh.newPage();
  visit.on('pageerror', (e) => consoleErrors.push(`page error on ${visit.url()}: ${e.message}`));
  // Each finished request's sizes, read as it finishes; all awaited before they are summed.
  const pending: Promise<{ url: string; bytes: number; encoding: string }>[] = [];
  visit.on('requestfinished', (request) => {
    pending.push((async () => {
      const sizes = await request.sizes();
      const response = await request.response();
      return {
        url: request.url(),
        bytes: sizes.responseBodySize + sizes.responseHeadersSize,
        encoding: (await response?.headerValue('content-encoding')) ?? 'identity',
      };
    })());
  });
  await open(visit, '/admin');
  await expect(visit.getByRole('heading', { level: 1 })).toBeVisible();
  await visit.waitForLoadState('networkidle');
  const requests = await Promise.all(pending);
  const total = requests.reduce((sum, r) => sum + r.bytes, 0);
  console.log(`first visit to /admin: ${total} bytes in ${requests.length} requests`);
  for (const r of requests) console.log(`  ${r.bytes} ${r.encoding} ${r.url}`);
  // The page itself and the bundle arrive compressed.
  const byPath = (suffix: string) => requests.find((r) => new URL(r.url).pathname.endsWith(suffix));
  expect(byPath('/admin')?.encoding).toMatch(/^(br|gzip)$/);
  expect(byPath('.wasm')?.encoding).toBe('br');
  expect(byPath('licentia.js')?.encoding).toBe('br');
  expect(total, 'bytes transferred').toBeLessThanOrEqual(BUDGET.firstVisit);
  await fresh.close();
});
