/* traces.js — the traces OTLP exporters sent: #/traces?experiment=E&filter=F (the list, with
   the trace filter language: duration, status, tokens.total, cost, model, spans, ...) and
   #/trace/ID (one trace as a collapsible span tree, a timeline bar per span placed by its
   start_ns and end_ns within the trace, with model, tokens, cost and status; and a thumbs
   up/down with a comment to rate the trace). Only the rows shown are built (spanTree). */

import * as api from './api.js';
import {h, clear, fmtNum, fmtInt, fmtTime, fmtNs, shortId, link, badge, section, errorBox,
        filterError, setTitle} from './ui.js';
import {scoresTable, fmtValue} from './run.js';

const PAGE = 200;
const COLLAPSE_OVER = 2000; /* spans: past this, only the root starts open */
const FOLD_OVER = 50; /* children: past this, the first FOLD_HEAD and last FOLD_TAIL are shown */
const FOLD_HEAD = 20;
const FOLD_TAIL = 5;

function fmtCost(c) {
  if (c === null || c === undefined || c === 0) return '';
  return `$${fmtNum(c)}`;
}

function tokens(t) {
  if (!t.tokens_total && !t.tokens_in && !t.tokens_out) return '';
  return `${fmtInt(t.tokens_total)} (${fmtInt(t.tokens_in)} in, ${fmtInt(t.tokens_out)} out)`;
}

export async function renderList(ctx) {
  const {view, query} = ctx;
  const exps = (await api.get('experiments')).experiments || [];
  if (!ctx.alive()) return;
  setTitle('traces');
  const st = {experiment: query.get('experiment') || '', filter: query.get('filter') || '', limit: PAGE, load: 0};
  const expSel = h('select', {id: 'trace-experiment', 'aria-label': 'experiment', on: {change: () => {
    st.experiment = expSel.value;
    st.limit = PAGE;
    load();
  }}}, h('option', {value: ''}, 'all experiments'),
  exps.map((e) => h('option', {value: e.name, selected: e.name === st.experiment}, e.name)));
  const input = h('input', {type: 'search', id: 'trace-filter', class: 'mono', spellcheck: 'false',
    autocomplete: 'off', value: st.filter, 'aria-label': 'trace filter',
    placeholder: "filter: duration > 2s and (model = 'gpt-4o' or tokens.total > 4000)"});
  const err = h('div', {id: 'filter-error'});
  const wrap = h('div', {class: 'table-wrap', id: 'traces-wrap', dataset: {state: 'loading'}});
  const more = h('button', {type: 'button', class: 'more', hidden: true, on: {click: () => {
    st.limit += PAGE;
    load();
  }}}, 'Show more');
  view.appendChild(h('div', {class: 'toolbar'}, h('label', {for: 'trace-experiment', class: 'muted'}, 'Experiment'),
    expSel, h('form', {class: 'filter', on: {submit: (e) => {
      e.preventDefault();
      st.filter = input.value.trim();
      st.limit = PAGE;
      load();
    }}}, input, h('button', {type: 'submit'}, 'Filter'))));
  view.appendChild(err);
  view.appendChild(wrap);
  view.appendChild(more);

  async function load() {
    ctx.setQuery({experiment: st.experiment, filter: st.filter});
    const gen = ++st.load;
    clear(err);
    input.classList.remove('bad');
    wrap.dataset.state = 'loading';
    let r;
    try {
      r = await api.get('traces', {experiment: st.experiment, filter: st.filter, limit: st.limit});
    } catch (e) {
      if (!ctx.alive() || gen !== st.load) return;
      wrap.dataset.state = 'error';
      clear(wrap);
      if (e.field === 'filter') {
        input.classList.add('bad');
        err.appendChild(filterError(st.filter, e));
      } else {
        err.appendChild(errorBox(e));
      }
      return;
    }
    if (!ctx.alive() || gen !== st.load) return;
    const traces = r.traces || [];
    clear(wrap).appendChild(traces.length ? h('table', {class: 'grid', id: 'traces'},
      h('thead', null, h('tr', null, ['trace', 'root', 'experiment', 'run', 'started', 'duration', 'spans',
        'errors', 'tokens', 'cost', 'models'].map((c) =>
        h('th', {class: ['duration', 'spans', 'errors', 'tokens', 'cost'].includes(c) ? 'num' : null}, c)))),
      h('tbody', null, traces.map((t) => h('tr', {class: t.errors ? 'has-errors' : null, dataset: {trace: t.trace_id}},
        h('td', {class: 'mono'}, h('a', {href: link.trace(t.trace_id), title: t.trace_id}, shortId(t.trace_id))),
        h('td', null, h('a', {href: link.trace(t.trace_id)}, t.root || '')),
        h('td', null, t.experiment || ''),
        h('td', {class: 'mono'}, t.run_id ? h('a', {href: link.run(t.run_id)}, shortId(t.run_id)) : ''),
        h('td', {class: 'mono'}, fmtTime(Math.floor(t.start_ns / 1e6))),
        h('td', {class: 'mono num'}, fmtNum(t.duration_ms) + ' ms'),
        h('td', {class: 'mono num'}, fmtInt(t.spans)),
        h('td', {class: 'mono num'}, t.errors ? fmtInt(t.errors) : ''),
        h('td', {class: 'mono num'}, t.tokens_total ? fmtInt(t.tokens_total) : ''),
        h('td', {class: 'mono num'}, fmtCost(t.cost)),
        h('td', {class: 'mono'}, (t.models || []).join(', ')))))) : h('p', {class: 'muted empty'},
      st.filter ? 'No trace matches the filter.' : 'No traces. Point an OTLP/HTTP exporter at /v1/traces.'));
    more.hidden = !r.more;
    wrap.dataset.state = 'ready';
  }
  await load();
}

