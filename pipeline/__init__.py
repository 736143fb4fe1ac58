"""pixtract: PDFs and chart images to Markdown, answers, JSON and tables (the library).

One module per step: discover -> render -> (messages) -> route -> (answers) -> outputs;
batch.py runs them over a whole batch. This package never imports Prefect; ``flows/`` wraps it.

The public face, for notebooks and scripts (pipeline/api.py)::

    import pixtract
    result = pixtract.run(["report.pdf"], task="transcribe", profile="local")
"""

import os as _os
import sys as _sys

# ONNX Runtime (PyMuPDF's layout model, RapidOCR) sends Microsoft telemetry unless this is set
# before it is first imported; its disable_telemetry_events() does not stop the lookups.
# tests/test_offline_traffic.py checks that a local run makes no outside connection attempt.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"

# PyMuPDF imports its optional layout package and pymupdf4llm (with ONNX Runtime, NumPy,
# psutil: ~80 MB and most of a second) as soon as it is imported. Only the local engine uses
# them; pipeline/local.py imports them when it first needs them.
_LAZY = ("pymupdf.layout", "pymupdf4llm")
if "pymupdf" not in _sys.modules:
    _blocked = [m for m in _LAZY if m not in _sys.modules]
    for _m in _blocked:
        _sys.modules[_m] = None  # type: ignore[assignment]  # makes "import" raise ImportError
    try:
        import pymupdf  # noqa: E402,F401
    finally:
        for _m in _blocked:
            if _sys.modules.get(_m, 0) is None:
                del _sys.modules[_m]


__all__ = ["run", "Result", "RunControl", "RunConfig", "TaskSpec", "Record", "ErrorInfo", "PixtractError",
           "UsageError", "__version__"]

# Where each public name lives; imported on first use, so that ``import pixtract`` stays light.
_PUBLIC = {"run": "api", "Result": "api", "RunControl": "batch", "RunConfig": "config", "TaskSpec": "config",
           "Record": "records", "ErrorInfo": "records", "PixtractError": "errors", "UsageError": "errors"}


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
