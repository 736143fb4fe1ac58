"""The report's checking view: located boxes over the page, the answer's items beside it, and a
page viewer that zooms and pans the page image.

Every page card's picture carries an overlay with one box per printed line of each located item
(positions in percent of the page, so they fit the thumbnail and the full image alike); each
record lists its grounded items (fields, blocks, spans, chart labels), unlocated ones marked.
Selecting an item highlights its boxes and scrolls to them; the viewer shows the page's
full-resolution image (``pages/*.full.*`` in the output folder, else the image the model saw),
loaded only when opened, so a report of thousands of pages loads thumbnails only, and those
lazily; the boxes, in percent, sit over it at any resolution. Keyboard: j/k next/previous page, n/p next/
previous page that needs a look (failed, flagged or with unlocated values), v or Enter opens the
viewer, + / - / 0 zoom, arrows change page in the viewer, Esc closes it.

Nothing here emits model text unescaped: values go through ``html.escape`` like the rest.
"""

from __future__ import annotations

import html
from typing import Any

MAX_BOXES_PER_PAGE = 400  # boxes drawn on one page at most (a huge transcription stays light)
MAX_ITEMS_LISTED = 300  # items listed per record at most


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _pct(v: float, total: float) -> str:
    return f"{max(0.0, min(100.0, 100.0 * v / total)):.3f}".rstrip("0").rstrip(".") + "%"


def _size(g: dict[str, Any], page: Any) -> tuple[float, float] | None:
    sizes = g.get("sizes") if isinstance(g.get("sizes"), dict) else {}
    wh = sizes.get(str(page))
    if isinstance(wh, list) and len(wh) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in wh):
        return float(wh[0]), float(wh[1])
    return None


def _box_html(box: Any, size: tuple[float, float], gid: str, cls: str) -> str:
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        return ""
    w, h = size
    x0, y0, x1, y1 = box
    return (f'<i class="bx {cls}" data-g="{gid}" style="left:{_pct(x0, w)};top:{_pct(y0, h)};'
            f'width:{_pct(x1 - x0, w)};height:{_pct(y1 - y0, h)}"></i>')


class CardGrounding:
    """The overlay boxes and item lists of one page card (``card`` numbers the ids)."""

    def __init__(self, card: str, page: int | None) -> None:
        self.card, self.page = card, page
        self.boxes: list[str] = []
        self.unlocated = 0
        self._n = 0

    def overlay(self) -> str:
        return f'<div class="ov">{"".join(self.boxes)}</div>' if self.boxes else ""

    def items_html(self, r: dict[str, Any]) -> str:
        """The list of one record's grounded items (and its chart region's box on the page)."""
        g = r.get("grounding")
        if not isinstance(g, dict) or not isinstance(g.get("items"), list):
            return ""
        region = g.get("region") if isinstance(g.get("region"), dict) else None
        if region and region.get("page") == self.page and (size := _size(g, self.page)):
            self.boxes.append(_box_html(region.get("box"), size, f"{self.card}-r{self._n}", "rg"))
        rows = []
        for it in g["items"][:MAX_ITEMS_LISTED]:
            if isinstance(it, dict):
                rows.append(self._item(it, g))
        total, located = g.get("total") or 0, g.get("located") or 0
        if not total:
            return ""
        words = g.get("words")
        head = (f'<div class="gh">located on the page: <b>{located} of {total}</b>'
                + (" (no words on this page: no text layer, not OCRed)" if words == "none" else f" ({_e(words)})")
                + "</div>")
        more = (f'<li class="muted">{len(g["items"]) - MAX_ITEMS_LISTED:,} more in the layout JSON</li>'
                if len(g["items"]) > MAX_ITEMS_LISTED else "")
        return f'<div class="gr">{head}<ul class="gl">{"".join(rows)}{more}</ul></div>'

    def _item(self, it: dict[str, Any], g: dict[str, Any]) -> str:
        self._n += 1
        gid = f"{self.card}-{self._n}"
        label = it.get("path") or it.get("type") or it.get("kind") or ""
        value = str(it.get("value") or "")
        short = value if len(value) <= 90 else value[:87] + "\u2026"
        if not it.get("located"):
            self.unlocated += 1
            return (f'<li class="gi miss" tabindex="0"><span class="gk">{_e(label)}</span> '
                    f'<span class="gv">{_e(short)}</span> <span class="gs">not found on the page</span></li>')
        page = it.get("page")
        size = _size(g, page)
        where = f"p{_e(page)} \u00b7 {float(it.get('score') or 0):.0%}"
        if page == self.page and size and len(self.boxes) < MAX_BOXES_PER_PAGE:
            self.boxes += [_box_html(b, size, gid, "k-" + _e(it.get("kind"))) for b in it.get("boxes") or []]
            return (f'<li class="gi ok" tabindex="0" data-g="{gid}"><span class="gk">{_e(label)}</span> '
                    f'<span class="gv">{_e(short)}</span> <span class="gs">{where}</span></li>')
        # on another page (a document-scope answer): a link to that page's card
        return (f'<li class="gi ok"><span class="gk">{_e(label)}</span> <span class="gv">{_e(short)}</span> '
                f'<a class="gs" href="#{_e(self.card.split("-")[0])}-p{_e(page)}">{where}</a></li>')


