"""Every benchmark in bench/ on a tiny input, so they do not rot. The pixtract parts always run;
pdftoppm, pypdfium2, matplotlib and zerox parts are skipped when those are not installed
(``make bench`` installs them). Nothing is written under bench/: results, plots and generated
inputs go to a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402

pytestmark = pytest.mark.prefect


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-work")


@pytest.fixture(autouse=True)
def isolated(work, monkeypatch):
    """Generated PDFs and the Prefect home of the bench runs live in the temporary folder."""
    monkeypatch.setattr(common, "WORK", work)
    monkeypatch.setattr(common, "RESULTS", work / "results")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_render_benchmark(work):
    import bench_render

    res = bench_render.run(pages=3, results_dir=work / "results", fixtures=False, crop_dir=work)
    gen = res["summary"]["generated"]
    assert gen["pixtract"]["pages"] == 3 and gen["pixtract"]["cpu_ms_per_page"] > 0
    assert gen["pixtract_workers"]["pages"] == 3 and gen["pixtract_workers"]["cpu_ms_per_page"] > 0
    assert "pixtract_proposed" not in gen and res["render_page_steps_pages"] == 3
    assert all(v > 0 for v in res["render_page_png_kb_per_page"].values())
    assert res["documents"][0]["pixtract"]["last_page_size"][:2] == [792, 1024]
    assert (work / "fineprint_pixtract.png").exists() and res["fine_print"]["font_px"] > 7
    review = res["review"]["documents"][0]  # the report's page images: Letter at 200 DPI
    assert review["pages"] == 3 and review["last_page_size"] == [1700, 2200, "image/png"]
    assert res["review"]["generated"]["kb_per_page"] > gen["pixtract"]["kb_per_page"]
    if shutil.which("pdftoppm"):
        assert gen["pdftoppm"]["pages"] == 3 and "pixtract/pdftoppm" in gen["ratios"]
        assert res["targets"]["measured"] == gen["ratios"]["pixtract_workers/pdftoppm"]["cpu"]
        assert res["documents"][0]["pdftoppm"]["last_page_size"][:2] == [792, 1024]
    if importlib.util.find_spec("pypdfium2"):
        assert gen["pdfium_pillow_default"]["pages"] == 3
    assert _load(work / "results" / "render.json")["machine"]["nproc"] >= 1


def test_shipped_png_is_lossless():
    import io

    import pymupdf
    from PIL import Image

    from pixtract.mupdf import page_text
    from pixtract.render import png_from_samples

    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 72), "Fine print 6 pt", fontsize=6)
    page.draw_rect(pymupdf.Rect(100, 100, 200, 150), color=(1, 0, 0), fill=(0, 0, 1))
    for colorspace, mode in ((pymupdf.csRGB, "RGB"), (pymupdf.csGRAY, "L")):
        pix = page.get_pixmap(dpi=50, colorspace=colorspace, alpha=False)
        data = png_from_samples(pix.samples, pix.width, pix.height, pix.n)
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == mode and im.size == (pix.width, pix.height) and im.tobytes() == pix.samples
    assert "Fine print 6 pt" in page_text(page)


def test_cost_benchmark(work):
    import bench_cost

    res = bench_cost.run(pages=2, results_dir=work / "results")
    rows = {(r["task"], r["rendering"]): r for r in res["rows"]}
    assert set(t for t, _ in rows) == {"transcribe", "ask", "extract", "chart"}
    letter = rows[("transcribe", "pixtract")]
    assert letter["image_tokens_per_1000"] == 3264 * 1000  # 791x1024 or 792x1024 -> 50x64 patches
    assert letter["total_usd_per_1000"] > letter["input_usd_per_1000"] > 0
    label = next(s for s in res["image_tokens_by_page_size"] if s["page"].startswith("label"))
    assert label["pixtract_tokens"] < label["zerox_tokens"]


def test_ocr_route_cost_benchmark(work):
    import bench_ocr_route

    res = bench_ocr_route.run(pages=2, results_dir=work / "results", work=work, library=True)
    pixtral, ocr = res["rows"]
    assert pixtral["by_route"] == {"vision": 2} and ocr["by_route"] == {"ocr": 2}
    assert ocr["usd_per_1000_pages"] == pytest.approx(4.0) and ocr["input_tokens"] == 0
    assert pixtral["usd_per_1000_pages"] > ocr["usd_per_1000_pages"]
    assert (work / "results" / "ocr_route_cost.json").is_file()


def test_batch_benchmark(work):
    """Submit and collect a tiny batch through the emulator; the batch price is half the live one."""
    import bench_batch

    res = bench_batch.main(["--pages", "6", "--sample", "2", "--delay", "0.5", "--library",
                            "--results", str(work / "results")])
    cost, clock = res["dollars"], res["wall_clock"]
    assert cost["batch_usd_per_1000"] == pytest.approx(cost["live_usd_per_1000"] / 2, rel=1e-3)
    assert clock["items_billed"] == 6 and clock["collected_s"] >= clock["job_done_s"] >= clock["submit_s"] > 0
    assert _load(work / "results" / "batch.json")["benchmark"] == "batch"


def test_grounding_benchmark_on_the_fixtures(work):
    """The fixtures' NDA and ICDAR table (no shared corpus), and a 30-page report in Chromium
    (not the OCR of the scans: minutes of Tesseract)."""
    import bench_grounding

    assert bench_grounding.main(["--corpus", str(work / "no-corpus"), "--report-pages", "30",
                                 "--only", "nda,words,icdar,report"]) == 0
    res = _load(work / "results" / "grounding.json")
    assert res["corpus"] == "fixtures only"
    assert res["nda"]["by_key"]["party"] == {"values": 2, "printed": 2, "right": 2, "located_not_printed": 0,
                                             "share_right": 1.0}
    assert res["icdar"]["truth_cells"] == 143 and res["icdar"]["matched"] > 100
    spans = res["icdar"]["spans_of_matched_cells"]
    assert spans["truth_single"] + spans["truth_spanning"] == res["icdar"]["matched"]
    assert res["report"]["pages"] == 30 and res["report"]["load_event_s"] > 0
    assert res["report"]["click_to_highlight_ms"] > 0
    # a partial rerun measures its section again and keeps the others' last figures
    assert bench_grounding.main(["--corpus", str(work / "no-corpus"), "--report-pages", "12",
                                 "--only", "report"]) == 0
    again = _load(work / "results" / "grounding.json")
    assert again["report"]["pages"] == 12 and again["rerun_sections"] == ["report"]
    assert again["nda"] == res["nda"] and again["icdar"] == res["icdar"] and again["words"] == res["words"]
    assert again["targets"] == res["targets"]


def test_memory_and_overhead_benchmarks(work):
    import bench_memory
    import bench_overhead

    mem = bench_memory.run(sizes=(2, 4), concurrency=2, results_dir=work / "results", work=work, server_sizes=(2,))
    assert [r["outputs"]["ok"] for r in mem["runs"]] == [2, 4]
    assert all(r["peak_rss_mb"] > 50 and r["cpu_client_s"] > 0 for r in mem["runs"])
    assert mem["runs"][0]["peak_server_rss_mb"] > 0  # the ephemeral API server was sampled
    [served] = mem["running_server"]["runs"]  # against `prefect server start`: no server in the tree
    assert served["outputs"]["ok"] == 2 and served["peak_server_rss_mb"] == 0
    over = bench_overhead.run(memory_results=work / "results" / "memory.json", component_pages=3,
                              results_dir=work / "results", work=work, pipeline_sizes=(3, 20))
    assert over["per_page"]["sizes"] == [2, 4]
    comp = over["client_components_ms"]
    assert comp["render_page_ms"] > 0 and comp["thumbnail_ms"] > 0 and comp["router_answer_page_ms"] > 0
    assert comp["pipeline_no_prefect_ok"] == [3, 20] and comp["pipeline_no_prefect_ms"] > 0
    assert "prefect_and_flow_ms" in comp


def test_overhead_chunks_like_the_flow():
    import bench_overhead

    from pixtract.batch import PAGES_PER_TASK

    assert bench_overhead.PAGES_PER_TASK == PAGES_PER_TASK


def test_throughput_benchmark(work):
    import bench_throughput

    res = bench_throughput.run(pages=4, latency=0.05, rps=50, concurrency=2, fault_rate=0.3, fault_pages=3,
                               sweep=(), results_dir=work / "results", plot_dir=work, work=work)
    px = res["main"]["pixtract"]
    assert px["pages"]["answered_by_model"] == 4 and px["throughput"]["ppm_api_window"] > 0
    assert res["faults"]["pixtract"]["pages"]["in"] == 3
    assert isinstance(res["faults"]["pixtract"]["pages"]["lost_or_empty"], int)
    if "zerox" in res["main"]:
        assert res["main"]["zerox"]["pages"]["in"] == 4
    else:
        assert "zerox" in res["skipped"]
    if importlib.util.find_spec("matplotlib"):
        assert (work / "throughput_vs_concurrency.png").exists()


OPTIONAL_TOOLS = {
    "pdftoppm (poppler-utils)": common.have_pdftoppm,
    "pypdfium2": lambda: importlib.util.find_spec("pypdfium2") is not None,
    "matplotlib": lambda: importlib.util.find_spec("matplotlib") is not None,
    "zerox (its own venv)": lambda: common.zerox_python() is not None,
}


@pytest.mark.parametrize("tool", sorted(OPTIONAL_TOOLS))
def test_optional_benchmark_tool_is_installed(tool):
    """The smoke tests above check a comparison tool's part only when it is installed (`make bench`
    installs them). A missing one is reported here as a skip with its reason (pytest -ra lists
    it at the end of `make test`), so its checks are never passed over quietly."""
    if not OPTIONAL_TOOLS[tool]():
        pytest.skip(f"optional benchmark tool not installed: {tool}; `make bench` installs it. "
                    "Its smoke checks in this file did not run")
