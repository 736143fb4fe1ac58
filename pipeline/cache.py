"""Answers cached by everything that decides them, so a rerun never pays twice.

The key hashes the document's SHA-256, the page, the render settings, the task (prompt,
question, schema), the models and sampling parameters. Only ``ok`` records are stored, one
small JSON file each, written atomically; a file is either whole or absent, so a run killed at
any point leaves a usable cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from .files import atomic_write
from .records import STATUS_OK, Record

KEY_VERSION = 1


def cache_key(**parts: Any) -> str:
    blob = json.dumps({"v": KEY_VERSION, **parts}, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AnswerCache:
    def __init__(self, root: str, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.hits = 0

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key[:2], key + ".json")

    def get(self, key: str) -> Record | None:
        if not self.enabled:
            return None
        try:
            with open(self._path(key), encoding="utf-8") as f:
                rec = Record.from_json(json.load(f))
        except (OSError, ValueError, TypeError):
            return None  # absent, or unreadable: answer afresh
        self.hits += 1
        rec.cached = True
        rec.paid_usd = 0.0  # paid by the run that made it
        return rec

    def put(self, key: str, record: Record) -> None:
        if not self.enabled or record.status != STATUS_OK:
            return
        atomic_write(self._path(key), json.dumps(record.to_json(), ensure_ascii=False))
