/* bench.mjs — the dashboard's figures, measured in the browser the tests drive:

   - runs page, first render: WEB_BENCH_RUNS runs (default 10^4) in one experiment, from the
     hash change to the first drawn rows painted (in-page clock, median of 3), and from a cold
     load of the page; then until every page of runs has arrived;
   - the filter round trip (type, Enter, the new rows painted) and the sort round trip;
   - a run page of 10 metrics of WEB_BENCH_POINTS points (default 10^6) each: hash change to all
     10 charts drawn (and the one spike in 10^6 still on its chart);
   - a trace page of 20,000 spans (the most `traces/ID` sends): hash change to the tree drawn
     (only the rows shown are built), then unfolding and opening nodes.

   Runs and points are made with the built Python module (`import track`, log_series) when it
   is there and imports (an ASan-built one into a plain python does not), else with `track`
   calls (then WEB_BENCH_RUNS defaults to 10^3 and WEB_BENCH_POINTS to 10^5). The first render
   must take at most WEB_FIRST_RENDER_MAX_MS (default 1000). */

import crypto from 'node:crypto';
import {env, figure as fig, assert, eq, jsSpan, jsExport} from './harness.mjs';

const runsScript = (n) => `
import random, sys, time, track
random.seed(7)
t = time.time()
for i in range(${n}):
    with track.start_run(experiment="big", name="trial-%05d" % i,
                         params={"lr": (0.1, 0.03, 0.01, 0.003, 0.001)[i % 5], "seed": i,
                                 "opt": ("adam", "sgd")[i % 2], "batch": 64}):
        track.log_metrics({"loss": random.random(), "acc": random.random()}, step=0)
print(time.time() - t)
`;

const curvesScript = (p) => `
import array, math, sys, time, track
t = time.time()
with track.start_run(experiment="curves", name="ten-by-${p}") as run:
    steps = array.array("q", range(${p}))
    for k in range(10):
        vals = array.array("d", (math.sin(s / 5000.0 + k) + k for s in range(${p})))
        if k == 0:
            vals[${p} * 7 // 9] = 100.0
        track.log_series("m%d" % k, steps, vals)
    track.flush()
print(run.id, time.time() - t)
`;

async function makeRunsCli(td, n) {
  const one = async (i) => {
    await td.makeRun({experiment: 'big', name: `trial-${String(i).padStart(5, '0')}`,
      params: {lr: [0.1, 0.03, 0.01, 0.003, 0.001][i % 5], seed: i, opt: ['adam', 'sgd'][i % 2], batch: 64},
      points: `loss ${Math.random()} 0\nacc ${Math.random()} 0\n`});
  };
  let next = 0;
  await Promise.all(Array.from({length: 4}, async () => {
    while (next < n) await one(next++);
  }));
}

