// targets.test.mjs -- the Targets page in Debian's chromium against a real
// firn scraping a target that refuses connections: every target of
// /api/v1/targets is listed with its endpoint, health and error; the
// filter narrows the list (and is kept in the URL); discovered labels show
// on demand.  Light and dark.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, load, openPage, screenshot, startFirn } from './harness.mjs';

let firn;
let browser;
let targets;

before(async () => {
  // port 1 on loopback: nothing listens, every scrape fails at once
  firn = await startFirn({
    config: 'scrape_configs:\n  - job_name: refused\n    scrape_interval: 1s\n    scrape_timeout: 1s\n' +
      '    static_configs: [{targets: ["127.0.0.1:1"], labels: {env: test}}]\n',
  });
  browser = await launchBrowser();
  const end = Date.now() + 20_000;
  for (;;) {
    const body = await (await firn.fetch('/api/v1/targets')).json();
    targets = body.data.activeTargets;
    if (targets.length && targets.every((t) => t.health === 'down' && t.lastError)) break;
    if (Date.now() > end) throw new Error(`targets not scraped in 20 s: ${JSON.stringify(targets)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  await browser?.close();
  await firn?.stop();
});

for (const colorScheme of ['light', 'dark']) {
  test(`every target with endpoint, health, labels and error (${colorScheme})`, async () => {
    const { context, page, errors } = await openPage(browser, firn, { colorScheme });
    try {
      await load(page, firn, '/targets');
      const pool = page.getByRole('region', { name: 'refused' });
      assert.match(await pool.getByRole('heading').textContent(), /refused\s*0\/\d+ up/);
      const rows = pool.locator('tbody tr');
      assert.equal(await rows.count(), targets.length);
      for (const t of targets) {
        const row = rows.filter({ has: page.getByRole('link', { name: t.scrapeUrl, exact: true }) });
        assert.equal(await row.count(), 1, t.scrapeUrl);
        assert.equal(await row.locator('.health').textContent(), 'down');
        assert.ok((await row.textContent()).includes(t.lastError.slice(0, 40)), `${t.scrapeUrl} shows its error`);
        assert.ok((await row.textContent()).includes('env="test"'));
      }
      await screenshot(page, `targets-${colorScheme}`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}

test('the filter narrows the targets and stays in the URL; discovered labels on demand', async () => {
  const { context, page, errors } = await openPage(browser, firn);
  try {
    await load(page, firn, '/targets');
    const want = targets.filter((t) => t.scrapeUrl.includes('/allocs'));
    assert.ok(want.length >= 1);
    await page.getByRole('searchbox', { name: 'Filter targets' }).fill('allocs');
    const links = page.locator('tbody tr a');
    assert.deepEqual(await links.allTextContents(), want.map((t) => t.scrapeUrl));
    assert.equal(new URL(page.url()).searchParams.get('search'), 'allocs');
    await page.reload();
    await load(page, firn, '/targets?search=allocs');
    assert.deepEqual(await page.locator('tbody tr a').allTextContents(), want.map((t) => t.scrapeUrl));
    const show = page.locator('tbody tr').first().getByRole('button', { name: /discovered labels/ });
    assert.equal(await show.textContent(), 'show discovered labels');
    await show.click();
    assert.equal(await show.getAttribute('aria-expanded'), 'true');
    assert.equal(await show.textContent(), 'hide discovered labels');
    assert.ok((await page.locator('tbody tr').first().textContent()).includes(`__address__="${want[0].discoveredLabels.__address__}"`));
    await page.getByRole('combobox', { name: 'Health' }).selectOption('up');
    assert.equal(await page.locator('tbody tr').count(), 0);
    assert.match(await page.locator('.empty').textContent(), /No target matches/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
