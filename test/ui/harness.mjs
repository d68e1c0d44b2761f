// harness.mjs -- helpers for firn's browser tests (node --test): a real firn
// on a free 127.0.0.1 port with its own data directory, fixture profiles
// pushed to it through /api/v1/ingest, and Debian's chromium driven by
// playwright-core (no browser download), with the page's console errors and
// any request that leaves firn collected.
//
// Environment:
//   FIRN_BIN              the firn binary (default: build/cmd/firn/firn of this tree)
//   FIRN_FIXTURES         the pprof fixtures (default: ../shared/fixtures/pprof
//                         beside this tree)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//   FIRN_UI_ASSETS        when set, every firn started serves the UI from this
//                         directory (--web.ui-assets): UI edits are tested
//                         without rebuilding firn (assets then live under
//                         /static/dev/, not cached)
//   FIRN_UI_SCREENSHOTS   where screenshot() writes (default: a temporary directory,
//                         printed)
//
// Every process this starts is stopped by its PID (firn.stop(),
// browser.close()); every wait has a deadline and throws when it passes.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const firnBin = process.env.FIRN_BIN || path.join(repoRoot, 'build', 'cmd', 'firn', 'firn');
export const fixturesDir =
  process.env.FIRN_FIXTURES || path.join(repoRoot, '..', 'shared', 'fixtures', 'pprof');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
export const uiAssets = process.env.FIRN_UI_ASSETS ? path.resolve(process.env.FIRN_UI_ASSETS) : null;

const READY_LINE = /Server is ready to receive web requests\..* port=(\d+)/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

// Loopback only: no proxy may see (or refuse) a request to 127.0.0.1.
for (const v of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'all_proxy']) {
  delete process.env[v];
}

async function until(what, deadlineMs, probe) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A fixture file's path (FIRN_FIXTURES), checked to exist. */
export function fixture(name) {
  const p = path.join(fixturesDir, name);
  if (!fs.existsSync(p)) throw new Error(`fixture ${p} not found (set FIRN_FIXTURES)`);
  return p;
}

/**
 * Start firn on 127.0.0.1:0 with a fresh data directory and wait until it
 * logs its port and /-/ready answers 200.
 *   flags      more command-line flags, e.g. ['--web.ui-assets=DIR']
 *   config     the scrape configuration's YAML (default: no scrape configs, so
 *              the store holds only what a test pushes)
 *   webConfig  --web.config.file's YAML (TLS, basic_auth_users...); relative
 *              paths in it are relative to the temporary directory (tmpDir)
 *   files      {name: contents} written to tmpDir first (certificates...)
 *   auth       {username, password} that firn.fetch sends
 * Returns {url, port, pid, tmpDir, logPath, fetch(path, init), log(), stop()}.
 */
export async function startFirn({ flags = [], config = 'scrape_configs: []\n', webConfig, files = {},
  auth } = {}) {
  if (!fs.existsSync(firnBin)) throw new Error(`firn binary ${firnBin} not found (set FIRN_BIN)`);
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'firn-ui-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(tmpDir, name), text);
  fs.writeFileSync(path.join(tmpDir, 'firn.yml'), config);
  const args = [`--config.file=${path.join(tmpDir, 'firn.yml')}`, '--web.listen-address=127.0.0.1:0',
    `--storage.tsdb.path=${path.join(tmpDir, 'data')}`];
  if (webConfig !== undefined) {
    fs.writeFileSync(path.join(tmpDir, 'web.yml'), webConfig);
    args.push(`--web.config.file=${path.join(tmpDir, 'web.yml')}`);
  }
  if (uiAssets && !flags.some((f) => f.startsWith('--web.ui-assets'))) {
    args.push(`--web.ui-assets=${uiAssets}`);
  }
  args.push(...flags);
  const logPath = path.join(tmpDir, 'firn.log');
  const logFd = fs.openSync(logPath, 'w');
  const child = spawn(firnBin, args, { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const log = () => fs.readFileSync(logPath, 'utf8');
  const cleanup = () => fs.rmSync(tmpDir, { recursive: true, force: true });

  const stop = async () => {
    if (exited === null) {
      const gone = once(child, 'exit');
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => { if (exited === null) process.kill(child.pid, 'SIGKILL'); },
        STOP_TIMEOUT_MS);
      await gone;
      clearTimeout(timer);
    }
    cleanup();
  };

  let port;
  try {
    port = await until('firn to log that it is ready', START_TIMEOUT_MS, () => {
      if (exited) throw new Error(`firn exited (${JSON.stringify(exited)}): ${log().slice(-2000)}`);
      const m = READY_LINE.exec(log());
      return m && Number(m[1]);
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const scheme = /tls_server_config/.test(webConfig || '') ? 'https' : 'http';
  // TLS tests connect to "localhost": the name their certificate carries.
  const url = `${scheme}://${scheme === 'https' ? 'localhost' : '127.0.0.1'}:${port}`;
  const headers = auth
    ? { authorization: 'Basic ' + Buffer.from(`${auth.username}:${auth.password}`).toString('base64') }
    : {};
  const firn = {
    url, port, pid: child.pid, tmpDir, logPath, log, stop,
    // fetch against firn, with the credentials given to startFirn (plain
    // HTTP only: Node's fetch cannot be told the test certificate).
    fetch: (p, init = {}) => {
      if (scheme !== 'http') throw new Error('firn.fetch: plain HTTP only; use a browser page');
      return fetch(url + p, { ...init, headers: { ...headers, ...(init.headers || {}) } });
    },
  };
  // firn logs the ready line after /-/ready turns 200; over plain HTTP
  // check it all the same (a TLS firn's certificate is the browser's business).
  if (scheme === 'http') {
    try {
      await until('/-/ready to answer 200', START_TIMEOUT_MS, async () => {
        if (exited) throw new Error(`firn exited: ${log().slice(-2000)}`);
        try {
          return (await firn.fetch('/-/ready')).status === 200;
        } catch {
          return false;
        }
      });
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return firn;
}

/**
 * Push one fixture profile through POST /api/v1/ingest.
 *   fixture  a file name in FIRN_FIXTURES (or an absolute path)
 *   name     the profile name (process_cpu, memory, goroutines...)
 *   labels   target labels ({job: 'api', instance: 'a:1'})
 *   time     when it was taken: a Date, or Unix seconds (default: the
 *            profile's own time_nanos, else now)
 *   delta    true/false to override firn's rule (a profile with a duration is
 *            a delta)
 * Resolves to the API's data ({profileTypes, samples, timestampMs}); throws
 * with firn's message on any error.
 */
export async function pushProfile(firn, { fixture: file, name, labels = {}, time, delta }) {
  const params = new URLSearchParams({ name });
  if (time !== undefined) {
    params.set('time', String(time instanceof Date ? time.getTime() / 1000 : time));
  }
  if (delta !== undefined) params.set('delta', String(delta));
  // Labels called name, time or delta travel in the header, as api_ingest.c asks.
  const reserved = [];
  for (const [k, v] of Object.entries(labels)) {
    if (['name', '__name__', 'time', 'delta'].includes(k)) reserved.push(`${k}=${v}`);
    else params.append(k, v);
  }
  const body = fs.readFileSync(path.isAbsolute(file) ? file : fixture(file));
  const headers = { 'content-type': 'application/octet-stream' };
  if (reserved.length) headers['x-firn-labels'] = reserved.join(',');
  const res = await firn.fetch(`/api/v1/ingest?${params}`, { method: 'POST', body, headers });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`ingest ${file}: HTTP ${res.status}: ${text.slice(0, 500)}`);
  }
  if (res.status !== 200 || json.status !== 'success') {
    throw new Error(`ingest ${file}: HTTP ${res.status}: ${json.error || text.slice(0, 500)}`);
  }
  return json.data;
}

/** Debian's chromium, headless, through playwright-core (UI.md §5). */
export async function launchBrowser() {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} not found: scripts/deps test installs Debian's chromium`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-proxy-server'],
  });
}