/* The span tree. Rows exist only for what is shown, in depth-first start order: closing a
   node removes the rows under it, opening one builds them, so a trace of 20,000 spans costs
   what is on screen. Past COLLAPSE_OVER spans only the root starts open; a node with more
   than FOLD_OVER children shows its first FOLD_HEAD and last FOLD_TAIL and a row to show the
   rest (as `track trace show` folds them). */
function spanTree(trace) {
  const spans = trace.span_list || [];
  const t0 = trace.start_ns;
  const total = Math.max(1, trace.end_ns - trace.start_ns);
  const byId = new Map(spans.map((sp) => [sp.span_id, {sp, kids: [], row: null, open: true, unfolded: false, depth: 0}]));
  const roots = [];
  for (const n of byId.values()) {
    const p = n.sp.parent_span_id && byId.get(n.sp.parent_span_id);
    if (p && p !== n) p.kids.push(n);
    else roots.push(n);
  }
  const byStart = (a, b) => a.sp.start_ns - b.sp.start_ns;
  roots.sort(byStart);
  /* depths and child order, iteratively (a chain of spans can be deep); a cycle is cut */
  const seen = new Set();
  const stack = roots.slice();
  while (stack.length) {
    const n = stack.pop();
    seen.add(n);
    n.kids = n.kids.filter((k) => !seen.has(k));
    n.kids.sort(byStart);
    for (const k of n.kids) {
      k.depth = n.depth + 1;
      stack.push(k);
    }
    if (spans.length > COLLAPSE_OVER && n.depth >= 1 && n.kids.length) n.open = false;
  }

  function rowOf(n) {
    if (n.row) return n.row;
    const sp = n.sp;
    const toggle = n.kids.length
      ? h('button', {type: 'button', class: 'toggle', 'aria-label': 'expand or collapse', on: {click: () => setOpen(n, !n.open)}},
        n.open ? '▾' : '▸')
      : h('span', {class: 'toggle leaf'}, '·');
    n.toggle = toggle;
    const bar = h('div', {class: ['bar', sp.status === 'error' && 'err']});
    bar.style.left = `${(((sp.start_ns - t0) / total) * 100).toFixed(3)}%`;
    bar.style.width = `${Math.max(0.3, ((sp.end_ns - sp.start_ns) / total) * 100).toFixed(3)}%`;
    const nameCell = h('div', {class: 'span-name', title: `${sp.kind || ''} ${sp.operation || ''} span ${sp.span_id}`.trim()},
      toggle, h('span', {class: 'nm'}, sp.name || '(unnamed)'),
      n.kids.length ? h('span', {class: 'muted kids'}, ` ${fmtInt(n.kids.length)}`) : null);
    nameCell.style.paddingLeft = `${n.depth * 14 + 4}px`;
    n.row = h('div', {class: ['span-row', sp.status === 'error' && 'err'], dataset: {span: sp.span_id, depth: String(n.depth)}},
      nameCell,
      h('div', {class: 'timeline'}, bar),
      h('div', {class: 'mono num'}, fmtNs(sp.end_ns - sp.start_ns)),
      h('div', {class: 'mono'}, sp.model || ''),
      h('div', {class: 'mono num'}, sp.tokens_total ? fmtInt(sp.tokens_total) : ''),
      h('div', {class: 'mono num'}, fmtCost(sp.cost)),
      h('div', null, sp.status && sp.status !== 'unset' ? badge(sp.status) : '',
        sp.status_message ? h('span', {class: 'status-msg'}, ' ', sp.status_message) : ''));
    return n.row;
  }

  function moreRow(n, hiddenCount) {
    const cell = h('div', {class: 'span-name'}, h('button', {type: 'button', class: 'link fold', on: {click: () => {
      collapseRows(n);
      n.unfolded = true;
      n.row.after(rowsUnder(n));
    }}}, `… ${fmtInt(hiddenCount)} more children`));
    cell.style.paddingLeft = `${(n.depth + 1) * 14 + 22}px`;
    return h('div', {class: 'span-row fold-row', dataset: {depth: String(n.depth + 1)}}, cell);
  }

  /* the rows shown under an open N (not N's own), as a fragment */
  function rowsUnder(n) {
    const frag = document.createDocumentFragment();
    const todo = [[n, 0]];
    while (todo.length) {
      const [m, i] = todo.pop();
      if (!m.open) continue;
      const kids = m.kids;
      const fold = kids.length > FOLD_OVER && !m.unfolded;
      const shown = fold ? [...kids.slice(0, FOLD_HEAD), null, ...kids.slice(kids.length - FOLD_TAIL)] : kids;
      if (i >= shown.length) continue;
      todo.push([m, i + 1]);
      const k = shown[i];
      if (k === null) {
        frag.appendChild(moreRow(m, kids.length - FOLD_HEAD - FOLD_TAIL));
        continue;
      }
      frag.appendChild(rowOf(k));
      if (k.open && k.kids.length) todo.push([k, 0]);
    }
    return frag;
  }

  function collapseRows(n) {
    const d = n.depth;
    let next = n.row.nextSibling;
    while (next && Number(next.dataset.depth) > d) {
      const after = next.nextSibling;
      next.remove();
      next = after;
    }
  }

  function setOpen(n, open) {
    n.open = open;
    n.toggle.textContent = open ? '▾' : '▸';
    if (open) n.row.after(rowsUnder(n));
    else collapseRows(n);
  }

  const body = h('div', {class: 'span-rows'});
  const frag = document.createDocumentFragment();
  for (const r of roots) {
    frag.appendChild(rowOf(r));
    frag.appendChild(rowsUnder(r));
  }
  body.appendChild(frag);
  const head = h('div', {class: 'span-row span-head'}, h('div', null, 'span'), h('div', null, 'timeline'),
    h('div', {class: 'num'}, 'duration'), h('div', null, 'model'), h('div', {class: 'num'}, 'tokens'),
    h('div', {class: 'num'}, 'cost'), h('div', null, 'status'));
  return h('div', {class: 'span-tree', id: 'span-tree'}, head, body);
}

