/* harness.mjs — what the dashboard's browser tests stand on: a real trackd on its own data
   directory (ipc socket + --http on a free port), the real `track` CLI against it, the
   Python module for bulk data when it is built, playwright-core found from WEB_NODE_DIR or
   NODE_PATH, and the one-line-per-check reporting (`ok - NAME`, `FAIL - NAME: why`,
   `figure: NAME VALUE ms`).

   Environment: TRACKD, TRACK_CLI (required); WEB_NODE_DIR or NODE_PATH (a node_modules dir, or
   the dir holding it, with playwright-core); CHROMIUM (default /usr/bin/chromium);
   SCREENSHOT_DIR (PNGs; default: none); TRACK_PYTHONPATH (the built python/ dir; default: next
   to TRACKD's bin/); PYTHON (default /usr/bin/python3). */

import {spawn} from 'node:child_process';
import {createRequire} from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const env = process.env;

export function need(name) {
  const v = env[name];
  if (!v) {
    console.error(`FAIL - setup: ${name} is not set (see the comment at the top of tests/web/dashboard.mjs)`);
    process.exit(2);
  }
  return path.resolve(v);
}

/* playwright-core from WEB_NODE_DIR, then each NODE_PATH entry, then the usual lookup. */
export function loadPlaywright() {
  const dirs = [env.WEB_NODE_DIR, ...(env.NODE_PATH || '').split(path.delimiter)].filter(Boolean);
  for (const d of dirs) {
    try {
      return createRequire(path.join(path.resolve(d), 'noop.js'))('playwright-core');
    } catch {
      /* next */
    }
  }
  try {
    return createRequire(import.meta.url)('playwright-core');
  } catch {
    console.error('FAIL - setup: playwright-core not found: set WEB_NODE_DIR to a node_modules dir ' +
      'holding it (npm ci in a copy of web/)');
    process.exit(2);
  }
}

/* ---- reporting ------------------------------------------------------------------------- */
export const results = {failed: 0, passed: 0};

