// defectscope QA page: live line, review, upload. Plain DOM, no framework, nothing from elsewhere.
// Every string from the server goes into the page through textContent or a checked attribute, never
// as HTML, so station ids, labels and file names cannot inject markup.
'use strict';

const KEY_STORE = 'defectscope.apiKey';
const OUTCOMES = ['pass', 'fail', 'review', 'invalid', 'error'];
const LIVE_MS = 2000;
const SVG = 'http://www.w3.org/2000/svg';
let model = null;
let liveTimer = null;
const blobUrls = new Map(); // url path -> object URL (images need the key, so <img src> cannot fetch them)

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}
const outcomeClass = (v) => (OUTCOMES.includes(v) ? v : 'error');
const badge = (v) => el('span', {class: 'badge ' + outcomeClass(v)}, v);
const time = (ts) => new Date(ts * 1000).toLocaleTimeString();
const pct = (x) => (x === null || x === undefined ? '–' : (100 * x).toFixed(1) + ' %');

function status(text, bad) {
  const s = document.getElementById('status');
  s.textContent = text || '';
  s.className = bad ? 'bad' : '';
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h['X-API-Key'] = key;
  return h;
}

async function api(path, opts) {
  const o = Object.assign({}, opts || {});
  o.headers = headers(o.headers);
  const r = await fetch(path, o);
  if (!r.ok) {
    let msg = r.status + ' ' + r.statusText;
    try { const b = await r.json(); if (b && b.error) msg = b.error.message; } catch (e) { /* not JSON */ }
    if (r.status === 401 || r.status === 403) msg += ' (paste a key above)';
    const err = new Error(msg); err.status = r.status; throw err;
  }
  return (r.headers.get('content-type') || '').includes('json') ? r.json() : r.blob();
}

async function image(path) { // an <img> whose bytes come through fetch with the key
  const img = el('img', {alt: '', loading: 'lazy'});
  if (blobUrls.has(path)) { img.src = blobUrls.get(path); return img; }
  try {
    const blob = await api(path);
    const url = URL.createObjectURL(blob);
    blobUrls.set(path, url);
    if (blobUrls.size > 400) { const [old, u] = blobUrls.entries().next().value; URL.revokeObjectURL(u); blobUrls.delete(old); }
    img.src = url;
  } catch (e) { img.alt = 'image unavailable: ' + e.message; img.className = 'missing'; }
  return img;
}

