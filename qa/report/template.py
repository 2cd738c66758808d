"""Static parts of report.html: style and the table script. The script builds rows with
createElement/textContent only, so a hostile file name can never inject markup, and sets styles
through the CSSOM, which the page's Content-Security-Policy allows (style attributes it would not)."""

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c5cad6;font-size:13px}
main{padding:16px 24px}section{background:#fff;border-radius:6px;padding:12px 16px;margin:0 0 16px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}h2{font-size:16px;margin:0 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{min-width:110px;padding:10px 14px;border-radius:6px;background:#f0f2f5}
.card b{display:block;font-size:24px}
.pass{color:#1b7f3b}.fail{color:#c0262d}.review{color:#b26b00}.error{color:#6b3fa0}.invalid{color:#0b6e99}
table{border-collapse:collapse}
td,th{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:middle}
th{background:#f0f2f5;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;gap:16px;flex-wrap:wrap}.grid>div{flex:1;min-width:260px}
#rows th{cursor:pointer;user-select:none;position:sticky;top:0}#rows th.sorted::after{content:attr(data-dir)}
#rows img{height:64px;width:auto;display:block;border-radius:3px}#rows img.heat{cursor:zoom-in}
.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin-bottom:8px}
.controls input{padding:4px 8px;min-width:260px}.pager button{margin:0 2px}
.badge{padding:1px 8px;border-radius:10px;font-weight:600;background:#f0f2f5}
.path{font-family:ui-monospace,Menlo,monospace;font-size:12px;word-break:break-all;max-width:420px}
.gallery{display:flex;flex-wrap:wrap;gap:8px}.gallery figure{margin:0;width:150px;font-size:11px;word-break:break-all}
.gallery img{width:150px;height:auto;border-radius:3px}
#zoom{display:none;position:fixed;inset:0;background:rgba(0,0,0,.75);align-items:center;justify-content:center}
#zoom img{max-width:90vw;max-height:90vh;image-rendering:auto;min-width:40vw}
.muted{color:#6b7280}#evaluation h2{margin-top:14px;display:inline-block}summary{cursor:pointer}
.diag{background:#e8f5ec}
.framed{position:relative;display:inline-block}.framed .box{position:absolute;border:2px solid #ff2d55;
box-sizing:border-box;pointer-events:none;min-width:3px;min-height:3px}
.regions{font-size:12px;font-variant-numeric:tabular-nums}
"""

SCRIPT = """
const D = JSON.parse(document.getElementById('data').textContent);
D.rows = D.rows.map((a, i) => { const r = {index: i}; D.cols.forEach((c, k) => { r[c] = a[k]; }); return r; });
const PAGE = 100; let page = 0, key = 'index', dir = 1, view = D.rows;
const $ = (id) => document.getElementById(id);
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}
function img(r, src, cls, alt) {  // a file of the report folder; width/height keep the row's layout before it loads
  const i = el('img', {loading: 'lazy', alt: alt});
  if (r.width && r.height) { i.width = r.width; i.height = r.height; }
  i.src = src;
  if (cls) { i.className = cls; i.onclick = () => { $('zoomimg').src = i.src; $('zoom').style.display = 'flex'; }; }
  return i;
}
function framed(r) {  // the thumbnail with each defect region's box drawn over it (percent of the frame)
  const f = el('span', {class: 'framed'}); f.append(img(r, r.thumbnail_file, 'heat', 'thumbnail'));
  for (const g of (r.regions || [])) {
    if (!r.width || !r.height) break;
    const [x, y, w, h] = g.box, b = el('span', {class: 'box', title: g.label + ' ' + g.peak.toFixed(3)});
    Object.assign(b.style, {left: `${100 * x / r.width}%`, top: `${100 * y / r.height}%`,
      width: `${100 * w / r.width}%`, height: `${100 * h / r.height}%`});
    f.append(b);
  }
  return f;
}
function regionText(g) {
  return `${g.label} at ${g.box[0]},${g.box[1]} (${g.box[2]}x${g.box[3]} px) ${g.peak.toFixed(3)}`;
}
function num(v) { return v === null || v === undefined ? '' : v.toFixed(3); }
function apply() {
  const q = $('q').value.toLowerCase(), f = $('f').value;
  view = D.rows.filter(r => (f === 'all' || r.verdict === f || (f === 'wrong' && r.wrong)) &&
    (!q || (r.path + ' ' + (r.label || '') + ' ' + (r.error || '') + ' ' + (r.truth || '')).toLowerCase().includes(q)));
  view.sort((a, b) => { const x = a[key], y = b[key];
    if (x === y) return a.index - b.index; if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1; return (x < y ? -1 : 1) * dir; });
  page = Math.min(page, Math.max(0, Math.ceil(view.length / PAGE) - 1)); render();
}
function render() {
  const body = $('body'); body.replaceChildren();
  for (const r of view.slice(page * PAGE, page * PAGE + PAGE)) {
    const tr = el('tr');
    const t = el('td'); if (r.thumbnail_file) t.append(framed(r)); tr.append(t);
    tr.append(el('td', {class: 'path'}, r.path));
    const v = el('td'); v.append(el('span', {class: 'badge ' + r.verdict}, r.verdict)); tr.append(v);
    tr.append(el('td', {}, r.label || ''));
    tr.append(el('td', {class: 'n'}, num(r.defect_score)));
    tr.append(el('td', {class: 'n'}, num(r.confidence)));
    if (D.has_truth) tr.append(el('td', {}, r.truth || ''));
    const h = el('td');
    if (r.heatmap_file) h.append(img(r, r.heatmap_file, 'heat', 'heatmap of ' + (r.heatmap_target || '')));
    tr.append(h);
    const g = el('td', {class: 'regions'});
    (r.regions || []).forEach((x, i) => {
      if (i) g.append(el('br'));
      g.append(document.createTextNode(regionText(x)));
    });
    tr.append(g);
    tr.append(el('td', {class: 'error'}, r.error || ''));
    body.append(tr);
  }
  const pages = Math.max(1, Math.ceil(view.length / PAGE));
  $('pageinfo').textContent = `${view.length} of ${D.rows.length} images, page ${page + 1} of ${pages}`;
}
document.querySelectorAll('#rows th[data-key]').forEach(th => th.onclick = () => {
  const k = th.dataset.key; dir = (key === k) ? -dir : (k === 'defect_score' || k === 'confidence' ? -1 : 1); key = k;
  document.querySelectorAll('#rows th').forEach(x => x.classList.remove('sorted'));
  th.classList.add('sorted'); th.dataset.dir = dir > 0 ? ' ▲' : ' ▼'; apply();
});
$('q').oninput = () => { page = 0; apply(); }; $('f').onchange = () => { page = 0; apply(); };
$('prev').onclick = () => { if (page > 0) { page--; render(); } };
$('next').onclick = () => { if ((page + 1) * PAGE < view.length) { page++; render(); } };
$('zoom').onclick = () => { $('zoom').style.display = 'none'; };
apply();
"""
