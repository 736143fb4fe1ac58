"""The local engine (profile ``local``): a page's text layer as Markdown, else OCR.

Born-digital pages go through pymupdf4llm (layout analysis from PyMuPDF's authors: tables as
Markdown tables, reading order, headers and footers); scanned pages and images are turned
upright and OCRed (Tesseract by default, or RapidOCR; see pixtract.ocr). Both then get the same
clean-up: accents composed, TeX quotes and ligatures normalised, hyphenated line breaks joined,
running lines dropped (across pages, and by pattern on every page: pixtract.textclean).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from dataclasses import dataclass, field

from . import markdown, mupdf, ocr, orientation, pagewords, render, textclean, textlayer
from .errors import WORKER_FAILURES, InputError, OCRError
from .records import ROUTE_LOCAL_OCR, ROUTE_LOCAL_TEXT, Document, Page, PageWords, RenderSettings
from .workers import isolated

LOCAL_MODEL = "pixtract-local"
RUNNING_SAMPLE = 40


@dataclass
class LocalAnswer:
    markdown: str
    route: str  # local-text or local-ocr
    model: str
    rotation: int = 0  # degrees clockwise the page image was turned before OCR
    flags: list[str] = field(default_factory=list)  # e.g. "rotated-90", "ocr-forced"
    words: PageWords | None = None  # OCR's words in page coordinates, when the page was OCRed


def transcribe(
    page: Page, settings: RenderSettings, running: set[str] | None = None, password: str | None = None,
    *, options: ocr.OcrOptions | None = None,
) -> LocalAnswer:
    """Markdown of one page, from the text layer when it has real text, else from OCR."""
    options = options or ocr.OcrOptions()
    md = ""
    flags: list[str] = []
    use_layer = page.document.kind == "pdf" and page.has_text_layer
    if use_layer and options.force:
        use_layer, flags = False, ["ocr-forced"]
    elif page.document.kind == "pdf" and page.text.strip():
        problem = textlayer.layer_problem(layer_facts(page.document, page.number, password))
        if problem:  # a layer that would mislead: read the page image instead, and say so
            use_layer, flags = False, [f"text-layer-{problem}"]
    if use_layer:
        md = text_layer_markdown(page.document, page.number, password)
        route, model = ROUTE_LOCAL_TEXT, f"{LOCAL_MODEL}/pymupdf4llm"
        if not md.strip():
            # pymupdf4llm found nothing it could lay out (e.g. a 200-inch page): the plain text
            # layer is still far better than OCR of a page shrunk to 4200 px.
            md, model = page.text, f"{LOCAL_MODEL}/text-layer"
        else:
            md = with_image_text(md, page, settings, password, options)
    rotation = 0
    words = None
    if not md.strip():  # no text layer, or one that yields nothing (e.g. invisible text)
        image = render.ocr_image(page.document, page.number, settings, password)
        read = ocr_page(image, options)
        md, rotation = markdown.ocr_to_markdown(read.lines), read.rotation
        words = pagewords.ocr_words(page, read.lines, rotation, _image_size(image))
        route, model = ROUTE_LOCAL_OCR, f"{LOCAL_MODEL}/{options.effective_engine}"
        if rotation:
            flags.append(f"rotated-{rotation}")
        if not md.strip() and page.text.strip() and flags:  # OCR read nothing: the doubtful layer beats no text
            md, route, model = page.text, ROUTE_LOCAL_TEXT, f"{LOCAL_MODEL}/text-layer"
            flags.append("ocr-empty")
    md = markdown.drop_running_lines(markdown.dehyphenate(textclean.clean_text(md)), running or set())
    md = textclean.drop_page_furniture(md)
    return LocalAnswer(markdown.tidy(md), route, model, rotation, flags, words)


def _image_size(image: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(image)) as img:  # reads the header only
        return img.size


def ocr_page(image: bytes, options: ocr.OcrOptions) -> orientation.UprightRead:
    """OCR lines of an encoded page image, read upright when ``options.upright``."""
    from PIL import Image

    engine, lang = options.effective_engine, options.lang

    def read(img) -> list[ocr.OcrLine]:
        if engine == ocr.ENGINE_RAPIDOCR:
            from .ocr_rapid import rapid_lines

            return rapid_lines(img)
        if img is original:
            return ocr.tesseract_lines(image, lang=lang)
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=1)
        return ocr.tesseract_lines(buf.getvalue(), lang=lang)

    original = img = Image.open(io.BytesIO(image))
    img.load()
    if not options.upright:
        return orientation.UprightRead(read(img), 0)
    recognise = None
    if engine == ocr.ENGINE_RAPIDOCR:
        from .ocr_rapid import recognise_score as recognise
    return orientation.read_upright(img, read, recognise)


def upright_turn(page: Page, options: ocr.OcrOptions | None = None) -> int:
    """Degrees clockwise that turn a scan or photo upright (0 when it reads upright already,
    has a real text layer, or ``options.upright`` is off): the local engine's upright check run
    on the image a vision model gets, so the model sees the page the right way up."""
    from PIL import Image

    options = options or ocr.OcrOptions()
    if not options.upright or page.has_text_layer:
        return 0
    with Image.open(io.BytesIO(page.image)) as img:
        if orientation.plainly_upright(img):
            return 0
    try:
        return ocr_page(page.image, options).rotation
    except OCRError:  # no OCR engine here: the page goes as it came
        return 0


IMAGE_MIN_PT = 40  # images smaller than this on either side hold no readable text (icons, bullets)
IMAGE_MIN_SHARE = 0.015  # ...or covering less of the page than this
IMAGE_MAX_SHARE = 0.8  # an image this big is a scan: the page has no real text layer then
IMAGE_MAX = 8  # images OCRed per page at most
IMAGE_DPI = 200


def with_image_text(md: str, page: Page, settings: RenderSettings, password: str | None,
                    options: ocr.OcrOptions) -> str:
    """A born-digital page's Markdown plus the text inside its pictures (chart labels, banners
    drawn as images, screenshots), which no text layer holds. Lines already in ``md`` are left
    out, so an image of text that is also in the layer adds nothing."""
    regions = image_regions(page.document, page.number, password)
    if not regions:
        return md
    have = _squash(md)
    blocks = []
    for png in regions:
        lines = ocr_page(png, dataclasses.replace(options, upright=False)).lines
        new = [ln.text for ln in lines if ln.conf >= 0.7 and _squash(ln.text) not in have]
        if new:
            blocks.append(" ".join(new))
    return md.rstrip() + "\n\n" + "\n\n".join(blocks) + "\n" if blocks else md


def image_regions(doc: Document, number: int, password: str | None = None) -> list[bytes]:
    """Greyscale PNGs of the page areas where mid-sized images are drawn (with anything drawn
    over them), largest first; overlapping placements count once."""
    import pymupdf

    with mupdf.open_pdf(doc, password) as pdf:
        page = pdf.load_page(number - 1)
        prect = page.rect
        area = max(prect.width * prect.height, 1e-6)
        rects: list = []
        for info in page.get_image_info():
            r = pymupdf.Rect(info["bbox"]) & prect
            if r.is_empty or min(r.width, r.height) < IMAGE_MIN_PT:
                continue
            if not IMAGE_MIN_SHARE <= r.width * r.height / area <= IMAGE_MAX_SHARE:
                continue
            if any((r & o).get_area() > 0.5 * min(r.get_area(), o.get_area()) for o in rects):
                continue
            rects.append(r)
        rects.sort(key=lambda r: r.get_area(), reverse=True)
        out = []
        for r in rects[:IMAGE_MAX]:
            pix = page.get_pixmap(clip=r, dpi=IMAGE_DPI, colorspace=pymupdf.csGRAY, alpha=False)
            out.append(pix.tobytes("png"))
    return out


@isolated("page")
def layer_facts(doc: Document, number: int, password: str | None = None) -> textlayer.LayerFacts:
    """The facts ``textlayer.layer_problem`` judges a page's text layer by: its characters and
    lines in content order (MuPDF's dict, no sorting), and, glyph by glyph in paint order (text
    trace and paint log), the text drawn invisibly or painted over by a later image."""
    import pymupdf

    with mupdf.open_pdf(doc, password) as pdf:
        page = pdf.load_page(number - 1)
        bounds = page.rect * page.derotation_matrix  # the trace and the log are in unrotated space
        parea = abs(bounds) or 1.0
        chars: list[str] = []
        lines: list[tuple[float, int]] = []
        for block in page.get_text("dict", flags=0)["blocks"]:
            for line in block.get("lines", ()):
                text = "".join(span["text"] for span in line["spans"])
                if text.strip():
                    chars.append(text)
                    lines.append((round(line["bbox"][3], 1), len(text.strip())))
        facts = textlayer.LayerFacts("\n".join(chars), lines)
        # Paint order: spans from the text trace, images from the paint log (same numbering).
        images = [(n, pymupdf.Rect(box) & bounds) for n, (kind, box) in enumerate(page.get_bboxlog())
                  if kind == "fill-image"]
        images = [(n, r) for n, r in images if not r.is_empty]
        facts.image_share = sum(abs(r) for _, r in images) / parea
        images = sorted((x for x in images if abs(x[1]) >= 0.01 * parea), key=lambda x: -abs(x[1]))[:50]
        px0, py0, px1, py1 = bounds
        boxes = [(n, tuple(r)) for n, r in images]
        for span in page.get_texttrace():  # plain floats: a page can have tens of thousands of glyphs
            hide = [b for n, b in boxes if n > span["seqno"]]
            invisible = span["type"] == 3 or span.get("opacity", 1) == 0
            for ch in span["chars"]:
                x0, y0, x1, y1 = ch[3]
                x0, y0, x1, y1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
                if x1 <= x0 or y1 <= y0:
                    continue
                a = (x1 - x0) * (y1 - y0)
                facts.text_area += a
                if invisible:
                    facts.invisible_area += a
                elif any(b[0] <= x0 and b[1] <= y0 and x1 <= b[2] and y1 <= b[3] for b in hide):
                    facts.hidden_area += a
        facts.image_share = min(facts.image_share, 1.0)
        return facts


def _squash(text: str) -> str:
    return "".join(text.split()).casefold()


def text_layer_markdown(doc: Document, number: int, password: str | None = None) -> str:
    """pymupdf4llm's Markdown of one page ("" when its layout analysis fails on the page, or
    stalls or kills its worker: the caller then takes the plain text layer)."""
    try:
        return _layout_markdown(doc, number, password)
    except WORKER_FAILURES:
        return ""


@isolated("page")
def _layout_markdown(doc: Document, number: int, password: str | None = None) -> str:
    with mupdf.open_pdf(doc, password) as pdf:
        # pymupdf4llm prints parser notes on stdout; keep our output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                md = _to_markdown(pdf, number)
            except Exception:  # a page its layout model cannot handle: the caller falls back
                return ""
        if md.strip():
            md = textclean.apply_layer_fixes(md, _layer_fixes(pdf.load_page(number - 1)))
        return md


def _layer_fixes(page) -> textlayer.LayerFixes:
    """What the page's glyphs say that its Markdown lost: spaces, drop caps, whole words."""
    fixes = textlayer.LayerFixes()
    lines = []  # (glyphs, top, x0, text)
    for block in page.get_text("rawdict", flags=0)["blocks"]:
        for line in block.get("lines", ()):
            glyphs = [(ch["c"], ch["bbox"][0], ch["bbox"][2], span["size"]) for span in line["spans"] for ch in span["chars"]]
            text = "".join(g[0] for g in glyphs)
            if text.strip():
                lines.append((glyphs, line["bbox"][1], line["bbox"][0], text))
    if not lines:
        return fixes
    sizes = sorted(g[3] for glyphs, *_ in lines for g in glyphs)
    body = sizes[len(sizes) // 2]
    for i, (glyphs, top, _x0, text) in enumerate(lines):
        fixes.splits.update(textlayer.lost_spaces(glyphs))
        ink = [g for g in glyphs if not g[0].isspace()]
        if len(ink) == 1 and ink[0][3] >= 1.8 * body:
            others = [(x0, t, tx.strip()) for k, (_, t, x0, tx) in enumerate(lines) if k != i]
            cap = textlayer.drop_cap(ink, top, others)
            if cap:
                fixes.drop_caps.append(cap)
    fixes.words = {w[4].strip(".,;:()[]\"'") for w in page.get_text("words")}
    return fixes


def _to_markdown(pdf, number: int) -> str:
    import pymupdf.layout  # noqa: F401 - before pymupdf4llm, which uses it when present
    import pymupdf4llm

    return pymupdf4llm.to_markdown(
        pdf,
        pages=[number - 1],
        header=False,
        footer=False,
        use_ocr=False,
        show_progress=False,
    )


@isolated("page")
def document_running_lines(doc: Document, password: str | None = None) -> set[str]:
    """Running header/footer keys of a PDF, from the first and last lines of its pages."""
    if doc.kind != "pdf":
        return set()
    try:
        return _running_lines(doc, password)
    except InputError:
        raise
    except Exception:  # a page MuPDF cannot read: it fails on its own later, with its own record
        return set()


def _running_lines(doc: Document, password: str | None) -> set[str]:
    from .textlayer import running_lines

    with mupdf.open_pdf(doc, password) as pdf:
        step = max(1, pdf.page_count // RUNNING_SAMPLE)  # a sample is enough for long documents
        pages = []
        for i in range(0, pdf.page_count, step):
            page = pdf.load_page(i)
            try:
                mupdf.check_complexity(pdf, page, f"{doc.path} page {i + 1}")
            except InputError:
                continue  # this page fails on its own when rendered; the rest still count
            text = mupdf.page_text(page)
            pages.append([ln for ln in text.splitlines() if ln.strip()])
    return running_lines(pages)
