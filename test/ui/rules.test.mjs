// rules.test.mjs -- the Alerts and Rules pages in Debian's chromium against
// a real firn evaluating rule files: a recording rule, an alert that fires at
// once, one that stays pending and one that stays inactive (the alerts read
// the recorded series, as firn's query language has no vector()). The pages show
// exactly the groups, rules, states and alerts /api/v1/rules answers; the
// state and text filters work and stay in the URL; an expression opens
// Explore with that query; every page's header links to both; no rules,
// and an API error, are said so.  Light and dark.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, load, openPage, screenshot, startFirn } from './harness.mjs';

const RULES_A = `groups:
  - name: instant
    interval: 1s
    rules:
      - record: ui:one
        expr: '1'
        labels: {source: uitest}
      - alert: AlwaysFiring
        expr: ui:one > 0
        for: 0s
        labels: {severity: page}
        annotations: {summary: 'always {{ $value }}', description: '{{ $labels.source }} says {{ $value }}'}
      - alert: NeverFires
        expr: ui:one < 0
        for: 5m
        keep_firing_for: 1m
        labels: {severity: ticket}
`;
const RULES_B = `groups:
  - name: slow
    interval: 1s
    rules:
      - alert: SlowBurn
        expr: ui:one >= 1
        for: 1h
`;

let firn;
let browser;
let groups; // /api/v1/rules's groups once every alert has its state
let alerts; // /api/v1/alerts's alerts then

async function apiData(path) {
  const body = await (await firn.fetch(path)).json();
  assert.equal(body.status, 'success', `${path}: ${JSON.stringify(body)}`);
  return body.data;
}

