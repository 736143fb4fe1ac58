import pytest

from pixtract.messages import ChatRequest, ImagePart, Message, TextPart, Usage
from pixtract.tokens import (count_text_tokens, cost_usd, estimate_prompt_tokens, image_tokens, price_for)

# model-apis.md §5, measured with mistral-common 1.13.1 (v7m1)
TABLE = [((16, 16), 2), ((100, 100), 56), ((512, 512), 1056), ((800, 600), 1938), ((1024, 768), 3120),
         ((1024, 1024), 4160), ((1920, 1080), 2340), ((4000, 3000), 3120), ((3000, 4000), 3136)]


@pytest.mark.parametrize("size,tokens", TABLE)
def test_image_tokens_match_measured_table(size, tokens):
    assert image_tokens(*size) == tokens


def test_image_tokens_reject_bad_size():
    with pytest.raises(ValueError):
        image_tokens(0, 10)


def test_text_prompt_matches_v7_template():
    # §5: "<s>[SYSTEM_PROMPT]▁You▁are▁helpful.[/SYSTEM_PROMPT][INST]▁Hello[/INST]" is 10 tokens
    req = ChatRequest([Message("system", "You are helpful."), Message("user", "Hello")])
    assert estimate_prompt_tokens(req, "mistral-large-2411") == 10


def test_image_prompt_is_template_plus_text_plus_image_tokens():
    img = ImagePart(b"unused", "image/png", 800, 600)
    req = ChatRequest([Message("user", [TextPart("Hi"), img])])
    text_only = estimate_prompt_tokens(ChatRequest([Message("user", "Hi")]), "pixtral-large-2411")
    assert estimate_prompt_tokens(req, "pixtral-large-2411") == text_only + 1938 == 1942


def test_image_size_read_from_bytes():
    from tests.emulator.helpers import png

    req = ChatRequest([Message.user("x", png(1024, 1024))])
    assert estimate_prompt_tokens(req, "pixtral-large-2411") > 4160


def test_multiturn_and_tools_count():
    from pixtract.messages import Tool, ToolCall

    req = ChatRequest([Message("user", "What is the total?"),
                       Message("assistant", "", tool_calls=[ToolCall("call_1", "get_total", '{"x": 1}')]),
                       Message("tool", '{"total": 42}', tool_call_id="call_1", name="get_total")],
                      tools=[Tool("get_total", {"type": "object", "properties": {"x": {"type": "number"}}})])
    assert estimate_prompt_tokens(req, "mistral-large-2411") > 20


def test_completion_tokens():
    assert count_text_tokens("", "mistral-large-2411") == 0
    assert 1 <= count_text_tokens("hello world", "mistral-large-2411") <= 3


def test_prices_and_cost():
    for m in ("pixtral-large-2411", "mistral-large-2411", "mistralai/pixtral-large-2411",
              "mistralai-pixtral-large-2411", "mistralai-mistral-large-2411"):
        p = price_for(m)
        assert (p.input_per_m, p.output_per_m) == (2.0, 6.0)
    assert cost_usd("pixtral-large-2411", Usage(1_000_000, 1_000_000)) == pytest.approx(8.0)
    assert cost_usd("pixtral-large-2411", Usage(4160, 0)) == pytest.approx(0.00832)
    assert cost_usd("no-such-model", Usage(100, 100)) == 0.0


def test_job_prices_make_a_new_table_and_leave_the_builtin_one_alone():
    from pixtract.prices import PriceTable

    table = PriceTable.for_job({"my-model": {"input": 1.0, "output": 3.0}, "other": (0.5, 1.5),
                                "pixtral-large-2411": "1,1"})
    assert table.cost("my-model", Usage(1_000_000, 0)) == pytest.approx(1.0)
    assert table.get("other").output_per_m == 1.5
    assert table.get("pixtral-large-2411").output_per_m == 1.0
    assert price_for("my-model") is None and price_for("pixtral-large-2411").output_per_m == 6.0
    assert table.missing(["my-model", "vis", None, "vis", "mistral-medium-3.5"]) == ["vis"]


def test_a_bad_price_is_a_usage_error_naming_the_model():
    from pixtract.errors import UsageError
    from pixtract.prices import PriceTable

    for bad in ({"input": 1.0}, "1.0", {"input": "x", "output": 1}, (-1, 2)):
        with pytest.raises(UsageError, match="vis"):
            PriceTable.for_job({"vis": bad})
