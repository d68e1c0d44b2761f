// selector.js -- the query box's selector, read leniently while it is
// typed: what the cursor is in (metric name, label name, label value) for
// autocomplete, the complete matchers before it (to narrow suggestions with
// match[]), and how a suggestion is put in.  No DOM.

const IDENT = /[A-Za-z0-9_:]/;
const QUOTES = '"\'`';

// A Go/PromQL string literal's content, unquoted (lenient: no error).
function unquote(q, body) {
  if (q === '`') return body;
  return body.replace(/\\(.)/g, (_, c) => ({ n: '\n', t: '\t', r: '\r' }[c] ?? c));
}

// Scans text; returns the matchers, the metric name and, for pos, the
// completion context.
export function scanSelector(text, pos = text.length) {
  const out = { metric: '', matchers: [], ctx: null, closed: false };
  let i = 0;
  const n = text.length;
  const setCtx = (ctx) => {
    if (!out.ctx) out.ctx = ctx;
  };
  while (i < n && /\s/.test(text[i])) i++;
  const ms = i;
  while (i < n && IDENT.test(text[i])) i++;
  out.metric = text.slice(ms, i);
  if (pos >= ms && pos <= i) setCtx({ kind: 'metric', prefix: text.slice(ms, pos), from: ms, to: i });
  while (i < n && /\s/.test(text[i])) i++;
  if (text[i] !== '{') {
    if (pos > i || !out.ctx) setCtx({ kind: 'none' });
    return out;
  }
  i++;
  for (;;) {
    while (i < n && /[\s,]/.test(text[i])) i++;
    if (i >= n) {
      if (pos >= i) setCtx({ kind: 'label', prefix: '', from: i, to: i });
      break;
    }
    if (text[i] === '}') {
      if (pos === i) setCtx({ kind: 'label', prefix: '', from: i, to: i });
      out.closed = true;
      if (pos > i) setCtx({ kind: 'none' });
      break;
    }
    const ls = i;
    while (i < n && IDENT.test(text[i])) i++;
    const label = text.slice(ls, i);
    if (pos >= ls && pos <= i) setCtx({ kind: 'label', prefix: text.slice(ls, pos), from: ls, to: i });
    if (i === ls) { // not a label name: give up on the rest
      setCtx({ kind: 'none' });
      break;
    }
    while (i < n && /\s/.test(text[i])) i++;
    const os = i;
    while (i < n && '=!~'.includes(text[i])) i++;
    const op = text.slice(os, i);
    while (i < n && /\s/.test(text[i])) i++;
    if (i >= n || !QUOTES.includes(text[i])) {
      // "label=" with no quote yet: a value goes here
      if (op && pos >= i && (i >= n || /[,}]/.test(text[i]) || pos === i)) {
        setCtx({ kind: 'value', label, op, prefix: '', from: i, to: i, quote: '' });
      }
      if (!op || i >= n) break;
      continue;
    }
    const q = text[i];
    const vs = i + 1;
    i = vs;
    while (i < n && text[i] !== q) i += text[i] === '\\' && q !== '`' ? 2 : 1;
    const body = text.slice(vs, Math.min(i, n));
    const complete = i < n;
    if (pos >= vs && pos <= i) {
      setCtx({ kind: 'value', label, op, prefix: unquote(q, text.slice(vs, pos)), from: vs, to: Math.min(i, n), quote: q });
    } else if (complete) {
      out.matchers.push({ name: label, op, value: unquote(q, body) });
    }
    if (!complete) break;
    i++;
  }
  if (!out.ctx) out.ctx = { kind: 'none' };
  return out;
}

// A string literal for a label value.
export function quote(v) {
  return '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

// The selector for match[]: the metric and the complete matchers.
// Matchers that match the empty string (l="") are left out, and without
// a metric a selector needs a positive matcher (PromQL refuses the rest):
// then there is nothing to narrow by.
export function matchSelector(metric, matchers) {
  const kept = matchers.filter((m) => m.name !== '__function__' && !(m.op === '=' && m.value === ''));
  const positive = kept.some((m) => m.op === '=' || m.op === '=~');
  if (!metric && !positive) return '';
  return `${metric}{${kept.map((m) => `${m.name}${m.op}${quote(m.value)}`).join(',')}}`;
}

// The completion context at pos, with the match[] selector to narrow
// suggestions by (the selector without the part being edited).
export function completionContext(text, pos) {
  const s = scanSelector(text, pos);
  return { ...s.ctx, metric: s.metric, match: matchSelector(s.metric, s.matchers) };
}

// text with a suggestion put in place of ctx's token; the new cursor.
export function applyCompletion(text, ctx, value) {
  if (ctx.kind === 'value') {
    if (ctx.quote) {
      const esc = ctx.quote === '`' ? value : value.replace(/\\/g, '\\\\').replace(new RegExp(ctx.quote, 'g'), '\\' + ctx.quote);
      const after = text[ctx.to] === ctx.quote ? ctx.to + 1 : ctx.to;
      const rest = text.slice(after);
      const ins = esc + ctx.quote;
      const close = rest.includes('}') ? '' : '}';
      return { text: text.slice(0, ctx.from) + ins + close + rest, pos: ctx.from + ins.length + close.length };
    }
    const rest = text.slice(ctx.to);
    const ins = quote(value) + (rest.includes('}') ? '' : '}');
    return { text: text.slice(0, ctx.from) + ins + rest, pos: ctx.from + ins.length };
  }
  if (ctx.kind === 'label') {
    const rest = text.slice(ctx.to);
    if (/^\s*[=!]/.test(rest)) return { text: text.slice(0, ctx.from) + value + rest, pos: ctx.from + value.length };
    // name="" with the cursor between the quotes, and the brace closed
    const ins = value + '=""' + (rest.includes('}') ? '' : '}');
    return { text: text.slice(0, ctx.from) + ins + rest, pos: ctx.from + value.length + 2 };
  }
  if (ctx.kind === 'metric') {
    return { text: text.slice(0, ctx.from) + value + text.slice(ctx.to), pos: ctx.from + value.length };
  }
  return { text, pos: text.length };
}

// The suggestions from a list that fit a prefix: those starting with it
// first, then those containing it, case-insensitive, at most max.
export function filterSuggestions(list, prefix, max = 50) {
  const p = prefix.toLowerCase();
  const starts = [];
  const contains = [];
  for (const s of list) {
    const l = s.toLowerCase();
    if (l.startsWith(p)) starts.push(s);
    else if (p && l.includes(p)) contains.push(s);
    if (starts.length >= max) break;
  }
  return starts.concat(contains).slice(0, max);
}

// A selector with its metric (profile type) replaced, matchers kept.
export function withMetric(text, metric) {
  const s = scanSelector(text, 0);
  const t = text.trim();
  const brace = t.indexOf('{');
  const rest = brace >= 0 && t.slice(0, brace).trim() === s.metric ? t.slice(brace) : '';
  return metric + rest;
}
