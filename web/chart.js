/* chart.js — metric charts on uPlot (window.uPlot, loaded from /ui/uPlot.iife.min.js).

   A curve comes from `runs/RUN/curve` as M4 buckets: each bucket's first, min, max and last
   point with their steps and times. curvePoints() emits the four points of every bucket in
   step order (one point once when they coincide), which is what the whole series would draw
   at that width: no spike is lost. x is the step, the wall time (uPlot's seconds) or the
   seconds since the run's start. ema() is TensorBoard's debiased exponential moving average.
   plot() draws one uPlot chart into a container: drag to zoom on x (uPlot's default),
   double-click to reset, log-y as a log10 scale with the values <= 0 left out (and counted).

   The uPlot instances of the page are kept in window.__trackCharts (what the browser tests
   read to check that a chart was drawn, zoomed or smoothed). */

import {h, num, fmtNum, fmtDuration} from './ui.js';

/* Tableau's ten, then ten more chosen to stay apart (as `track compare --plot`). */
export const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1',
  '#ff9da7', '#9c755f', '#bab0ac', '#1f3a93', '#8c564b', '#17becf', '#bcbd22', '#7f7f7f',
  '#d62728', '#2ca02c', '#9467bd', '#e377c2', '#ff7f0e'];

export function color(i, alpha = 1) {
  const hex = COLORS[i % COLORS.length];
  if (alpha >= 1) return hex;
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/* A curve reply as [xs, ys]: every bucket's first/min/max/last in step order. xmode 'step',
   'wall' (seconds since the epoch) or 'relative' (seconds since startMs). Non-finite values
   become null (a gap). */
export function curvePoints(curve, xmode, startMs) {
  const n = (curve.firsts || []).length;
  const xs = [];
  const ys = [];
  const steps = [];
  const quad = [null, null, null, null];
  const fields = [['first_steps', 'first_times', 'firsts'], ['min_steps', 'min_times', 'mins'],
    ['max_steps', 'max_times', 'maxs'], ['last_steps', 'last_times', 'lasts']];
  const cols = fields.map(([s, t, v]) => [curve[s] || [], curve[t] || [], curve[v] || []]);
  for (let i = 0; i < n; i++) {
    for (let q = 0; q < 4; q++) {
      const c = cols[q];
      quad[q] = {step: c[0][i], time: c[1][i], value: num(c[2][i]), q};
    }
    quad.sort((a, b) => a.step - b.step || a.q - b.q);
    let prev = null;
    for (const p of quad) {
      if (prev && p.step === prev.step && (p.value === prev.value || (Number.isNaN(p.value) && Number.isNaN(prev.value))))
        continue;
      prev = p;
      steps.push(p.step);
      xs.push(xmode === 'wall' ? p.time / 1000 : xmode === 'relative' ? (p.time - startMs) / 1000 : p.step);
      ys.push(p.value === null || !Number.isFinite(p.value) ? null : p.value);
    }
  }
  if (xmode !== 'step') {
    let sorted = true;
    for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) { sorted = false; break; }
    if (!sorted) {
      const idx = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b] || steps[a] - steps[b]);
      return [idx.map((i) => xs[i]), idx.map((i) => ys[i])];
    }
  }
  return [xs, ys];
}

/* TensorBoard's smoothing: a debiased exponential moving average of weight w in [0, 1);
   nulls stay nulls and do not move the average. */
export function ema(ys, w) {
  if (!w) return ys.slice();
  const out = new Array(ys.length);
  let last = 0;
  let k = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * w + (1 - w) * y;
    k++;
    out[i] = last / (1 - Math.pow(w, k));
  }
  return out;
}

/* Keep only the first point of each run of equal xs (uPlot.join wants unique xs). */
export function uniqueX([xs, ys]) {
  const ox = [];
  const oy = [];
  for (let i = 0; i < xs.length; i++) {
    if (ox.length && xs[i] === ox[ox.length - 1]) {
      if (oy[oy.length - 1] === null) oy[oy.length - 1] = ys[i];
      continue;
    }
    ox.push(xs[i]);
    oy.push(ys[i]);
  }
  return [ox, oy];
}

/* For a log scale: values <= 0 become null; returns [data, how many were dropped]. */
export function positiveOnly(data) {
  let dropped = 0;
  const out = [data[0]];
  for (let s = 1; s < data.length; s++) {
    out.push(data[s].map((v) => {
      if (v !== null && v <= 0) {
        dropped++;
        return null;
      }
      return v;
    }));
  }
  return [out, dropped];
}

function fmtRelative(sec) {
  return fmtDuration(sec * 1000);
}

function registry() {
  if (!window.__trackCharts) window.__trackCharts = [];
  return window.__trackCharts;
}

/* Forget every chart (a page leaving): destroys the uPlot instances. */
export function destroyAll() {
  for (const u of registry()) u.destroy();
  window.__trackCharts = [];
}

