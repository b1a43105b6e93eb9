/* app.js — the dashboard's entry point: session, login, top bar and hash routing.

   Routes (no server routes besides / and /ui/): #/runs?experiment=E&filter=F&order=O,
   #/run/RUN, #/compare/RUN,RUN,..., #/models, #/model/NAME, #/traces?filter=F, #/trace/ID,
   #/rate?run=RUN&name=NAME&prefix=samples/. Each page module exports render(ctx) and draws
   into ctx.view; ctx.alive() turns false once the user has moved on (so late replies are
   dropped) and ctx.onLeave(fn) registers what to stop then (polls, key handlers). */

import * as api from './api.js';
import {h, clear, errorBox, selection} from './ui.js';
import * as runsPage from './runs.js';
import * as runPage from './run.js';
import * as comparePage from './compare.js';
import * as modelsPage from './models.js';
import * as tracesPage from './traces.js';
import * as ratePage from './rate.js';

const pages = {
  runs: runsPage.render,
  run: runPage.render,
  compare: comparePage.render,
  models: modelsPage.renderList,
  model: modelsPage.renderModel,
  traces: tracesPage.renderList,
  trace: tracesPage.renderTrace,
  rate: ratePage.render,
};
const navOf = {run: 'runs', model: 'models', trace: 'traces'};

let generation = 0;
let leaving = [];

function decode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const qi = raw.indexOf('?');
  const path = qi >= 0 ? raw.slice(0, qi) : raw;
  const query = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
  const parts = path.split('/');
  return {page: decode(parts[0] || 'runs'), arg: parts.slice(1).map(decode).join('/'), query};
}

/* Replace the hash's query without a new history entry or a re-render. */
function setQuery(page, arg, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const qs = q.toString();
  const path = `#/${page}${arg ? '/' + encodeURIComponent(arg) : ''}`;
  history.replaceState(null, '', qs ? `${path}?${qs}` : path);
}

function showWho(sess) {
  const who = clear(document.getElementById('who'));
  if (!sess) return;
  who.appendChild(h('span', {class: 'user', title: sess.local ? 'loopback: the daemon\'s owner' : ''},
    sess.user, h('span', {class: 'role'}, sess.role)));
  if (!sess.local) {
    who.appendChild(h('button', {class: 'link', type: 'button', on: {click: async () => {
      try {
        await api.logout();
      } catch { /* the cookie is gone either way */ }
      showLogin();
    }}}, 'Log out'));
  }
}

function showLogin(message) {
  generation++;
  runLeave();
  showWho(null);
  const view = clear(document.getElementById('view'));
  const err = h('div', {class: 'error-line'}, message || '');
  const token = h('input', {type: 'password', id: 'login-token', name: 'token', autocomplete: 'off',
    placeholder: 'trkt_…', size: 40, required: true});
  const form = h('form', {class: 'card login', id: 'login-form', on: {submit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const sess = await api.login(token.value.trim());
      showWho(sess);
      route();
    } catch (ex) {
      err.textContent = ex.message;
    }
  }}},
  h('h2', null, 'Sign in to trackd'),
  h('p', {class: 'muted'}, 'Paste a token made with ', h('code', null, 'track admin token create'), '.'),
  h('label', {for: 'login-token'}, 'Token'), token,
  h('button', {type: 'submit', class: 'primary'}, 'Sign in'), err);
  view.appendChild(form);
  token.focus();
}

function runLeave() {
  const fns = leaving;
  leaving = [];
  for (const fn of fns) {
    try {
      fn();
    } catch (e) {
      console.error(e);
    }
  }
}

function markNav(page) {
  const active = navOf[page] || page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === active);
  const n = selection.get().length;
  const cmp = document.querySelector('#nav a[data-page="compare"]');
  if (cmp) cmp.textContent = n ? `Compare (${n})` : 'Compare';
}

async function route() {
  if (!api.currentSession()) {
    showLogin();
    return;
  }
  runLeave();
  const gen = ++generation;
  const {page, arg, query} = parseHash();
  markNav(page);
  const view = clear(document.getElementById('view'));
  document.title = 'track';
  const render = pages[page];
  if (!render) {
    view.appendChild(errorBox(`no page "${page}"`));
    return;
  }
  const ctx = {
    view, arg, query,
    alive: () => gen === generation,
    onLeave: (fn) => leaving.push(fn),
    setQuery: (params) => setQuery(page, arg, params),
  };
  try {
    await render(ctx);
  } catch (e) {
    if (!ctx.alive() || (e && e.status === 401)) return;
    console.error(e);
    view.appendChild(errorBox(e));
  }
}

async function start() {
  window.addEventListener('track:unauthenticated', () => showLogin('Your session has ended; sign in again.'));
  window.addEventListener('track:selection', () => markNav(parseHash().page));
  let sess;
  try {
    sess = await api.loadSession();
  } catch (e) {
    clear(document.getElementById('view')).appendChild(errorBox(e));
    return;
  }
  window.addEventListener('hashchange', route);
  showWho(sess);
  route();
}

start();
