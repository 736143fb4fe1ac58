"""The Python API (pipeline/api.py): README's example runs as written, also inside a running
event loop (Jupyter), in processes that never import Prefect; secrets stay out of what it
returns and writes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from pixtract.outputs import read_results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_example() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        section = f.read().split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "README's Python API section has one Python example"
    return blocks[0]


IN_A_LOOP = """import asyncio, sys
EXAMPLE = sys.stdin.read()

async def main():
    asyncio.get_running_loop()  # a notebook cell runs while the loop is running
    exec(compile(EXAMPLE, "README.md", "exec"), {"__name__": "__readme__"})

asyncio.run(main())
"""
PLAIN = "import sys\nexec(compile(sys.stdin.read(), 'README.md', 'exec'), {'__name__': '__readme__'})\n"
CHECK = "\nimport sys\nprint('prefect loaded:', 'prefect' in sys.modules)\n"


@pytest.mark.parametrize("runner", [PLAIN, IN_A_LOOP], ids=["plain", "in-a-running-event-loop"])
def test_the_readme_example_runs(tmp_path, runner):
    """Run from a folder that holds the repository's fixtures, as the README says."""
    os.symlink(os.path.join(ROOT, "fixtures"), tmp_path / "fixtures")
    done = subprocess.run([sys.executable, "-c", runner], input=readme_example() + CHECK, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("COMPLETE: all 3 records answered on the planned route"), done.stdout
    assert [line.split()[:3] for line in lines[1:4]] == [[str(p), "ok", "local-text"] for p in (1, 2, 3)], done.stdout
    assert "Northwind Quarterly Report" in lines[1]
    out = tmp_path / "out" / "api"
    assert lines[4:] == ["complete 0 out/api", "prefect loaded: False"], done.stdout
    assert [r.page for r in read_results(str(out))] == [1, 2, 3]
    assert json.loads((out / "manifest.json").read_text())["outcome"] == "complete"
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


def test_records_and_files_hold_no_password(tmp_path, samples):
    import pixtract

    password = "pw-Zq81-never-written"
    result = pixtract.run(str(samples / "report.pdf"), out=str(tmp_path / "out"), password=password)
    assert result.outcome == "complete" and len(result.records) == 3
    assert password not in repr(result) + repr(result.records) + repr(result.summary)
    for folder, _, files in os.walk(tmp_path / "out"):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                assert password.encode() not in f.read(), name


def test_a_run_that_cannot_start_raises_usage_error_and_writes_nothing(tmp_path):
    import pixtract

    with pytest.raises(pixtract.UsageError, match="needs a model endpoint"):
        pixtract.run(str(tmp_path), task="chart", out=str(tmp_path / "out"))
    with pytest.raises(pixtract.UsageError, match="scope='document' is for the ask and extract tasks"):
        pixtract.run(str(tmp_path), scope="document")
    assert not (tmp_path / "out").exists()
