"""Small helpers shared by tests."""

from __future__ import annotations

import re


def words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[\w.,]+", text)} | {
        w.casefold() for w in re.findall(r"\w+", text)
    }


def missing_words(text: str, wanted: list[str]) -> list[str]:
    found = words(text)
    return [w for w in wanted if w.casefold() not in found]
