// smoke.test.mjs -- every page of the web UI loads in Debian's chromium from
// a real firn, embedded in the binary: no console error, no request that
// fails or leaves firn, module scripts from /static/HASH/ with the cache
// headers of a versioned asset, light and dark; the same behind basic auth
// over TLS.  Screenshots of each page go to FIRN_UI_SCREENSHOTS.  With
// FIRN_UI_ASSETS (harness.mjs) the version is "dev" and nothing is cached.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  launchBrowser, load, openPage, pushProfile, screenshot, startFirn, tlsAuthSetup, uiAssets,
} from './harness.mjs';

const PAGES = ['/', '/targets'];
const FIXTURE = 'parca-pkg_query_testdata_fib.pb.gz';  // Go CPU: samples/count, cpu/nanoseconds
const ASSET_PATH = uiAssets ? /^\/static\/(dev)\// : /^\/static\/([0-9a-f]{16})\//;
const ASSET_CACHE = uiAssets ? 'no-cache' : 'public, max-age=31536000, immutable';

let firn;
let browser;

before(async () => {
  firn = await startFirn();
  browser = await launchBrowser();
  const now = Math.floor(Date.now() / 1000);
  for (const t of [now - 600, now - 300]) {
    const data = await pushProfile(firn, {
      fixture: FIXTURE, name: 'process_cpu', labels: { job: 'smoke', instance: 'a:1' }, time: t,
    });
    assert.ok(data.profileTypes.some((p) => p.startsWith('process_cpu:cpu:nanoseconds:cpu:nanoseconds')),
      `ingest made ${data.profileTypes}`);
  }
});

after(async () => {
  await browser?.close();
  await firn?.stop();
});

// What a loaded page asked for: its module scripts' responses.
function scripts(requests) {
  return requests.filter((r) => r.resourceType() === 'script');
}

for (const path of PAGES) {
  for (const colorScheme of ['light', 'dark']) {
    test(`${path} (${colorScheme}) loads its modules from /static/HASH/ without an error`, async () => {
      const { context, page, errors, requests } = await openPage(browser, firn, { colorScheme });
      try {
        const res = await load(page, firn, path);
        assert.equal(res.status(), 200);
        assert.equal(res.headers()['content-type'], 'text/html; charset=utf-8');
        assert.equal(res.headers()['cache-control'], 'no-cache');

        const html = await page.content();
        assert.ok(!html.includes('__FIRN_ASSETS__'), 'the placeholder was replaced');
        const modules = await page.$$eval('script[type=module][src]', (els) => els.map((e) => e.src));
        assert.ok(modules.length > 0, 'the page has a module script');

        const loaded = scripts(requests);
        assert.ok(loaded.length >= modules.length, `${loaded.length} scripts loaded`);
        const hashes = new Set();
        for (const r of loaded) {
          const u = new URL(r.url());
          const m = ASSET_PATH.exec(u.pathname);
          assert.ok(m, `script ${u.pathname} is under /static/HASH/`);
          hashes.add(m[1]);
          const resp = await r.response();
          assert.equal(resp.status(), 200, u.pathname);
          assert.equal(resp.headers()['content-type'], 'text/javascript; charset=utf-8', u.pathname);
          assert.equal(resp.headers()['cache-control'], ASSET_CACHE, u.pathname);
        }
        assert.equal(hashes.size, 1, `one asset version: ${[...hashes]}`);
        for (const src of modules) assert.match(new URL(src).pathname, ASSET_PATH);

        await screenshot(page, `${path === '/' ? 'index' : path.slice(1)}-${colorScheme}`);
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  }
}

test('behind basic auth over TLS the pages load with credentials, and 401 without', async () => {
  const setup = tlsAuthSetup();
  const secured = await startFirn({ webConfig: setup.webConfig, files: setup.files });
  try {
    // A browser without credentials gives up on the challenge
    // (ERR_INVALID_AUTH_CREDENTIALS): ask through the context's plain client.
    const anon = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      for (const path of PAGES) {
        const res = await anon.request.get(secured.url + path);
        assert.equal(res.status(), 401, path);
        assert.equal(res.headers()['www-authenticate'], 'Basic', path);
      }
    } finally {
      await anon.close();
    }
    const { context, page, errors, requests } = await openPage(browser, secured, {
      ignoreHTTPSErrors: true, httpCredentials: setup.credentials,
    });
    try {
      for (const path of PAGES) {
        requests.length = 0;
        const res = await load(page, secured, path);
        assert.equal(res.status(), 200, path);
        assert.equal(new URL(res.url()).protocol, 'https:');
        const loaded = scripts(requests);
        assert.ok(loaded.length > 0, `${path} loaded a script`);
        for (const r of loaded) assert.equal((await r.response()).status(), 200, r.url());
      }
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
    }
  } finally {
    await secured.stop();
  }
});
