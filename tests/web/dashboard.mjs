#!/usr/bin/env node
/* dashboard.mjs — the dashboard (web/, served by trackd at / and /ui/) in a real browser.

   A real trackd (--http on a free loopback port) gets real runs, artifacts, models, feedback
   from the real CLI and a trace as OTLP/JSON on /v1/traces; then Debian's Chromium, driven by
   playwright-core, goes through every page: the runs table (differing columns, filter, a
   filter syntax error at its column, sort by header, a RUNNING row updating live), a run's
   charts (drawn, zoom by drag, double-click reset, smoothing, log-y, x mode), artifacts
   (download: the same bytes), lineage and feedback, compare (overlays, diff table, scatter),
   models and aliases, traces (list, filter, span tree, rating), the rating queue by keyboard
   (then `track feedback list --json`), a run named `<img src=x onerror=alert(1)>` shown as
   text, a POST without X-Track-CSRF refused, and the login form on a non-loopback bind.
   Then it measures (unless WEB_BENCH=0) the runs page with WEB_BENCH_RUNS runs (10^4), the
   filter round trip, and a run page of 10 metrics of WEB_BENCH_POINTS points (10^6) each.

   Run: TRACKD=build/bin/trackd TRACK_CLI=build/bin/track WEB_NODE_DIR=build/web-node \
        SCREENSHOT_DIR=/tmp/shots node tests/web/dashboard.mjs
   Prints one line per check (ok/FAIL) and `figure: NAME VALUE ms`; exits 1 on any failure. */

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Trackd, need, loadPlaywright, check, figure, assert, eq, until, results, env, jsSpan,
        jsExport} from './harness.mjs';
import {bench} from './bench.mjs';

const TRACKD = need('TRACKD');
const TRACK_CLI = need('TRACK_CLI');
const CHROMIUM = env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = env.SCREENSHOT_DIR || '';
const XSS = '<img src=x onerror=alert(1)>';
const {chromium} = loadPlaywright();

const pts = (key, n, f, from = 0) =>
  Array.from({length: n}, (_, i) => `${key} ${f(i + from)} ${i + from}`).join('\n') + '\n';

async function setup(td) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'track-web-files-'));
  const loss = (s) => (2 * Math.exp(-s / 40) + s * 0.0001 + 0.05 * Math.sin(s)).toFixed(6);
  const ids = {};
  ids.base = await td.makeRun({experiment: 'web', name: 'base', params: {lr: '0.1', opt: 'adam', epochs: '3'},
    points: pts('loss', 200, loss) + pts('acc', 50, (i) => (0.5 + i / 110).toFixed(4))});
  ids.small = await td.makeRun({experiment: 'web', name: 'small-lr', params: {lr: '0.01', opt: 'adam', epochs: '3'},
    points: pts('loss', 200, (i) => (2.2 * Math.exp(-i / 120) + 0.1).toFixed(6)) + pts('acc', 50, (i) => (0.4 + i / 150).toFixed(4))});
  ids.sgd = await td.makeRun({experiment: 'web', name: 'sgd', params: {lr: '0.1', opt: 'sgd', epochs: '3'},
    points: pts('loss', 200, (i) => (2 * Math.exp(-i / 70) + 0.07).toFixed(6)) + pts('acc', 50, (i) => (0.45 + i / 120).toFixed(4))});
  ids.xss = await td.makeRun({experiment: 'web', name: XSS, params: {lr: '0.3', opt: '<b>x</b>', epochs: '3'},
    tags: {note: '<script>alert(2)</script>'}, points: pts('loss', 20, (i) => (1 / (i + 1)).toFixed(5))});
  ids.live = await td.makeRun({experiment: 'web', name: 'live', params: {lr: '0.05', opt: 'adam', epochs: '3'},
    points: pts('loss', 10, (i) => (3 - i / 10).toFixed(3)), end: false});
  ids.live2 = await td.makeRun({experiment: 'other', name: 'live-run-page', params: {lr: '0.2'},
    points: pts('loss', 10, (i) => (1 / (i + 1)).toFixed(4)), end: false});
  ids.child = await td.makeRun({experiment: 'web', name: 'child-ft', parent: ids.base,
    params: {lr: '0.001', opt: 'adam', epochs: '3'}, points: pts('loss', 30, (i) => (0.5 - i / 100).toFixed(3))});

  const weights = path.join(tmp, 'weights.bin');
  const bytes = crypto.randomBytes(50_000);
  fs.writeFileSync(weights, bytes);
  await td.cli(['artifact', 'put', '--run', ids.base, weights, '--as', 'model/weights.bin']);
  const samples = path.join(tmp, 'samples');
  fs.mkdirSync(samples);
  const texts = ['Paris is the capital of France.\n', 'The moon is made of cheese.\n',
    '<script>alert(3)</script> is not run here\n', 'Water boils at 100 °C at sea level.\n'];
  texts.forEach((t, i) => fs.writeFileSync(path.join(samples, `00${i + 1}.txt`), t));
  await td.cli(['artifact', 'put', '--run', ids.base, samples]);
  await td.cli(['model', 'register', 'webmodel', '--run', ids.base, '--path', 'model/weights.bin',
    '--description', 'first <b>cut</b>']);
  await td.cli(['model', 'register', 'webmodel', '--run', ids.base, '--path', 'model/weights.bin']);
  await td.cli(['model', 'alias', 'webmodel', 'production', '1']);
  await td.cli(['model', 'alias', 'webmodel', 'staging', '1']);
  await td.cli(['model', 'alias', 'webmodel', 'production', '2']);
  await td.cli(['feedback', 'add', '--run', ids.base, 'note', '--comment', 'looks fine']);

  /* a trace of three spans tied to the base run: the chat span failed */
  const tid = crypto.randomBytes(16).toString('hex');
  const T0 = BigInt(Date.now()) * 1_000_000n;
  const ns = (ms) => (T0 + BigInt(Math.round(ms * 1e6))).toString();
  const spans = [
    jsSpan(tid, '00000000000000a1', 'answer-question', ns(0), ns(50), {attrs: {'track.run_id': ids.base}}),
    jsSpan(tid, '00000000000000a2', 'retrieve', ns(1), ns(6), {parent: '00000000000000a1'}),
    jsSpan(tid, '00000000000000a3', 'chat gpt-4o-mini', ns(10), ns(45), {parent: '00000000000000a1', status: 2,
      msg: 'rate limited', attrs: {'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.usage.input_tokens': 102,
        'gen_ai.usage.output_tokens': 20, 'llm.cost.total': 0.0012}}),
  ];
  const r = await fetch(`${td.url}/v1/traces`, {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify(jsExport(spans, {'service.name': 'rag-web', 'track.experiment': 'web'}))});
  assert(r.status === 200, `POST /v1/traces: ${r.status} ${await r.text()}`);
  return {ids, bytes, tid, texts, tmp};
}

