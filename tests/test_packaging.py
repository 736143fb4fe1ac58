"""What ``pip install .`` puts into a user's environment (issue 15).

The repository keeps its folders (``pipeline/`` the library, ``flows/`` the Prefect layer), but
installed they must be one package named ``pixtract``: generic top-level names such as
``pipeline`` or ``flows`` would collide with other packages, and the API emulator is test code.
The wheel is built from this checkout and installed, without dependencies, into a fresh virtual
environment that borrows the test environment's dependencies through a path entry."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of what the build reads: an in-tree build would leave build/ behind.
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("pipeline", "flows"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--wheel-dir", str(out), str(src)], check=True, timeout=600, cwd=out)
    (found,) = out.glob("pixtract-*.whl")
    return found


def test_the_wheel_holds_one_package_named_pixtract_and_no_emulator(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"pixtract"}, tops
    assert "pixtract/route.py" in names and "pixtract/flows/cli.py" in names
    assert "pixtract/providers/mistral.py" in names
    assert not [n for n in names if "emulator" in n or "/testing/" in n or n.startswith("tests/")]
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "pixtract = pixtract.flows.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_installed_pixtract_imports_and_leaves_no_generic_names(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)  # what pip does for a pure wheel, minus the RECORD bookkeeping
    # Dependencies come from the test environment, after the fresh site-packages. Its editable
    # finder is a .pth hook, which a plain path entry does not run, so pixtract cannot leak in.
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = ("import importlib.util as u, pixtract, pixtract.flows.cli, pixtract.route\n"
            "print(pixtract.__file__.startswith(sys.argv[1]), u.find_spec('pipeline'), u.find_spec('flows'))\n")
    done = subprocess.run([str(py), "-c", "import sys\n" + code, str(site)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.split() == ["True", "None", "None"], done.stdout + done.stderr
    cli = subprocess.run([str(py), "-m", "pixtract.flows.cli", "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert cli.returncode == 0 and "pixtract" in cli.stdout, cli.stderr
