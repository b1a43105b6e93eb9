#!/usr/bin/env node
/* chart_points.mjs — the page's pure functions, in Node (no browser, no trackd): how an M4
   curve becomes chart points (each bucket's first/min/max/last in step order, a coinciding
   point once, NaN as a gap, the x modes), the debiased EMA, uniqueX for uPlot.join, the
   scatter's ticks, the filter spelling of keys, feedback values as the CLI reads them, and
   number formatting. Run: node tests/web/chart_points.mjs (exit 1 on a failure). */

import {curvePoints, ema, uniqueX, positiveOnly} from '../../web/chart.js';
import {niceTicks} from '../../web/compare.js';
import {keyTerm} from '../../web/runs.js';
import {parseValue} from '../../web/run.js';
import {fmtNum, num} from '../../web/ui.js';

let failed = 0;
function check(name, fn) {
  try {
    fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}: ${e.message}`);
  }
}
function eq(got, want, what = '') {
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(`${what} got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

/* two buckets: the first's max comes before its min; the second is one point */
const curve = {
  key: 'loss', count: 5,
  first_steps: [0, 10], firsts: [1, 7], first_times: [1000, 2000],
  min_steps: [3, 10], mins: [-2, 7], min_times: [1300, 2000],
  max_steps: [1, 10], maxs: [50, 7], max_times: [1100, 2000],
  last_steps: [4, 10], lasts: ['NaN', 7], last_times: [1400, 2000],
};

check('M4 buckets: first, max, min, last in step order; one point once; NaN a gap', () => {
  eq(curvePoints(curve, 'step', 0), [[0, 1, 3, 4, 10], [1, 50, -2, null, 7]]);
});
check('x as wall time (s) and as seconds since the start', () => {
  eq(curvePoints(curve, 'wall', 0)[0], [1, 1.1, 1.3, 1.4, 2]);
  eq(curvePoints(curve, 'relative', 1000)[0], [0, 0.1, 0.3, 0.4, 1]);
});
check('time x out of step order is sorted (uPlot needs ascending x)', () => {
  const c = {...curve, first_times: [5000, 2000]};
  const [xs] = curvePoints(c, 'wall', 0);
  eq(xs, [1.1, 1.3, 1.4, 2, 5]);
});
check('an empty curve draws nothing', () => {
  eq(curvePoints({key: 'x', count: 0, firsts: []}, 'step', 0), [[], []]);
});
check('EMA: off at 0, debiased (the first value is itself), nulls kept', () => {
  eq(ema([1, 2, 3], 0), [1, 2, 3]);
  const out = ema([10, null, 10, 20], 0.5);
  eq(out[0], 10);
  eq(out[1], null);
  eq(out[2], 10);
  /* (0.5 * 7.5 + 0.5 * 20) / (1 - 0.5^3), 7.5 being the average after two values */
  eq(Math.abs(out[3] - 13.75 / 0.875) < 1e-9, true, 'third average');
});
check('uniqueX keeps one point per x (the first non-null)', () => {
  eq(uniqueX([[1, 1, 2], [null, 5, 6]]), [[1, 2], [5, 6]]);
});
check('log scale: values <= 0 left out and counted', () => {
  eq(positiveOnly([[1, 2, 3], [1, 0, -1]]), [[[1, 2, 3], [1, null, null]], 2]);
});
check('niceTicks: 1-2-5 steps inside the range', () => {
  eq(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  eq(niceTicks(3, 3, 5).length > 1, true, 'a flat range still has ticks');
});
check('keyTerm: bare keys as they are, others in backticks', () => {
  eq(keyTerm('metrics', 'val_loss'), 'metrics.val_loss');
  eq(keyTerm('params', 'model/lr:1.0-x'), 'params.model/lr:1.0-x');
  eq(keyTerm('metrics', 'val loss'), 'metrics.`val loss`');
});
check('feedback values typed as the CLI types them', () => {
  eq([parseValue('true'), parseValue('NO'), parseValue('4'), parseValue('-1.5e2'), parseValue('warm'),
    parseValue('  '), parseValue('0x10')], [true, false, 4, -150, 'warm', null, '0x10']);
});
check('numbers: 6 significant digits; NaN and infinities from their JSON strings', () => {
  eq([fmtNum(0.1234567), fmtNum(1e-7), fmtNum(42), fmtNum('NaN'), fmtNum('-Infinity'), fmtNum(null)],
    ['0.123457', '1e-7', '42', 'NaN', '-Inf', '']);
  eq(Number.isNaN(num('NaN')) && num('Infinity') === Infinity, true);
});

process.exit(failed ? 1 : 0);