async function main() {
  const td = await new Trackd(TRACKD, TRACK_CLI).start();
  let browser;
  let data;
  try {
    data = await setup(td);
    const {ids, tid} = data;
    console.log(`# trackd at ${td.url}, data in ${td.dir}`);
    browser = await chromium.launch({executablePath: CHROMIUM, args: ['--no-sandbox']});
    const context = await browser.newContext({viewport: {width: 1440, height: 900}, acceptDownloads: true});
    await context.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    const page = await context.newPage();
    const problems = [];
    let dialogs = 0;
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('dialog', (d) => {
      dialogs++;
      d.dismiss().catch(() => {});
    });
    const shot = async (name, fullPage = true) => {
      if (!SHOTS) return;
      fs.mkdirSync(SHOTS, {recursive: true});
      await page.screenshot({path: path.join(SHOTS, `${name}.png`), fullPage});
    };
    const go = async (hash) => {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
    };
    const gen = () => page.$eval('#runs-wrap', (el) => Number(el.dataset.gen));
    const ready = async (before) => {
      await page.waitForFunction((b) => {
        const el = document.querySelector('#runs-wrap');
        return el && el.dataset.state !== 'loading' && Number(el.dataset.gen) > b;
      }, before);
    };
    const rowNames = () => page.$$eval('#runs-table tbody tr td.name', (tds) => tds.map((t) => t.textContent));
    const colIndex = (term) => page.$$eval('#runs-table thead th', (ths, t) =>
      ths.findIndex((th) => th.dataset.term === t), term);

    await check('page loads under its CSP and shows the session user', async () => {
      const resp = await page.goto(`${td.url}/`);
      const csp = resp.headers()['content-security-policy'] || '';
      assert(csp.includes("script-src 'self'") && csp.includes("style-src 'self'"), `CSP: ${csp}`);
      const who = await (await page.waitForSelector('#who .user')).textContent();
      assert(who.trim().length > 0, 'no user in the header');
      const sess = await (await fetch(`${td.url}/api/track/v1/session`)).json();
      assert(who.includes(sess.user), `header "${who}" lacks ${sess.user}`);
    });

    await check('runs table: the experiment\'s runs, differing params and metrics as columns', async () => {
      await go('#/runs?experiment=web');
      await page.waitForSelector('#runs-wrap[data-state=ready]');
      const names = await rowNames();
      eq(names.length, 6, 'rows');
      for (const t of ['params.lr', 'params.opt', 'metrics.loss', 'metrics.acc'])
        assert((await colIndex(t)) > 0, `no column ${t}`);
      eq(await colIndex('params.epochs'), -1, 'params.epochs (the same in every run) as a column');
      await shot('runs');
      await page.click('#column-chooser summary');
      await page.check('#column-chooser input[data-col="params.epochs"]');
      assert((await colIndex('params.epochs')) > 0, 'chosen column not shown');
      await shot('runs-columns');
      await page.uncheck('#column-chooser input[data-col="params.epochs"]');
      eq(await colIndex('params.epochs'), -1, 'column still shown after unchecking');
      await page.click('#column-chooser button:text("differing only")');
      eq(await page.$eval('#column-chooser', (d) => d.open), false, 'chooser open after "differing only"');
    });

    await check('a run named <img src=x onerror=alert(1)> is text: no img element, no dialog', async () => {
      const names = await rowNames();
      assert(names.includes(XSS), `names: ${JSON.stringify(names)}`);
      eq(await page.$$eval('img', (x) => x.length), 0, 'img elements');
      eq(await page.$$eval('#runs-table b', (x) => x.length), 0, 'b elements from a param value');
      const optCol = await colIndex('params.opt');
      const cells = await page.$$eval('#runs-table tbody tr', (trs, i) => trs.map((tr) => tr.children[i].textContent), optCol);
      assert(cells.includes('<b>x</b>'), `opt cells ${JSON.stringify(cells)}`);
      eq(dialogs, 0, 'dialogs');
    });

    await check('filter: the same language as track runs --filter', async () => {
      const g = await gen();
      await page.fill('#filter', "params.opt = 'sgd'");
      await page.press('#filter', 'Enter');
      await ready(g);
      eq(await rowNames(), ['sgd'], 'rows');
      assert((await page.evaluate(() => location.hash)).includes('filter='), 'filter not in the hash');
      /* the hash keeps it: a reload shows the same filtered table */
      await page.reload();
      await page.waitForSelector('#runs-wrap[data-state=ready]');
      eq(await rowNames(), ['sgd'], 'rows after a reload');
      eq(await page.inputValue('#filter'), "params.opt = 'sgd'", 'filter box after a reload');
    });

    await check('filter syntax error shown under the box at its column', async () => {
      const g = await gen();
      await page.fill('#filter', 'metrics.loss <');
      await page.press('#filter', 'Enter');
      await ready(g);
      const caret = await page.$eval('#filter-error pre.caret', (p) => p.textContent);
      eq(caret.split('\n')[1], `${' '.repeat(14)}^`, 'caret line');
      const msg = await page.$eval('#filter-error .msg', (d) => d.textContent);
      assert(/column 15/.test(msg), `message: ${msg}`);
      assert(await page.$eval('#filter', (i) => i.classList.contains('bad')), 'box not marked');
      await shot('runs-filter-error');
    });

    await check('sort by clicking a header (order_by metrics.loss ASC, then DESC)', async () => {
      let g = await gen();
      await page.fill('#filter', '');
      await page.press('#filter', 'Enter');
      await ready(g);
      for (const dir of ['ASC', 'DESC']) {
        g = await gen();
        await page.click('#runs-table th[data-term="metrics.loss"]');
        await ready(g);
        const want = (await td.json(['runs', '--experiment', 'web', '--order-by', `metrics.loss ${dir}`])).map((r) => r.name);
        eq(await rowNames(), want, `rows by loss ${dir}`);
        const hash = await page.evaluate(() => location.hash);
        eq(new URLSearchParams(hash.slice(hash.indexOf('?') + 1)).get('order'), `metrics.loss ${dir}`, 'order in the hash');
      }
    });

    await check('a RUNNING run\'s row updates live (value logged by the CLI, then its end)', async () => {
      const li = await colIndex('metrics.loss');
      const cell = () => page.$eval(`#runs-table tr[data-run="${ids.live}"]`, (tr, i) => tr.children[i].textContent, li);
      assert((await cell()) !== '0.123456', 'value there before it was logged');
      await td.cli(['log-metric', '--run', ids.live, 'loss', '0.123456', '--step', '99']);
      await until(async () => (await cell()) === '0.123456', 8000, 'new loss never appeared');
      await td.cli(['run', 'end', '--run', ids.live]);
      await until(async () => (await page.$eval(`#runs-table tr[data-run="${ids.live}"] td.status`, (t) => t.textContent)) === 'FINISHED',
        8000, 'status never became FINISHED');
    });

    await check('compare: picked runs overlaid per metric, param diff, scatter', async () => {
      for (const id of [ids.base, ids.small, ids.sgd]) await page.check(`#runs-table tr[data-run="${id}"] input.sel`);
      await page.click('#compare-selected');
      await page.waitForSelector('#charts[data-ready]');
      const hash = await page.evaluate(() => location.hash);
      assert(hash.startsWith('#/compare/') && [ids.base, ids.small, ids.sgd].every((i) => hash.includes(i)), hash);
      const charts = await page.evaluate(() => window.__trackCharts.map((u) => ({series: u.series.length, n: u.data[0].length})));
      eq(charts.length, 2, 'charts (acc, loss)');
      assert(charts.every((c) => c.series === 4 && c.n > 0), JSON.stringify(charts));
      assert(await page.$eval('#diff-table tr[data-param="lr"]', (tr) => tr.classList.contains('diff')), 'lr not highlighted');
      assert(await page.$eval('#diff-table tr[data-param="epochs"]', (tr) => tr.classList.contains('same')), 'epochs highlighted');
      eq(await page.$$eval('#scatter circle', (c) => c.length), 3, 'scatter dots');
      await shot('compare');
    });

    await check('run page: a chart per metric, drawn from the curve', async () => {
      await go(`#/run/${ids.base}`);
      await page.waitForSelector('#charts[data-ready]');
      const charts = await page.evaluate(() => Object.fromEntries(window.__trackCharts.map((u) =>
        [u.root.closest('.chart').dataset.metric, {n: u.data[0].length, canvas: !!u.root.querySelector('canvas')}])));
      eq(Object.keys(charts).sort(), ['acc', 'loss'], 'charts');
      assert(Object.values(charts).every((c) => c.canvas && c.n > 0), JSON.stringify(charts));
      eq(charts.loss.n, 200, 'loss points (200 points < 1000 buckets: all of them)');
      await page.waitForSelector('#artifacts');
      await shot('run');
    });

    await check('chart zoom by mouse drag changes the x scale; double-click resets it', async () => {
      const scale = () => page.evaluate(() => {
        const u = window.__trackCharts.find((c) => c.root.closest('.chart').dataset.metric === 'loss');
        return {min: u.scales.x.min, max: u.scales.x.max};
      });
      const before = await scale();
      const box = await (await page.$('.chart[data-metric="loss"] .u-over')).boundingBox();
      await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, {steps: 8});
      await page.mouse.up();
      const zoomed = await scale();
      assert(zoomed.min > before.min && zoomed.max < before.max, `zoom ${JSON.stringify(before)} -> ${JSON.stringify(zoomed)}`);
      await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
      const reset = await scale();
      eq(reset, before, 'x scale after double-click');
    });

    await check('smoothing slider changes the data; log-y and x modes rebuild the axes', async () => {
      await page.$eval('#smooth', (el) => {
        el.value = '0.9';
        el.dispatchEvent(new Event('input', {bubbles: true}));
      });
      const d = await page.evaluate(() => {
        const u = window.__trackCharts.find((c) => c.root.closest('.chart').dataset.metric === 'loss');
        return {series: u.series.length, raw: u.data[1].slice(0, 50), smooth: u.data[2].slice(0, 50)};
      });
      eq(d.series, 3, 'series with smoothing (x, raw, smoothed)');
      const diff = d.raw.filter((v, i) => Math.abs(v - d.smooth[i]) > 1e-9).length;
      assert(diff > 10, `smoothed equals raw at ${50 - diff} of 50 points`);
      await page.check('#logy');
      eq(await page.evaluate(() => window.__trackCharts.map((u) => u.scales.y.distr)), [3, 3], 'log scales');
      await page.uncheck('#logy');
      await page.selectOption('#xmode', 'relative');
      const lossX = () => page.evaluate(() => window.__trackCharts.find((c) => c.root.closest('.chart').dataset.metric === 'loss').data[0]);
      const xs = await lossX();
      assert(xs[0] >= 0 && xs[xs.length - 1] < 3600, `relative x: ${xs[0]}..${xs[xs.length - 1]}`);
      await page.selectOption('#xmode', 'wall');
      const w = (await lossX())[0];
      assert(Math.abs(w - Date.now() / 1000) < 3600, `wall x ${w}`);
      await shot('run-smoothed');
    });

    await check('artifact download: the bytes put', async () => {
      const [dl] = await Promise.all([page.waitForEvent('download'),
        page.locator('#artifacts a.download', {hasText: 'model/weights.bin'}).click()]);
      const got = fs.readFileSync(await dl.path());
      assert(Buffer.compare(got, data.bytes) === 0, `downloaded ${got.length} bytes, put ${data.bytes.length}`);
      eq(dl.suggestedFilename(), 'weights.bin', 'file name');
    });

    await check('run page: lineage (child, model versions) and feedback', async () => {
      const lin = await page.$eval('#lineage', (t) => t.textContent);
      assert(lin.includes('child-ft') && lin.includes('webmodel/1') && lin.includes('webmodel/2'), `lineage: ${lin}`);
      await page.waitForSelector('table.feedback');
      assert((await page.$eval('table.feedback', (t) => t.textContent)).includes('looks fine'), 'feedback not shown');
      await page.fill('.feedback-form input[aria-label="feedback name"]', 'verdict');
      await page.fill('.feedback-form input[aria-label="feedback value"]', 'solid');
      await page.click('.feedback-form button[type=submit]');
      await until(async () => (await page.$eval('table.feedback', (t) => t.textContent)).includes('solid'), 5000, 'added feedback not listed');
      const fb = await td.json(['feedback', 'list', ids.base, '--name', 'verdict']);
      eq(fb.map((f) => [f.kind, f.value, f.source]), [['label', 'solid', 'human']], 'track feedback list');
    });

    await check('run page of the <img> run: name, tags and params as text', async () => {
      await go(`#/run/${ids.xss}`);
      await page.waitForSelector('#charts[data-ready]');
      const h1 = await page.$eval('h1', (x) => x.textContent);
      assert(h1.includes(XSS), `h1: ${h1}`);
      assert((await page.textContent('main')).includes('<script>alert(2)</script>'), 'tag not shown as text');
      eq(await page.$$eval('img', (x) => x.length), 0, 'img elements');
      eq(await page.$$eval('script:not([src])', (x) => x.length), 0, 'inline scripts');
      eq(dialogs, 0, 'dialogs');
      await shot('run-xss');
    });

    await check('run page of a RUNNING run: a newly logged point reaches its chart', async () => {
      await go(`#/run/${ids.live2}`);
      await page.waitForSelector('#charts[data-ready]');
      const n = () => page.evaluate(() => (window.__trackCharts[0] ? window.__trackCharts[0].data[0].length : 0));
      eq(await n(), 10, 'points before');
      await td.cli(['log-metric', '--run', ids.live2, '--stdin'], pts('loss', 5, (i) => (1 / (i + 1)).toFixed(4), 10));
      await until(async () => (await n()) === 15, 8000, 'chart did not grow to 15 points');
      assert((await page.textContent('#metric-summary')).includes('15'), 'summary count not updated');
      await td.cli(['run', 'end', '--run', ids.live2]);
      await until(async () => (await page.textContent('.run-head h1')).includes('FINISHED'), 8000, 'status not updated');
    });

    await check('models: the list with aliases, versions, alias history, a version download', async () => {
      await go('#/models');
      const row = await (await page.waitForSelector('#models tr[data-model="webmodel"]')).textContent();
      assert(row.includes('production') && row.includes('staging'), `row: ${row}`);
      await shot('models');
      await page.click('#models a[href="#/model/webmodel"]');
      await page.waitForSelector('#versions');
      eq(await page.$$eval('#versions tbody tr', (t) => t.length), 2, 'versions');
      const hist = await page.$$eval('#alias-history tbody tr', (trs) => trs.map((tr) => [...tr.children].slice(1, 4).map((c) => c.textContent)));
      eq(hist, [['production', 'new', '1'], ['staging', 'new', '1'], ['production', '1', '2']], 'alias history');
      const v2 = await page.$eval('#versions tr[data-version="2"]', (tr) => tr.textContent);
      assert(v2.includes('production') && !v2.includes('staging'), `version 2: ${v2}`);
      const href = await page.$eval('#versions tr[data-version="1"] a.download', (a) => a.getAttribute('href'));
      eq(href, '/api/track/v1/model-file?ref=webmodel%2F1', 'download link');
      const got = Buffer.from(await (await fetch(td.url + href)).arrayBuffer());
      assert(Buffer.compare(got, data.bytes) === 0, 'model version bytes differ');
      // the promoted model, downloaded by its alias as a person clicks it: the pinned bytes,
      // even after the run's artifact at that path was replaced by other bytes
      const other = path.join(data.tmp, 'other.bin');
      fs.writeFileSync(other, Buffer.from('not the registered weights'));
      await td.cli(['artifact', 'put', '--run', ids.base, other, '--as', 'model/weights.bin']);
      const [dl] = await Promise.all([page.waitForEvent('download'),
        page.click('#alias-downloads a[data-alias="production"]')]);
      const pinned = fs.readFileSync(await dl.path());
      assert(Buffer.compare(pinned, data.bytes) === 0,
        `webmodel@production: ${pinned.length} bytes, registered ${data.bytes.length}`);
      eq(dl.suggestedFilename(), 'weights.bin', 'alias download file name');
      const now = Buffer.from(await (await fetch(`${td.url}/api/track/v1/runs/${ids.base}/artifact/model/weights.bin`)).arrayBuffer());
      eq(now.toString(), 'not the registered weights', 'the run artifact now');
      assert((await page.textContent('#versions')).includes('first <b>cut</b>'), 'description not text');
      await shot('model');
    });

    await check('traces: the list and its filter (and a filter error at its column)', async () => {
      await go('#/traces');
      await page.waitForSelector('#traces-wrap[data-state=ready]');
      eq(await page.$$eval('#traces tbody tr', (t) => t.map((r) => r.dataset.trace)), [tid], 'traces');
      const filt = async (f) => {
        await page.fill('#trace-filter', f);
        await page.press('#trace-filter', 'Enter');
        await page.waitForFunction(() => document.querySelector('#traces-wrap').dataset.state !== 'loading');
      };
      await filt("tokens.total > 100 and status = 'error'");
      eq(await page.$$eval('#traces tbody tr', (t) => t.length), 1, 'rows for tokens.total > 100');
      await filt('tokens.total > 100000');
      eq(await page.$$eval('#traces tbody tr', (t) => t.length), 0, 'rows for tokens.total > 100000');
      await filt('duration >');
      const caret = await page.$eval('#filter-error pre.caret', (p) => p.textContent.split('\n')[1]);
      assert(/^ *\^$/.test(caret) && caret.length >= 9, `caret line ${JSON.stringify(caret)}`);
      await filt('');
      await shot('traces');
    });

    await check('trace: collapsible span tree with timeline bars, model, tokens, status', async () => {
      await go(`#/trace/${tid}`);
      await page.waitForSelector('#span-tree');
      const rows = await page.$$eval('#span-tree .span-rows .span-row', (rs) => rs.map((r) => ({
        name: r.querySelector('.span-name .nm').textContent, depth: r.dataset.depth, err: r.classList.contains('err'),
        left: parseFloat(r.querySelector('.bar').style.left), width: parseFloat(r.querySelector('.bar').style.width),
        text: r.textContent})));
      eq(rows.map((r) => [r.name, r.depth]),
        [['answer-question', '0'], ['retrieve', '1'], ['chat gpt-4o-mini', '1']], 'span rows');
      assert(rows[2].err && !rows[1].err, 'error span not marked');
      assert(rows[0].left === 0 && rows[0].width === 100, `root bar ${rows[0].left} ${rows[0].width}`);
      assert(Math.abs(rows[2].left - 20) < 0.5 && Math.abs(rows[2].width - 70) < 0.5, `chat bar ${rows[2].left} ${rows[2].width}`);
      assert(rows[2].text.includes('gpt-4o-mini') && rows[2].text.includes('122') && rows[2].text.includes('rate limited'), rows[2].text);
      await shot('trace');
      await page.click('#span-tree .span-row[data-depth="0"] button.toggle');
      eq(await page.$$eval('#span-tree .span-rows .span-row', (rs) => rs.length), 1, 'rows shown collapsed');
      await page.click('#span-tree .span-row[data-depth="0"] button.toggle');
      eq(await page.$$eval('#span-tree .span-rows .span-row', (rs) => rs.map((r) => r.dataset.span)),
        ['00000000000000a1', '00000000000000a2', '00000000000000a3'], 'rows shown expanded');
    });

    await check('rate a trace (thumbs + comment), seen in track feedback list', async () => {
      await page.fill('#trace-comment', 'grounded');
      await page.click('#trace-up');
      await page.waitForSelector('#rate-trace .form-msg:text("recorded")');
      const fb = await td.json(['feedback', 'list', ids.base, '--name', 'thumbs']);
      assert(fb.some((f) => f.value === true && f.comment === 'grounded' && f.source === 'human'), JSON.stringify(fb));
      /* the score is the trace's: the trace filter finds it by it */
      const tr = await td.json(['traces', '--filter', 'feedback.thumbs > 0.5']);
      eq(tr.map((t) => t.trace_id), [tid], 'traces with feedback.thumbs > 0.5');
      const byTrace = await td.json(['feedback', 'list', '--trace', tid]);
      eq(byTrace.map((f) => [f.trace_id, f.value, f.comment]), [[tid, true, 'grounded']], 'feedback list --trace');
      await page.waitForSelector('table.feedback');
      assert((await page.textContent('table.feedback')).includes('grounded'), 'the rating is not listed on the trace page');
    });

    await check('rating queue by keyboard: y, c, comment, Enter; n, Enter; j/k move', async () => {
      await go(`#/rate?run=${ids.base}&name=is_good&prefix=${encodeURIComponent('samples/')}`);
      await page.waitForSelector('#rate-card[data-state=item]');
      const target = () => page.$eval('#rate-target', (t) => t.firstChild.textContent);
      const first = await target();
      eq(first, 'samples/001.txt', 'first sample');
      eq(await page.textContent('#rate-text'), data.texts[0], 'sample text');
      await shot('rate');
      await page.keyboard.press('j');
      eq(await target(), 'samples/002.txt', 'after j');
      await page.keyboard.press('k');
      eq(await target(), 'samples/001.txt', 'after k');
      await page.keyboard.press('y');
      await page.keyboard.press('c');
      await page.keyboard.type('nice one');
      await page.keyboard.press('Enter');
      await until(async () => (await target()) === 'samples/002.txt', 5000, 'did not move to the next sample');
      await page.keyboard.press('n');
      await page.keyboard.press('Enter');
      await until(async () => (await target()) === 'samples/003.txt', 5000, 'did not move to the third sample');
      assert((await page.textContent('#rate-text')).includes('<script>alert(3)</script>'), 'sample not shown as text');
      eq(dialogs, 0, 'dialogs');
      await page.keyboard.press('s');
      await page.keyboard.type('4');
      await page.keyboard.press('Enter');
      const msg = await until(async () => {
        const m = await page.textContent('#rate-msg');
        return m.startsWith('rated') ? '' : m;
      }, 5000, 'no answer to a number for a boolean name');
      assert(/boolean|holds|CONFLICT|type/i.test(msg), `a number for a boolean name: ${msg}`);
      assert(await page.$eval('#rate-msg', (m) => m.classList.contains('error-line')), 'refusal not shown as an error');
      eq(await target(), 'samples/003.txt', 'a refused rating moved on');
      eq(await page.textContent('#rate-count'), '2 of 4 rated', 'count');
      const fb = await td.json(['feedback', 'list', ids.base, '--name', 'is_good']);
      eq(fb.map((f) => [f.target, f.value, f.comment, f.source]),
        [['samples/001.txt', true, 'nice one', 'human'], ['samples/002.txt', false, null, 'human']], 'track feedback list');
      await shot('rate-after');
    });

    await check('a person rates 50 of 60 samples in a row by keyboard (the queue refills)', async () => {
      const run = await td.makeRun({experiment: 'rating', name: 'sixty', end: true});
      const dir = path.join(data.tmp, 'sixty', 'samples');
      fs.mkdirSync(dir, {recursive: true});
      for (let i = 0; i < 60; i++) fs.writeFileSync(path.join(dir, `${String(i).padStart(3, '0')}.txt`), `answer ${i}\n`);
      await td.cli(['artifact', 'put', '--run', run, dir, '--as', 'samples']);
      await go(`#/rate?run=${run}&name=helpful&prefix=${encodeURIComponent('samples/')}`);
      await page.waitForSelector('#rate-card[data-state=item]');
      const target = () => page.$eval('#rate-target', (t) => t.firstChild.textContent);
      const t0 = Date.now();
      for (let i = 0; i < 50; i++) {
        const want = `samples/${String(i).padStart(3, '0')}.txt`;
        await until(async () => (await target()) === want, 5000, `sample ${i}: not ${want}`);
        await page.keyboard.press(i % 3 ? 'y' : 'n');
        await page.keyboard.press('Enter');
      }
      await until(async () => (await target()) === 'samples/050.txt', 5000, 'after 50 ratings');
      const ms = Date.now() - t0;
      eq(await page.textContent('#rate-count'), '50 of 60 rated', 'count');
      const fb = await td.json(['feedback', 'list', run, '--name', 'helpful']);
      eq(fb.length, 50, 'scores stored');
      eq(fb.filter((f) => f.value === false).length, 17, 'thumbs down');
      assert(fb.every((f) => f.source === 'human'), 'sources');
      figure('rate_50_samples_by_keyboard (the person\'s keys included)', ms);
    });

    await check('a POST without X-Track-CSRF (or a wrong one) is refused with 403', async () => {
      const body = JSON.stringify({run: ids.base, name: 'csrf_probe', value: 1});
      const post = (h) => fetch(`${td.url}/api/track/v1/feedback`, {method: 'POST', body,
        headers: {'Content-Type': 'application/json', ...h}});
      let r = await post({});
      eq(r.status, 403, 'status without the header');
      const j = await r.json();
      eq(j.error_code, 'PERMISSION_DENIED', 'error_code');
      assert(/X-Track-CSRF/i.test(j.message), `message: ${j.message}`);
      r = await post({'X-Track-CSRF': 'deadbeef'});
      eq(r.status, 403, 'status with a wrong header');
      const sess = await (await fetch(`${td.url}/api/track/v1/session`)).json();
      r = await post({'X-Track-CSRF': sess.csrf_token});
      eq(r.status, 200, 'status with the right header');
      eq((await td.json(['feedback', 'list', ids.base, '--name', 'csrf_probe'])).length, 1, 'scores after the good POST');
    });

    await check('no page errors, no CSP violations', async () => {
      const csp = await page.evaluate(() => window.__csp);
      eq(csp, [], 'CSP violations');
      eq(problems, [], 'page errors');
    });

    await loginCheck(browser);
    if (env.WEB_BENCH !== '0') await bench(td, page, {check, figure, shot, go});
    await context.close();
  } finally {
    if (browser) await browser.close();
    const keep = results.failed > 0;
    if (keep) console.log(`# kept ${td.dir} (a check failed)`);
    await td.stop(keep);
    if (data && !keep) fs.rmSync(data.tmp, {recursive: true, force: true});
  }
}

