/* run.js — the Run page (#/run/RUN): what one run is and what came of it.

   Params, tags and metric summaries; a uPlot chart per metric drawn from its M4 curve
   (chart.js), with smoothing, log-y and the x mode shared by all charts; artifacts with sizes,
   digests and download links; lineage (parent, ancestors, children, model versions, as
   links); the run's feedback with a form to add one, and a link to the rating queue of its
   samples. While the run is RUNNING the page asks for it every 2 s and refetches the curves
   whose point count moved. */

import * as api from './api.js';
import {h, clear, fmtNum, fmtInt, fmtTime, fmtDuration, fmtBytes, runDuration, shortId, link, badge,
        kvTable, section, errorBox, setTitle} from './ui.js';
import {curvePoints, ema, plot, controls, color, destroyAll, resizeAll} from './chart.js';

const BUCKETS = 1000;
const PARALLEL = 4;
const POLL_MS = 2000;

/* Run FN over ITEMS with at most N in flight. */
export async function pool(items, n, fn) {
  let next = 0;
  const workers = [];
  for (let w = 0; w < Math.min(n, items.length); w++) {
    workers.push((async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    })());
  }
  await Promise.all(workers);
}

/* A feedback value typed as the CLI reads it: true/false/yes/no, a number, a label; '' none. */
export function parseValue(text) {
  const t = text.trim();
  if (t === '') return null;
  if (/^(true|yes)$/i.test(t)) return true;
  if (/^(false|no)$/i.test(t)) return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  return t;
}

export function fmtValue(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'boolean') return v ? '✓ true' : '✗ false';
  if (typeof v === 'number') return fmtNum(v);
  return String(v);
}

function header(run) {
  const dl = h('dl', {class: 'facts'});
  const fact = (k, ...v) => dl.append(h('dt', null, k), h('dd', null, ...v));
  fact('run', h('span', {class: 'mono'}, run.run_id));
  fact('experiment', h('a', {href: link.runs(run.experiment)}, run.experiment));
  fact('user', run.user || '');
  fact('started', h('span', {class: 'mono'}, fmtTime(run.start_time)));
  fact('ended', h('span', {class: 'mono'}, fmtTime(run.end_time)));
  fact('duration', h('span', {class: 'mono', id: 'run-duration'}, fmtDuration(runDuration(run))));
  if (run.parent_run_id)
    fact('parent', h('a', {class: 'mono', href: link.run(run.parent_run_id)}, shortId(run.parent_run_id)));
  if (run.artifacts !== undefined)
    fact('artifacts', `${fmtInt(run.artifacts)} (${fmtBytes(run.artifact_bytes || 0)})`);
  return h('section', {class: 'card run-head'},
    h('h1', null, run.name || shortId(run.run_id), ' ', badge(run.status),
      run.deleted ? h('span', {class: 'badge st-deleted'}, 'DELETED') : null), dl);
}

function metricsTable(run) {
  const keys = Object.keys(run.metrics || {}).sort();
  if (!keys.length) return h('p', {class: 'muted'}, 'no metrics');
  return h('table', {class: 'grid', id: 'metric-summary'},
    h('thead', null, h('tr', null, h('th', null, 'metric'), ['last', 'min', 'max', 'step', 'points'].map((c) =>
      h('th', {class: 'num'}, c)), h('th', null, 'last logged'))),
    h('tbody', null, keys.map((k) => {
      const m = run.metrics[k];
      return h('tr', {dataset: {metric: k}}, h('td', {class: 'mono'}, k),
        h('td', {class: 'mono num', title: String(m.last)}, fmtNum(m.last)),
        h('td', {class: 'mono num'}, fmtNum(m.min)), h('td', {class: 'mono num'}, fmtNum(m.max)),
        h('td', {class: 'mono num'}, fmtInt(m.last_step)), h('td', {class: 'mono num'}, fmtInt(m.count)),
        h('td', {class: 'mono'}, fmtTime(m.last_time)));
    })));
}

