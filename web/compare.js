/* compare.js — the Compare page (#/compare/RUN,RUN,...): runs side by side.

   A legend of the runs (one colour each, the same in every chart), the param diff table
   (every param, rows whose values differ highlighted, "only differing" to hide the rest, and
   each metric's last value), a scatter of a chosen param against a
   chosen metric's last value (an SVG drawn here: text nodes only), and one uPlot chart per
   metric with a series per run, each from its own M4 curve, joined on x with uPlot.join. */

import * as api from './api.js';
import {h, s, clear, fmtNum, shortId, link, badge, section, errorBox, selection, looksNumeric,
        num, setTitle} from './ui.js';
import {curvePoints, ema, plot, controls, color, destroyAll, resizeAll, uniqueX} from './chart.js';
import {pool} from './run.js';

const BUCKETS = 500;

/* 1-2-5 ticks covering [lo, hi], about N of them. */
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) {
    const d = Math.abs(lo) || 1;
    return niceTicks(lo - d / 2, hi + d / 2, n);
  }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function swatch(i) {
  const el = h('span', {class: 'swatch'});
  el.style.background = color(i);
  return el;
}

function diffTable(runs) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))].sort();
  const mkeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics || {})))].sort();
  const onlyDiff = h('input', {type: 'checkbox', id: 'only-diff'});
  const head = h('tr', null, h('th', null, ''), runs.map((r, i) => h('th', {class: 'mono'},
    swatch(i), h('a', {href: link.run(r.run_id)}, shortId(r.run_id)))));
  const rows = [];
  let ndiff = 0;
  for (const k of keys) {
    const vals = runs.map((r) => (r.params || {})[k]);
    const differs = new Set(vals.map((v) => (v === undefined ? '\u0000' : v))).size > 1;
    ndiff += differs;
    rows.push(h('tr', {class: differs ? 'diff' : 'same', dataset: {param: k}}, h('th', {class: 'mono'}, `params.${k}`),
      vals.map((v) => h('td', {class: 'mono'}, v === undefined ? '—' : v))));
  }
  for (const k of mkeys) {
    const vals = runs.map((r) => (r.metrics && r.metrics[k] ? num(r.metrics[k].last) : undefined));
    rows.push(h('tr', {class: 'metric-row'}, h('th', {class: 'mono'}, `metrics.${k} (last)`),
      vals.map((v) => h('td', {class: 'mono num'}, v === undefined ? '—' : fmtNum(v)))));
  }
  const table = h('table', {class: 'grid diff-table', id: 'diff-table'},
    h('thead', null, h('tr', null, h('th', null, 'run'), runs.map((r) => h('th', null, r.name || '')))),
    h('tbody', null, head, rows));
  onlyDiff.addEventListener('change', () => table.classList.toggle('only-diff', onlyDiff.checked));
  return h('div', null, h('p', {class: 'muted'}, `${ndiff} of ${keys.length} params differ (highlighted); `,
    h('label', {class: 'check'}, onlyDiff, 'only differing')),
  h('div', {class: 'table-wrap'}, table));
}

/* [lo, hi] widened by 6% a side (a lone value by half its size), so no dot sits on an axis. */
function padded(lo, hi) {
  const span = hi - lo > 0 ? hi - lo : Math.abs(lo) || 1;
  const pad = hi - lo > 0 ? span * 0.06 : span / 2;
  return [lo - pad, hi + pad];
}

/* The scatter of params.P (x) against metrics.M's last value (y), one dot per run; a numeric
   param on a linear or (LOGX, all values > 0) log10 axis, any other as categories. */
