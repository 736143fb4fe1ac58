"""Shared test set-up: an isolated Prefect home, fixture paths and expectations."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

# Before anything imports Prefect: a throwaway home (fresh SQLite DB), no telemetry, quiet logs.
_PREFECT_HOME = tempfile.mkdtemp(prefix="pixtract-test-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.pop("PREFECT_API_URL", None)
# Tests run Prefect's ephemeral API (one per test process); tests/test_managed_server.py tests
# the warm server pixtract manages for ad hoc runs, in a data folder of its own.
os.environ["PIXTRACT_PREFECT"] = "ephemeral"

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fixtures" / "samples"
REAL = ROOT / "fixtures" / "real"

if "MUTANT_UNDER_TEST" in os.environ:
    # `make mutate`: mutmut runs the tests in a copy of the tree whose pipeline/ holds the mutated
    # code, and it picks each mutant by the module's own name (`pipeline.ledger`). The editable
    # install maps `pixtract` to the checkout's pipeline/, so every `pixtract.X` import is served
    # the copy's `pipeline.X` module instead (`pixtract.flows` stays the checkout's).
    import importlib
    import importlib.abc
    import importlib.util
    import sys

    class _MutatedLibrary(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == "pixtract" or (name.startswith("pixtract.") and not name.startswith("pixtract.flows")):
                return importlib.util.spec_from_loader(name, self)

        def create_module(self, spec):
            return importlib.import_module("pipeline" + spec.name[len("pixtract"):])

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, _MutatedLibrary())


@pytest.fixture(scope="module")
def emu():
    """The API emulator on 127.0.0.1, one per test module (tests reset it as they need)."""
    from tests.emulator.emulator import Emulator

    with Emulator() as e:
        yield e


@pytest.fixture(scope="session")
def expected() -> dict:
    return json.loads((SAMPLES / "expected.json").read_text())["files"]


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def real() -> Path:
    return REAL


# The slowest files (a minute or more each), slowest first. `make test` runs whole files on two
# workers (pytest-xdist --dist loadfile) in collection order: started first, they overlap the
# many short files instead of ending the run with one worker on them and the other idle.
SLOW_FILES = ("test_ocr.py", "test_deployments.py", "test_managed_server.py", "test_bench_smoke.py",
              "test_flow_cli.py", "test_crash_resume.py", "test_stalls.py", "test_local.py",
              "test_hostile_inputs.py", "test_offline_traffic.py", "test_workers.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's order stays
