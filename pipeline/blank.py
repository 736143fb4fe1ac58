"""Is a page blank? Decided from the rendered page image, so that an empty answer is only
``ok`` when the page has no ink, and such a page costs no paid request.

Only pages without a real text layer are looked at (a text layer is ink). The image is decoded
at about half size (JPEG decodes straight to it), and the page counts as blank when fewer than
INK_SHARE of its pixels differ clearly from the page's own background: a lone page number
still counts as ink, scanner dust and JPEG noise do not.
"""

from __future__ import annotations

import io

from PIL import Image

DECODE_EDGE = 512  # px: enough to see a line of small print on a 1024-px page image
INK_LEVEL = 96  # grey levels away from the background that count as ink
INK_SHARE = 0.0002  # of the pixels: ~50 px at 512 x 362 (one small digit is about 40-60)


def is_blank(image: bytes) -> bool:
    """True when the encoded page image has (almost) no ink."""
    with Image.open(io.BytesIO(image)) as im:
        im.draft("L", (DECODE_EDGE, DECODE_EDGE))  # JPEG: decode at a fraction of the size
        grey = im.convert("L")
    if max(grey.size) > DECODE_EDGE:
        grey = grey.reduce(max(1, max(grey.size) // DECODE_EDGE))
    hist = grey.histogram()
    background = max(range(256), key=hist.__getitem__)
    ink = sum(n for level, n in enumerate(hist) if abs(level - background) >= INK_LEVEL)
    return ink < INK_SHARE * grey.size[0] * grey.size[1]
