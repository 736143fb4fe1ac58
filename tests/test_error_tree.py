"""One error tree (issue 15): every exception class the library raises on purpose derives from
PixtractError, and the tree drawn in pipeline/errors.py names exactly the classes that exist."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pixtract
from pixtract import errors
from pixtract.errors import PixtractError

# An unexpected error inside a MuPDF worker keeps its original type name and is not ours.
NOT_OURS = {"pixtract.workers.RemoteError"}


def _library_exceptions() -> dict[str, type]:
    found = {}
    for mod in pkgutil.walk_packages(pixtract.__path__, "pixtract."):
        if mod.name.startswith("pixtract.flows"):
            continue  # the Prefect layer raises the library's errors
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == mod.name
                    and not name.startswith("_")):
                found[f"{mod.name}.{name}"] = obj
    return found


def test_every_public_exception_of_the_library_has_one_root():
    found = _library_exceptions()
    assert "pixtract.providers.errors.ModelGoneError" in found and "pixtract.guards.BudgetExceeded" in found
    strays = sorted(n for n, c in found.items() if not issubclass(c, PixtractError) and n not in NOT_OURS)
    assert strays == []
    for name, cls in found.items():
        if name not in NOT_OURS:
            assert isinstance(cls.type, str) and re.fullmatch(r"[a-z_]+", cls.type), name


def test_the_drawn_tree_names_real_classes_and_every_branch():
    drawn = {n for pair in re.findall(r"── (\w+)(?:, (\w+))?", errors.__doc__ or "") for n in pair if n}
    ours = [c for n, c in _library_exceptions().items() if n not in NOT_OURS]
    assert drawn - {c.__name__ for c in ours} == set()  # the provider branch is drawn in providers/errors.py
    # every direct child of the root is drawn, so a new branch cannot hide
    branches = {c.__name__ for c in ours if PixtractError in c.__bases__}
    assert branches - drawn == set()
