"""The resume cache and the keys that decide a rerun: what changes a key, what a key is
(pinned, because a silent change re-bills every cached page), and what the cache keeps."""

import json
import os

import pytest

from pixtract.cache import KEY_VERSION, AnswerCache, cache_key
from pixtract.config import EndpointSpec, OcrOptions, RunConfig, TaskSpec, fingerprint
from pixtract.records import ErrorInfo, Record

PARTS = dict(sha256="ab" * 32, page=3, pages=None, region=None, render={"max_edge": 1024}, task="ask",
             prompt="p", question="What?", schema=None, system=None, temperature=0.0, seed=7, max_tokens=512,
             ladder=[("vision", "mistral", "pixtral-large-2411")])


def test_the_key_is_pinned():
    """A release that changes how keys are made must bump KEY_VERSION on purpose. The value is
    sha256 of the JSON text {"page": 1, "sha256": "x", "v": 1}."""
    assert KEY_VERSION == 1
    assert cache_key(sha256="x", page=1) == "10b2c4ea894d7d7bf4892d0a4d93d7c62a77321c1e8f06dd9135290bd39ca05f"


def test_non_ascii_parts_are_hashed_as_utf8_text_not_escapes():
    """sha256 of the JSON text {"question": "Größe?", "v": 1} in UTF-8, as keys were always made."""
    import hashlib

    blob = '{"question": "Größe?", "v": 1}'.encode()
    assert cache_key(question="Größe?") == hashlib.sha256(blob).hexdigest()


def test_parts_that_are_not_json_are_keyed_by_their_text():
    from pathlib import PurePosixPath

    assert cache_key(schema=PurePosixPath("s.json")) == cache_key(schema="s.json")


def test_the_key_ignores_argument_order_and_is_stable():
    assert cache_key(**PARTS) == cache_key(**dict(reversed(list(PARTS.items()))))
    assert len(cache_key(**PARTS)) == 64


@pytest.mark.parametrize("part,other", [
    ("sha256", "cd" * 32), ("page", 4), ("pages", [3, 4]), ("region", 1), ("render", {"max_edge": 2048}),
    ("task", "transcribe"), ("prompt", "q"), ("question", "Why?"), ("schema", {"type": "object"}),
    ("system", "be brief"), ("temperature", 0.2), ("seed", 8), ("max_tokens", 1024),
    ("ladder", [("vision", "openrouter", "pixtral-large-2411")]), ("question", "what?"),
])
def test_every_part_changes_the_key(part, other):
    assert cache_key(**{**PARTS, part: other}) != cache_key(**PARTS)


def test_non_ascii_parts_are_kept_apart():
    assert cache_key(question="Größe?") != cache_key(question="Grosse?")
    assert cache_key(question="Größe?") == cache_key(question="Größe?")


def ok_record(**kw):
    return Record(document="a.pdf", sha256="ab" * 32, page=1, task="transcribe", route="vision", status="ok",
                  answer="Größe 42", **kw)


def test_ok_records_come_back_marked_cached(tmp_path):
    cache = AnswerCache(str(tmp_path))
    key = cache_key(**PARTS)
    assert cache.get(key) is None and cache.hits == 0
    cache.put(key, ok_record())
    path = tmp_path / key[:2] / f"{key}.json"
    assert path.is_file() and "Größe" in path.read_text(encoding="utf-8")
    got = cache.get(key)
    assert got.answer == "Größe 42" and got.cached is True and cache.hits == 1
    assert got.to_json() == {**ok_record().to_json(), "cached": True}
    assert cache.get(key).cached and cache.hits == 2
    assert cache.get(cache_key(**{**PARTS, "page": 9})) is None and cache.hits == 2


@pytest.mark.parametrize("status", ["failed", "skipped"])
def test_only_ok_records_are_stored(tmp_path, status):
    cache = AnswerCache(str(tmp_path))
    rec = Record(document="a.pdf", sha256="ab", page=1, task="transcribe", route=None, status=status,
                 error=ErrorInfo("x", "y"))
    cache.put("ff" * 32, rec)
    assert cache.get("ff" * 32) is None and list(tmp_path.iterdir()) == []