function artifactsTable(runId, arts) {
  if (!arts.length) return h('p', {class: 'muted'}, 'no artifacts');
  return h('table', {class: 'grid', id: 'artifacts'},
    h('thead', null, h('tr', null, h('th', null, 'path'), h('th', {class: 'num'}, 'size'),
      h('th', null, 'digest (BLAKE2b-256)'), h('th', null, 'logged'))),
    h('tbody', null, arts.map((a) => h('tr', null,
      h('td', {class: 'mono'}, h('a', {href: api.artifactUrl(runId, a.path),
        download: a.path.split('/').pop(), class: 'download'}, a.path)),
      h('td', {class: 'mono num', title: `${fmtInt(a.size)} bytes`}, fmtBytes(a.size)),
      h('td', {class: 'mono digest', title: a.digest}, String(a.digest || '').slice(0, 16)),
      h('td', {class: 'mono'}, fmtTime(a.logged_time))))));
}

function lrun(r) {
  return h('span', {class: 'lrun'}, h('a', {class: 'mono', href: link.run(r.run_id), title: r.run_id},
    shortId(r.run_id)), ' ', r.name || '', ' ', badge(r.status), r.deleted ? ' (deleted)' : '');
}

function lineageBox(lin) {
  const rows = [];
  const row = (k, ...v) => rows.push(h('tr', null, h('th', null, k), h('td', null, ...v)));
  if (lin.ancestors && lin.ancestors.length)
    row('ancestors', h('ol', {class: 'plain'}, lin.ancestors.map((r) => h('li', null, lrun(r)))));
  if (lin.children && lin.children.length)
    row('children', h('ul', {class: 'plain'}, lin.children.map((r) => h('li', null, lrun(r)))));
  if (lin.git_commit) row('git commit', h('span', {class: 'mono'}, lin.git_commit));
  if (lin.command) row('command', h('code', null, lin.command));
  if (lin.model_versions && lin.model_versions.length)
    row('model versions', h('ul', {class: 'plain'}, lin.model_versions.map((v) => h('li', null,
      h('a', {href: link.model(v.model)}, `${v.model}/${v.version}`), ' ',
      h('span', {class: 'mono muted'}, v.path)))));
  if (lin.truncated) row('', h('span', {class: 'muted'}, 'truncated'));
  if (!rows.length) return h('p', {class: 'muted'}, 'no parent, children or model versions');
  return h('table', {class: 'kv', id: 'lineage'}, h('tbody', null, rows));
}

export function scoresTable(scores, {showTarget = true} = {}) {
  if (!scores.length) return h('p', {class: 'muted'}, 'no feedback yet');
  return h('table', {class: 'grid feedback'},
    h('thead', null, h('tr', null, showTarget ? h('th', null, 'target') : null, h('th', null, 'name'),
      h('th', null, 'value'), h('th', null, 'comment'), h('th', null, 'source'), h('th', null, 'by'),
      h('th', null, 'time'))),
    h('tbody', null, scores.map((sc) => h('tr', null,
      showTarget ? h('td', {class: 'mono'}, sc.trace_id ? h('a', {href: link.trace(sc.trace_id)},
        `trace ${shortId(sc.trace_id)}${sc.span_id ? ' span ' + sc.span_id : ''}`) : sc.target || '(run)') : null,
      h('td', {class: 'mono'}, sc.name), h('td', {class: 'mono'}, fmtValue(sc.value)),
      h('td', {class: 'comment'}, sc.comment || ''), h('td', null, sc.source || ''),
      h('td', null, sc.source_id || ''), h('td', {class: 'mono'}, fmtTime(sc.time))))));
}

/* A small "add feedback" form: name, value, comment; onDone() after a successful post. */
export function feedbackForm(body, onDone, defaults = {}) {
  const name = h('input', {type: 'text', class: 'mono', placeholder: 'name', value: defaults.name || '',
    required: true, size: 14, 'aria-label': 'feedback name'});
  const value = h('input', {type: 'text', class: 'mono', placeholder: 'true, 4 or a label', size: 18,
    'aria-label': 'feedback value'});
  const comment = h('input', {type: 'text', placeholder: 'comment (optional)', size: 32,
    'aria-label': 'feedback comment'});
  const msg = h('span', {class: 'form-msg'});
  return h('form', {class: 'inline-form feedback-form', on: {submit: async (e) => {
    e.preventDefault();
    msg.textContent = '';
    msg.className = 'form-msg';
    const payload = {...body, name: name.value.trim(), value: parseValue(value.value)};
    if (comment.value.trim()) payload.comment = comment.value.trim();
    try {
      await api.post('feedback', payload);
      msg.textContent = 'added';
      value.value = '';
      comment.value = '';
      onDone();
    } catch (ex) {
      msg.textContent = ex.message;
      msg.className = 'form-msg error-line';
    }
  }}}, name, value, comment, h('button', {type: 'submit'}, 'Add feedback'), msg);
}