// -- live ------------------------------------------------------------------------------------------
function chart(fr) {
  const W = 520, H = 150, L = 40, B = 18, T = 8;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`); svg.setAttribute('class', 'chart');
  const add = (tag, a, text) => { const n = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(a)) n.setAttribute(k, v); if (text !== undefined) n.textContent = text; svg.append(n); return n; };
  const pts = fr.points || [];
  if (!fr.baseline.done) {
    add('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'muted'},
      `learning the baseline: ${fr.baseline.parts} of ${fr.baseline.needed} parts`);
    return svg;
  }
  const top = Math.max(0.05, fr.ucl * 1.4, ...pts.map((p) => p.rate)) ;
  const n = Math.max(pts.length, 10);
  const x = (i) => L + (i + 0.5) * (W - L - 4) / n;
  const y = (r) => T + (1 - r / top) * (H - T - B);
  add('line', {x1: L, y1: y(0), x2: W - 4, y2: y(0), class: 'axis'});
  for (const r of [0, top / 2, top]) add('text', {x: L - 4, y: y(r) + 4, 'text-anchor': 'end', class: 'tick'}, (100 * r).toFixed(0) + '%');
  add('line', {x1: L, y1: y(fr.ucl), x2: W - 4, y2: y(fr.ucl), class: 'ucl'});
  add('text', {x: W - 6, y: y(fr.ucl) - 3, 'text-anchor': 'end', class: 'tick ucl-label'}, 'UCL ' + pct(fr.ucl));
  add('line', {x1: L, y1: y(fr.centre), x2: W - 4, y2: y(fr.centre), class: 'centre'});
  if (pts.length) {
    add('polyline', {points: pts.map((p, i) => `${x(i)},${y(p.rate)}`).join(' '), class: 'rate'});
    pts.forEach((p, i) => { const c = add('circle', {cx: x(i), cy: y(p.rate), r: p.alarm ? 4 : 2.5, class: p.alarm ? 'out' : 'in'}); const t = document.createElementNS(SVG, 'title'); t.textContent = `part ${p.part}: ${pct(p.rate)}`; c.append(t); });
  }
  add('text', {x: L, y: H - 3, class: 'tick'}, `fail rate per ${fr.window} parts · centre ${pct(fr.centre)} · CUSUM ${fr.cusum} / ${fr.cusum_h}`);
  return svg;
}

async function tile(v) {
  const t = el('div', {class: 'tile ' + outcomeClass(v.verdict), title: `${v.verdict} ${v.label} · ${time(v.ts)}`});
  t.append(v.image_path ? await image(`/v1/review/verdicts/${v.id}/image`) : el('div', {class: 'noimg'}, v.verdict));
  t.append(el('div', {class: 'cap'}, badge(v.verdict), ' ', v.label));
  return t;
}

function driversLine(d) { // what drives this station's failures (defectscope analyze, cached on the server)
  if (!d) return el('div', {class: 'drivers muted'}, 'process drivers: computing…');
  if (d.status !== 'ok' || !d.drivers.length) return el('div', {class: 'drivers muted'}, `process drivers: ${d.message}`);
  const names = d.drivers.map((x) => `${x.name} (${x.importance.toFixed(3)})`).join(', ');
  const w = d.window ? Object.entries(d.window.ranges).map(([k, [a, b]]) => `${k} ${Number(a.toPrecision(4))}–${Number(b.toPrecision(4))}`)
    .concat(Object.entries(d.window.levels).map(([k, v]) => `${k} = ${v}`)).join(', ') : '';
  return el('div', {class: 'drivers', title: `cross-validated ROC AUC ${d.cv_auc} on ${d.parts} parts; importance: drop in AUC when shuffled`},
    el('b', {}, 'process drivers: '), names, w ? el('span', {class: 'muted'}, ` · lowest fail rate at ${w}`) : '');
}

async function renderLive() {
  const [mon, alarms, verdicts, drivers] = await Promise.all([
    api('/v1/monitor'), api('/v1/alarms?limit=20'), api('/v1/verdicts?limit=120'),
    api('/v1/process/drivers').catch(() => null)]);
  const driversOf = new Map(((drivers || {}).stations || []).map((d) => [d.station, d]));
  const act = document.getElementById('active-alarms');
  act.replaceChildren(...alarms.active.map((a) => el('div', {class: 'alarm'},
    el('b', {}, `ALARM ${a.kind.replace('_', ' ')}`), ` at ${a.station} (model ${a.model_version}) since ${time(a.ts)}: `, a.message)));
  if (!alarms.active.length) act.append(el('div', {class: 'calm'}, 'No active alarms.'));
  const byStation = new Map();
  for (const v of verdicts.verdicts) { const k = v.station || 'unknown'; if (!byStation.has(k)) byStation.set(k, []); byStation.get(k).push(v); }
  const cards = [];
  for (const s of mon.stations) {
    const c = s.counts, fr = s.fail_rate;
    const card = el('div', {class: 'station' + (s.active.length ? ' alarmed' : '')},
      el('h2', {}, s.station, el('span', {class: 'muted'}, ` model ${s.model_version} · ${s.parts} parts`)),
      el('div', {class: 'counts'}, ...OUTCOMES.filter((k) => c[k]).map((k) => el('span', {}, badge(k), ' ', c[k]))),
      chart(fr),
      el('div', {class: 'muted'}, `invalid frames ${pct(s.invalid_rate.centre)} baseline` +
        (s.score_drift ? ` · score drift PSI ${s.score_drift.psi === null ? '–' : s.score_drift.psi.toFixed(3)} (alarm > ${s.score_drift.raise})` : ' · no score-drift reference in this model')),
      driversLine(driversOf.get(s.station)));
    const recent = (byStation.get(s.station) || []).slice(0, 12);
    card.append(el('div', {class: 'tiles'}, ...(await Promise.all(recent.map(tile)))));
    cards.push(card);
  }
  document.getElementById('stations').replaceChildren(...(cards.length ? cards : [el('p', {class: 'muted'}, 'No verdicts yet.')]));
  document.querySelector('#alarm-log tbody').replaceChildren(...alarms.recent.map((a) => el('tr', {class: a.state},
    el('td', {}, time(a.ts)), el('td', {}, a.station), el('td', {}, a.model_version), el('td', {}, a.kind), el('td', {}, a.state), el('td', {}, a.message))));
}

async function liveLoop() {
  clearTimeout(liveTimer);
  if (document.getElementById('live').hidden) return;
  try { await renderLive(); status(''); } catch (e) { status('live view: ' + e.message, true); }
  liveTimer = setTimeout(liveLoop, LIVE_MS);
}

// -- review ----------------------------------------------------------------------------------------
async function label(v, cls, newClass, out, card) {
  out.textContent = 'saving…';
  try {
    const r = await api(`/v1/verdicts/${v.id}/label`, {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({label: cls, note: `reviewed on the QA page (was ${v.verdict} ${v.label})`, new_class: newClass})});
    out.textContent = (r.created ? 'saved as sample ' : 'already a sample: ') + r.path;
    out.className = 'result ok'; card.classList.add('done');
  } catch (e) { out.textContent = 'not saved: ' + e.message; out.className = 'result bad'; }
}

// a defect-map model's regions as boxes over an image of the frame (any size); (w, h): the frame's size in
// pixels, which the boxes are in; without it, the image's own (a log written before frames were recorded)
function framed(img, regions, w, h) {
  const f = el('span', {class: 'framed'}, img);
  if (!regions || !regions.length) return f;
  const draw = () => {
    const fw = w || img.naturalWidth, fh = h || img.naturalHeight;
    if (!fw || !fh) return;
    for (const g of regions) {
      const [x, y, bw, bh] = g.box;
      const b = el('span', {class: 'box', title: `${g.label} ${g.peak.toFixed(3)}`});
      Object.assign(b.style, {left: `${100 * x / fw}%`, top: `${100 * y / fh}%`, width: `${100 * bw / fw}%`, height: `${100 * bh / fh}%`});
      f.append(b);
    }
  };
  if (w && h) draw(); else if (img.complete && img.naturalWidth) draw(); else img.addEventListener('load', draw, {once: true});
  return f;
}
function regionsLine(regions) {
  if (!regions || !regions.length) return null;
  return el('div', {class: 'regions'}, 'regions: ' + regions.map((g) =>
    `${g.label} at ${g.box[0]},${g.box[1]} (${g.box[2]}x${g.box[3]} px, ${g.peak.toFixed(2)})`).join('; '));
}

async function reviewCard(v) {
  const out = el('div', {class: 'result'});
  const card = el('div', {class: 'review-card ' + outcomeClass(v.verdict), 'data-id': String(v.id)});
  const heat = el('div', {class: 'heat'}, el('button', {type: 'button', onclick: async (e) => {
    e.target.disabled = true; heat.replaceChildren(await image(`/v1/review/verdicts/${v.id}/heatmap`)); }}, 'show heatmap'));
  const classes = (model && model.classes) || [];
  const buttons = classes.map((c) => el('button', {type: 'button', class: 'label' + (c === v.label ? ' predicted' : ''),
    'data-label': c, onclick: () => label(v, c, false, out, card)}, c === v.label ? `confirm ${c}` : c));
  const custom = el('input', {placeholder: 'new class', size: '10', maxlength: '64'});
  card.append(
    el('div', {class: 'pics'}, framed(await image(`/v1/review/verdicts/${v.id}/image?size=full`), v.regions, v.width, v.height), heat),
    el('div', {}, badge(v.verdict), ` ${v.label} · defect score ${v.defect_score.toFixed(3)} · ${v.station || 'unknown'} · ${time(v.ts)} · #${v.id}`),
    ...[regionsLine(v.regions)].filter(Boolean),
    el('div', {class: 'buttons'}, ...buttons, custom, el('button', {type: 'button', onclick: () => {
      if (custom.value.trim()) label(v, custom.value.trim(), true, out, card); }}, 'add as new class')),
    out);
  return card;
}