/* One chart in CONTAINER. cfg: {title, xmode, logy, series: [{label, stroke, width}], data
   (uPlot's AlignedData), height, note}. Returns the uPlot instance (null without uPlot). */
export function plot(container, cfg) {
  const UPlot = window.uPlot;
  const box = h('div', {class: 'chart', dataset: {metric: cfg.title}});
  const head = h('div', {class: 'chart-title'}, h('span', {class: 'mono'}, cfg.title));
  box.appendChild(head);
  container.appendChild(box);
  if (!UPlot) {
    box.appendChild(h('p', {class: 'error-line'}, 'uPlot did not load (/ui/uPlot.iife.min.js)'));
    return null;
  }
  let data = cfg.data;
  if (cfg.logy) {
    const [d, dropped] = positiveOnly(data);
    data = d;
    if (dropped) head.appendChild(h('span', {class: 'muted note'}, `${dropped} values <= 0 not drawn`));
  }
  if (cfg.note) head.appendChild(h('span', {class: 'muted note'}, cfg.note));
  const plotEl = h('div', {class: 'chart-plot'});
  box.appendChild(plotEl);
  const width = Math.max(240, (plotEl.clientWidth || container.clientWidth || 600) - 4);
  const xTime = cfg.xmode === 'wall';
  const xs0 = data[0];
  const oneX = xs0.length > 0 && xs0[0] === xs0[xs0.length - 1];
  const opts = {
    width,
    height: cfg.height || 220,
    cursor: {drag: {x: true, y: false, setScale: true}, points: {size: 5}},
    legend: {show: cfg.legend !== false, live: true},
    /* one x value only (a single point, or every point logged in the same ms): ±1 (uPlot would
       widen a time axis by a day) */
    scales: {x: {time: xTime, range: oneX ? [xs0[0] - 1, xs0[0] + 1] : undefined},
             y: cfg.logy ? {distr: 3, log: 10} : {}},
    axes: [
      {stroke: '#555', grid: {stroke: '#eee'}, ticks: {stroke: '#ddd'},
       values: cfg.xmode === 'relative' ? (u, vals) => vals.map(fmtRelative) : undefined,
       label: cfg.xmode === 'step' ? 'step' : cfg.xmode === 'relative' ? 'since start' : undefined,
       labelSize: 18, size: xTime ? 50 : 36},
      {stroke: '#555', grid: {stroke: '#eee'}, ticks: {stroke: '#ddd'}, size: 60,
       values: (u, vals) => vals.map((v) => (v === null ? '' : fmtNum(v)))},
    ],
    series: [
      {label: cfg.xmode === 'step' ? 'step' : 'time',
       value: cfg.xmode === 'relative' ? (u, v) => (v === null ? '' : fmtRelative(v)) : undefined},
      ...cfg.series.map((sr) => ({label: sr.label, stroke: sr.stroke, width: sr.width || 1.5,
        spanGaps: Boolean(sr.spanGaps), points: {show: false},
        value: (u, v) => (v === null || v === undefined ? '' : fmtNum(v))})),
    ],
  };
  const u = new UPlot(opts, data, plotEl);
  registry().push(u);
  return u;
}

/* Resize every chart of the page to its box (on window resize). */
export function resizeAll() {
  for (const u of registry()) {
    const el = u.root.parentElement;
    if (el && el.clientWidth) u.setSize({width: Math.max(240, el.clientWidth - 4), height: u.height});
  }
}

/* The chart controls shared by the run and compare pages: smoothing slider, log-y, x mode.
   onChange(kind) is called with 'smooth' (redraw data only) or 'axes' (rebuild charts). */
export function controls(state, onChange) {
  const smoothVal = h('span', {class: 'mono', id: 'smooth-value'}, state.smooth.toFixed(2));
  const slider = h('input', {type: 'range', id: 'smooth', min: 0, max: 0.99, step: 0.01,
    value: state.smooth, 'aria-label': 'smoothing', on: {input: () => {
      state.smooth = Number(slider.value);
      smoothVal.textContent = state.smooth.toFixed(2);
      onChange('smooth');
    }}});
  const logy = h('input', {type: 'checkbox', id: 'logy', checked: state.logy, on: {change: () => {
    state.logy = logy.checked;
    onChange('axes');
  }}});
  const xmode = h('select', {id: 'xmode', 'aria-label': 'x axis', on: {change: () => {
    state.xmode = xmode.value;
    onChange('axes');
  }}}, [['step', 'step'], ['wall', 'wall time'], ['relative', 'relative time']].map(([v, l]) =>
    h('option', {value: v, selected: state.xmode === v}, l)));
  return h('div', {class: 'chart-controls'},
    h('label', {for: 'smooth'}, 'Smoothing'), slider, smoothVal,
    h('label', {class: 'check'}, logy, 'log y'),
    h('label', {for: 'xmode'}, 'x'), xmode,
    h('span', {class: 'muted hint'}, 'drag to zoom, double-click to reset'));
}