function scatter(runs, param, metric, logx) {
  const W = 640;
  const H = 320;
  const M = {l: 64, r: 20, t: 14, b: 44};
  const pts = [];
  for (let i = 0; i < runs.length; i++) {
    const r = runs[i];
    const pv = (r.params || {})[param];
    const m = r.metrics && r.metrics[metric];
    const y = m ? num(m.last) : null;
    if (pv === undefined || y === null || !Number.isFinite(y)) continue;
    pts.push({i, r, pv, y});
  }
  const svg = s('svg', {class: 'scatter', id: 'scatter', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
    role: 'img', 'aria-label': `params.${param} against metrics.${metric}`});
  if (!pts.length) {
    svg.appendChild(s('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'label'},
      'no run has both values'));
    return svg;
  }
  const numeric = pts.every((p) => looksNumeric(p.pv));
  const log = logx && numeric && pts.every((p) => Number(p.pv) > 0);
  let xOf;
  let xticks;
  let xlabel;
  if (numeric) {
    const xs = pts.map((p) => (log ? Math.log10(Number(p.pv)) : Number(p.pv)));
    const [a, b] = padded(Math.min(...xs), Math.max(...xs));
    xOf = (v) => M.l + ((v - a) / (b - a)) * (W - M.l - M.r);
    xticks = niceTicks(a, b, 6).filter((v) => v >= a && v <= b);
    if (log) {
      /* powers of ten when there are two or more in view */
      const pow = [];
      for (let e = Math.ceil(a); e <= Math.floor(b); e++) pow.push(e);
      if (pow.length >= 2) xticks = pow;
    }
    xlabel = (v) => fmtNum(log ? Math.pow(10, v) : v);
    for (const p of pts) p.x = xOf(log ? Math.log10(Number(p.pv)) : Number(p.pv));
  } else {
    const cats = [...new Set(pts.map((p) => p.pv))].sort();
    const step = (W - M.l - M.r) / cats.length;
    xOf = (v) => M.l + step * (cats.indexOf(v) + 0.5);
    xticks = cats;
    xlabel = (v) => (String(v).length > 14 ? String(v).slice(0, 13) + '…' : String(v));
    for (const p of pts) p.x = xOf(p.pv);
  }
  const ys = pts.map((p) => p.y);
  const [ya, yb] = padded(Math.min(...ys), Math.max(...ys));
  const yticks = niceTicks(ya, yb, 6).filter((v) => v >= ya && v <= yb);
  const yOf = (v) => H - M.b - ((v - ya) / (yb - ya)) * (H - M.t - M.b);
  const g = s('g', {class: 'axes'});
  for (const t of yticks) {
    const y = yOf(t);
    g.appendChild(s('line', {x1: M.l, y1: y, x2: W - M.r, y2: y, class: 'gridline'}));
    g.appendChild(s('text', {x: M.l - 6, y: y + 4, 'text-anchor': 'end', class: 'tick'}, fmtNum(t)));
  }
  g.appendChild(s('line', {x1: M.l, y1: H - M.b, x2: W - M.r, y2: H - M.b, class: 'axis'}));
  g.appendChild(s('line', {x1: M.l, y1: M.t, x2: M.l, y2: H - M.b, class: 'axis'}));
  for (const t of xticks) {
    const x = xOf(t);
    g.appendChild(s('line', {x1: x, y1: H - M.b, x2: x, y2: H - M.b + 4, class: 'axis'}));
    g.appendChild(s('text', {x, y: H - M.b + 16, 'text-anchor': 'middle', class: 'tick'}, xlabel(t)));
  }
  g.appendChild(s('text', {x: (M.l + W - M.r) / 2, y: H - 6, 'text-anchor': 'middle', class: 'label'},
    `params.${param}${log ? ' (log)' : ''}`));
  g.appendChild(s('text', {x: 14, y: (M.t + H - M.b) / 2, 'text-anchor': 'middle', class: 'label',
    transform: `rotate(-90 14 ${(M.t + H - M.b) / 2})`}, `metrics.${metric} (last)`));
  svg.appendChild(g);
  for (const p of pts) {
    const a = s('a', {href: link.run(p.r.run_id)});
    a.appendChild(s('circle', {cx: p.x.toFixed(1), cy: yOf(p.y).toFixed(1), r: 5, fill: color(p.i), class: 'dot'},
      s('title', null, `${p.r.name || shortId(p.r.run_id)}: ${param}=${p.pv}, ${metric}=${fmtNum(p.y)}`)));
    svg.appendChild(a);
  }
  return svg;
}

