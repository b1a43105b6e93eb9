/* rate.js — the rating queue (#/rate?run=RUN&name=NAME&prefix=samples/): step through a run's
   samples not yet rated with NAME (GET queue), read each one's text, give it a value and
   maybe a comment, and post it (POST feedback, source human); the next one comes up.

   One value per rating, as a feedback name keeps one type: thumbs up/down (a boolean), a
   score (a number) or a label; setting one clears the others. Keys: j or → next, k or ←
   previous, y or 1 thumbs up, n or 2 thumbs down, s score, l label, c comment, Enter
   submit (Shift+Enter: a new line in the comment), Esc leaves a field. */

import * as api from './api.js';
import {h, clear, fmtInt, fmtBytes, shortId, link, section, errorBox, setTitle} from './ui.js';

const LIMIT = 50;

function setupForm(query) {
  const run = h('input', {type: 'text', class: 'mono', name: 'run', value: query.get('run') || '', size: 34,
    placeholder: 'run id', required: true});
  const name = h('input', {type: 'text', class: 'mono', name: 'name', value: query.get('name') || 'is_good', size: 14,
    required: true});
  const prefix = h('input', {type: 'text', class: 'mono', name: 'prefix', value: query.get('prefix') || 'samples/',
    size: 14});
  return section('Rate samples', h('p', {class: 'muted'},
    'A queue of the files under a prefix of a run that are not yet rated with a feedback name.'),
  h('form', {class: 'inline-form', on: {submit: (e) => {
    e.preventDefault();
    location.hash = link.rate(run.value.trim(), name.value.trim(), prefix.value.trim());
  }}}, h('label', null, 'run ', run), h('label', null, 'name ', name), h('label', null, 'prefix ', prefix),
  h('button', {type: 'submit', class: 'primary'}, 'Start')));
}

