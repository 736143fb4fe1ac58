"""Fault matrix: for every dialect, a 200-page run with mixed injected faults.

The ledger balances; every page is ok through some route or failed with its errors; no page
is ok with an empty answer; and the emulator's log shows no page sent again after it got a
good answer.
"""

import json
import re
from collections import Counter

import pymupdf
import pytest

from pixtract.flows.cli import main
from pixtract.outputs import read_results
from tests.emulator.helpers import FAKE_KEY, PROFILES

pytestmark = pytest.mark.prefect

PAGES = 200
FAULTS = ["429", "500", "502", "503", "529", "timeout", "drop", "truncated_json", "stream_cut",
          "empty_content", "length", "malformed_json"]
MARK = re.compile(r"ZQX\d{4}")
KEY_ENVS = ["MISTRAL_API_KEY", "OPENROUTER_API_KEY", "MODELSLAB_API_KEY", "OPENAI_API_KEY"]


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    path = tmp_path_factory.mktemp("matrix") / "matrix.pdf"
    doc = pymupdf.open()
    for i in range(PAGES):
        page = doc.new_page(width=300, height=200)
        page.insert_text((20, 40), f"Fault matrix page ZQX{i:04d}", fontsize=11)
        page.insert_text((20, 60), f"Quarterly value {1000 + i} units.", fontsize=11)
    doc.save(path)
    return path


@pytest.mark.timeout(300)
@pytest.mark.parametrize("profile", PROFILES)
def test_mixed_faults_every_page_accounted_for(emu, pdf, tmp_path, monkeypatch, profile):
    emu.reset()
    for var in KEY_ENVS:
        monkeypatch.setenv(var, FAKE_KEY)
    for i, fault in enumerate(FAULTS):
        emu.inject(fault, rate=0.025, hang=3, retry_after=0.05 if i % 2 else None)
    emu.inject("429", rate=0.02)  # 429s with no Retry-After as well
    stream = profile in ("openrouter", "modelslab-anthropic")  # both SSE families
    job = tmp_path / "job.toml"
    models = 'vision_model = "local-vision"\ntext_model = "local-text"\n' if profile == "openai" else ""
    job.write_text(f"""
inputs = ["{pdf}"]
out = "out"
profile = "{profile}"
local_fallback = false
stream = {str(stream).lower()}
concurrency = 8

[endpoint]
base_url = "{emu.base_url(profile)}"
timeout = 1.0
max_retries = 2
backoff_base = 0.01
backoff_max = 0.05
{models}
[render]
max_edge = 320
""")
    code = main(["run", "--job", str(job), "--quiet"])
    out = tmp_path / "out"
    recs = read_results(str(out))
    manifest = json.loads((out / "manifest.json").read_text())

    # the ledger balances, one record per page
    assert manifest["ledger"]["balanced"], manifest["ledger"]
    assert sorted(r.page for r in recs) == list(range(1, PAGES + 1))
    statuses = Counter(r.status for r in recs)
    assert set(statuses) <= {"ok", "failed"} and statuses["ok"] > PAGES * 0.8
    degraded = sum(r.degraded for r in recs)
    assert degraded == sum(r.route == "text-fallback" for r in recs)
    assert code == (1 if statuses["failed"] else 3 if degraded else 0)
    assert manifest["outcome"] == ("incomplete" if statuses["failed"] else "degraded" if degraded else "complete")
    for r in recs:
        if r.status == "ok":
            assert r.route in ("vision", "text-fallback") and r.answer and r.answer.strip()
            assert MARK.search(r.answer).group() == f"ZQX{r.page - 1:04d}"  # this page's own answer
        else:
            assert r.error and r.error.message and r.tried  # the error of every rung tried
            assert {t["route"] for t in r.tried} == {"vision", "text-fallback"}

    # no page was sent again after a good answer, and every remote ok has exactly one good answer
    good = Counter()
    for q in emu.requests:
        if q.get("outcome") == "ok" and q.get("body"):
            m = MARK.search(json.dumps(q["body"]))
            if m:
                good[int(m.group()[3:]) + 1] += 1
    assert all(n == 1 for n in good.values()), [p for p, n in good.items() if n > 1]
    assert set(good) == {r.page for r in recs if r.status == "ok"}
    # faults really happened, on this dialect
    outcomes = Counter(q.get("outcome") for q in emu.requests)
    assert sum(n for o, n in outcomes.items() if o != "ok") > 20, outcomes
