"""A local run sends nothing off the machine: no outside connection attempt, no DNS lookup.

ONNX Runtime (RapidOCR, PyMuPDF's layout model) carries Microsoft telemetry that looks up
``mobile.events.data.microsoft.com`` even from an idle session unless ORT_DISABLE_TELEMETRY=1 is
set before it loads; pixtract sets it itself. The proof: a whole ``pixtract run`` (a scan through
RapidOCR, a born-digital PDF through the layout model) and then half a minute of idling with the
models loaded, under strace, must show no connect/sendto to a non-loopback address or to port 53.
strace comes from ``make setup`` (system-deps).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IDLE_S = 30  # the idle pause: telemetry fires from idle sessions too

DRIVER = r"""
import sys, time
from pixtract.flows.cli import main
rc = main(["run", *sys.argv[3:], "--out", sys.argv[1], "--no-progress"])
from PIL import Image
from pixtract.ocr_rapid import rapid_lines
rapid_lines(Image.new("L", (64, 32), 255))  # a RapidOCR session alive in this thread too
time.sleep(float(sys.argv[2]))
sys.exit(0 if rc in (0, 1) else rc)
"""

_INET = re.compile(r'(connect|sendto|sendmsg)\(.*sa_family=AF_INET6?\b.*?\)')
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR = re.compile(r'inet_(?:addr|pton)\((?:AF_INET6?, )?"([^"]+)"')


def outside_attempts(trace: str) -> list[str]:
    """strace lines that reach past loopback or look a name up (port 53 anywhere)."""
    bad = []
    for line in trace.splitlines():
        if not _INET.search(line):
            continue
        port = _PORT.search(line)
        addr = _ADDR.search(line)
        host = addr.group(1) if addr else ""
        loopback = host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")
        if (port and port.group(1) == "53") or not loopback:
            bad.append(line.strip())
    return bad


def test_the_trace_check_sees_a_dns_lookup_and_an_outside_connect():
    trace = "\n".join([
        '12 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        '12 connect(4, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH',
        '12 connect(5, {sa_family=AF_INET, sin_port=htons(4200), sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '12 connect(6, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT',
    ])
    bad = outside_attempts(trace)
    assert len(bad) == 2 and "htons(53)" in bad[0] and "2001:db8::1" in bad[1]


@pytest.mark.timeout(600)
def test_a_local_run_and_idle_models_make_no_outside_connection(tmp_path, samples):
    strace = shutil.which("strace")
    if strace is None:
        if os.environ.get("CI"):
            pytest.fail("strace missing: make setup installs it (system-deps)")
        pytest.skip("strace not installed (make setup installs it)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    log = tmp_path / "trace.txt"
    inputs = [str(samples / "scan.webp"), str(samples / "report.pdf")]
    proc = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log),
         sys.executable, "-c", DRIVER, str(tmp_path / "out"), str(IDLE_S), *inputs],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=560,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = (tmp_path / "out" / "results.jsonl").read_text()
    assert '"local-ocr"' in results and '"local-text"' in results  # both ONNX users really ran
    trace = log.read_text()
    assert "connect(" in trace  # strace saw the run's own (loopback) traffic: the trace is real
    assert outside_attempts(trace) == []
