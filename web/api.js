/* api.js — the dashboard's one door to trackd's JSON API (/api/track/v1/, WEB_API.md).

   get(path, params) and post(path, body) return the parsed JSON or throw an ApiError that keeps
   the reply's error_code, message, field and column (a filter error points at its column).
   The session's csrf_token is kept here and sent as X-Track-CSRF on every POST; a 401 from
   any call fires the `track:unauthenticated` event, which app.js answers with the login form. */

export const BASE = '/api/track/v1/';

let csrfToken = '';
let session = null;

export class ApiError extends Error {
  constructor(status, body, what) {
    const msg = body && body.message ? body.message : `${what}: HTTP ${status}`;
    super(msg);
    this.status = status;
    this.code = (body && body.error_code) || '';
    this.field = (body && body.field) || '';
    this.column = body && Number.isInteger(body.column) ? body.column : 0;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {}))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function answer(res, what) {
  let body = null;
  const text = await res.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = {message: `${what}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`};
    }
  }
  if (!res.ok) {
    if (res.status === 401 && what !== 'login' && what !== 'session') {
      session = null;
      csrfToken = '';
      window.dispatchEvent(new CustomEvent('track:unauthenticated'));
    }
    throw new ApiError(res.status, body, what);
  }
  return body || {};
}

/* GET BASE+path?params; params with empty values are left out. */
export async function get(path, params, {signal} = {}) {
  const res = await fetch(BASE + path + query(params), {
    credentials: 'same-origin', headers: {Accept: 'application/json'}, signal});
  return answer(res, path.split('?')[0]);
}

/* POST BASE+path with a JSON body and the CSRF header. */
export async function post(path, body) {
  const res = await fetch(BASE + path, {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', Accept: 'application/json',
              'X-Track-CSRF': csrfToken},
    body: JSON.stringify(body || {})});
  return answer(res, path);
}

/* The session: {user, role, local, csrf_token} or null when not logged in. */
export async function loadSession() {
  try {
    session = await get('session');
  } catch (e) {
    if (e.status === 401) {
      session = null;
      return null;
    }
    throw e;
  }
  csrfToken = session.csrf_token || '';
  return session;
}

export async function login(token) {
  session = await post('login', {token});
  csrfToken = session.csrf_token || '';
  return session;
}

export async function logout() {
  await post('logout', {});
  session = null;
  csrfToken = '';
}

export function currentSession() {
  return session;
}

/* The download address of a run's artifact: each path segment URL-encoded. */
/* The download address of a model version's file as pinned at register time (its digest):
   REF is NAME/VERSION or NAME@ALIAS, as `track model get` takes it. */
export function modelFileUrl(ref) {
  return `${BASE}model-file?ref=${encodeURIComponent(ref)}`;
}

export function artifactUrl(run, path) {
  return `${BASE}runs/${encodeURIComponent(run)}/artifact/` +
    String(path).split('/').map(encodeURIComponent).join('/');
}

/* A run search in two steps, so the first rows come fast: the first FIRSTLIMIT runs, then
   the rest. onPage(runs, more, replace) is called per reply: replace false appends RUNS,
   true replaces everything so far with them. When trackd pages (next_page_token) the rest
   comes page by page; when it answers only `more`, one second request of up to MAXLIMIT
   runs replaces the first. Stops when alive() turns false (a new search, a route change). */
export async function runsPaged(params, firstLimit, maxLimit, onPage, alive) {
  let r = await get('runs', {...params, limit: firstLimit});
  if (!alive()) return;
  let token = r.next_page_token || '';
  onPage(r.runs || [], Boolean(token) || r.more === true, false);
  if (token) {
    while (token) {
      r = await get('runs', {...params, limit: maxLimit, page_token: token});
      if (!alive()) return;
      token = r.next_page_token || '';
      onPage(r.runs || [], Boolean(token), false);
    }
  } else if (r.more === true) {
    r = await get('runs', {...params, limit: maxLimit});
    if (!alive()) return;
    onPage(r.runs || [], r.more === true, true);
  }
}