async function renderReview() {
  const box = document.getElementById('reviews');
  const verdict = document.getElementById('review-filter').value;
  const station = document.getElementById('review-station').value.trim();
  box.replaceChildren(el('p', {class: 'muted'}, 'loading…'));
  try {
    const q = new URLSearchParams({verdict, limit: '40'}); if (station) q.set('station', station);
    const rows = (await api('/v1/verdicts?' + q)).verdicts.filter((v) => v.image_path);
    const cards = await Promise.all(rows.map(reviewCard));
    box.replaceChildren(...(cards.length ? cards : [el('p', {class: 'muted'}, `No ${verdict} verdicts with kept images.`)]));
    status('');
  } catch (e) { box.replaceChildren(); status('review: ' + e.message, true); }
}

// -- upload ----------------------------------------------------------------------------------------
async function uploadFiles(files) {
  const box = document.getElementById('uploads');
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append('files', f, f.name);
  box.replaceChildren(el('p', {class: 'muted'}, `inspecting ${files.length} file(s)…`));
  try {
    const r = await api('/v1/review/upload', {method: 'POST', body: form});
    box.replaceChildren(...r.items.map((it) => {
      const c = el('div', {class: 'review-card ' + (it.result ? outcomeClass(it.result.verdict) : 'error')}, el('div', {class: 'name'}, it.name));
      if (it.result) {
        const res = it.result, ex = res.explanation;
        if (ex && /^[A-Za-z0-9+/=]+$/.test(ex.overlay_png)) {
          c.append(framed(el('img', {src: 'data:image/png;base64,' + ex.overlay_png, alt: 'heatmap'}), res.regions,
            res.image.width, res.image.height));
        }
        c.append(el('div', {}, badge(res.verdict), ` ${res.label} · defect score ${res.defect_score.toFixed(3)}`));
        const line = regionsLine(res.regions); if (line) c.append(line);
        if (res.reason) c.append(el('div', {class: 'bad'}, res.reason));
      } else c.append(el('div', {}, badge('error'), ' ', it.error.message));
      return c;
    }));
    status(`${r.ok} inspected, ${r.failed} not`);
  } catch (e) { box.replaceChildren(); status('upload: ' + e.message, true); }
}

