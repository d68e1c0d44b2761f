// autocomplete.js -- suggestions for the selector box: profile types for
// the metric name, label names from /api/v1/labels and values from
// /api/v1/label/NAME/values, both narrowed by match[] (the selector typed
// so far) and capped by limit, fetched after a pause in typing and cached.

import { api } from './common.js';
import { completionContext, applyCompletion, filterSuggestions } from './lib/selector.js';

const DEBOUNCE_MS = 150;
const LIMIT = 200;

export class Autocomplete {
  constructor(input, list, opts) {
    this.input = input;
    this.list = list;
    this.opts = opts;
    this.items = [];
    this.active = -1;
    this.ctx = null;
    this.timer = 0;
    this.seq = 0;
    this.cache = new Map();
    input.addEventListener('input', () => this.schedule());
    input.addEventListener('focus', () => this.schedule());
    input.addEventListener('click', () => this.schedule());
    input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    input.addEventListener('keydown', (e) => this.key(e));
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.update(), DEBOUNCE_MS);
  }

  async fetchList(path, params) {
    const key = path + JSON.stringify(params);
    if (!this.cache.has(key)) {
      this.cache.set(key, api(path, params).catch(() => []));
    }
    return this.cache.get(key);
  }

  async update() {
    const seq = ++this.seq;
    const text = this.input.value;
    const ctx = completionContext(text, this.input.selectionStart ?? text.length);
    let list = [];
    if (ctx.kind === 'metric') {
      list = this.opts.metrics();
    } else if (ctx.kind === 'label') {
      list = (await this.fetchList('/api/v1/labels', { 'match[]': ctx.match || undefined, limit: LIMIT }))
        .filter((n) => n !== '__name__');
      list.push('__function__');
    } else if (ctx.kind === 'value' && ctx.label !== '__function__') {
      list = await this.fetchList(`/api/v1/label/${encodeURIComponent(ctx.label)}/values`,
        { 'match[]': ctx.match || undefined, limit: LIMIT });
    }
    if (seq !== this.seq || document.activeElement !== this.input) return;
    this.ctx = ctx;
    const items = filterSuggestions(list, ctx.prefix || '', 50).filter((s) => s !== ctx.prefix || ctx.kind === 'value');
    this.show(items);
  }

  show(items) {
    this.items = items;
    this.active = -1;
    this.list.textContent = '';
    items.forEach((s, k) => {
      const li = document.createElement('li');
      li.id = `suggest-${k}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', 'false');
      li.textContent = s;
      li.addEventListener('mousedown', (e) => {
        e.preventDefault();
        this.pick(k);
      });
      this.list.append(li);
    });
    const open = items.length > 0;
    this.list.hidden = !open;
    this.input.setAttribute('aria-expanded', String(open));
    this.input.removeAttribute('aria-activedescendant');
  }

  close() {
    clearTimeout(this.timer);
    this.seq++;
    this.show([]);
  }

  move(d) {
    if (!this.items.length) return;
    this.active = (this.active + d + this.items.length) % this.items.length;
    [...this.list.children].forEach((li, k) => li.setAttribute('aria-selected', String(k === this.active)));
    const li = this.list.children[this.active];
    this.input.setAttribute('aria-activedescendant', li.id);
    li.scrollIntoView({ block: 'nearest' });
  }

  pick(k) {
    const value = this.items[k];
    if (value === undefined || !this.ctx) return;
    const r = applyCompletion(this.input.value, this.ctx, value);
    this.input.value = r.text;
    this.input.setSelectionRange(r.pos, r.pos);
    this.close();
    this.input.focus();
    this.schedule();
  }

  key(e) {
    if (this.list.hidden) return;
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      this.move(1);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      this.move(-1);
    } else if ((e.key === 'Enter' || e.key === 'Tab') && this.active >= 0) {
      e.preventDefault();
      this.pick(this.active);
    } else if (e.key === 'Escape') {
      e.stopPropagation();
      this.close();
    }
  }
}
