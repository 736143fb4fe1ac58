"""Scans and photos are turned upright before a vision model sees them, and the record says so
(pixtract.route.Router._upright, pixtract.local.upright_turn, pixtract.orientation)."""

import base64
import dataclasses
import io

import pytest
from PIL import Image

from pixtract import local, orientation
from pixtract.discover import identify
from pixtract.records import RenderSettings
from pixtract.render import render_page
from pixtract.route import Router
from tests.emulator.helpers import FAKE_KEY
from tests.test_route import chat_requests, make_cfg, plan


@pytest.fixture(autouse=True)
def fresh(emu, monkeypatch):
    emu.reset()
    emu.configure(log_secrets=True)  # the whole body, image data included, stays in the log
    monkeypatch.setenv("MISTRAL_API_KEY", FAKE_KEY)


def sent_image(emu) -> Image.Image:
    [req] = chat_requests(emu)
    parts = req["body"]["messages"][1]["content"]
    url = next(p["image_url"]["url"] if isinstance(p["image_url"], dict) else p["image_url"]
               for p in parts if p.get("type") == "image_url")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_sideways_receipt_goes_to_the_model_upright(emu, tmp_path, real):
    """zerox 0019.png: a receipt photographed sideways (landscape image, text running down)."""
    with Image.open(real / "zerox_0019.png") as src:
        assert src.width > src.height
    [rec] = Router(make_cfg(emu, tmp_path)).answer_page(plan(real / "zerox_0019.png"), 1)
    assert rec.status == "ok" and rec.route == "vision"
    assert rec.flags[:1] == ["rotated-90"]
    img = sent_image(emu)
    assert img.height > img.width  # portrait: the receipt stands upright
    assert (rec.image["width"], rec.image["height"]) == img.size


def test_upright_scan_is_sent_as_it_is_without_an_ocr_pass(emu, tmp_path, samples, monkeypatch):
    def no_ocr(*a, **k):
        raise AssertionError("an upright page needs no OCR to know it")

    monkeypatch.setattr(local, "ocr_page", no_ocr)
    [rec] = Router(make_cfg(emu, tmp_path)).answer_page(plan(samples / "scanned.pdf"), 1)
    assert rec.route == "vision" and not [f for f in rec.flags if f.startswith("rotated")]


def test_no_upright_option_sends_the_page_as_it_came(emu, tmp_path, real):
    cfg = make_cfg(emu, tmp_path)
    cfg.ocr = dataclasses.replace(cfg.ocr, upright=False)
    [rec] = Router(cfg).answer_page(plan(real / "zerox_0019.png"), 1)
    assert not [f for f in rec.flags if f.startswith("rotated")]
    img = sent_image(emu)
    assert img.width > img.height


@pytest.mark.parametrize("turn, plain", [(0, True), (180, False), (90, False), (270, False)])
def test_plainly_upright_pixel_test(real, turn, plain):
    """linn.pdf's brochure scan as rendered: upright it passes the quick test; upside down or
    sideways it does not (those pages get the OCR-based check)."""
    page = render_page(identify(str(real / "linn.pdf")), 1, RenderSettings())
    img = Image.open(io.BytesIO(page.image)).rotate(-turn, expand=True)
    assert orientation.plainly_upright(img) is plain