// -- wiring ----------------------------------------------------------------------------------------
function show(tab) {
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== tab;
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.tab === tab);
  if (tab === 'live') liveLoop();
  if (tab === 'review') renderReview();
}

async function loadModel() {
  try {
    model = await api('/v1/model');
    // the operating point QA works under: what fails on its own, what comes to review
    const th = model.thresholds || {};
    const short = (x) => String(Number(Number(x).toPrecision(4)));
    const band = th.review != null ? `, review ≥ ${short(th.review)}` : '';
    const el = document.getElementById('model');
    el.textContent = `${model.name}@${model.version} · fail ≥ ${short(th.fail)}${band}`;
    const cal = (model.metrics || {}).calibration;
    el.title = cal && cal.support ? `thresholds from ${cal.source}: ${cal.support}` : '';
    const go = model.good_only;  // trained on good parts only: recall unknown, say what it can miss
    if (go) {
      el.append(' ', Object.assign(document.createElement('span'), {className: 'good-only',
        textContent: 'good-only model',
        title: `trained without real defects (synthesized: ${go.synthesized.join(', ')}); fail threshold for ` +
               `≤ ${(100 * go.false_reject_budget).toFixed(1)} % good parts failed. It can miss ${go.can_miss}.`}));
    }
  } catch (e) { document.getElementById('model').textContent = 'model: ' + e.message; }
}

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => show(b.dataset.tab));
  document.getElementById('keyform').addEventListener('submit', (e) => {
    e.preventDefault();
    const k = document.getElementById('key');
    if (k.value) sessionStorage.setItem(KEY_STORE, k.value.trim());
    k.value = ''; status('key set for this tab'); loadModel(); show(document.querySelector('nav .active').dataset.tab);
  });
  document.getElementById('forget').addEventListener('click', () => { sessionStorage.removeItem(KEY_STORE); status('key forgotten'); });
  document.getElementById('review-refresh').addEventListener('click', renderReview);
  document.getElementById('review-filter').addEventListener('change', renderReview);
  const drop = document.getElementById('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); uploadFiles([...e.dataTransfer.files]); });
  document.getElementById('files').addEventListener('change', (e) => uploadFiles([...e.target.files]));
  loadModel();
  show('live');
});
