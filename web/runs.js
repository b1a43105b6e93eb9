/* runs.js — the Runs page (#/runs?experiment=E&filter=F&order=O): one experiment's runs as a
   table.

   The columns beside the run's own (id, name, status, start, duration) are the params and
   metrics whose values differ across the loaded runs, plus any the filter or order names; the
   column chooser picks others (remembered per experiment in localStorage). Sorting and
   filtering are trackd's: a header click sets order_by (`metrics.loss ASC`), the filter box
   takes `track runs --filter`'s language, and a syntax error is shown under the box with a
   caret at the column the API names.

   Speed: the first FIRST_PAGE runs are fetched and SHOW_STEP rows drawn with DOM calls before
   the rest (up to MAX_RUNS) loads in the background; "show more" draws the next rows.
   While any drawn run is RUNNING, the page asks every POLL_MS for those runs alone
   (`run_id IN (...)`) and redraws their rows, so status and last values move without a
   reload. */

import * as api from './api.js';
import {h, clear, fmtNum, fmtInt, fmtShortTime, fmtTime, fmtDuration, runDuration, shortId, link,
        badge, errorBox, filterError, selection, setTitle} from './ui.js';

const FIRST_PAGE = 200;
const MAX_RUNS = 10000; /* the API's largest limit */
const SHOW_STEP = 200;
const MAX_DEFAULT_COLS = 24;
const POLL_MS = 2000;
const POLL_MAX_IDS = 500;

const ATTRS = [
  {id: 'name', label: 'Name', term: 'name', dir: 'ASC'},
  {id: 'status', label: 'Status', term: 'status', dir: 'ASC'},
  {id: 'start_time', label: 'Started', term: 'start_time', dir: 'DESC'},
  {id: 'duration', label: 'Duration', term: 'duration', dir: 'DESC'},
];
const KIND_LABEL = {params: 'param', metrics: 'metric', tags: 'tag'};

/* The filter language's spelling of a key: bare when it is letters, digits and _ - . / :,
   else in backticks. */
export function keyTerm(kind, key) {
  return /^[A-Za-z0-9_\-./:]+$/.test(key) ? `${kind}.${key}` : `${kind}.\`${key}\``;
}

function parseOrder(text) {
  const first = String(text || '').split(',')[0].trim();
  const m = /^(.*?)(?:\s+(ASC|DESC))?$/i.exec(first);
  if (!m || !m[1]) return {term: '', dir: ''};
  return {term: m[1].trim(), dir: (m[2] || 'ASC').toUpperCase()};
}

function column(kind, key) {
  return {kind, key, id: `${kind}.${key}`, term: keyTerm(kind, key)};
}

function cellValue(run, col) {
  if (col.kind === 'metrics') {
    const m = run.metrics && run.metrics[col.key];
    return m ? m.last : undefined;
  }
  const o = run[col.kind];
  return o ? o[col.key] : undefined;
}

/* Columns whose values differ among RUNS (a run lacking the key counts as a value), then
   those the filter or order mention, params before metrics, at most MAX_DEFAULT_COLS. */
function defaultColumns(runs, filter, order) {
  const mentioned = [];
  const keys = {params: new Map(), metrics: new Map()};
  for (const r of runs) {
    for (const kind of ['params', 'metrics']) {
      const o = r[kind] || {};
      for (const k of Object.keys(o)) if (!keys[kind].has(k)) keys[kind].set(k, new Set());
    }
  }
  const out = [];
  for (const kind of ['params', 'metrics']) {
    for (const [k, vals] of keys[kind]) {
      for (const r of runs) {
        const v = cellValue(r, column(kind, k));
        vals.add(v === undefined ? '\u0000missing' : String(v));
        if (vals.size > 1) break;
      }
      const col = column(kind, k);
      const text = `${filter} ${order}`;
      if (text.includes(`${kind}.${k}`) || text.includes(col.term)) mentioned.push(col);
      else if (vals.size > 1) out.push(col);
    }
  }
  out.sort((a, b) => (a.kind === b.kind ? a.key.localeCompare(b.key) : a.kind === 'params' ? -1 : 1));
  return [...mentioned, ...out].slice(0, MAX_DEFAULT_COLS);
}