/* The login form: only on a non-loopback bind (a loopback one makes everyone its owner). */
async function loginCheck(browser) {
  const ip = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
  if (!ip) {
    console.log('# skip - login form: no non-loopback IPv4 address here');
    return;
  }
  /* a non-loopback trackd refuses to start without users: add one on loopback first */
  const td2 = await new Trackd(TRACKD, TRACK_CLI).start();
  let token;
  let run;
  try {
    await td2.cli(['admin', 'user', 'add', 'alice', '--role', 'writer']);
    run = await td2.makeRun({experiment: 'team', name: 'shared', params: {lr: '0.1'}, points: 'loss 1 0\nloss 0.5 1\n'});
    token = (await td2.cli(['admin', 'token', 'create', 'alice'])).trim().split(/\s+/).find((w) => w.startsWith('trkt_'));
  } finally {
    await td2.stop(true);
  }
  td2.addr = ip.address;
  td2.proc = null;
  await td2.start();
  try {
    await check('login form on a non-loopback bind: bad token refused, good one shows the user and writes as them', async () => {
      const ctx = await browser.newContext({viewport: {width: 1200, height: 700}});
      const page = await ctx.newPage();
      const r = await fetch(`${td2.url}/api/track/v1/session`);
      eq(r.status, 401, 'session without a token');
      await page.goto(`${td2.url}/`);
      await page.waitForSelector('#login-form');
      await page.fill('#login-token', 'trkt_not-a-real-token');
      await page.press('#login-token', 'Enter');
      await until(async () => (await page.textContent('#login-form .error-line')).length > 0, 5000, 'no error for a bad token');
      await page.fill('#login-token', token);
      await page.press('#login-token', 'Enter');
      await until(async () => ((await page.$('#who .user')) ? (await page.textContent('#who .user')).includes('alice') : false),
        5000, 'user not shown after login');
      const cookies = await ctx.cookies();
      const c = cookies.find((x) => x.name === 'track_token');
      assert(c && c.httpOnly && c.sameSite === 'Strict', `cookie ${JSON.stringify(c)}`);
      eq(await page.evaluate(() => document.cookie.includes('track_token')), false, 'cookie readable by script');
      await page.waitForSelector('#runs-wrap[data-state=ready]');
      if (SHOTS) await page.screenshot({path: path.join(SHOTS, 'login-after.png')});
      /* the cookie carries the session over a reload; a write carries its CSRF token */
      await page.goto(`${td2.url}/#/run/${run}`);
      await page.waitForSelector('.feedback-form');
      assert((await page.textContent('#who .user')).includes('alice'), 'user lost on reload');
      await page.fill('.feedback-form input[aria-label="feedback name"]', 'review');
      await page.fill('.feedback-form input[aria-label="feedback value"]', '5');
      await page.click('.feedback-form button[type=submit]');
      await page.waitForSelector('.feedback-form .form-msg:text("added")');
      const fb = await td2.json(['feedback', 'list', run, '--name', 'review']);
      eq(fb.map((f) => [f.value, f.source, f.source_id]), [[5, 'human', 'alice']], 'the score, by alice');
      await page.click('#who button');
      await page.waitForSelector('#login-form');
      if (SHOTS) await page.screenshot({path: path.join(SHOTS, 'login.png')});
      await ctx.close();
    });
  } finally {
    await td2.stop();
  }
}

main().then(() => {
  console.log(`# ${results.passed} passed, ${results.failed} failed`);
  process.exit(results.failed ? 1 : 0);
}, (e) => {
  console.log(`FAIL - setup: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
