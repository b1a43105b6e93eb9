/* ui.js — the DOM and formatting helpers every page of the dashboard uses.

   Every value that came from the API is text. Pages build their DOM with h() and s(), which
   turn strings into text nodes and set attributes with setAttribute; no page writes
   innerHTML. h() refuses inline handlers and styles (the CSP would too) and any href that is
   not this page's own (# or /): links built from values go through the route helpers at the
   bottom, which encodeURIComponent every piece. */

/* An attribute h() or s() must not set: an inline handler or style, a link off this page. */
function unsafe(k, v) {
  return (k.startsWith('on') && k !== 'on') || k === 'style' ||
    /* this page's own: a fragment or a path, never another host (not even //host) */
    ((k === 'href' || k === 'src' || k === 'action') && !/^(#|\/(?![/\\]))/.test(String(v)));
}

/* h(tag, attrs, ...children): an element. attrs: {class, text, on: {event: fn}, dataset: {},
   any attribute: value (null/false skip it, true sets it empty)}; children: nodes, strings and
   numbers (as text), arrays of them, null/undefined/false (skipped). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (unsafe(k, v)) throw new Error(`h(): refusing ${k}=${String(v).slice(0, 40)}`);
      if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = Boolean(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

/* An SVG element: the same contract as h() in the SVG namespace. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (unsafe(k, v)) throw new Error(`s(): refusing ${k}=${String(v).slice(0, 40)}`);
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/* ---- numbers, times, sizes ------------------------------------------------------------ */

/* A metric value as the API sends it (a number, or "NaN" / "Infinity" / "-Infinity") as a JS
   number; null stays null. */
export function num(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  const n = Number(v);
  return Number.isNaN(n) ? null : n;
}

/* 6 significant digits, as the CLI's tables: 0.123457, 1e-7, 1234570. */
export function fmtNum(v) {
  if (v === null || v === undefined || v === '') return '';
  const n = num(v);
  if (n === null) return String(v);
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'NaN' : n > 0 ? 'Inf' : '-Inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return String(n);
  return String(parseFloat(n.toPrecision(6)));
}

/* One formatter for every call: toLocaleString makes a new one each time (10 ms for the
   titles of 200 rows). */
const intFormat = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});
export function fmtInt(n) {
  if (n === null || n === undefined) return '';
  const v = Number(n);
  return Number.isFinite(v) ? intFormat.format(v) : String(n);
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

/* Local time, YYYY-MM-DD HH:MM:SS; '' for null. */
export function fmtTime(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/* Short local time: MM-DD HH:MM this year, else the date. */
export function fmtShortTime(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  if (d.getFullYear() === new Date().getFullYear())
    return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${pad(m % 60)}m`;
  return `${Math.floor(hr / 24)}d ${pad(hr % 24)}h`;
}

/* Run duration: end - start, or up to now for a run still going. */
export function runDuration(run) {
  if (!run.start_time) return null;
  const end = run.end_time || (run.status === 'RUNNING' ? Date.now() : null);
  return end ? end - run.start_time : null;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtNs(ns) {
  const ms = ns / 1e6;
  if (ms < 1000) return `${parseFloat(ms.toPrecision(3))} ms`;
  return fmtDuration(ms);
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : '';
}

export function looksNumeric(v) {
  return typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)));
}

/* ---- links ------------------------------------------------------------------------------ */

export const link = {
  run: (id) => `#/run/${encodeURIComponent(id)}`,
  compare: (ids) => `#/compare/${ids.map(encodeURIComponent).join(',')}`,
  runs: (experiment) => `#/runs?experiment=${encodeURIComponent(experiment)}`,
  model: (name) => `#/model/${encodeURIComponent(name)}`,
  trace: (id) => `#/trace/${encodeURIComponent(id)}`,
  rate: (run, name, prefix) => `#/rate?run=${encodeURIComponent(run)}` +
    `&name=${encodeURIComponent(name)}&prefix=${encodeURIComponent(prefix)}`,
};

/* A small status badge: RUNNING / FINISHED / FAILED / KILLED, or a span's ok / error. */
export function badge(status) {
  const st = String(status || '');
  return h('span', {class: `badge st-${st.toLowerCase().replace(/[^a-z]/g, '')}`}, st);
}

/* A key/value table of an object ({} → a "none" line). */
export function kvTable(obj, {mono = true, empty = 'none'} = {}) {
  const keys = Object.keys(obj || {}).sort();
  if (!keys.length) return h('p', {class: 'muted'}, empty);
  return h('table', {class: 'kv'},
    h('tbody', null, keys.map((k) =>
      h('tr', null, h('th', null, k), h('td', {class: mono ? 'mono' : null}, String(obj[k]))))));
}

/* A section with a heading. */
export function section(title, ...children) {
  return h('section', {class: 'card'}, h('h2', null, title), ...children);
}

/* An error line for a failed load. */
export function errorBox(err) {
  return h('div', {class: 'error-box', role: 'alert'}, err && err.message ? err.message : String(err));
}

/* The column of a filter error shown under the text: the text in monospace and a caret under
   column COLUMN (1-based), then the message. */
export function filterError(text, err) {
  const box = h('div', {class: 'filter-error', role: 'alert'});
  if (err.column && err.column > 0) {
    const col = Math.min(err.column, text.length + 1);
    box.appendChild(h('pre', {class: 'caret'}, text + '\n' + ' '.repeat(col - 1) + '^'));
  }
  box.appendChild(h('div', {class: 'msg'}, err.message));
  return box;
}

/* ---- the runs picked for Compare (kept for the tab's life) ------------------------------ */

const SEL_KEY = 'track.selection';

export const selection = {
  get() {
    try {
      const v = JSON.parse(sessionStorage.getItem(SEL_KEY) || '[]');
      return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
    } catch {
      return [];
    }
  },
  set(ids) {
    sessionStorage.setItem(SEL_KEY, JSON.stringify([...new Set(ids)]));
    window.dispatchEvent(new CustomEvent('track:selection'));
  },
  has(id) {
    return this.get().includes(id);
  },
  toggle(id, on) {
    const cur = this.get().filter((x) => x !== id);
    if (on) cur.push(id);
    this.set(cur);
  },
};

/* The tab's title: PARTS then "track", joined by " · " (document.title is text). */
export function setTitle(...parts) {
  document.title = [...parts.filter(Boolean), 'track'].join(' · ');
}