export async function check(name, fn) {
  const t0 = performance.now();
  try {
    await fn();
    results.passed++;
    console.log(`ok - ${name} (${Math.round(performance.now() - t0)} ms)`);
    return true;
  } catch (e) {
    results.failed++;
    console.log(`FAIL - ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
    return false;
  }
}

export function figure(name, ms) {
  console.log(`figure: ${name} ${typeof ms === 'number' ? ms.toFixed(1) : ms} ms`);
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg || 'assertion failed');
}

export function eq(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Retry FN until it returns truthy or MS pass; returns its last value or throws WHAT. */
export async function until(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what} (after ${ms} ms; last: ${last && last.message ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

/* ---- processes ------------------------------------------------------------------------- */
/* Run a command; resolves {code, stdout, stderr}. */
export function run(cmd, args, {input, envExtra, timeout = 120000} = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {env: {...env, ...envExtra}, stdio: ['pipe', 'pipe', 'pipe']});
    const out = [];
    const err = [];
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString()});
    });
    p.stdin.on('error', () => {});
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

export class Trackd {
  constructor(bin, cliBin, httpAddr = '127.0.0.1') {
    this.bin = bin;
    this.cliBin = cliBin;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'track-web-'));
    this.sock = `ipc://${this.dir}/sock`;
    this.addr = httpAddr;
    this.proc = null;
  }

  get url() {
    return `http://${this.addr}:${this.port}`;
  }

  /* trackd binds port 0 and names the port it got in its log (`listening http=ADDR:PORT`):
     a port picked here and released could be taken by another test's trackd in between,
     whose /health would then answer for ours. A restart asks for the same port again. */
  async start() {
    const logPath = path.join(this.dir, 'trackd.log');
    const log = fs.openSync(logPath, 'a');
    const offset = fs.fstatSync(log).size;
    this.proc = spawn(this.bin, ['--data-dir', this.dir, '--listen', this.sock, '--http', `${this.addr}:${this.port || 0}`],
      {stdio: ['ignore', log, log]});
    fs.closeSync(log);
    let exited = null;
    this.proc.on('exit', (code, sig) => {
      exited = code === null ? sig : code;
    });
    const end = Date.now() + 20000;
    for (;;) {
      if (exited !== null) throw new Error(`trackd exited (${exited}) before /health answered:\n${this.log()}`);
      if (!this.port) {
        const m = /listening http=\S*:(\d+) /.exec(fs.readFileSync(logPath).subarray(offset).toString());
        if (m) this.port = Number(m[1]);
      }
      if (this.port) {
        try {
          const r = await fetch(`${this.url}/health`);
          if (r.status === 200) return this;
        } catch {
          /* not yet */
        }
      }
      if (Date.now() > end) throw new Error(`trackd: /health did not answer in 20 s\n${this.log()}`);
      await sleep(this.port ? 100 : 50);
    }
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.dir, 'trackd.log'), 'utf8').slice(-4000);
    } catch {
      return '(no log)';
    }
  }

  /* SIGTERM, then the data directory goes unless KEEP (or WEB_KEEP=1). A non-zero exit (a
     sanitizer's report: a leak, an overflow) or a SIGKILL after 15 s is a failed check. */
  async stop(keep = false) {
    let code = 0;
    if (this.proc && this.proc.exitCode === null) {
      const done = new Promise((r) => this.proc.on('exit', (c, sig) => r(c === null ? sig : c)));
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
      code = await done;
      clearTimeout(t);
    } else if (this.proc) {
      code = this.proc.exitCode;
    }
    if (code !== 0) {
      results.failed++;
      console.log(`FAIL - trackd (${this.url}) exited ${code} at SIGTERM:\n${this.log()}`);
      keep = true;
    }
    if (!keep && env.WEB_KEEP !== '1') fs.rmSync(this.dir, {recursive: true, force: true});
  }

  cliEnv() {
    return {TRACK_SERVER: this.sock, TRACK_NO_AUTOSTART: '1', NO_COLOR: '1', COLUMNS: '200'};
  }

  /* `track ARGS...`; throws with its stderr unless it exits 0; returns stdout. */
  async cli(args, input) {
    const r = await run(this.cliBin, args, {input, envExtra: this.cliEnv()});
    if (r.code !== 0) throw new Error(`track ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  async json(args) {
    return JSON.parse(await this.cli([...args, '--json']));
  }

  /* A run: started with params, points logged (lines "KEY VALUE STEP"), ended unless live. */
  async makeRun({experiment, name, params = {}, tags = {}, parent, points = '', end = true}) {
    const args = ['run', 'start', '--experiment', experiment, '--name', name];
    for (const [k, v] of Object.entries(params)) args.push('--param', `${k}=${v}`);
    for (const [k, v] of Object.entries(tags)) args.push('--tag', `${k}=${v}`);
    if (parent) args.push('--parent', parent);
    const id = (await this.cli(args)).trim().split(/\s+/).pop();
    assert(/^[0-9a-f]{32}$/.test(id), `run start printed ${JSON.stringify(id)}`);
    if (points) await this.cli(['log-metric', '--run', id, '--stdin'], points);
    if (end) await this.cli(['run', 'end', '--run', id]);
    return id;
  }

  /* The built Python module's directory (python/track/__init__.py), or ''. */
  pythonPath() {
    const cands = [env.TRACK_PYTHONPATH, path.join(path.dirname(path.dirname(this.bin)), 'python')].filter(Boolean);
    return cands.find((d) => fs.existsSync(path.join(d, 'track', '__init__.py'))) || '';
  }

  /* Run a Python script with `import track` against this trackd; returns its stdout. */
  async python(code) {
    const pp = this.pythonPath();
    if (!pp) throw new Error('no built Python module (set TRACK_PYTHONPATH)');
    const r = await run(env.PYTHON || '/usr/bin/python3', ['-c', code], {
      envExtra: {...this.cliEnv(), PYTHONPATH: pp}, timeout: 600000});
    if (r.code !== 0) throw new Error(`python: exit ${r.code}: ${r.stderr.trim().slice(-2000)}`);
    return r.stdout;
  }
}

/* ---- OTLP/JSON (the shape of tests/http/otlp_traces.py) ---------------------------------- */
export function jsValue(v) {
  if (typeof v === 'boolean') return {boolValue: v};
  if (Number.isInteger(v)) return {intValue: String(v)};
  if (typeof v === 'number') return {doubleValue: v};
  return {stringValue: String(v)};
}

export function jsSpan(tid, sid, name, start, end, {parent, attrs = {}, status = 0, msg = ''} = {}) {
  const sp = {traceId: tid, spanId: sid, name, kind: 1, startTimeUnixNano: String(start),
    endTimeUnixNano: String(end), attributes: Object.entries(attrs).map(([key, v]) => ({key, value: jsValue(v)}))};
  if (parent) sp.parentSpanId = parent;
  if (status || msg) sp.status = {code: status, message: msg};
  return sp;
}

export function jsExport(spans, resource = {}) {
  return {resourceSpans: [{resource: {attributes: Object.entries(resource).map(([key, v]) => ({key, value: jsValue(v)}))},
    scopeSpans: [{scope: {name: 'web-test'}, spans}]}]};
}
