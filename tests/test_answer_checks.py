""""Answer cannot count": the checks that turn a response into an answer or into a reason to
fall back (empty, cut off, provider error, no JSON, no chart table), each with its type."""

import pytest

from pixtract import answers
from pixtract.answers import AnswerError, answer_text, parse_chart, parse_json, validate
from pixtract.messages import ChatResponse, ToolCall
from pixtract.ladder import RungFailed
from pixtract.negotiate import text as rung_text


@pytest.mark.parametrize("resp,kind,message", [
    (ChatResponse(text="Total 42", finish_reason="length"), "truncated_answer",
     "answer cut off at max_tokens (finish_reason: length)"),
    (ChatResponse(text="Total 42", finish_reason="error"), "provider_error",
     "the provider ended the answer with an error (finish_reason: error)"),
    (ChatResponse(text="  \n ", finish_reason="stop"), "empty_answer", "empty answer"),
    (ChatResponse(text=None, finish_reason=None), "empty_answer", "empty answer"),
    (ChatResponse(text="", tool_calls=[ToolCall("1", "f", "  ")]), "empty_answer", "empty answer"),
])
def test_responses_that_cannot_count(resp, kind, message):
    """The message is what a user reads in the record's fallback reason."""
    with pytest.raises(AnswerError) as info:
        answer_text(resp)
    assert info.value.type == kind and str(info.value) == message


def test_answers_that_count():
    assert answer_text(ChatResponse(text="  Total 42 \n", finish_reason="stop")) == "Total 42"
    assert answer_text(ChatResponse(text="x", finish_reason=None)) == "x"
    tools = [ToolCall("1", "f", ' {"a": 1} '), ToolCall("2", "g", '{"b": 2}')]
    assert answer_text(ChatResponse(text="", tool_calls=tools, finish_reason="tool_calls")) == '{"a": 1}'
    assert answer_text(ChatResponse(text="said", tool_calls=tools)) == "said"


def test_answer_error_type_defaults_and_overrides():
    assert AnswerError("m").type == "bad_answer" and str(AnswerError("m")) == "m"
    assert AnswerError("m", "x").type == "x"
    assert AnswerError("m", None).type == "bad_answer"


def test_a_refused_answer_fails_the_rung():
    with pytest.raises(RungFailed) as info:
        rung_text(ChatResponse(text="cut", finish_reason="length"))
    assert info.value.info == {"type": "truncated_answer",
                               "message": "answer cut off at max_tokens (finish_reason: length)"}
    assert rung_text(ChatResponse(text=" ok ")) == "ok"


@pytest.mark.parametrize("text,data", [
    ('{"a": 1}', {"a": 1}),
    ('  [1, 2] ', [1, 2]),
    ('Here:\n```json\n{"a": 2}\n```\nbye', {"a": 2}),
    ('Here:\n```\n{"a": 3}\n```', {"a": 3}),
    ('prose {"a": {"b": 4}} more prose', {"a": {"b": 4}}),
    ('{"a": 7}. Done', {"a": 7}),
    ('Result: {"a": 8}.', {"a": 8}),
    ('{"a": 5} and {"b": 6}', None),
])
def test_json_is_found_bare_fenced_or_braced(text, data):
    if data is None:
        with pytest.raises(AnswerError) as info:
            parse_json(text)
        assert info.value.type == "invalid_json"
    else:
        assert parse_json(text) == data


def test_the_first_json_candidate_that_parses_wins():
    assert parse_json('```json\n{"x": 1}\n```\n```json\n{"x": 2}\n```') == {"x": 1}
    assert parse_json('{"x": "}"}') == {"x": "}"}
    with pytest.raises(AnswerError) as info:
        parse_json("} no object {")
    assert str(info.value) == "answer is not valid JSON"
    with pytest.raises(AnswerError):
        parse_json("[" * 100_000)


def test_validate_reports_each_error_with_its_path():
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"},
                                                                   "b": {"type": "array", "items": {"type": "string"}}}}
    assert validate({"a": 1, "b": ["x"]}, schema) == []
    assert validate({"b": ["x", 2]}, schema) == ["(root): 'a' is a required property", "b/1: 2 is not of type 'string'"]


def test_chart_csv_and_summary():
    text = "Sales rose.\n```csv\nyear, n\n2023,1\n\n, \n2024, 2\n```\nMostly in 2024."
    chart = parse_chart(text)
    assert chart.rows == [["year", "n"], ["2023", "1"], ["2024", "2"]]
    assert chart.summary == "Sales rose.\n\nMostly in 2024."
    assert parse_chart("```\na,b\n1,2\n```").rows == [["a", "b"], ["1", "2"]]


def test_chart_markdown_table():
    text = "Intro\n| year | n |\n|:---|---:|\n| 2023 | 1 |\n|2024|2|\nEnd"
    chart = parse_chart(text)
    assert chart.rows == [["year", "n"], ["2023", "1"], ["2024", "2"]]
    assert chart.summary == "Intro\nEnd"
    assert parse_chart("|X|Y|\n|---|---|\n|1X|X2|").rows == [["X", "Y"], ["1X", "X2"]]


@pytest.mark.parametrize("text", ["no table at all", "```csv\nonly,header\n```", "| one | row |\n|---|---|"])
def test_a_chart_answer_without_a_table_cannot_count(text):
    with pytest.raises(AnswerError) as info:
        parse_chart(text)
    assert info.value.type == "no_chart_table" and str(info.value) == "no data table (CSV) in the chart answer"


def test_rows_to_csv():
    assert answers.rows_to_csv([["a", "b,c"], ["1", '2"']]) == 'a,"b,c"\n1,"2"""\n'