/**
 * A new page in its own context, watched: errors collects console errors,
 * uncaught exceptions, failed requests, HTTP errors (>= 400) and every
 * request to another origin than firn's (the UI must ask nothing but firn).
 *   options  passed to browser.newContext (viewport, colorScheme,
 *            httpCredentials, ignoreHTTPSErrors...); viewport 1280x800 and
 *            deviceScaleFactor 1 by default, so pixel reads are exact.
 * Returns {context, page, errors, requests} (requests: every URL asked).
 */
export async function openPage(browser, firn, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, ...options,
  });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  const origin = new URL(firn.url).origin;
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`exception: ${e.message}`));
  page.on('request', (r) => {
    requests.push(r);
    const u = new URL(r.url());
    if (u.origin !== origin && !['data:', 'blob:', 'about:'].includes(u.protocol)) {
      errors.push(`request outside firn: ${r.url()}`);
    }
  });
  page.on('requestfailed', (r) => {
    // A navigation away aborts what the old page still had in flight.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') {
      errors.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`);
    }
  });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`); });
  return { context, page, errors, requests };
}

/**
 * Go to a path of firn's and wait until the page has loaded and, when the
 * UI exposes it, window.firnUI.ready() has resolved (its data drawn).
 */
export async function load(page, firn, p, { timeout = 30_000 } = {}) {
  const res = await page.goto(firn.url + p, { waitUntil: 'load', timeout });
  if (!res) throw new Error(`no response for ${p}`);
  // Module scripts have run by "load", so firnUI exists by then if at all.
  let timer;
  try {
    await Promise.race([
      page.evaluate(async () => { if (window.firnUI && window.firnUI.ready) await window.firnUI.ready(); }),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`firnUI.ready() on ${p} did not resolve within ${timeout} ms`)), timeout);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return res;
}

let shotDir;
/** Save a PNG of the page (or of a locator) as NAME.png; returns its path. */
export async function screenshot(target, name) {
  if (!shotDir) {
    shotDir = process.env.FIRN_UI_SCREENSHOTS || fs.mkdtempSync(path.join(os.tmpdir(), 'firn-shots-'));
    fs.mkdirSync(shotDir, { recursive: true });
    console.log(`# screenshots in ${shotDir}`);
  }
  const file = path.join(shotDir, `${name}.png`);
  await target.screenshot({ path: file });
  return file;
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 and a bcrypt
 * basic_auth_users entry, as files for startFirn's `files` and the web
 * config that uses them (openssl and htpasswd from scripts/deps test);
 * tls: false gives basic auth over plain HTTP.
 */
export function tlsAuthSetup({ username = 'alice', password = 'open sesame', tls = true } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'firn-pki-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', path.join(dir, 'server.key'), '-out', path.join(dir, 'server.pem')],
    { stdio: 'pipe' });
    const hash = execFileSync('htpasswd', ['-nbBC', '4', username, password], { encoding: 'utf8' })
      .trim().split(':').slice(1).join(':');
    return {
      files: {
        'server.key': fs.readFileSync(path.join(dir, 'server.key')),
        'server.pem': fs.readFileSync(path.join(dir, 'server.pem')),
      },
      webConfig: (tls ? 'tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n' : '') +
        `basic_auth_users:\n  ${username}: ${hash}\n`,
      credentials: { username, password },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