async function makeCurvesCli(td, p) {
  const id = await td.makeRun({experiment: 'curves', name: `ten-by-${p}`, end: false});
  for (let k = 0; k < 10; k++) {
    const lines = [];
    for (let s = 0; s < p; s++) lines.push(`m${k} ${s === Math.floor((p * 7) / 9) && k === 0 ? 100 : Math.sin(s / 5000 + k) + k} ${s}`);
    await td.cli(['log-metric', '--run', id, '--stdin'], lines.join('\n') + '\n');
  }
  await td.cli(['run', 'end', '--run', id]);
  return id;
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/* In the page (no string is evaluated: the CSP forbids eval): do WHAT.act ('hash': go to
   WHAT.hash; 'filter': submit WHAT.filter; 'sort': click WHAT.term's header), then wait frame
   by frame until WHAT.done holds ('rows': WHAT.rows rows drawn and ready; 'gen': the table
   reloaded past generation WHAT.gen; 'charts': WHAT.charts charts drawn) and one more frame
   (the paint); returns the ms it took. */
function timed(page, what) {
  return page.evaluate(async (w) => {
    const wrap = () => document.querySelector('#runs-wrap');
    const done = () => {
      if (w.done === 'rows')
        return location.hash.includes(w.hashPart) && wrap() && wrap().dataset.state === 'ready' &&
          document.querySelectorAll('#runs-table tbody tr').length >= w.rows;
      if (w.done === 'gen') return wrap() && wrap().dataset.state === 'ready' && Number(wrap().dataset.gen) > w.gen;
      if (w.done === 'charts')
        return document.querySelector('#charts[data-ready]') && window.__trackCharts && window.__trackCharts.length === w.charts;
      throw new Error(`done: ${w.done}`);
    };
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    const t0 = performance.now();
    if (w.act === 'hash') location.hash = w.hash;
    else if (w.act === 'filter') {
      const i = document.querySelector('#filter');
      i.value = w.filter;
      i.form.requestSubmit();
    } else if (w.act === 'sort') document.querySelector(`#runs-table th[data-term="${w.term}"]`).click();
    const end = t0 + 60000;
    while (!done()) {
      if (performance.now() > end) throw new Error(`not done in 60 s: ${JSON.stringify(w)}`);
      await frame();
    }
    await frame();
    return performance.now() - t0;
  }, what);
}

/* 1 when `import track` works against TD (the module is built and loads into this python). */
async function pythonWorks(td) {
  if (!td.pythonPath()) return false;
  try {
    await td.python('import track');
    return true;
  } catch (e) {
    console.log(`# the Python module does not import (${e.message.split('\n')[0].slice(0, 160)}): using the CLI`);
    return false;
  }
}

export async function bench(td, page, {check, shot, go}) {
  const py = await pythonWorks(td);
  const N = Number(env.WEB_BENCH_RUNS || (py ? 10000 : 1000));
  const P = Number(env.WEB_BENCH_POINTS || (py ? 1000000 : 100000));
  const maxFirst = Number(env.WEB_FIRST_RENDER_MAX_MS || 1000);
  let curvesId = '';
  const show = Math.min(200, N);
  const rowsDone = {done: 'rows', rows: show, hashPart: 'experiment=big'};

  await check(`bench data: ${N} runs, 10 metrics x ${P} points`, async () => {
    let t0 = Date.now();
    if (py) await td.python(runsScript(N));
    else await makeRunsCli(td, N);
    console.log(`# made ${N} runs in ${((Date.now() - t0) / 1000).toFixed(1)} s (${py ? 'Python module' : 'track CLI'})`);
    t0 = Date.now();
    if (py) curvesId = (await td.python(curvesScript(P))).trim().split(/\s+/)[0];
    else curvesId = await makeCurvesCli(td, P);
    console.log(`# logged 10 x ${P} points in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert(/^[0-9a-f]{32}$/.test(curvesId), `curves run ${curvesId}`);
  });

  await check(`runs page with ${N} runs: first ${show} rows drawn`, async () => {
    const times = [];
    const inPage = [];
    for (let i = 0; i < 3; i++) {
      await go('#/models');
      await page.waitForSelector('#models, main section');
      times.push(await timed(page, {act: 'hash', hash: '#/runs?experiment=big', ...rowsDone}));
      inPage.push(await page.evaluate(() => window.__trackFigures));
    }
    fig(`runs_first_render_${N}_runs (hash change to ${show} rows painted, first)`, times[0]);
    fig(`runs_first_render_${N}_runs (median of 3)`, median(times));
    fig(`runs_fetch_first_page (in-page, median)`, median(inPage.map((f) => f.runsFetchMs)));
    fig(`runs_build_${show}_rows (DOM, median)`, median(inPage.map((f) => f.runsRowsMs)));
    await page.waitForFunction(() => window.__trackFigures.runsAllLoadedMs !== undefined &&
      !document.querySelector('#run-count').textContent.includes('+'), null, {timeout: 60000});
    fig(`runs_all_${N}_loaded (every page arrived, in-page)`, await page.evaluate(() => window.__trackFigures.runsAllLoadedMs));
    eq(await page.$eval('#run-count', (e) => e.textContent.split(' ')[0].replace(/,/g, '')), String(N), 'runs counted');
    await shot('runs-big', false);
    assert(median(times) <= maxFirst, `first render ${median(times).toFixed(0)} ms > ${maxFirst} ms`);
  });

  await check('runs page cold load (navigation to rows painted)', async () => {
    await page.goto('about:blank');
    await page.goto(`${td.url}/#/runs?experiment=big`);
    await page.waitForFunction((w) => location.hash.includes(w.hashPart) && document.querySelector('#runs-wrap') &&
      document.querySelector('#runs-wrap').dataset.state === 'ready' &&
      document.querySelectorAll('#runs-table tbody tr').length >= w.rows, rowsDone, {timeout: 60000});
    const ms = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(performance.now()))));
    fig(`runs_cold_load_${N}_runs (navigation start to rows painted)`, ms);
  });

  if (N > show) await check('show more draws the next rows', async () => {
    await page.click('#show-more');
    eq(await page.$$eval('#runs-table tbody tr', (t) => t.length), Math.min(N, show * 2), 'rows after show more');
  });

  await check(`filter and sort round trips over ${N} runs`, async () => {
    const g0 = await page.$eval('#runs-wrap', (el) => Number(el.dataset.gen));
    const filt = "metrics.loss < 0.5 and params.opt = 'adam'";
    const ms = await timed(page, {act: 'filter', filter: filt, done: 'gen', gen: g0});
    fig(`runs_filter_round_trip (${filt})`, ms);
    const want = (await td.json(['runs', '--experiment', 'big', '--filter', filt, '--limit', '100000'])).length;
    await page.waitForFunction(() => !document.querySelector('#run-count').textContent.includes('+'));
    eq(await page.$eval('#run-count', (e) => e.textContent.split(' ')[0].replace(/,/g, '')), String(want), 'filtered count');
    const g1 = await page.$eval('#runs-wrap', (el) => Number(el.dataset.gen));
    const sortMs = await timed(page, {act: 'sort', term: 'metrics.loss', done: 'gen', gen: g1});
    fig('runs_sort_round_trip (metrics.loss ASC, filtered)', sortMs);
  });

  await check(`run page: 10 metrics of ${P} points each, all charts drawn`, async () => {
    await go('#/models');
    await page.waitForSelector('main section');
    const ms = await timed(page, {act: 'hash', hash: `#/run/${curvesId}`, done: 'charts', charts: 10});
    fig(`run_page_10x${P}_points (hash change to 10 charts painted)`, ms);
    const f = await page.evaluate(() => window.__trackFigures.runChartsMs);
    fig('run_page_curves_fetched_and_drawn (in-page)', f);
    const spike = await page.evaluate(() => {
      const u = window.__trackCharts.find((c) => c.root.closest('.chart').dataset.metric === 'm0');
      return {max: Math.max(...u.data[1].filter((v) => v !== null)), n: u.data[0].length};
    });
    eq(spike.max, 100, 'the one spike in m0');
    assert(spike.n <= 4000 && spike.n >= 1000, `points drawn ${spike.n}`);
    await shot('run-big');
  });

  await check('trace page: 20,000 spans as a tree', async () => {
    const tid = crypto.randomBytes(16).toString('hex');
    const T0 = BigInt(Date.now()) * 1_000_000n;
    const sid = (n) => n.toString(16).padStart(16, '0');
    const spans = [jsSpan(tid, sid(1), 'batch-eval', String(T0), String(T0 + 20_000_000_000n))];
    /* 200 requests of 99 steps each: 1 + 200 + 19,800 = 20,001 spans (the API sends 20,000) */
    for (let q = 0; q < 200; q++) {
      const qs = T0 + BigInt(q) * 100_000_000n;
      spans.push(jsSpan(tid, sid(2 + q), `question-${q}`, String(qs), String(qs + 90_000_000n), {parent: sid(1)}));
      for (let k = 0; k < 99; k++) {
        const ks = qs + BigInt(k) * 900_000n;
        spans.push(jsSpan(tid, sid(1000 + q * 100 + k), k % 3 ? 'tool' : 'chat', String(ks), String(ks + 800_000n),
          {parent: sid(2 + q), attrs: k % 3 ? {} : {'gen_ai.request.model': 'm-small', 'gen_ai.usage.input_tokens': 10,
            'gen_ai.usage.output_tokens': 5}}));
      }
    }
    for (let i = 0; i < spans.length; i += 5000) {
      const r = await fetch(`${td.url}/v1/traces`, {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(jsExport(spans.slice(i, i + 5000), {'service.name': 'bench-traces'}))});
      assert(r.status === 200, `POST /v1/traces: ${r.status}`);
    }
    await go('#/models');
    await page.waitForSelector('main section');
    const ms = await page.evaluate(async (h) => {
      const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
      const t0 = performance.now();
      location.hash = h;
      while (!document.querySelector('#span-tree')) {
        if (performance.now() - t0 > 60000) throw new Error('no span tree in 60 s');
        await frame();
      }
      await frame();
      return performance.now() - t0;
    }, `#/trace/${tid}`);
    fig('trace_page_20000_spans (hash change to the tree painted)', ms);
    const rows = () => page.$$eval('#span-tree .span-rows .span-row', (r) => r.length);
    /* past 2,000 spans only the root is open, and its 200 children fold to 20 + 5 */
    eq(await rows(), 1 + 20 + 1 + 5, 'rows drawn at first');
    await shot('trace-big', false);
    await page.click('#span-tree .fold-row button');
    eq(await rows(), 1 + 200, 'rows after showing every child');
    await page.click(`#span-tree .span-row[data-span="${sid(2)}"] button.toggle`);
    eq(await rows(), 1 + 200 + 26, 'rows after opening question-0');
    await page.click(`#span-tree .span-row[data-span="${sid(2)}"] button.toggle`);
    eq(await rows(), 1 + 200, 'rows after closing it again');
  });
}
