/* models.js — the model registry: #/models (every registered model) and #/model/NAME (its
   versions with their runs, digests, sizes and download links, its aliases and the history of
   every alias move, oldest first).

   A version's download link is its file as pinned at register time (model-file?ref=NAME/V,
   by its digest, whatever the run's artifact at that path holds now); each alias chip in the
   header downloads what the alias points at (NAME@ALIAS). An alias move's
   from_version of null (or 0: versions count from 1) means the alias was new. */

import * as api from './api.js';
import {h, fmtInt, fmtTime, fmtBytes, shortId, link, section, setTitle} from './ui.js';

function aliasChips(aliases) {
  return h('span', {class: 'chips'}, aliases.map(([a, v]) =>
    h('span', {class: 'chip', title: v === undefined ? '' : `${a} → version ${v}`},
      a, v === undefined ? null : h('span', {class: 'chip-v'}, String(v)))));
}

function tagsText(tags) {
  return Object.keys(tags || {}).sort().map((k) => `${k}=${tags[k]}`).join(', ');
}

export async function renderList(ctx) {
  const {view} = ctx;
  const reply = await api.get('models');
  const models = reply.models || [];
  if (!ctx.alive()) return;
  setTitle('models');
  if (!models.length) {
    view.appendChild(section('Models', h('p', null, 'No registered models. Register one with ',
      h('code', null, 'track model register NAME --run RUN --path PATH'), '.')));
    return;
  }
  view.appendChild(section(`Models (${models.length})`, h('div', {class: 'table-wrap'},
    h('table', {class: 'grid', id: 'models'},
      h('thead', null, h('tr', null, h('th', null, 'model'), h('th', {class: 'num'}, 'versions'),
        h('th', {class: 'num'}, 'latest'), h('th', null, 'aliases'), h('th', null, 'tags'),
        h('th', null, 'created'))),
      h('tbody', null, models.map((m) => h('tr', {dataset: {model: m.name}},
        h('td', null, h('a', {href: link.model(m.name)}, m.name)),
        h('td', {class: 'mono num'}, fmtInt(m.versions)),
        h('td', {class: 'mono num'}, m.latest_version === null ? '' : String(m.latest_version)),
        h('td', null, aliasChips(Object.entries(m.aliases || {}).sort((a, b) => a[0].localeCompare(b[0])))),
        h('td', {class: 'mono'}, tagsText(m.tags)),
        h('td', {class: 'mono'}, fmtTime(m.created_time))))))),
    reply.more ? h('p', {class: 'muted'}, `the first ${fmtInt(models.length)} models`) : null));
}

export async function renderModel(ctx) {
  const {view, arg: name} = ctx;
  const r = await api.get(`models/${encodeURIComponent(name)}`);
  if (!ctx.alive()) return;
  const m = r.model || {};
  setTitle(m.name || name, 'model');
  const versions = (r.versions || []).slice().sort((a, b) => b.version - a.version);
  const history = r.history || [];
  view.appendChild(h('section', {class: 'card'},
    h('h1', null, h('a', {href: '#/models', class: 'muted'}, 'Models'), ' / ', m.name || name),
    h('p', null, `${fmtInt(m.versions)} versions · created ${fmtTime(m.created_time)}`,
      Object.keys(m.tags || {}).length ? ` · tags ${tagsText(m.tags)}` : ''),
    h('div', null, 'aliases: ', Object.keys(m.aliases || {}).length
      ? aliasChips(Object.entries(m.aliases).sort((a, b) => a[0].localeCompare(b[0])))
      : h('span', {class: 'muted'}, 'none')),
    Object.keys(m.aliases || {}).length
      ? h('p', {id: 'alias-downloads'}, 'download: ',
        Object.keys(m.aliases).sort().map((a, i) => [i ? ' · ' : null,
          h('a', {class: 'download', href: api.modelFileUrl(`${name}@${a}`), 'data-alias': a,
            download: ''}, `${name}@${a}`)]).flat().filter(Boolean))
      : null));

  view.appendChild(section('Versions', h('div', {class: 'table-wrap'},
    h('table', {class: 'grid', id: 'versions'},
      h('thead', null, h('tr', null, ['version', 'aliases', 'run', 'path', 'size', 'digest (BLAKE2b-256)',
        'by', 'registered', 'description', 'tags', ''].map((c) =>
        h('th', {class: c === 'size' || c === 'version' ? 'num' : null}, c)))),
      h('tbody', null, versions.map((v) => h('tr', {dataset: {version: String(v.version)}},
        h('td', {class: 'mono num'}, String(v.version)),
        h('td', null, aliasChips((v.aliases || []).map((a) => [a, undefined]))),
        h('td', {class: 'mono'}, h('a', {href: link.run(v.run_id), title: v.run_id}, shortId(v.run_id))),
        h('td', {class: 'mono'}, v.path),
        h('td', {class: 'mono num', title: `${fmtInt(v.size)} bytes`}, fmtBytes(v.size)),
        h('td', {class: 'mono digest', title: v.digest}, String(v.digest || '').slice(0, 16)),
        h('td', null, v.user || ''),
        h('td', {class: 'mono'}, fmtTime(v.created_time)),
        h('td', null, v.description || ''),
        h('td', {class: 'mono'}, tagsText(v.tags)),
        h('td', null, h('a', {class: 'download', href: api.modelFileUrl(`${name}/${v.version}`),
          download: String(v.path).split('/').pop()}, 'download')))))))));

  view.appendChild(section('Alias history', history.length
    ? h('table', {class: 'grid', id: 'alias-history'},
      h('thead', null, h('tr', null, ['time', 'alias', 'from', 'to', 'who'].map((c) => h('th', null, c)))),
      h('tbody', null, history.map((e) => h('tr', null,
        h('td', {class: 'mono'}, fmtTime(e.time)), h('td', null, h('span', {class: 'chip'}, e.alias)),
        h('td', {class: 'mono'}, !e.from_version ? 'new' : String(e.from_version)),
        h('td', {class: 'mono'}, String(e.to_version)), h('td', null, e.who || '')))))
    : h('p', {class: 'muted'}, 'no alias was ever set')));
}