export async function render(ctx) {
  const {view, query} = ctx;
  const runId = query.get('run') || '';
  const name = query.get('name') || '';
  const prefix = query.get('prefix') || '';
  if (!runId || !name) {
    view.appendChild(setupForm(query));
    return;
  }
  setTitle(`rate ${name}`);
  const st = {items: [], idx: 0, total: 0, rated: 0, value: null, busy: false};

  const progress = h('div', {class: 'progress'}, h('div', {class: 'progress-bar'}));
  const title = h('div', {class: 'rate-title'});
  const where = h('div', {class: 'rate-where mono', id: 'rate-target'});
  const text = h('pre', {class: 'sample', id: 'rate-text', tabindex: '0'});
  const up = h('button', {type: 'button', class: 'thumb up', id: 'thumb-up', title: 'y or 1', on: {click: () => pick('up')}},
    '✓ good', h('kbd', null, 'y'));
  const down = h('button', {type: 'button', class: 'thumb down', id: 'thumb-down', title: 'n or 2', on: {click: () => pick('down')}},
    '✗ bad', h('kbd', null, 'n'));
  const score = h('input', {type: 'number', step: 'any', id: 'rate-score', class: 'mono', size: 6, placeholder: 'score',
    'aria-label': 'score', on: {input: () => pick(score.value.trim() ? 'score' : null)}});
  const label = h('input', {type: 'text', id: 'rate-label', class: 'mono', size: 14, placeholder: 'label',
    'aria-label': 'label', on: {input: () => pick(label.value.trim() ? 'label' : null)}});
  const comment = h('textarea', {id: 'rate-comment', rows: 2, placeholder: 'comment (c)', 'aria-label': 'comment'});
  const submit = h('button', {type: 'button', class: 'primary', id: 'rate-submit', on: {click: () => send()}}, 'Submit ⏎');
  const prevBtn = h('button', {type: 'button', id: 'rate-prev', on: {click: () => move(-1)}}, '← k');
  const nextBtn = h('button', {type: 'button', id: 'rate-next', on: {click: () => move(1)}}, 'skip j →');
  const msg = h('div', {class: 'form-msg', id: 'rate-msg', role: 'status'});
  const card = h('section', {class: 'card rate', id: 'rate-card'});
  const body = h('div', {class: 'rate-body'}, where, text,
    h('div', {class: 'rate-controls'}, up, down, h('span', {class: 'or'}, 'or'),
      h('label', null, h('kbd', null, 's'), ' ', score), h('label', null, h('kbd', null, 'l'), ' ', label)),
    comment,
    h('div', {class: 'rate-actions'}, prevBtn, nextBtn, h('span', {class: 'grow'}), submit), msg,
    h('p', {class: 'muted hint'}, 'keys: j/→ next · k/← previous · y/1 good · n/2 bad · s score · l label · ',
      'c comment · Enter submit · Shift+Enter new line · Esc leave a field'));
  card.append(title, progress, body);
  view.appendChild(card);

  function pick(kind) {
    st.value = kind;
    up.classList.toggle('on', kind === 'up');
    down.classList.toggle('on', kind === 'down');
    if (kind !== 'score' && kind !== null) score.value = '';
    if (kind !== 'label' && kind !== null) label.value = '';
    if (kind === 'score' || kind === 'label') {
      up.classList.remove('on');
      down.classList.remove('on');
    }
  }

  function resetForm() {
    st.value = null;
    score.value = '';
    label.value = '';
    comment.value = '';
    up.classList.remove('on');
    down.classList.remove('on');
  }

  function showTitle() {
    clear(title).append(h('h1', null, 'Rate ', h('span', {class: 'mono'}, name)),
      h('div', {class: 'muted'}, 'run ', h('a', {href: link.run(runId), class: 'mono'}, shortId(runId)),
        ` · ${prefix || '(every artifact)'} · `, h('span', {id: 'rate-count'},
          `${fmtInt(st.rated)} of ${fmtInt(st.total)} rated`)));
    progress.firstChild.style.width = `${st.total ? (100 * st.rated) / st.total : 0}%`;
  }

  function show() {
    showTitle();
    const it = st.items[st.idx];
    body.hidden = !it;
    if (!it) {
      card.dataset.state = 'done';
      if (!card.querySelector('.done'))
        card.appendChild(h('p', {class: 'done'}, `Every sample under ${prefix || 'the run'} is rated with "${name}". `,
          h('a', {href: link.run(runId)}, 'Back to the run')));
      return;
    }
    card.dataset.state = 'item';
    clear(where).append(h('span', null, it.target), h('span', {class: 'muted'},
      ` · ${fmtBytes(it.size)} · ${st.idx + 1} of ${st.items.length} loaded`));
    text.textContent = it.text === null || it.text === undefined ? '(not text)' : it.text;
    if (it.text_truncated) text.appendChild(h('span', {class: 'muted trunc'}, '\n… (the first 4 KiB)'));
    prevBtn.disabled = st.idx === 0;
    nextBtn.disabled = st.idx >= st.items.length - 1;
  }

  async function load() {
    const q = await api.get('queue', {run: runId, name, prefix, limit: LIMIT});
    if (!ctx.alive()) return;
    st.items = q.items || [];
    st.total = q.total || 0;
    st.rated = q.rated || 0;
    st.idx = 0;
    show();
  }

  function move(d) {
    const i = st.idx + d;
    if (i < 0 || i >= st.items.length) return;
    st.idx = i;
    resetForm();
    msg.textContent = '';
    show();
  }

  async function send() {
    const it = st.items[st.idx];
    if (!it || st.busy) return;
    let value;
    if (st.value === 'up') value = true;
    else if (st.value === 'down') value = false;
    else if (st.value === 'score') {
      value = Number(score.value);
      if (score.value.trim() === '' || !Number.isFinite(value)) {
        msg.textContent = 'score: expected a finite number';
        msg.className = 'form-msg error-line';
        return;
      }
    } else if (st.value === 'label') value = label.value.trim();
    else if (comment.value.trim()) value = null;
    else {
      msg.textContent = 'choose good/bad, a score or a label (or write a comment) first';
      msg.className = 'form-msg error-line';
      return;
    }
    const payload = {run: runId, target: it.target, name, value};
    if (comment.value.trim()) payload.comment = comment.value.trim();
    st.busy = true;
    try {
      await api.post('feedback', payload);
      st.items.splice(st.idx, 1);
      st.rated++;
      if (st.idx >= st.items.length) st.idx = Math.max(0, st.items.length - 1);
      resetForm();
      if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
      msg.textContent = `rated ${it.target}`;
      msg.className = 'form-msg ok';
      if (!st.items.length && st.rated < st.total) await load();
      else show();
    } catch (e) {
      msg.textContent = e.message;
      msg.className = 'form-msg error-line';
    } finally {
      st.busy = false;
    }
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const inField = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
    if (inField) {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        send();
      } else if (e.key === 'Escape') {
        t.blur();
      }
      return;
    }
    if (t && t.tagName === 'BUTTON' && e.key === 'Enter') {
      /* Enter on a focused button is a submit here, not a second click */
      e.preventDefault();
      send();
      return;
    }
    const k = e.key;
    const act = {
      j: () => move(1), ArrowRight: () => move(1), ArrowDown: () => move(1),
      k: () => move(-1), ArrowLeft: () => move(-1), ArrowUp: () => move(-1),
      y: () => pick('up'), 1: () => pick('up'), n: () => pick('down'), 2: () => pick('down'),
      c: () => comment.focus(), s: () => score.focus(), l: () => label.focus(), Enter: () => send(),
    }[k];
    if (act) {
      e.preventDefault();
      act();
    }
  }
  document.addEventListener('keydown', onKey);
  ctx.onLeave(() => document.removeEventListener('keydown', onKey));

  try {
    await load();
  } catch (e) {
    body.hidden = true;
    card.appendChild(errorBox(e));
  }
}
