"""The batch job store (pipeline/batchjobs.py) and the round that uses it (pipeline/batchmode.py):
a job's items are on disk before anything is uploaded, and a process killed between any two
steps (after planning, after the upload, after creating the job, during a download) leaves a
store the next run finishes from without uploading or creating anything twice."""
from __future__ import annotations

import json
import os

import pytest

from pixtract.batchjobs import FINISHED, PLANNED, SUBMITTED, UPLOADED, JobStore
from pixtract.batchmode import BatchPending, BatchRound, fingerprint
from pixtract.providers import Endpoint
from pixtract.providers.batchapi import BatchAPI
from tests.emulator.helpers import FAKE_KEY

MODEL = "pixtral-large-2411"


class Killed(BaseException):
    """Stands for SIGKILL at one step: nothing after it runs."""


class Crashing:
    """A BatchAPI that dies right after (or before) one of its calls has reached the server."""

    def __init__(self, api, after=None, before=None):
        self.api, self.after, self.before = api, after, before
        self.calls = []

    def __getattr__(self, name):
        fn = getattr(self.api, name)

        def call(*a, **kw):
            self.calls.append(name)
            if name == self.before:
                raise Killed(name)
            out = fn(*a, **kw)
            if name == self.after:
                raise Killed(name)
            return out
        return call


def body(i):
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": f"page {i}"}]}


def submit(round_, n, start=0):
    """Ask the round n new requests, each claimed by one unit, then submit them."""
    for i in range(start, start + n):
        with pytest.raises(BatchPending) as info:
            round_.ask(body(i), live=lambda: pytest.fail("nothing is asked live here"))
        info.value.claim(document=f"d{i}.pdf", sha256=f"s{i}", page=1, task="transcribe", question=None,
                         region=None, cache_key=f"k{i}")
    return round_.submit()


@pytest.fixture()
def api(emu):
    emu.reset()
    a = BatchAPI(Endpoint(profile="mistral", base_url=emu.base_url("mistral"), api_key=FAKE_KEY))
    yield a
    a.close()


def test_items_and_input_are_stored_before_the_upload(tmp_path, api, emu):
    store = JobStore(str(tmp_path))
    with pytest.raises(Killed):
        submit(BatchRound(Crashing(api, before="list_files"), store, MODEL), 3)
    [entry] = store.jobs()
    assert entry.state == PLANNED and entry.input_file is None and entry.items == 3
    items = store.items(entry.name)
    assert sorted(u["document"] for i in items.values() for u in i.units) == ["d0.pdf", "d1.pdf", "d2.pdf"]
    assert {i.fingerprint for i in items.values()} == {fingerprint(body(i)) for i in range(3)}
    lines = [json.loads(x) for x in store.input_bytes(entry.name).splitlines()]
    assert {x["custom_id"] for x in lines} == set(items) and all(x["body"]["model"] == MODEL for x in lines)
    assert not [r for r in emu.requests if r["path"].endswith("/files")]  # nothing left the machine
    round2 = BatchRound(api, store, MODEL)
    round2.refresh()
    assert store.jobs()[0].state in (SUBMITTED, FINISHED) and store.jobs()[0].job_id
    assert not os.path.exists(store.path(entry.name, "input.jsonl"))  # the job exists: the images are not kept


@pytest.mark.parametrize("step", ["upload", "create_job"])
def test_a_kill_right_after_a_step_reached_the_server_does_not_repeat_it(tmp_path, api, emu, step):
    store = JobStore(str(tmp_path))
    with pytest.raises(Killed):
        submit(BatchRound(Crashing(api, after=step), store, MODEL), 4)
    assert store.jobs()[0].state in (PLANNED, UPLOADED)  # the store did not learn of the last step
    again = BatchRound(api, store, MODEL)
    again.refresh()
    entry = store.jobs()[0]
    assert entry.state in (SUBMITTED, FINISHED) and entry.job_id
    uploads = [r for r in emu.requests if r["method"] == "POST" and r["path"].endswith("/files")]
    creates = [r for r in emu.requests if r["method"] == "POST" and r["path"].endswith("/batch/jobs")]
    assert len(uploads) == 1 and len(creates) == 1
    assert len(api.list_jobs()) == 1


def test_a_kill_during_the_download_leaves_no_partial_output_and_the_next_run_downloads_it(tmp_path, api, emu):
    store = JobStore(str(tmp_path))
    submit(BatchRound(api, store, MODEL), 5)
    with pytest.raises(Killed):
        BatchRound(Crashing(api, after="download"), store, MODEL).refresh()
    entry = store.jobs()[0]
    assert entry.state == SUBMITTED and not os.path.exists(store.path(entry.name, "output.jsonl"))
    assert not [f for f in os.listdir(store.root) if f.startswith(".tmp-")]
    round_ = BatchRound(api, store, MODEL)
    round_.refresh()
    assert store.jobs()[0].state == FINISHED and len(round_.answered) == 5
    resp = round_.ask(body(2), live=lambda: pytest.fail("answered by the batch"))
    assert resp.text and resp.usage.cost_usd == pytest.approx(
        (resp.usage.prompt_tokens * 1.0 + resp.usage.completion_tokens * 3.0) / 1e6)  # batch price: half
    assert len([r for r in emu.requests if r["method"] == "BATCH"]) == 5  # each item answered (and paid) once


def test_failed_items_are_asked_live_and_unanswered_ones_of_a_cancelled_job_go_in_the_next_job(tmp_path, api, emu):
    store = JobStore(str(tmp_path))
    emu.configure(batch_item_failure_rate=0.5)
    submit(BatchRound(api, store, MODEL), 8)
    round_ = BatchRound(api, store, MODEL)
    round_.refresh()
    assert round_.failed and round_.answered and len(round_.failed) + len(round_.answered) == 8
    fp = next(iter(round_.failed))
    i = next(i for i in range(8) if fingerprint(body(i)) == fp)
    assert round_.ask(body(i), live=lambda: "live answer") == "live answer"
    emu.configure(batch_item_failure_rate=0.0, batch_delay=30.0)
    [entry] = submit(BatchRound(api, store, MODEL), 2, start=100)
    api.cancel_job(entry.job_id)
    after = BatchRound(api, store, MODEL)
    after.refresh()
    assert store.jobs()[-1].status == "CANCELLED" and store.jobs()[-1].state == FINISHED
    with pytest.raises(BatchPending) as info:  # left unanswered by the cancelled job: into this run's new job
        after.ask(body(100), live=lambda: pytest.fail("not live: it was never tried"))
    assert info.value.pending is not None
