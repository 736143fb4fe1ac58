"""The review report (report.html): safe Markdown, thumbnails, totals, and in headless Chromium:
every page present, filters working, injected model output inert, a screenshot that looks right.

The browser tests need the Debian package ``chromium`` (``make test`` installs it). Without it
they fail, unless PIXTRACT_SKIP_BROWSER=1.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pixtract.report import (
    CSP,
    build_report,
    make_thumbnail,
    render_markdown,
    thumbnail_name,
    save_thumbnail,
)

from .report_browser import Browser, find_chromium

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
SHA = {k: hashlib.sha256(k.encode()).hexdigest() for k in ("scan", "chart", "form", "hostile", "corrupt")}


# --------------------------------------------------------------------------- fixtures

def page_image(label: str, color: tuple[int, int, int], size=(791, 1024)) -> bytes:
    """A page-like picture: white sheet, coloured title bar, grey text lines, the label."""
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    d.rectangle([60, 60, size[0] - 60, 150], fill=color)
    d.text((80, 90), label, fill="white")
    for k, y in enumerate(range(200, size[1] - 80, 28)):
        d.rectangle([60, y, size[0] - 60 - (k * 37) % 200, y + 10], fill=(150, 150, 150))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def rec(document, sha, page, **kw):
    base = {"document": document, "sha256": sha, "page": page, "task": "transcribe", "route": "vision",
            "status": "ok", "answer": None, "model": "pixtral-12b-2409", "provider": "mistral",
            "usage": {"input_tokens": 1200, "output_tokens": 300}, "cost_usd": 0.00045,
            "latency_ms": 1834.2, "error": None, "attempts": 1, "fallback_reason": None, "flags": [],
            "image": {"width": 791, "height": 1024, "bytes": 148312, "mime": "image/jpeg"},
            "question": None, "schema": None, "data": None, "valid": None, "agreement": None,
            "scope": "page", "pages": None, "region": None, "cached": False, "tried": []}
    base.update(kw)
    return base


SCAN = "scans/quarterly <b>report</b>.pdf"
RECORDS = [
    rec(SCAN, SHA["scan"], 1, agreement=0.97, answer=(
        "# Quarterly report\n\nRevenue grew **12 %** in *Q3*; see `table 1`.\n\n"
        "| Region | Q2 | Q3 |\n|:--|--:|--:|\n| North | 1,200 | 1,344 |\n| South | 980 | 1,010 |\n\n"
        "- shipped on time\n- two new clients\n  - Acme\n  - Globex\n\n```\nraw <b>code</b>\n```")),
    rec(SCAN, SHA["scan"], 2, route="text-fallback", model="pixtract-local/pymupdf4llm", provider="local",
        usage={"input_tokens": 0, "output_tokens": 0}, cost_usd=0.0, attempts=3,
        fallback_reason="vision: rate limited after 3 attempts (HTTP 429)",
        tried=[{"route": "vision", "error": {"type": "rate_limited", "message": "HTTP 429"}}],
        answer="## Notes\n\nThe text layer answered this page."),
    rec(SCAN, SHA["scan"], 3, status="failed", route=None, model=None, answer=None,
        usage={"input_tokens": 0, "output_tokens": 0}, cost_usd=0.0, attempts=3,
        error={"type": "provider_error", "message": "scans/quarterly.pdf page 3: HTTP 500 <html>oops</html>"}),
    rec("charts/sales.png", SHA["chart"], 1, agreement=0.6,
        flags=["numbers not in text layer: 4,250.00"],
        answer="Sales by month, **4,250.00** in March."),
    rec("charts/sales.png", SHA["chart"], 1, task="chart", region=1, answer="Monthly sales (EUR).",
        data={"csv": "sales-p1-chart1.csv",
              "rows": [["Month", "Sales"], ["Jan", "3,100.00"], ["Feb", "3,870.50"], ["Mar", "4,250.00"]]}),
    rec("forms/invoice.pdf", SHA["form"], 1, task="extract", schema="invoice",
        answer='{"number": "INV-7", "total": 99.5}',
        data={"number": "INV-7", "total": 99.5, "note": "</pre><script>window.__pwned=3</script>"},
        valid={"ok": True, "errors": []}),
    rec("forms/invoice.pdf", SHA["form"], 2, status="skipped", route=None, answer=None, model=None,
        usage={"input_tokens": 0, "output_tokens": 0}, cost_usd=0.0, attempts=0),
    rec("hostile.pdf", SHA["hostile"], 1, answer="Before " + HOSTILE + " after.\n\n" + HOSTILE),
    rec("corrupt.pdf", SHA["corrupt"], None, status="failed", route=None, model=None, image=None,
        usage={"input_tokens": 0, "output_tokens": 0}, cost_usd=0.0, attempts=0,
        error={"type": "unreadable_file", "message": "corrupt.pdf: not a readable PDF"}),
]
PAGES = [(SHA["scan"], 1), (SHA["scan"], 2), (SHA["scan"], 3), (SHA["chart"], 1), (SHA["form"], 1),
         (SHA["form"], 2), (SHA["hostile"], 1)]
CARDS = len(PAGES) + 1  # + the unreadable document's card
FAILED, FALLBACK, FLAGGED = 2, 1, 1


def write_run(out: Path, records=RECORDS, profile="mistral") -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    inputs = [
        {"path": SCAN, "sha256": SHA["scan"], "kind": "pdf", "format": "PDF", "bytes": 81234, "pages": 3,
         "markdown": "quarterly <b>report</b>.md", "status": "partial"},
        {"path": "charts/sales.png", "sha256": SHA["chart"], "kind": "image", "format": "PNG", "pages": 1,
         "markdown": "sales.md", "status": "ok"},
        {"path": "forms/invoice.pdf", "sha256": SHA["form"], "kind": "pdf", "pages": 2,
         "markdown": "invoice.md", "status": "ok"},
        {"path": "hostile.pdf", "sha256": SHA["hostile"], "kind": "pdf", "pages": 1,
         "markdown": "hostile.md", "status": "ok"},
        {"path": "corrupt.pdf", "sha256": SHA["corrupt"], "kind": None, "pages": None, "markdown": None,
         "status": "failed", "error": "corrupt.pdf: not a readable PDF"},
    ]
    manifest = {"pixtract_manifest": 1, "started": "2025-05-01T10:00:00+00:00",
                "finished": "2025-05-01T10:01:05+00:00", "seconds": 65.0, "inputs": inputs,
                "counts": {"records": len(records), "cost_usd": 0.00225},
                "versions": {"pixtract": "0.1.0"},
                "config": {"profile": profile, "tasks": [{"kind": "transcribe"}]}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


COLORS = [(31, 79, 160), (160, 60, 31), (30, 130, 76), (120, 40, 150), (180, 130, 20), (40, 40, 40),
          (200, 30, 60)]


@pytest.fixture(scope="module")
def thumbs() -> dict[tuple[str, int], bytes]:
    return {key: make_thumbnail(page_image(f"{key[0][:6]} page {key[1]}", COLORS[k]))
            for k, key in enumerate(PAGES)}


# --------------------------------------------------------------------------- no browser

def test_markdown_escapes_everything():
    out = render_markdown(HOSTILE + "\n\n# <i>t</i>\n\n| <a> | b |\n|---|---|\n| `<x>` | **<y>** |")
    assert "<script" not in out and "<img" not in out and "<i>" not in out and "<a>" not in out
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in out
    assert "<h1>&lt;i&gt;t&lt;/i&gt;</h1>" in out
    assert "<th>&lt;a&gt;</th>" in out and "<code>&lt;x&gt;</code>" in out
    assert "<strong>&lt;y&gt;</strong>" in out
    # only this renderer's own tags, and no attribute other than its own classes / start
    tags = set(re.findall(r"<([a-z0-9]+)", out))
    assert tags <= {"p", "h1", "div", "table", "thead", "tbody", "tr", "th", "td", "code", "strong"}
    assert render_markdown("[x](javascript:alert(1)) ![i](x)") == "<p>[x](javascript:alert(1)) ![i](x)</p>\n"
    assert "\x00" not in render_markdown("a\x00b `c\x00d`")


def test_markdown_blocks():
    md = render_markdown(
        "## Head ##\n\nSome **bold**, *em*, _em2_, ~~gone~~ and `co*de*`; snake_case stays; 2 * 3 * 4.\n"
        "next line  \nhard\n\n- a\n- b\n  1. b1\n  2. b2\n- [x] done\n\n3. three\n4. four\n\n"
        "```python\nx = '<y>' * 2\n```\n\n> quoted *text*\n\n---\n\n| L | C | R |\n|:--|:-:|--:|\n"
        "| 1 | 2 \\| 3 |\n| only |")
    assert "<h2>Head</h2>" in md
    assert "<strong>bold</strong>" in md and "<em>em</em>" in md and "<em>em2</em>" in md
    assert "<del>gone</del>" in md and "<code>co*de*</code>" in md
    assert "snake_case stays; 2 * 3 * 4." in md and "next line<br>" in md
    assert "<ul>\n<li>a</li>\n<li>b\n<ol>\n<li>b1</li>\n<li>b2</li>\n</ol>\n</li>\n<li>\u2611 done</li>\n</ul>" in md
    assert '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>' in md
    assert '<pre><code class="lang-python">x = &#x27;&lt;y&gt;&#x27; * 2</code></pre>' in md
    assert "<blockquote>\n<p>quoted <em>text</em></p>\n</blockquote>" in md and "<hr>" in md
    assert '<th class="a-l">L</th><th class="a-c">C</th><th class="a-r">R</th>' in md
    assert '<td class="a-c">2 | 3</td>' in md and '<td class="a-l">only</td><td class="a-c"></td>' in md


def test_markdown_is_fast_on_hostile_input():
    t = time.monotonic()
    render_markdown("**a " * 20000 + "\n" + "> " * 5000 + "x\n" + "- " * 3000 + "y\n" + "`" * 10000)
    assert time.monotonic() - t < 5


def test_thumbnails(tmp_path):
    assert thumbnail_name("ab" * 32, 7) == "thumbs/abababababababab-p7.jpg"
    im = Image.new("RGBA", (1000, 2000), (255, 0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    jpg = make_thumbnail(buf.getvalue())
    with Image.open(io.BytesIO(jpg)) as t:
        assert t.format == "JPEG" and t.size == (160, 320)
        assert t.getpixel((80, 160))[0] > 240  # transparent became white, not black
    small = make_thumbnail(page_image("x", (0, 0, 0), size=(300, 200)))
    with Image.open(io.BytesIO(small)) as t:
        assert t.size == (300, 200)  # never enlarged
    path = save_thumbnail(str(tmp_path), SHA["scan"], 2, make_thumbnail(page_image("p2", (0, 0, 200))))
    assert path == str(tmp_path / thumbnail_name(SHA["scan"], 2))
    assert Path(path).read_bytes()[:3] == b"\xff\xd8\xff"


def test_report_html(tmp_path, thumbs):
    out = tmp_path / "run"
    write_run(out)
    path = build_report(str(out), thumbnails=thumbs)
    assert path == str(out / "report.html")
    text = Path(path).read_text(encoding="utf-8")
    # self-contained: no URL to anywhere, one script, allowed by its hash
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text)
    assert "http://" not in text and "https://" not in text
    scripts = re.findall(r"<script>(.*?)</script>", text, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in CSP and f'content="{CSP}"' in text
    assert "<script>window" not in text and "onerror=" not in text.replace("onerror=&quot;", "")
    assert text.count('<article class="page') == CARDS
    assert text.count("data:image/jpeg;base64,") == len(PAGES)
    assert "quarterly &lt;b&gt;report&lt;/b&gt;.pdf" in text
    assert 'href="quarterly%20%3Cb%3Ereport%3C/b%3E.md"' in text
    assert "<td>4,250.00</td>" in text and "&quot;INV-7&quot;" in text
    assert not list(out.glob(".tmp-*"))


def test_report_thumbnail_files_and_no_manifest(tmp_path, thumbs):
    out = tmp_path / "run"
    write_run(out)
    (out / "manifest.json").unlink()
    (out / "thumbs").mkdir()
    for sha, page in PAGES[:-1]:  # the last page has no thumbnail: a placeholder
        (out / thumbnail_name(sha, page)).write_bytes(thumbs[(sha, page)])
    text = Path(build_report(str(out))).read_text(encoding="utf-8")
    assert "data:image" not in text
    assert text.count('<img src="thumbs/') == len(PAGES) - 1
    assert f'src="{thumbnail_name(SHA["scan"], 1)}"' in text
    assert text.count('class="ph">no thumbnail') == 1
    assert "no manifest.json" in text
    assert text.count('<article class="page') == CARDS


def test_report_scales(tmp_path):
    out = tmp_path / "big"
    records = [rec(f"docs/d{d:03}.pdf", hashlib.sha256(str(d).encode()).hexdigest(), p,
                   answer=f"# Page {p}\n\n" + "Some text with **bold** words. " * 40,
                   status="failed" if p % 50 == 0 else "ok")
               for d in range(100) for p in range(1, 51)]
    write_run(out, records)
    text = Path(build_report(str(out))).read_text(encoding="utf-8")  # its time: bench/bench_grounding.py
    assert text.count('<article class="page') == 5000 + 5  # + the manifest's inputs without records


# --------------------------------------------------------------------------- headless Chromium

@pytest.fixture(scope="module")
def browser():
    if os.environ.get("PIXTRACT_SKIP_BROWSER") == "1":
        pytest.skip("PIXTRACT_SKIP_BROWSER=1")
    exe = find_chromium()
    if not exe:
        pytest.fail("Chromium is not installed: run `make test` (it installs the Debian package "
                    "`chromium`), or set PIXTRACT_SKIP_BROWSER=1 to skip the browser tests", pytrace=False)
    with Browser(exe, width=1280, height=900) as b:
        yield b


def visible_pages(b: Browser) -> int:
    return b.eval("[...document.querySelectorAll('.page')].filter(p => p.offsetParent !== null).length")


def check_report_in_browser(b: Browser, path: str, shots: Path) -> None:
    b.console.clear()
    b.goto(Path(path).as_uri())
    assert b.eval("document.readyState") == "complete"
    # every page is there, in document order
    cards = b.eval("[...document.querySelectorAll('.page')].map(p => p.closest('.doc').dataset.doc + '#' + p.dataset.page)")
    assert cards == [f"{SCAN}#1", f"{SCAN}#2", f"{SCAN}#3", "charts/sales.png#1", "forms/invoice.pdf#1",
                     "forms/invoice.pdf#2", "hostile.pdf#1", "corrupt.pdf#"]
    assert visible_pages(b) == CARDS
    assert b.eval("document.getElementById('visible-count').textContent") == f"{CARDS} of {CARDS} shown"
    # the injected markup stayed text: nothing ran, no element was made from it
    assert b.eval("typeof window.__pwned") == "undefined"
    assert b.eval("document.scripts.length") == 1
    assert b.eval("document.querySelectorAll('img[onerror], .md img, .md script, pre script').length") == 0
    hostile = b.eval("document.getElementById('d4-p1').querySelector('.md').textContent")
    assert HOSTILE in hostile
    assert "window.__pwned=3" in b.eval("document.querySelector('pre.json').textContent")
    # Markdown and chart tables became real tables; badges carry route and status
    assert b.eval("document.querySelectorAll('#d1-p1 .md table td').length") == 6
    assert b.eval("[...document.querySelectorAll('table.chart tbody tr')].length") == 3
    assert b.eval("document.querySelector('#d1-p2 .b.r-fallback').textContent") == "text-fallback"
    assert "rate limited" in b.eval("document.querySelector('#d1-p2 .note.fb').textContent")
    assert b.eval("document.querySelector('#d2-p1 .flags').textContent") == "numbers not in text layer: 4,250.00"
    assert b.eval("document.querySelector('#d2-p1 .ag-bad').textContent") == "agreement 60%"
    # thumbnails loaded (the CSP lets data: and same-folder images through)
    loaded = b.eval("[...document.querySelectorAll('.thumb img')].map(i => { i.loading = 'eager'; return i.src.slice(0, 5); })")
    assert len(loaded) in (len(PAGES), len(PAGES) - 1)
    b.eval("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    assert b.eval("[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)")
    shots.mkdir(exist_ok=True)
    b.screenshot(str(shots / "top.png"))

    # filters: real clicks on the checkboxes
    b.click("#f-failed")
    assert visible_pages(b) == FAILED
    assert b.eval("[...document.querySelectorAll('.page')].filter(p => p.offsetParent).map(p => p.id)") == [
        "d1-p3", "d5-doc"]
    assert b.eval("[...document.querySelectorAll('.doc')].filter(d => d.offsetParent).length") == 2
    b.click("#f-flagged")  # several filters: pages matching any of them
    assert visible_pages(b) == FAILED + FLAGGED
    b.click("#f-failed")
    assert visible_pages(b) == FLAGGED
    b.click("#f-flagged")
    b.click("#f-fallback")
    assert visible_pages(b) == FALLBACK
    assert b.eval("document.getElementById('visible-count').textContent") == f"{FALLBACK} of {CARDS} shown"
    b.screenshot(str(shots / "fallback.png"))
    b.click("#f-clear")
    assert visible_pages(b) == CARDS
    assert b.eval("typeof window.__pwned") == "undefined"
    refused = [m for m in b.console if "Refused" in m or "Content Security Policy" in m]
    assert not refused, refused


def assert_good_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with Image.open(path) as im:
        assert im.size == (1280, 900)
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100  # not a blank page
        assert len(im.convert("RGB").getcolors(1 << 20) or []) > 50


def test_report_in_chromium_embedded_thumbnails(tmp_path, thumbs, browser):
    out = tmp_path / "run"
    write_run(out)
    check_report_in_browser(browser, build_report(str(out), thumbnails=thumbs), tmp_path / "shots")
    for name in ("top.png", "fallback.png"):
        assert_good_png(tmp_path / "shots" / name)


def test_report_in_chromium_thumbnail_files(tmp_path, thumbs, browser):
    out = tmp_path / "run"
    write_run(out)
    for sha, page in PAGES:
        save_thumbnail(str(out), sha, page, make_thumbnail(page_image(f"{sha[:6]} page {page}", (31, 79, 160))))
    path = build_report(str(out))
    assert "data:image" not in Path(path).read_text(encoding="utf-8")
    check_report_in_browser(browser, path, tmp_path / "shots")
    assert_good_png(tmp_path / "shots" / "top.png")
    if os.environ.get("PIXTRACT_KEEP_SHOTS"):  # for a human look: PIXTRACT_KEEP_SHOTS=/some/dir
        import shutil

        shutil.copytree(tmp_path / "shots", os.environ["PIXTRACT_KEEP_SHOTS"], dirs_exist_ok=True)


def test_report_csp_blocks_inline_code(tmp_path, browser):
    """Defence in depth: even markup that got into the DOM could not run script."""
    out = tmp_path / "run"
    write_run(out)
    browser.goto(Path(build_report(str(out))).as_uri())
    browser.console.clear()
    browser.eval("""(() => {
        document.body.insertAdjacentHTML('beforeend', '<img src="x-missing.png" onerror="window.__csp = 1">');
        const s = document.createElement('script'); s.textContent = 'window.__csp = 2';
        document.body.appendChild(s);
    })()""")
    browser.eval("new Promise(r => setTimeout(r, 300))")
    assert browser.eval("typeof window.__csp") == "undefined"
    assert any("Content Security Policy" in m for m in browser.console), browser.console


def test_fallback_depends_on_profile(tmp_path):
    local = [rec("a.pdf", SHA["scan"], 1, route="local-ocr", answer="x"),
             rec("a.pdf", SHA["scan"], 2, route="local-text", answer="y", fallback_reason="no text layer")]
    for profile, expected in (("local", 1), ("mistral", 2)):
        out = tmp_path / profile
        write_run(out, local, profile=profile)
        text = Path(build_report(str(out))).read_text(encoding="utf-8")
        assert text.count(' data-fallback=""') == expected, profile
        assert f"fallen back ({expected})" in text


# --------------------------------------------------------------------------- grounding in the report

def _grounded_run(out: Path) -> dict:
    """A one-page extraction whose fields were located on a 612x792 pt page; one was not."""
    from pixtract.layout import page_image_name

    sha = SHA["form"]
    items = [
        {"kind": "field", "path": "$.number", "value": "INV-7", "located": True, "page": 1,
         "boxes": [[61.2, 79.2, 183.6, 118.8]], "match": "INV-7", "score": 1.0},
        {"kind": "field", "path": "$.total", "value": "99.5", "located": True, "page": 1,
         "boxes": [[306.0, 396.0, 459.0, 435.6], [306.0, 440.0, 400.0, 470.0]], "match": "99.50", "score": 1.0},
        {"kind": "field", "path": "$.vat", "value": "GB999 <b>x</b>", "located": False, "page": None,
         "boxes": [], "match": None, "score": 0.0},
    ]
    r = rec("forms/invoice.pdf", sha, 1, task="extract", schema="invoice", data={"number": "INV-7"},
            image={"width": 791, "height": 1024, "bytes": 1000, "mime": "image/png"},
            grounding={"located": 2, "total": 3, "share": 0.667, "words": "text-layer", "unit": "pt",
                       "sizes": {"1": [612.0, 792.0]}, "items": items})
    write_run(out, [r, rec("hostile.pdf", SHA["hostile"], 1, answer="plain")])
    save_thumbnail(str(out), sha, 1, make_thumbnail(page_image("invoice", (30, 130, 76))))
    (out / "pages").mkdir(exist_ok=True)
    (out / page_image_name(sha, 1, "image/png")).write_bytes(page_image("invoice", (30, 130, 76)))
    return r


def test_report_lists_grounded_items_and_marks_unlocated_ones(tmp_path):
    out = tmp_path / "run"
    _grounded_run(out)
    text = Path(build_report(str(out))).read_text(encoding="utf-8")
    assert text.count('class="bx ') == 3  # one box per printed line of the located fields
    assert 'data-full="pages/' in text and "not found on the page" in text
    assert "GB999 &lt;b&gt;x&lt;/b&gt;" in text and "<b>x</b>" not in text
    assert 'data-unlocated=""' in text and "not found on the page (1)" in text


def test_clicking_a_field_highlights_its_box_on_the_page(tmp_path, browser):
    out = tmp_path / "run"
    r = _grounded_run(out)
    shots = tmp_path / "shots"
    shots.mkdir()
    browser.console.clear()
    browser.goto(Path(build_report(str(out))).as_uri())
    # the second field: $.total, two lines
    browser.click('.gi[data-g$="-2"]', until="document.querySelector('.gi.sel[data-g$=\"-2\"]')")
    got = browser.eval("""(() => {
        const img = document.querySelector('#d3-p1 .thumb img').getBoundingClientRect();
        return [...document.querySelectorAll('#d3-p1 .ov .bx.hl')].map(b => {
            const r = b.getBoundingClientRect();
            return [(r.left - img.left) / img.width, (r.top - img.top) / img.height,
                    (r.right - img.left) / img.width, (r.bottom - img.top) / img.height];
        });
    })()""")
    want = [[b[0] / 612, b[1] / 792, b[2] / 612, b[3] / 792] for b in r["grounding"]["items"][1]["boxes"]]
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        # the highlight's border is drawn inside its box: within 2 px of a ~226-px-wide thumbnail
        assert all(abs(a - b) < 0.01 for a, b in zip(g, w)), (got, want)
    assert browser.eval("document.querySelector('.gi.sel .gk').textContent") == "$.total"
    assert browser.eval("document.querySelector('.gi.miss .gv').textContent") == "GB999 <b>x</b>"
    browser.screenshot(str(shots / "field.png"))
    # the viewer: the page image the model saw, the same box highlighted, zoom doubles its size
    browser.click("#d3-p1 .thumb .sheet", until="!document.getElementById('viewer').hidden")
    browser.eval("Promise.all([...document.images].map(i => i.decode().catch(() => null)))")
    assert browser.eval("document.getElementById('viewer').hidden") is False
    assert browser.eval("document.querySelector('#viewer img').getAttribute('src')").startswith("pages/")
    assert browser.eval("document.querySelector('#viewer img').naturalWidth") == 791
    before = browser.eval("document.querySelector('#viewer .bx.hl').getBoundingClientRect().width")
    browser.click('#viewer button[data-act="in"]')
    after = browser.eval("document.querySelector('#viewer .bx.hl').getBoundingClientRect().width")
    assert after == pytest.approx(before * 1.25, rel=0.02)
    browser.screenshot(str(shots / "viewer.png"))
    browser.eval("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    assert browser.eval("document.getElementById('viewer').hidden") is True
    # keyboard: j/k go page by page, n/p to the pages that need a look (failed, flagged, unlocated)
    def key(k: str) -> str:
        browser.eval(f"document.dispatchEvent(new KeyboardEvent('keydown', {{key: '{k}'}}))")
        return browser.eval("document.querySelector('.page.cur').id")

    assert browser.eval("document.querySelector('.page.cur').id") == "d3-p1"  # the field's page
    assert [key("n"), key("k"), key("p"), key("j")] == ["d5-doc", "d4-p1", "d3-p1", "d4-p1"]
    assert_good_png(shots / "viewer.png")
    refused = [m for m in browser.console if "Refused" in m or "Content Security Policy" in m]
    assert not refused, refused
    if os.environ.get("PIXTRACT_KEEP_SHOTS"):
        import shutil

        shutil.copytree(shots, os.environ["PIXTRACT_KEEP_SHOTS"], dirs_exist_ok=True)


# --------------------------------------------------------------------------- the full-resolution page

def _answered_pages(out: Path, pdf: Path, review_dpi: int) -> list[dict]:
    """A real PDF answered by the local engine through the run's page worker (MuPDF in worker
    processes, page files written under out/pages), its records in out/results.jsonl."""
    import threading

    from pixtract.config import RunConfig
    from pixtract.discover import discover
    from pixtract.plan import plan_document
    from pixtract.prefetch import router_for_run
    from pixtract.workers import WorkerSettings, running_workers

    cfg = RunConfig(inputs=[str(pdf)], out=str(out), review_dpi=review_dpi)
    out.mkdir(parents=True)
    with running_workers(WorkerSettings(1, 60.0, 4096)):
        router = router_for_run(cfg, threading.Event(), str(out))
        plan = plan_document(next(iter(discover([str(pdf)]))), cfg)
        records = [r.to_json() for n in range(1, plan.pages + 1) for r in router.answer_page(plan, n)]
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return records


def test_the_viewer_shows_the_full_resolution_page_with_boxes_over_their_words(tmp_path, browser, samples):
    out = tmp_path / "run"
    records = _answered_pages(out, samples / "report.pdf", review_dpi=200)
    r = next(r for r in records if r["page"] == 2)
    item = r["grounding"]["items"][0]  # the heading "2. Regional Results"
    assert item["located"] and item["type"] == "heading"
    pw, ph = r["grounding"]["sizes"]["2"]
    full = out / "pages" / f"{r['sha256'][:16]}-p2.full.png"
    model = Image.open(out / "pages" / f"{r['sha256'][:16]}-p2.png")
    with Image.open(full) as im:
        assert im.width == round(pw * 200 / 72) and im.width > 1.5 * model.width  # 200 DPI, not 1024 px
        # the located box holds the heading's ink in the full-resolution pixels
        x0, y0, x1, y1 = item["boxes"][0]
        sx, sy = im.width / pw, im.height / ph
        ink = im.convert("L").point(lambda v: 255 if v < 128 else 0).getbbox()
        crop = im.convert("L").crop((round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
        inside = crop.point(lambda v: 255 if v < 128 else 0).getbbox()
        assert ink and inside, "no ink under the heading's box"
        bx0, by0, bx1, by1 = (inside[0] / sx + x0, inside[1] / sy + y0, inside[2] / sx + x0, inside[3] / sy + y0)
        assert abs(bx0 - x0) < 3 and abs(bx1 - x1) < 3 and by0 - y0 < 6 and y1 - by1 < 6, (inside, item["boxes"])

    from pixtract.layout import document_layout

    layout = document_layout("report.pdf", r["sha256"], 3, [], str(out))
    assert layout["pages"][1]["full_image"] == f"pages/{full.name}"
    browser.goto(Path(build_report(str(out))).as_uri())
    assert browser.eval("document.querySelectorAll('#viewer img[src]').length") == 0  # nothing loaded yet
    browser.click('.gi[data-g="d1-p2-1"]', until="document.querySelector('.gi.sel[data-g=\"d1-p2-1\"]')")
    browser.click("#d1-p2 .thumb .sheet", until="!document.getElementById('viewer').hidden")
    browser.eval("document.querySelector('#viewer img').decode()")
    assert browser.eval("document.querySelector('#viewer img').getAttribute('src')") == f"pages/{full.name}"
    assert browser.eval("document.querySelector('#viewer img').naturalWidth") == Image.open(full).width
    for zoom in range(3):  # fit, then 1.25x and 1.5625x: the box follows the image
        got = browser.eval("""(() => {
            const img = document.querySelector('#viewer img').getBoundingClientRect();
            const r = document.querySelector('#viewer .bx.hl').getBoundingClientRect();
            return [(r.left - img.left) / img.width, (r.top - img.top) / img.height,
                    (r.right - img.left) / img.width, (r.bottom - img.top) / img.height, img.width];
        })()""")
        want = [x0 / pw, y0 / ph, x1 / pw, y1 / ph]
        assert all(abs(a - b) * got[4] < 2.5 for a, b in zip(got, want)), (zoom, got, want)
        browser.click('#viewer button[data-act="in"]')
    browser.screenshot(str(tmp_path / "viewer-full.png"))
    assert_good_png(tmp_path / "viewer-full.png")


def test_without_review_images_the_viewer_shows_the_model_image(tmp_path, samples):
    out = tmp_path / "run"
    from pixtract.layout import document_layout

    r = _answered_pages(out, samples / "report.pdf", review_dpi=0)[0]
    assert not list((out / "pages").glob("*.full.*"))
    assert all("full_image" not in p for p in document_layout("report.pdf", r["sha256"], 3, [], str(out))["pages"])
    text = Path(build_report(str(out))).read_text(encoding="utf-8")
    assert re.search(r'data-full="pages/[0-9a-f]{16}-p2\.png"', text)