before(async () => {
  firn = await startFirn({
    config: "rule_files: ['a.rules.yml', 'b.rules.yml']\n",
    files: { 'a.rules.yml': RULES_A, 'b.rules.yml': RULES_B },
  });
  browser = await launchBrowser();
  const end = Date.now() + 30_000;
  for (;;) {
    alerts = (await apiData('/api/v1/alerts')).alerts;
    groups = (await apiData('/api/v1/rules')).groups;
    const state = (name) => alerts.find((a) => a.labels.alertname === name)?.state;
    const evaluated = groups.every((g) => g.rules.every((r) => Date.parse(r.lastEvaluation) > 0));
    if (state('AlwaysFiring') === 'firing' && state('SlowBurn') === 'pending' && evaluated) break;
    if (Date.now() > end) throw new Error(`alerts not firing/pending in 30 s: ${JSON.stringify(alerts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  await browser?.close();
  await firn?.stop();
});

const alerting = () => groups.flatMap((g) => g.rules.filter((r) => r.type === 'alerting'));
const section = (page, g) => page.getByRole('region', { name: `${g.file} > ${g.name}` });

for (const colorScheme of ['light', 'dark']) {
  test(`Alerts: every alerting rule with its state, expression and alerts (${colorScheme})`, async () => {
    const { context, page, errors } = await openPage(browser, firn, { colorScheme });
    try {
      await load(page, firn, '/alerts');
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), colorScheme);
      for (const s of ['inactive', 'pending', 'firing']) {
        const want = alerting().filter((r) => r.state === s).length;
        assert.equal(await page.locator(`#count-${s}`).textContent(), String(want), s);
      }
      assert.deepEqual(alerting().map((r) => r.state).sort(), ['firing', 'inactive', 'pending']);
      for (const g of groups) {
        const rules = g.rules.filter((r) => r.type === 'alerting');
        const sec = section(page, g);
        assert.equal(await sec.count(), 1, `${g.file} > ${g.name}`);
        assert.deepEqual(await sec.locator('details.rule summary .name').allTextContents(), rules.map((r) => r.name));
        for (const r of rules) {
          const rule = sec.locator('details.rule', { has: page.locator('summary .name', { hasText: r.name }) });
          assert.equal(await rule.locator('summary .state').textContent(), r.state);
          if (r.state === 'inactive') await rule.locator('summary').click(); // closed by default
          const link = rule.getByRole('link', { name: r.query, exact: true });
          assert.equal(new URL(await link.getAttribute('href'), firn.url).searchParams.get('query'), r.query);
          const text = await rule.textContent();
          for (const [k, v] of Object.entries(r.labels)) assert.ok(text.includes(`${k}="${v}"`), `${r.name} ${k}`);
          for (const v of Object.values(r.annotations)) assert.ok(text.includes(v), `${r.name} annotation ${v}`);
          const active = rule.getByRole('table', { name: `Active alerts of ${r.name}` });
          assert.equal(await active.count(), r.alerts.length ? 1 : 0);
          if (r.alerts.length) {
            const rows = active.locator('tbody tr');
            assert.equal(await rows.count(), r.alerts.length);
            const a = r.alerts[0];
            assert.equal(await rows.first().locator('.state').textContent(), a.state);
            assert.equal(await rows.first().locator('td').nth(3).textContent(), a.value);
            for (const [k, v] of Object.entries(a.labels)) {
              assert.ok((await rows.first().textContent()).includes(`${k}="${v}"`), `${r.name} alert ${k}`);
            }
            // The alert's own annotations, filled in for its labels and value, in name order.
            const ann = Object.entries(a.annotations || {}).sort(([x], [y]) => (x < y ? -1 : 1));
            const cell = rows.first().locator('td.annotations dl');
            assert.equal(await cell.count(), ann.length ? 1 : 0, `${r.name} annotations cell`);
            assert.equal(await active.locator('thead th').count(), ann.length ? 5 : 4);
            if (ann.length) {
              assert.deepEqual(await cell.locator('dt').allTextContents(), ann.map(([k]) => k));
              assert.deepEqual(await cell.locator('dd').allTextContents(), ann.map(([, v]) => v));
            }
          }
        }
      }
      // The templates filled in by hand: ui:one is 1 with source="uitest".
      const always = alerting().find((r) => r.name === 'AlwaysFiring');
      assert.deepEqual(always.alerts.map((a) => a.annotations),
        [{ summary: 'always 1', description: 'uitest says 1' }]);
      const never = alerting().find((r) => r.name === 'NeverFires');
      assert.equal(never.duration, 300);
      assert.equal(never.keepFiringFor, 60);
      const nv = page.locator('details.rule', { has: page.locator('summary .name', { hasText: 'NeverFires' }) });
      assert.match(await nv.textContent(), /for\s*5m.*keep_firing_for\s*1m/s);
      await screenshot(page, `alerts-${colorScheme}`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });

  test(`Rules: every group and rule with health and evaluation (${colorScheme})`, async () => {
    const { context, page, errors } = await openPage(browser, firn, { colorScheme });
    try {
      await load(page, firn, '/rules');
      assert.equal(await page.locator('section.pool').count(), groups.length);
      for (const g of groups) {
        const sec = section(page, g);
        assert.match(await sec.getByRole('heading').textContent(), new RegExp(`every ${g.interval}s`));
        const rows = sec.getByRole('table', { name: `Rules of ${g.name}` }).locator('tbody tr');
        assert.deepEqual(await rows.locator('.rule-name .name').allTextContents(), g.rules.map((r) => r.name));
        for (const [i, r] of g.rules.entries()) {
          const row = rows.nth(i);
          assert.equal(await row.locator('.kind').textContent(), r.type === 'alerting' ? 'alert' : 'record');
          assert.equal(await row.locator('.health').textContent(), r.health);
          assert.equal(await row.locator('td.err').textContent(), r.lastError || '');
          assert.equal(await row.getByRole('link').getAttribute('href'), '/?' + new URLSearchParams({ query: r.query }));
          if (r.type === 'recording') {
            for (const [k, v] of Object.entries(r.labels || {})) assert.ok((await row.textContent()).includes(`${k}="${v}"`));
          }
          assert.notEqual(await row.locator('td').nth(4).textContent(), 'never');
        }
      }
      await screenshot(page, `rules-${colorScheme}`);
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  });
}

test('Alerts: state and text filters narrow the rules and stay in the URL', async () => {
  const { context, page, errors } = await openPage(browser, firn);
  try {
    await load(page, firn, '/alerts');
    const names = () => page.locator('details.rule summary .name').allTextContents();
    const firing = page.getByRole('checkbox', { name: /^Firing/ });
    await firing.check();
    assert.deepEqual(await names(), alerting().filter((r) => r.state === 'firing').map((r) => r.name));
    assert.equal(new URL(page.url()).searchParams.get('state'), 'firing');
    await page.getByRole('checkbox', { name: /^Pending/ }).check();
    assert.deepEqual((await names()).sort(),
      alerting().filter((r) => r.state !== 'inactive').map((r) => r.name).sort());
    assert.equal(new URL(page.url()).searchParams.get('state'), 'pending,firing');
    await page.getByRole('searchbox', { name: 'Filter alerts' }).fill('severity="page"');
    assert.deepEqual(await names(), ['AlwaysFiring']);
    await load(page, firn, '/alerts?state=inactive&search=ticket');
    assert.deepEqual(await names(), ['NeverFires']);
    assert.equal(await page.getByRole('checkbox', { name: /^Inactive/ }).isChecked(), true);
    assert.equal(await page.getByRole('searchbox', { name: 'Filter alerts' }).inputValue(), 'ticket');
    await page.getByRole('searchbox', { name: 'Filter alerts' }).fill('no such rule');
    assert.equal(await names().then((n) => n.length), 0);
    assert.match(await page.locator('.empty').textContent(), /No alerting rule matches/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('Rules: the filter narrows the rules and stays in the URL', async () => {
  const { context, page, errors } = await openPage(browser, firn);
  try {
    await load(page, firn, '/rules');
    await page.getByRole('searchbox', { name: 'Filter rules' }).fill('>=');
    assert.deepEqual(await page.locator('.rule-name .name').allTextContents(), ['SlowBurn']);
    assert.equal(new URL(page.url()).searchParams.get('search'), '>=');
    await load(page, firn, '/rules?search=severity=%22ticket%22');
    assert.deepEqual(await page.locator('.rule-name .name').allTextContents(), ['NeverFires']);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('an expression opens Explore with its query; every page links to Alerts and Rules', async () => {
  const { context, page } = await openPage(browser, firn);
  try {
    await load(page, firn, '/alerts');
    const r = alerting().find((x) => x.name === 'AlwaysFiring');
    await page.getByRole('link', { name: r.query, exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/', { timeout: 10_000 });
    assert.equal(new URL(page.url()).searchParams.get('query'), r.query);
    assert.equal(await page.locator('#query').inputValue(), r.query);
    for (const p of ['/', '/targets', '/alerts', '/rules']) {
      await load(page, firn, p);
      const nav = page.getByRole('navigation', { name: 'Pages' });
      assert.equal(await nav.getByRole('link', { name: 'Alerts' }).getAttribute('href'), '/alerts', p);
      assert.equal(await nav.getByRole('link', { name: 'Rules' }).getAttribute('href'), '/rules', p);
    }
    assert.equal(await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Rules' })
      .getAttribute('aria-current'), 'page');
  } finally {
    await context.close();
  }
});

test('no rules loaded, and an API error, are said so', async () => {
  const bare = await startFirn();
  const { context, page, errors } = await openPage(browser, bare);
  try {
    for (const p of ['/alerts', '/rules']) {
      await load(page, bare, p);
      assert.match(await page.locator('.empty').textContent(), /No rules are loaded: add rule_files to the config/, p);
    }
    assert.deepEqual(errors, []);
    // the server's message is shown as it is
    await page.route('**/api/v1/rules*', (route) => route.fulfill({
      status: 503, contentType: 'application/json',
      body: JSON.stringify({ status: 'error', errorType: 'unavailable', error: 'rule manager is stopping' }),
    }));
    for (const p of ['/alerts', '/rules']) {
      await load(page, bare, p);
      const alert = page.getByRole('alert');
      assert.equal(await alert.isVisible(), true);
      assert.match(await alert.textContent(), /failed: rule manager is stopping$/, p);
    }
  } finally {
    await context.close();
    await bare.stop();
  }
});