function allKeys(runs) {
  const keys = {params: new Set(), metrics: new Set(), tags: new Set()};
  for (const r of runs)
    for (const kind of Object.keys(keys)) for (const k of Object.keys(r[kind] || {})) keys[kind].add(k);
  return keys;
}

function chooseExperiment(exps, wanted) {
  if (wanted && exps.some((e) => e.name === wanted)) return wanted;
  const stored = localStorage.getItem('track.experiment');
  if (stored && exps.some((e) => e.name === stored)) return stored;
  const live = exps.filter((e) => !e.archived && e.run_count > 0)
    .sort((a, b) => (b.created_time || 0) - (a.created_time || 0));
  return (live[0] || exps[0] || {}).name || '';
}

export async function render(ctx) {
  const {view, query} = ctx;
  const exps = (await api.get('experiments')).experiments || [];
  if (!ctx.alive()) return;
  if (!exps.length) {
    view.appendChild(h('section', {class: 'card'}, h('h2', null, 'No experiments yet'),
      h('p', null, 'Start one with ', h('code', null, 'track run start --experiment NAME'), '.')));
    return;
  }
  const st = {
    experiment: chooseExperiment(exps, query.get('experiment')),
    filter: query.get('filter') || '',
    order: query.get('order') || '',
    runs: [], byId: new Map(), rows: new Map(), more: false, capped: false, shown: SHOW_STEP,
    cols: [], chosen: null, load: 0, sel: new Set(selection.get()),
  };

  /* ---- the toolbar ------------------------------------------------------------------- */
  const expSelect = h('select', {id: 'experiment', 'aria-label': 'experiment', on: {change: () => {
    st.experiment = expSelect.value;
    localStorage.setItem('track.experiment', st.experiment);
    st.filter = '';
    filterInput.value = '';
    st.order = '';
    reload();
  }}}, exps.map((e) => h('option', {value: e.name, selected: e.name === st.experiment},
    `${e.name} (${fmtInt(e.run_count)})${e.archived ? ' archived' : ''}`)));
  const filterInput = h('input', {type: 'search', id: 'filter', class: 'mono', spellcheck: 'false',
    autocomplete: 'off', value: st.filter, 'aria-label': 'filter',
    placeholder: "filter: metrics.loss < 0.5 and params.lr = '0.01'"});
  const filterErr = h('div', {id: 'filter-error'});
  const filterForm = h('form', {class: 'filter', on: {submit: (e) => {
    e.preventDefault();
    st.filter = filterInput.value.trim();
    reload();
  }}}, filterInput, h('button', {type: 'submit'}, 'Filter'),
  h('button', {type: 'button', class: 'link', on: {click: () => {
    filterInput.value = '';
    st.filter = '';
    reload();
  }}}, 'clear'));
  const countLine = h('span', {id: 'run-count', class: 'muted'});
  const compareBtn = h('a', {class: 'button', id: 'compare-selected', href: '#/compare'});
  const clearSel = h('button', {type: 'button', class: 'link', on: {click: () => {
    st.sel.clear();
    selection.set([]);
    for (const cb of tableWrap.querySelectorAll('input.sel')) cb.checked = false;
    updateCompare();
  }}}, 'clear selection');
  const chooser = h('details', {class: 'chooser', id: 'column-chooser'});
  const tableWrap = h('div', {class: 'table-wrap', id: 'runs-wrap', dataset: {state: 'loading', gen: '0'}});
  const moreBtn = h('button', {type: 'button', id: 'show-more', class: 'more', hidden: true,
    on: {click: () => {
      st.shown += SHOW_STEP;
      drawRows(true);
    }}});

  view.appendChild(h('div', {class: 'toolbar'},
    h('label', {for: 'experiment', class: 'muted'}, 'Experiment'), expSelect, filterForm));
  view.appendChild(filterErr);
  view.appendChild(h('div', {class: 'toolbar sub'}, countLine, h('span', {class: 'grow'}), chooser,
    compareBtn, clearSel));
  view.appendChild(tableWrap);
  view.appendChild(moreBtn);
  /* the table scrolls in its box (its header stays); near the end, the next rows come */
  tableWrap.addEventListener('scroll', () => {
    if (!moreBtn.hidden && tableWrap.scrollTop + tableWrap.clientHeight > tableWrap.scrollHeight - 300) {
      st.shown += SHOW_STEP;
      drawRows(true);
    }
  }, {passive: true});

  function updateCompare() {
    const ids = [...st.sel];
    compareBtn.textContent = `Compare selected (${ids.length})`;
    compareBtn.setAttribute('href', ids.length ? link.compare(ids) : '#/compare');
    compareBtn.classList.toggle('disabled', ids.length < 2);
    clearSel.hidden = ids.length === 0;
  }
  updateCompare();

  function saveHash() {
    setTitle(st.experiment, 'runs');
    ctx.setQuery({experiment: st.experiment, filter: st.filter, order: st.order});
  }

  /* ---- columns ------------------------------------------------------------------------ */
  function storedColumns() {
    try {
      const v = JSON.parse(localStorage.getItem(`track.cols.${st.experiment}`) || 'null');
      return Array.isArray(v) ? v : null;
    } catch {
      return null;
    }
  }
  function pickColumns() {
    const stored = storedColumns();
    if (stored) {
      st.chosen = stored;
      st.cols = stored.map((id) => {
        const dot = id.indexOf('.');
        return column(id.slice(0, dot), id.slice(dot + 1));
      }).filter((c) => KIND_LABEL[c.kind]);
    } else {
      st.chosen = null;
      st.cols = defaultColumns(st.runs, st.filter, st.order);
    }
  }
  function drawChooser() {
    clear(chooser);
    const keys = allKeys(st.runs);
    const on = new Set(st.cols.map((c) => c.id));
    const total = keys.params.size + keys.metrics.size + keys.tags.size;
    chooser.appendChild(h('summary', null, `Columns (${st.cols.length} of ${total})`));
    const panel = h('div', {class: 'chooser-panel'});
    panel.appendChild(h('div', {class: 'chooser-actions'},
      h('button', {type: 'button', class: 'link', on: {click: () => {
        localStorage.removeItem(`track.cols.${st.experiment}`);
        pickColumns();
        redraw();
      }}}, 'differing only'),
      h('button', {type: 'button', class: 'link', on: {click: () => {
        localStorage.setItem(`track.cols.${st.experiment}`, '[]');
        pickColumns();
        redraw();
      }}}, 'none')));
    for (const kind of ['params', 'metrics', 'tags']) {
      if (!keys[kind].size) continue;
      panel.appendChild(h('div', {class: 'chooser-kind'}, kind));
      for (const k of [...keys[kind]].sort()) {
        const id = `${kind}.${k}`;
        panel.appendChild(h('label', {class: 'chooser-item'},
          h('input', {type: 'checkbox', checked: on.has(id), dataset: {col: id}, on: {change: (e) => {
            const ids = st.cols.map((c) => c.id).filter((x) => x !== id);
            if (e.target.checked) ids.push(id);
            localStorage.setItem(`track.cols.${st.experiment}`, JSON.stringify(ids));
            pickColumns();
            redraw(true);
          }}}), h('span', {class: 'mono'}, k)));
      }
    }
    chooser.appendChild(panel);
  }

  /* ---- the table ---------------------------------------------------------------------- */
  function sortHeader(label, term, defDir, title, extraClass) {
    const cur = parseOrder(st.order);
    const active = cur.term === term;
    const arrow = active ? (cur.dir === 'DESC' ? ' ▼' : ' ▲') : '';
    return h('th', {class: ['sortable', active && 'sorted', extraClass], title: `sort by ${title || term}`,
      dataset: {term},
      on: {click: () => {
        const dir = active ? (cur.dir === 'ASC' ? 'DESC' : 'ASC') : defDir;
        st.order = `${term} ${dir}`;
        reload();
      }}}, label, arrow);
  }

  function buildHead() {
    const all = h('input', {type: 'checkbox', 'aria-label': 'select all shown', on: {change: (e) => {
      for (const cb of tableWrap.querySelectorAll('tbody input.sel')) {
        cb.checked = e.target.checked;
        const id = cb.closest('tr').dataset.run;
        if (e.target.checked) st.sel.add(id);
        else st.sel.delete(id);
      }
      selection.set([...st.sel]);
      updateCompare();
    }}});
    return h('thead', null, h('tr', null,
      h('th', {class: 'sel'}, all),
      h('th', null, 'Run'),
      ATTRS.map((a) => sortHeader(a.label, a.term, a.dir, a.term,
        a.id === 'duration' || a.id === 'start_time' ? 'num' : null)),
      st.cols.map((c) => sortHeader(
        [h('span', {class: 'kind'}, KIND_LABEL[c.kind]), h('br'), c.key],
        c.term, c.kind === 'metrics' ? 'ASC' : 'ASC', c.term, c.kind === 'tags' ? null : 'num'))));
  }

  function buildRow(run) {
    const id = run.run_id;
    const tr = document.createElement('tr');
    tr.dataset.run = id;
    if (run.status === 'RUNNING') tr.className = 'running';
    const cb = h('input', {type: 'checkbox', class: 'sel', checked: st.sel.has(id), 'aria-label': 'select run',
      on: {change: (e) => {
        if (e.target.checked) st.sel.add(id);
        else st.sel.delete(id);
        selection.toggle(id, e.target.checked);
        updateCompare();
      }}});
    tr.appendChild(h('td', {class: 'sel'}, cb));
    tr.appendChild(h('td', {class: 'mono id'}, h('a', {href: link.run(id), title: id}, shortId(id))));
    tr.appendChild(h('td', {class: 'name'}, h('a', {href: link.run(id)}, run.name || '')));
    tr.appendChild(h('td', {class: 'status'}, badge(run.status)));
    tr.appendChild(h('td', {class: 'mono num', title: fmtTime(run.start_time)}, fmtShortTime(run.start_time)));
    tr.appendChild(h('td', {class: 'mono num'}, fmtDuration(runDuration(run))));
    for (const c of st.cols) {
      const v = cellValue(run, c);
      const td = document.createElement('td');
      if (c.kind === 'metrics') {
        td.className = 'mono num';
        if (v !== undefined) {
          const m = run.metrics[c.key];
          td.textContent = fmtNum(v);
          td.title = `${v} at step ${m.last_step} (${fmtInt(m.count)} points; min ${fmtNum(m.min)}, max ${fmtNum(m.max)})`;
        }
      } else {
        td.className = c.kind === 'params' ? 'mono num' : 'mono';
        if (v !== undefined) td.textContent = String(v);
      }
      tr.appendChild(td);
    }
    return tr;
  }

  let tbody = null;
  function drawRows(append) {
    const t0 = performance.now();
    const n = Math.min(st.shown, st.runs.length);
    if (!append) {
      st.rows.clear();
      tbody = document.createElement('tbody');
    }
    const frag = document.createDocumentFragment();
    for (let i = st.rows.size; i < n; i++) {
      const tr = buildRow(st.runs[i]);
      st.rows.set(st.runs[i].run_id, tr);
      frag.appendChild(tr);
    }
    tbody.appendChild(frag);
    if (!append) {
      const table = h('table', {class: 'runs', id: 'runs-table'}, buildHead(), tbody);
      clear(tableWrap).appendChild(table);
      if (!st.runs.length)
        tableWrap.appendChild(h('p', {class: 'muted empty'}, st.filter ? 'No run matches the filter.' : 'No runs.'));
    }
    const left = st.runs.length - n;
    moreBtn.hidden = left <= 0;
    moreBtn.textContent = `Show ${fmtInt(Math.min(SHOW_STEP, left))} more (${fmtInt(n)} of ${fmtInt(st.runs.length)} shown)`;
    updateCount();
    window.__trackFigures = {...(window.__trackFigures || {}), runsRowsMs: performance.now() - t0, runsRows: n};
  }

  function updateCount() {
    const running = st.runs.reduce((a, r) => a + (r.status === 'RUNNING'), 0);
    countLine.textContent = `${fmtInt(st.runs.length)}${st.more ? '+' : ''} run${st.runs.length === 1 && !st.more ? '' : 's'}` +
      (running ? ` · ${fmtInt(running)} running` : '') +
      (st.more ? (st.capped ? ` · the first ${fmtInt(st.runs.length)} only: narrow the filter` : ' · loading…') : '');
  }

  function redraw(keepChooserOpen) {
    const open = chooser.open;
    drawChooser();
    chooser.open = Boolean(keepChooserOpen && open);
    drawRows(false);
  }

  /* ---- loading ------------------------------------------------------------------------ */
  async function reload() {
    saveHash();
    const gen = ++st.load;
    const alive = () => ctx.alive() && gen === st.load;
    clear(filterErr);
    filterInput.classList.remove('bad');
    tableWrap.dataset.state = 'loading';
    const t0 = performance.now();
    let first = true;
    if (window.__trackFigures) delete window.__trackFigures.runsAllLoadedMs;
    try {
      await api.runsPaged({experiment: st.experiment, filter: st.filter, order_by: st.order},
        FIRST_PAGE, MAX_RUNS, (runs, more, replace) => {
          if (first || replace) {
            st.runs = [];
            st.byId.clear();
            if (first) st.shown = SHOW_STEP;
            tableWrap.classList.remove('stale');
          }
          for (const r of runs) st.byId.set(r.run_id, r);
          st.runs.push(...runs);
          const done = !more || replace;
          st.more = more;
          st.capped = replace && more;
          if (first) {
            first = false;
            const t1 = performance.now();
            pickColumns();
            redraw();
            tableWrap.dataset.state = 'ready';
            tableWrap.dataset.gen = String(gen);
            window.__trackFigures = {...(window.__trackFigures || {}), runsFetchMs: t1 - t0,
              runsFirstRenderMs: performance.now() - t0};
          } else if (done && !st.chosen) {
            const before = st.cols.map((c) => c.id).join('\n');
            pickColumns();
            if (st.cols.map((c) => c.id).join('\n') !== before) redraw();
            else {
              drawChooser();
              drawRows(true);
            }
          } else {
            drawChooser();
            drawRows(true);
          }
          if (done) {
            updateCount();
            window.__trackFigures = {...window.__trackFigures, runsAllLoadedMs: performance.now() - t0};
          }
        }, alive);
    } catch (e) {
      if (!alive()) return;
      st.more = false;
      tableWrap.dataset.state = 'error';
      tableWrap.dataset.gen = String(gen);
      if (e.field === 'filter' || e.field === 'order_by') {
        filterInput.classList.add('bad');
        filterErr.appendChild(filterError(e.field === 'filter' ? st.filter : st.order, e));
        if (e.field === 'order_by') filterErr.prepend(h('div', {class: 'muted'}, 'order by: ' + st.order));
      } else {
        filterErr.appendChild(errorBox(e));
      }
      /* the last good table stays, dimmed, under the error */
      if (first) tableWrap.classList.add('stale');
    }
  }

  /* ---- live rows ---------------------------------------------------------------------- */
  let polling = false;
  async function poll() {
    if (polling || !ctx.alive() || document.hidden) return;
    const ids = [];
    for (const [id] of st.rows) {
      const r = st.byId.get(id);
      if (r && r.status === 'RUNNING') ids.push(id);
      if (ids.length >= POLL_MAX_IDS) break;
    }
    if (!ids.length) return;
    polling = true;
    const gen = st.load;
    try {
      const r = await api.get('runs', {experiment: st.experiment,
        filter: `run_id IN (${ids.map((id) => `'${id}'`).join(', ')})`, limit: ids.length});
      if (!ctx.alive() || gen !== st.load) return;
      for (const run of r.runs || []) {
        const old = st.byId.get(run.run_id);
        const tr = st.rows.get(run.run_id);
        if (!old || !tr) continue;
        const i = st.runs.indexOf(old);
        if (i >= 0) st.runs[i] = run;
        st.byId.set(run.run_id, run);
        const fresh = buildRow(run);
        fresh.classList.add('updated');
        tr.replaceWith(fresh);
        st.rows.set(run.run_id, fresh);
      }
      updateCount();
    } catch (e) {
      console.warn('runs poll:', e.message);
    } finally {
      polling = false;
    }
  }
  const timer = setInterval(poll, POLL_MS);
  ctx.onLeave(() => clearInterval(timer));

  await reload();
}