VIEWER = (
    '<div id="viewer" hidden role="dialog" aria-label="page viewer"><div class="vbar">'
    '<button type="button" data-act="prev" title="previous page (\u2190)">\u2190</button>'
    '<button type="button" data-act="next" title="next page (\u2192)">\u2192</button>'
    '<button type="button" data-act="out" title="zoom out (-)">\u2212</button>'
    '<button type="button" data-act="fit" title="fit (0)">fit</button>'
    '<button type="button" data-act="in" title="zoom in (+)">+</button>'
    '<span id="v-title"></span>'
    '<button type="button" data-act="close" title="close (Esc)">\u00d7</button></div>'
    '<div class="stage"><div class="sheet"><img alt="page"><div class="vov"></div></div></div></div>'
)

CSS = """
.thumb .sheet{position:relative;display:inline-block;line-height:0;border:1px solid var(--line);box-shadow:0 1px 3px rgba(0,0,0,.12);background:#fff;cursor:zoom-in}
.thumb .sheet img{border:0;box-shadow:none}
.ov,.vov{position:absolute;inset:0;pointer-events:none}
.bx{position:absolute;display:block;border:1px solid rgba(37,99,235,.55);background:rgba(37,99,235,.08)}
.bx.rg{border:2px dashed rgba(147,51,234,.7);background:none}
.bx.hl{border:2px solid #f04438;background:rgba(240,68,56,.22);z-index:2}
.gr{margin:8px 0;font-size:13px}
.gh{color:var(--muted);margin-bottom:2px}
.gl{list-style:none;margin:0;padding:0;max-height:260px;overflow:auto;border:1px solid var(--line);border-radius:6px}
.gi{padding:2px 8px;border-bottom:1px solid #eef0f4;cursor:pointer;overflow-wrap:anywhere}
.gi:focus{outline:2px solid #7d9be0;outline-offset:-2px}
.gi.sel{background:#fff1f0}
.gi.miss{background:#fef3f2;color:#912018;cursor:default}
.gi.miss .gs{font-weight:600}
.gk{color:#475467;font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
.gs{color:var(--muted);font-size:12px;float:right;margin-left:8px}
.ul-badge{background:#fee4e2;color:#912018}
.page.cur{box-shadow:inset 4px 0 0 #7d9be0}
#viewer{position:fixed;inset:0;z-index:20;display:flex;flex-direction:column;background:rgba(16,24,40,.92)}
#viewer .vbar{display:flex;gap:8px;align-items:center;padding:8px 12px;background:#1d2a44;color:#fff}
#viewer .vbar button{font:inherit;min-width:34px;padding:2px 10px;border:1px solid #475467;border-radius:6px;background:#344054;color:#fff;cursor:pointer}
#v-title{flex:1;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
#viewer .stage{flex:1;overflow:auto;cursor:grab;padding:16px}
#viewer .stage.drag{cursor:grabbing}
#viewer .sheet{position:relative;margin:0 auto;line-height:0;background:#fff}
#viewer .sheet img{width:100%;height:auto;display:block;user-select:none;-webkit-user-drag:none}
"""

