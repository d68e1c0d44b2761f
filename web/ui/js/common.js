// common.js -- what every page shares: the header (navigation, help,
// theme toggle), the theme (the system's prefers-color-scheme unless the
// toggle chose one, remembered in localStorage), API requests with
// Prometheus's error envelope turned into Errors, and small DOM helpers.

const THEME_KEY = 'firn-theme';
const darkQuery = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;
const themeListeners = [];

function storedTheme() {
  try {
    return localStorage.getItem(THEME_KEY);
  } catch {
    return null;
  }
}

export function currentTheme() {
  return document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light';
}

function setTheme(t) {
  document.documentElement.dataset.theme = t;
  const b = document.getElementById('theme-toggle');
  if (b) {
    b.setAttribute('aria-pressed', String(t === 'dark'));
    b.textContent = t === 'dark' ? '☾ Dark' : '☀ Light';
  }
  for (const f of themeListeners) f(t);
}

function applyTheme() {
  setTheme(storedTheme() || (darkQuery && darkQuery.matches ? 'dark' : 'light'));
}

export function onThemeChange(f) {
  themeListeners.push(f);
}

// An element: el('a', {href: '/', class: 'x', onclick: f}, 'text', child...).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Labels as chips (name="value"), sorted by name.
export function chips(labels) {
  return el('div', { class: 'chips' }, Object.entries(labels || {}).sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => el('span', { class: 'chip' }, `${k}="${v}"`)));
}

// The header of every page; current is "explore", "targets", "alerts" or "rules".
export function header(current, extra = []) {
  const link = (href, name, id) => el('a', { href, 'aria-current': current === id ? 'page' : null }, name);
  const toggle = el('button', {
    id: 'theme-toggle', type: 'button', 'aria-label': 'Dark theme', title: 'Switch between light and dark',
    onclick: () => {
      const next = currentTheme() === 'dark' ? 'light' : 'dark';
      try {
        localStorage.setItem(THEME_KEY, next);
      } catch { /* private mode: the choice lasts for this page */ }
      setTheme(next);
    },
  });
  const h = el('header', { class: 'topbar' },
    el('a', { class: 'brand', href: '/' }, 'firn'),
    el('nav', { 'aria-label': 'Pages' }, link('/', 'Explore', 'explore'), link('/targets', 'Targets', 'targets'),
      link('/alerts', 'Alerts', 'alerts'), link('/rules', 'Rules', 'rules')),
    el('span', { class: 'spacer' }),
    ...extra,
    toggle);
  document.body.prepend(h);
  applyTheme();
  return h;
}

if (darkQuery) darkQuery.addEventListener('change', () => { if (!storedTheme()) applyTheme(); });

export class ApiError extends Error {
  constructor(message, status, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

// GET an API path with parameters (arrays repeat the key); the "data" of
// a success envelope, else an ApiError with the server's message.
export async function api(path, params = {}, opts = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else q.append(k, v);
  }
  const url = path + (q.toString() ? '?' + q : '');
  let r;
  try {
    r = await fetch(url, { signal: opts.signal, headers: { Accept: 'application/json' } });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach firn: ${e.message}`, 0, 'network');
  }
  let body;
  const text = await r.text();
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(`${r.status} ${r.statusText}: ${text.slice(0, 300)}`, r.status, 'http');
  }
  if (body.status !== 'success') throw new ApiError(body.error || `${r.status} ${r.statusText}`, r.status, body.errorType);
  return body.data;
}

export function apiURL(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) for (const x of v) q.append(k, x);
    else q.append(k, v);
  }
  return path + '?' + q;
}

// Shows a "loading" veil over host if work takes longer than 200 ms.
export function withLoading(host, promise, text = 'Loading…') {
  let veil = null;
  const t = setTimeout(() => {
    veil = el('div', { class: 'loading', role: 'status' }, text);
    host.classList.add('busy');
    host.append(veil);
  }, 200);
  const done = () => {
    clearTimeout(t);
    if (veil) veil.remove();
    host.classList.remove('busy');
  };
  promise.then(done, done);
  return promise;
}

// "3.2 s ago" for an RFC3339 time.
export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t) || t <= 0) return 'never';
  const s = (now - t) / 1000;
  if (s < 1) return 'just now';
  if (s < 90) return `${s.toFixed(1)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

// Waits until the promise current() returns has settled and no newer one
// took its place (a page's loads chain: a click during a load starts another).
export async function settled(current) {
  let p;
  do {
    p = current();
    await p;
  } while (p !== current());
}