export async function render(ctx) {
  const {view} = ctx;
  ctx.onLeave(destroyAll);
  let ids = ctx.arg ? ctx.arg.split(',').map((x) => x.trim()).filter(Boolean) : selection.get();
  ids = [...new Set(ids)];
  if (ids.length < 1) {
    view.appendChild(section('Compare', h('p', null, 'Pick two or more runs with the checkboxes on the ',
      h('a', {href: '#/runs'}, 'Runs'), ' page, then "Compare selected".')));
    return;
  }
  if (!ctx.arg) history.replaceState(null, '', link.compare(ids));
  const runs = await Promise.all(ids.map((id) => api.get(`runs/${encodeURIComponent(id)}`)));
  if (!ctx.alive()) return;
  setTitle(`compare ${runs.length} runs`);

  const legend = h('div', {class: 'legend', id: 'compare-legend'}, runs.map((r, i) =>
    h('span', {class: 'legend-item'}, swatch(i),
      h('a', {href: link.run(r.run_id)}, r.name || shortId(r.run_id)), ' ',
      h('span', {class: 'mono muted'}, shortId(r.run_id)), ' ', badge(r.status))));
  view.appendChild(h('section', {class: 'card'}, h('h1', null, `Compare ${runs.length} runs`), legend));
  view.appendChild(section('Params', diffTable(runs)));

  const params = [...new Set(runs.flatMap((r) => Object.keys(r.params || {})))].sort();
  const metrics = [...new Set(runs.flatMap((r) => Object.keys(r.metrics || {})))].sort();
  const scatterBox = h('div', {class: 'scatter-box'});
  const pSel = h('select', {id: 'scatter-param', 'aria-label': 'scatter param'},
    params.map((p) => h('option', {value: p}, p)));
  const mSel = h('select', {id: 'scatter-metric', 'aria-label': 'scatter metric'},
    metrics.map((m) => h('option', {value: m}, m)));
  /* default x: the first param that differs */
  const differing = params.find((p) => new Set(runs.map((r) => (r.params || {})[p])).size > 1);
  if (differing) pSel.value = differing;
  const logx = h('input', {type: 'checkbox', id: 'scatter-logx'});
  const drawScatter = () => {
    clear(scatterBox);
    if (params.length && metrics.length) scatterBox.appendChild(scatter(runs, pSel.value, mSel.value, logx.checked));
    else scatterBox.appendChild(h('p', {class: 'muted'}, 'needs a param and a metric'));
  };
  logx.addEventListener('change', drawScatter);
  pSel.addEventListener('change', drawScatter);
  mSel.addEventListener('change', drawScatter);
  view.appendChild(section('Scatter', h('div', {class: 'chart-controls'},
    h('label', {for: 'scatter-param'}, 'x: params.'), pSel, h('label', {class: 'check'}, logx, 'log x'),
    h('label', {for: 'scatter-metric'}, 'y: metrics.'), mSel, h('span', {class: 'muted'}, '(last value)')),
  scatterBox));
  drawScatter();

  const state = {smooth: 0, logy: false, xmode: 'step'};
  const grid = h('div', {class: 'charts', id: 'charts'});
  view.appendChild(section('Metrics', controls(state, () => drawAll()), grid));
  const curves = new Map(); /* `${runIndex}\n${key}` -> curve */
  const boxes = new Map();
  for (const k of metrics) {
    const b = h('div', {class: 'chart placeholder'}, h('span', {class: 'mono'}, k), ' loading…');
    grid.appendChild(b);
    boxes.set(k, b);
  }

  function drawMetric(key) {
    const tables = [];
    const series = [];
    runs.forEach((r, i) => {
      const c = curves.get(`${i}\n${key}`);
      if (!c) return;
      const [xs, ys] = uniqueX(curvePoints(c, state.xmode, r.start_time));
      const label = r.name || shortId(r.run_id);
      if (state.smooth > 0) {
        tables.push([xs, ys, ema(ys, state.smooth)]);
        series.push({label: `${label} raw`, stroke: color(i, 0.2), width: 1},
          {label, stroke: color(i), width: 1.5});
      } else {
        tables.push([xs, ys]);
        series.push({label, stroke: color(i), width: 1.5});
      }
    });
    const old = boxes.get(key);
    const holder = h('div');
    old.replaceWith(holder);
    boxes.set(key, holder);
    if (!tables.length) return;
    const data = tables.length === 1 ? tables[0] : window.uPlot.join(tables);
    plot(holder, {title: key, xmode: state.xmode, logy: state.logy, series, data, height: 240});
  }
  function drawAll() {
    destroyAll();
    for (const k of metrics) drawMetric(k);
  }

  const jobs = [];
  runs.forEach((r, i) => {
    for (const k of Object.keys(r.metrics || {})) jobs.push([i, k]);
  });
  const pending = new Map(metrics.map((k) => [k, jobs.filter((j) => j[1] === k).length]));
  await pool(jobs, 4, async ([i, k]) => {
    try {
      curves.set(`${i}\n${k}`, await api.get(`runs/${encodeURIComponent(runs[i].run_id)}/curve`, {key: k, buckets: BUCKETS}));
    } catch (e) {
      const b = boxes.get(k);
      if (b) b.appendChild(errorBox(e));
    }
    if (!ctx.alive()) return;
    pending.set(k, pending.get(k) - 1);
    if (pending.get(k) === 0) drawMetric(k);
  });
  grid.dataset.ready = '1';
  const onResize = () => resizeAll();
  window.addEventListener('resize', onResize);
  ctx.onLeave(() => window.removeEventListener('resize', onResize));
}
