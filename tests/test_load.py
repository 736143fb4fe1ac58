"""The 5,000-page load run with 5 % faults (bench/bench_load.py), as a marked test.

Slow (minutes): skipped by ``make test`` unless PIXTRACT_SLOW=1; ``make load`` runs it.
"""

import os
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.environ.get("PIXTRACT_SLOW") != "1",
                                                   reason="slow load run: set PIXTRACT_SLOW=1 (or make load)")]


@pytest.mark.timeout(3600)
def test_5000_pages_with_faults_balanced_and_flat(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import bench_load

    result = bench_load.run(pages=int(os.environ.get("PIXTRACT_LOAD_PAGES", "5000")), small=500,
                            results_dir=tmp_path, work=tmp_path / "work")
    failed = {k: v for k, v in result["targets"].items() if not v["met"]}
    assert not failed, failed
