"""Model knowledge in one catalogue (issue 15): prices, retirements and replacements all come
from pipeline/providers/catalog.py, and every profile's default model is in it."""

from __future__ import annotations

import pytest

from pixtract.prices import BUILTIN, PriceTable
from pixtract.providers.profiles import PROFILES
from pixtract.providers import catalog
from pixtract.providers.errors import ModelGoneError, error_for_status


def test_every_default_model_of_a_profile_has_a_price_and_a_known_status():
    defaults = {m for p in PROFILES.values() for m in (p.vision_model, p.text_model) if m}
    assert defaults and defaults <= set(catalog.MODELS)
    assert all(m in BUILTIN for m in defaults)


def test_prices_come_from_the_catalogue_and_a_job_can_override_them():
    info = catalog.MODELS["mistral-medium-3.5"]
    assert (BUILTIN["mistral-medium-3.5"].input_per_m, BUILTIN["mistral-medium-3.5"].output_per_m) == (
        info.input_per_m, info.output_per_m)
    assert set(BUILTIN) == {m for m, i in catalog.MODELS.items() if i.input_per_m is not None}
    job = PriceTable.for_job({"pixtral-large-2411": {"input": 9.0, "output": 1.0}})
    assert job.get("pixtral-large-2411").input_per_m == 9.0 and BUILTIN["pixtral-large-2411"].input_per_m == 2.0


@pytest.mark.parametrize("model", ["pixtral-large-2411", "mistralai/mistral-large-2411", "mistralai-pixtral-large-2411"])
def test_a_retired_model_is_gone_with_the_catalogue_replacement(model):
    assert catalog.retired(model) == "2026-05-31"
    err = error_for_status(404, "Not Found", model=model)
    assert isinstance(err, ModelGoneError) and err.replacement == catalog.MODELS[model].replacement
    assert f"likely replacement: {catalog.MODELS[model].replacement}" in str(err)


def test_a_model_the_catalogue_does_not_know_is_never_called_retired():
    assert catalog.retired("some-new-model") is None
    assert catalog.replacement("some-new-model") == catalog.DEFAULT_REPLACEMENT