function rateTrace(trace, onDone) {
  const name = h('input', {type: 'text', class: 'mono', value: 'thumbs', size: 10, 'aria-label': 'feedback name'});
  const comment = h('input', {type: 'text', id: 'trace-comment', placeholder: 'comment (optional)', size: 40,
    'aria-label': 'comment'});
  const msg = h('span', {class: 'form-msg'});
  const send = async (value) => {
    msg.textContent = '';
    msg.className = 'form-msg';
    const body = {trace_id: trace.trace_id, name: name.value.trim() || 'thumbs', value};
    if (trace.run_id) body.run = trace.run_id;
    if (comment.value.trim()) body.comment = comment.value.trim();
    try {
      await api.post('feedback', body);
      msg.textContent = `recorded ${fmtValue(value)}`;
      comment.value = '';
      onDone();
    } catch (e) {
      msg.textContent = e.message;
      msg.className = 'form-msg error-line';
    }
  };
  return h('div', {class: 'inline-form', id: 'rate-trace'},
    h('button', {type: 'button', class: 'thumb up', id: 'trace-up', on: {click: () => send(true)}}, '✓ good'),
    h('button', {type: 'button', class: 'thumb down', id: 'trace-down', on: {click: () => send(false)}}, '✗ bad'),
    name, comment, msg);
}

export async function renderTrace(ctx) {
  const {view, arg: id} = ctx;
  const t = await api.get(`traces/${encodeURIComponent(id)}`);
  if (!ctx.alive()) return;
  setTitle(t.root || shortId(t.trace_id), 'trace');
  const dl = h('dl', {class: 'facts'});
  const fact = (k, ...v) => dl.append(h('dt', null, k), h('dd', null, ...v));
  fact('trace', h('span', {class: 'mono'}, t.trace_id));
  fact('experiment', t.experiment || '');
  if (t.run_id) fact('run', h('a', {class: 'mono', href: link.run(t.run_id)}, shortId(t.run_id)));
  fact('started', h('span', {class: 'mono'}, fmtTime(Math.floor(t.start_ns / 1e6))));
  fact('duration', h('span', {class: 'mono'}, fmtNs(t.end_ns - t.start_ns)));
  fact('spans', h('span', {class: 'mono'}, fmtInt(t.spans)), t.errors
    ? [' ', h('span', {class: 'badge st-error'}, `${fmtInt(t.errors)} error${t.errors === 1 ? '' : 's'}`)] : '');
  fact('tokens', h('span', {class: 'mono'}, tokens(t)));
  if (t.cost) fact('cost', h('span', {class: 'mono'}, fmtCost(t.cost)));
  fact('models', h('span', {class: 'mono'}, (t.models || []).join(', ')));
  view.appendChild(h('section', {class: 'card'}, h('h1', null, t.root || shortId(t.trace_id)), dl));

  const fbBox = h('div');
  const loadFeedback = async () => {
    try {
      /* the trace's scores and its spans', with or without a run */
      const fb = await api.get(`traces/${encodeURIComponent(t.trace_id)}/feedback`);
      if (ctx.alive()) clear(fbBox).appendChild(scoresTable(fb.scores || []));
    } catch (e) {
      clear(fbBox).appendChild(errorBox(e));
    }
  };
  view.appendChild(section('Rate this trace', rateTrace(t, loadFeedback), fbBox));
  loadFeedback();
  view.appendChild(section(`Spans${t.more ? ' (the first ' + fmtInt((t.span_list || []).length) + ')' : ''}`,
    spanTree(t)));
}