def test_a_disabled_cache_neither_reads_nor_writes(tmp_path):
    AnswerCache(str(tmp_path)).put("aa" * 32, ok_record())
    off = AnswerCache(str(tmp_path), enabled=False)
    assert off.get("aa" * 32) is None and off.hits == 0
    off.put("bb" * 32, ok_record())
    assert not (tmp_path / "bb").exists()
    assert AnswerCache(str(tmp_path)).enabled is True


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"document": "a.pdf"}', ""])
def test_an_unreadable_entry_is_answered_afresh(tmp_path, content):
    cache = AnswerCache(str(tmp_path))
    key = "cc" * 32
    os.makedirs(tmp_path / key[:2])
    (tmp_path / key[:2] / f"{key}.json").write_text(content)
    assert cache.get(key) is None and cache.hits == 0


def cfg(**kw):
    base = dict(inputs=["a.pdf"], out="o", profile="mistral", tasks=[TaskSpec("transcribe")],
                endpoint=EndpointSpec(profile="mistral"))
    return RunConfig(**{**base, **kw})


def test_the_resume_fingerprint_follows_the_job_not_the_run():
    f = cfg().fingerprint()
    assert len(f) == 16 and f == cfg().fingerprint() == fingerprint(cfg().public())
    same = [cfg(out="elsewhere"), cfg(concurrency=9), cfg(budget_usd=3.0),
            cfg(endpoint=EndpointSpec(profile="mistral", timeout=5.0, max_retries=9))]
    assert all(c.fingerprint() == f for c in same)
    differs = [cfg(inputs=["b.pdf"]), cfg(tasks=[TaskSpec("ask", questions=["Q?"])]), cfg(seed=1),
               cfg(temperature=0.5), cfg(system_prompt="s"),
               cfg(endpoint=EndpointSpec(profile="mistral", vision_model="other")),
               cfg(endpoint=EndpointSpec(profile="mistral", text_model="other")),
               cfg(vision_alt=EndpointSpec(profile="openrouter")), cfg(ocr=OcrOptions(lang="deu"))]
    assert len({c.fingerprint() for c in differs} | {f}) == len(differs) + 1
    assert fingerprint({}) == fingerprint({"endpoint": None, "vision_alt": {}})
    assert json.dumps(cfg().public())  # what the fingerprint hashes is plain JSON


def test_the_fingerprint_is_pinned_and_takes_any_value():
    """Output folders of earlier releases carry this fingerprint; a change would refuse to resume them."""
    from pathlib import PurePosixPath

    assert fingerprint({"inputs": ["a.pdf"], "seed": 1, "endpoint": {"profile": "mistral"}}) == "12e1d8254224e1b0"
    assert fingerprint({"inputs": [PurePosixPath("a.pdf")]}) == fingerprint({"inputs": ["a.pdf"]})


def test_the_ocr_route_and_its_model_change_the_fingerprint_the_default_route_does_not():
    """Folders made before the OCR route existed (no route, no OCR model in their job) resume
    under a job that names the default route; a job on the OCR route, or with another OCR
    model, is another job."""
    base = {"inputs": ["a.pdf"], "seed": 1, "endpoint": {"profile": "mistral"}}
    pinned = fingerprint(base)
    assert fingerprint({**base, "route": "vision"}) == pinned == fingerprint({**base, "route": None})
    assert fingerprint({**base, "endpoint": {"profile": "mistral", "ocr_model": None}}) == pinned
    ocr = fingerprint({**base, "route": "ocr"})
    other_model = fingerprint({**base, "route": "ocr", "endpoint": {"profile": "mistral", "ocr_model": "ocr-2"}})
    assert len({pinned, ocr, other_model}) == 3