# Keep static: it is allowed by its hash (report.CSP); everything it needs is in the markup.
SCRIPT = """
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll('.page'));
  var viewer = document.getElementById('viewer');
  if (!viewer) { return; }
  var stage = viewer.querySelector('.stage'), vsheet = viewer.querySelector('.sheet');
  var vimg = vsheet.querySelector('img'), vov = vsheet.querySelector('.vov');
  var title = document.getElementById('v-title');
  var cur = null, zoom = 1, selected = null;
  function shown(c) { return c.offsetParent !== null; }
  function select(gid, scroll) {
    document.querySelectorAll('.bx.hl').forEach(function (b) { b.classList.remove('hl'); });
    document.querySelectorAll('.gi.sel').forEach(function (b) { b.classList.remove('sel'); });
    selected = gid;
    if (!gid) { return; }
    var boxes = document.querySelectorAll('.bx[data-g="' + gid + '"]');
    boxes.forEach(function (b) { b.classList.add('hl'); });
    var li = document.querySelector('.gi[data-g="' + gid + '"]');
    if (li) { li.classList.add('sel'); }
    if (scroll && boxes.length) {
      var card = boxes[0].closest('.page');
      setCurrent(card);
      boxes[0].scrollIntoView({block: 'center', inline: 'nearest'});
    }
  }
  function setCurrent(card) {
    if (cur) { cur.classList.remove('cur'); }
    cur = card;
    if (cur) { cur.classList.add('cur'); }
  }
  function fit() {
    var ratio = +(cur && cur.getAttribute('data-ratio')) || 0.75;
    var w = Math.min(stage.clientWidth - 32, (stage.clientHeight - 32) * ratio);
    vsheet.style.width = Math.max(100, w) + 'px';
    zoom = 1;
  }
  function setZoom(z, cx, cy) {
    var old = vsheet.offsetWidth, base = old / zoom;
    zoom = Math.max(0.25, Math.min(8, z));
    var fx = (stage.scrollLeft + (cx === undefined ? stage.clientWidth / 2 : cx)) / old;
    var fy = (stage.scrollTop + (cy === undefined ? stage.clientHeight / 2 : cy)) / (vsheet.offsetHeight || 1);
    vsheet.style.width = (base * zoom) + 'px';
    stage.scrollLeft = fx * vsheet.offsetWidth - (cx === undefined ? stage.clientWidth / 2 : cx);
    stage.scrollTop = fy * vsheet.offsetHeight - (cy === undefined ? stage.clientHeight / 2 : cy);
  }
  function openViewer(card) {
    var fig = card && card.querySelector('figure.thumb');
    var src = fig && (fig.getAttribute('data-full') || (fig.querySelector('img') || {}).src);
    if (!src) { return; }
    setCurrent(card);
    vimg.src = src;
    while (vov.firstChild) { vov.removeChild(vov.firstChild); }
    var ov = fig.querySelector('.ov');
    if (ov) { Array.prototype.forEach.call(ov.children, function (b) { vov.appendChild(b.cloneNode(true)); }); }
    title.textContent = (card.closest('.doc') || {dataset: {}}).dataset.doc + ' \\u00b7 page ' + (card.dataset.page || '');
    viewer.hidden = false;
    fit();
    if (selected) { select(selected, false); var b = vov.querySelector('.bx.hl'); if (b) { b.scrollIntoView({block: 'center', inline: 'center'}); } }
  }
  function closeViewer() { viewer.hidden = true; vimg.removeAttribute('src'); }
  cards.forEach(function (c, i) { c.setAttribute('data-i', i); });
  function step(list, dir) {
    var vis = list.filter(shown);
    if (!vis.length) { return null; }
    var pos = cur ? +cur.getAttribute('data-i') : (dir > 0 ? -1 : cards.length), next = null, i;
    if (dir > 0) {
      for (i = 0; i < vis.length && !next; i++) { if (+vis[i].getAttribute('data-i') > pos) { next = vis[i]; } }
    } else {
      for (i = vis.length - 1; i >= 0 && !next; i--) { if (+vis[i].getAttribute('data-i') < pos) { next = vis[i]; } }
    }
    next = next || (dir > 0 ? vis[vis.length - 1] : vis[0]);
    setCurrent(next);
    return next;
  }
  function needsLook(c) { return c.hasAttribute('data-failed') || c.hasAttribute('data-flagged') || c.hasAttribute('data-unlocated'); }
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    var li = t.closest && t.closest('.gi[data-g]');
    if (li) { select(li.getAttribute('data-g'), true); return; }
    var sheet = t.closest && t.closest('.thumb .sheet');
    if (sheet) { openViewer(sheet.closest('.page')); return; }
    var btn = t.closest && t.closest('#viewer button[data-act]');
    if (!btn) { return; }
    var act = btn.getAttribute('data-act');
    if (act === 'close') { closeViewer(); }
    else if (act === 'in') { setZoom(zoom * 1.25); }
    else if (act === 'out') { setZoom(zoom / 1.25); }
    else if (act === 'fit') { fit(); }
    else if (act === 'next' || act === 'prev') { var c = step(cards, act === 'next' ? 1 : -1); if (c) { openViewer(c); } }
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var k = ev.key, c;
    var li = ev.target.closest && ev.target.closest('.gi[data-g]');
    if (li && k === 'Enter') { select(li.getAttribute('data-g'), true); ev.preventDefault(); return; }
    if (!viewer.hidden) {
      if (k === 'Escape') { closeViewer(); }
      else if (k === '+' || k === '=') { setZoom(zoom * 1.25); }
      else if (k === '-') { setZoom(zoom / 1.25); }
      else if (k === '0') { fit(); }
      else if (k === 'ArrowRight' || k === 'j') { c = step(cards, 1); if (c) { openViewer(c); } }
      else if (k === 'ArrowLeft' || k === 'k') { c = step(cards, -1); if (c) { openViewer(c); } }
      else { return; }
      ev.preventDefault();
      return;
    }
    if (ev.target.tagName === 'INPUT' || ev.target.tagName === 'BUTTON') { return; }
    if (k === 'j' || k === 'k') { c = step(cards, k === 'j' ? 1 : -1); }
    else if (k === 'n' || k === 'p') { c = step(cards.filter(needsLook), k === 'n' ? 1 : -1); }
    else if ((k === 'v' || k === 'Enter') && cur) { openViewer(cur); ev.preventDefault(); return; }
    else { return; }
    if (c) { c.scrollIntoView({block: 'start'}); }
    ev.preventDefault();
  });
  stage.addEventListener('wheel', function (ev) {
    if (!ev.ctrlKey) { return; }
    ev.preventDefault();
    var r = stage.getBoundingClientRect();
    setZoom(zoom * (ev.deltaY < 0 ? 1.15 : 1 / 1.15), ev.clientX - r.left, ev.clientY - r.top);
  }, {passive: false});
  var drag = null;
  stage.addEventListener('mousedown', function (ev) {
    drag = {x: ev.clientX, y: ev.clientY, l: stage.scrollLeft, t: stage.scrollTop};
    stage.classList.add('drag');
    ev.preventDefault();
  });
  window.addEventListener('mousemove', function (ev) {
    if (!drag) { return; }
    stage.scrollLeft = drag.l - (ev.clientX - drag.x);
    stage.scrollTop = drag.t - (ev.clientY - drag.y);
  });
  window.addEventListener('mouseup', function () { drag = null; stage.classList.remove('drag'); });
})();
"""