function sampleDirs(arts) {
  const dirs = new Map();
  for (const a of arts) {
    const i = a.path.lastIndexOf('/');
    if (i > 0) dirs.set(a.path.slice(0, i + 1), (dirs.get(a.path.slice(0, i + 1)) || 0) + 1);
  }
  return [...dirs].sort((a, b) => (a[0] === 'samples/' ? -1 : b[0] === 'samples/' ? 1 : b[1] - a[1]));
}

function rateForm(runId, arts) {
  const dirs = sampleDirs(arts);
  if (!dirs.length) return null;
  const prefix = h('select', {'aria-label': 'samples prefix'}, dirs.map(([d, n]) =>
    h('option', {value: d}, `${d} (${n})`)));
  const name = h('input', {type: 'text', class: 'mono', value: 'is_good', size: 12, 'aria-label': 'rating name'});
  return h('form', {class: 'inline-form', id: 'rate-form', on: {submit: (e) => {
    e.preventDefault();
    location.hash = link.rate(runId, name.value.trim() || 'is_good', prefix.value);
  }}}, 'Rate the files under ', prefix, ' as ', name, h('button', {type: 'submit'}, 'Open rating queue'));
}

export async function render(ctx) {
  const {view, arg: runId} = ctx;
  ctx.onLeave(destroyAll);
  let run = await api.get(`runs/${encodeURIComponent(runId)}`);
  if (!ctx.alive()) return;
  const id = run.run_id;
  setTitle(run.name || shortId(id), 'run');
  const enc = encodeURIComponent(id);

  const headBox = h('div', null, header(run));
  const summaryBox = h('div', null, metricsTable(run));
  const chartsGrid = h('div', {class: 'charts', id: 'charts'});
  const chartState = {smooth: 0, logy: false, xmode: 'step'};
  const charts = new Map(); /* key -> {curve, u, el} */
  const artsBox = h('div', null, h('p', {class: 'muted'}, 'loading…'));
  const linBox = h('div', null, h('p', {class: 'muted'}, 'loading…'));
  const fbBox = h('div', null, h('p', {class: 'muted'}, 'loading…'));
  const rateBox = h('div');

  view.appendChild(headBox);
  view.appendChild(h('div', {class: 'cols2'},
    section('Params', kvTable(run.params)), section('Tags', kvTable(run.tags))));
  view.appendChild(section('Metrics', summaryBox));
  view.appendChild(section('Charts', controls(chartState, (kind) => redrawCharts(kind)), chartsGrid));
  view.appendChild(section('Artifacts', artsBox, rateBox));
  view.appendChild(section('Lineage', linBox));
  view.appendChild(section('Feedback', fbBox,
    feedbackForm({run: id}, () => loadFeedback(), {name: 'note'})));

  function chartData(curve) {
    const [xs, ys] = curvePoints(curve, chartState.xmode, run.start_time);
    return chartState.smooth > 0 ? [xs, ys, ema(ys, chartState.smooth)] : [xs, ys];
  }
  function series() {
    return chartState.smooth > 0
      ? [{label: 'raw', stroke: color(0, 0.25), width: 1}, {label: 'smoothed', stroke: color(0), width: 1.5}]
      : [{label: 'value', stroke: color(0), width: 1.5}];
  }
  function drawChart(key) {
    const c = charts.get(key);
    const old = c.el;
    const holder = h('div');
    if (c.u) {
      const i = window.__trackCharts.indexOf(c.u);
      if (i >= 0) window.__trackCharts.splice(i, 1);
      c.u.destroy();
    }
    old.replaceWith(holder);
    c.el = holder;
    c.u = plot(holder, {title: key, xmode: chartState.xmode, logy: chartState.logy, series: series(),
      data: chartData(c.curve), note: `${fmtInt(c.curve.count)} points`});
  }
  function redrawCharts(kind) {
    for (const [key, c] of charts) {
      if (!c.curve) continue;
      if (kind === 'smooth' && c.u && c.u.series.length - 1 === series().length) {
        const d = c.u.data[0];
        const {min, max} = c.u.scales.x;
        const zoomed = d.length > 1 && (min > d[0] || max < d[d.length - 1]);
        c.u.setData(chartData(c.curve));
        if (zoomed) c.u.setScale('x', {min, max});
      } else {
        drawChart(key);
      }
    }
  }

  async function loadCurve(key) {
    const curve = await api.get(`runs/${enc}/curve`, {key, buckets: BUCKETS});
    if (!ctx.alive()) return;
    const c = charts.get(key);
    c.curve = curve;
    drawChart(key);
  }

  const t0 = performance.now();
  const keys = Object.keys(run.metrics || {}).sort();
  for (const k of keys) {
    const el = h('div', {class: 'chart placeholder'}, h('span', {class: 'mono'}, k), ' loading…');
    chartsGrid.appendChild(el);
    charts.set(k, {curve: null, u: null, el});
  }
  if (!keys.length) chartsGrid.appendChild(h('p', {class: 'muted'}, 'no metrics to chart'));
  const chartsDone = pool(keys, PARALLEL, (k) => loadCurve(k).catch((e) => {
    const c = charts.get(k);
    const box = h('div', {class: 'chart'}, h('div', {class: 'chart-title mono'}, k), errorBox(e));
    c.el.replaceWith(box);
    c.el = box;
  })).then(() => {
    chartsGrid.dataset.ready = '1';
    window.__trackFigures = {...(window.__trackFigures || {}), runChartsMs: performance.now() - t0,
      runCharts: keys.length};
  });

  async function loadArtifacts() {
    try {
      const ar = await api.get(`runs/${enc}/artifacts`);
      const arts = ar.artifacts || [];
      if (!ctx.alive()) return;
      clear(artsBox).appendChild(artifactsTable(id, arts));
      if (ar.more) artsBox.appendChild(h('p', {class: 'muted'}, `the first ${fmtInt(arts.length)} artifacts; `,
        h('code', null, `track artifact list ${id}`), ' lists them all'));
      const f = rateForm(id, arts);
      if (f) clear(rateBox).appendChild(f);
    } catch (e) {
      clear(artsBox).appendChild(errorBox(e));
    }
  }
  async function loadLineage() {
    try {
      const lin = await api.get(`runs/${enc}/lineage`);
      if (ctx.alive()) clear(linBox).appendChild(lineageBox(lin));
    } catch (e) {
      clear(linBox).appendChild(errorBox(e));
    }
  }
  async function loadFeedback() {
    try {
      const fb = await api.get(`runs/${enc}/feedback`);
      if (!ctx.alive()) return;
      clear(fbBox).appendChild(scoresTable(fb.scores || []));
      if (fb.more) fbBox.appendChild(h('p', {class: 'muted'}, `the first ${fmtInt((fb.scores || []).length)} scores; `,
        h('code', null, `track feedback list ${id}`), ' lists them all'));
    } catch (e) {
      clear(fbBox).appendChild(errorBox(e));
    }
  }
  loadArtifacts();
  loadLineage();
  loadFeedback();

  const onResize = () => resizeAll();
  window.addEventListener('resize', onResize);
  ctx.onLeave(() => window.removeEventListener('resize', onResize));

  /* live: a RUNNING run is asked for every POLL_MS; curves whose count moved are refetched */
  let busy = false;
  const timer = setInterval(async () => {
    if (busy || run.status !== 'RUNNING' || document.hidden || !ctx.alive()) return;
    busy = true;
    try {
      const fresh = await api.get(`runs/${enc}`);
      if (!ctx.alive()) return;
      const old = run;
      run = fresh;
      clear(headBox).appendChild(header(run));
      clear(summaryBox).appendChild(metricsTable(run));
      for (const k of Object.keys(run.metrics || {}).sort()) {
        if (!charts.has(k)) {
          const el = h('div', {class: 'chart placeholder'}, k);
          chartsGrid.appendChild(el);
          charts.set(k, {curve: null, u: null, el});
        }
        const before = old.metrics && old.metrics[k] ? old.metrics[k].count : -1;
        if (run.metrics[k].count !== before) await loadCurve(k);
      }
    } catch (e) {
      console.warn('run poll:', e.message);
    } finally {
      busy = false;
    }
  }, POLL_MS);
  ctx.onLeave(() => clearInterval(timer));
  await chartsDone;
}
