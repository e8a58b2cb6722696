"""Tool-call parsing from raw model output: both routes, every failure kind, never an exception."""

from __future__ import annotations

import json

import pytest

from tracetune.eval.parsing import parse_output
from tracetune.train.student import RESPONSE_TEMPLATE


class TemplateTokenizer:
    """A tokenizer stand-in carrying the tiny student's response template (parse_response as transformers 5)."""

    response_template = RESPONSE_TEMPLATE
    eos_token = "<|im_end|>"
    pad_token = "<|endoftext|>"

    def parse_response(self, text, schema=None, *, prefix=None, tools=None):
        from transformers.utils.chat_parsing import parse_response

        return parse_response(text, schema or self.response_template, prefix=prefix, tools=tools)


ROUTES = [pytest.param(None, id="conventions"), pytest.param(TemplateTokenizer(), id="response_template")]
PROMPT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def call(name, args, body_args=None):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args if body_args is None else body_args}) + "\n</tool_call>"


@pytest.mark.parametrize("tok", ROUTES)
def test_single_call_with_text_and_end_marker(tok):
    res = parse_output("Let me look.\n" + call("read", {"path": "src/a.py"}) + "<|im_end|>", tok, prefix=PROMPT)
    assert res.ok and res.error is None
    assert res.message.content == "Let me look."
    assert [(c.name, c.arguments) for c in res.message.tool_calls] == [("read", {"path": "src/a.py"})]


@pytest.mark.parametrize("tok", ROUTES)
def test_two_calls_keep_order(tok):
    res = parse_output(call("ls", {}) + "\n" + call("bash", {"command": "pytest -q"}) + "<|im_end|>", tok, prefix=PROMPT)
    assert [c.name for c in res.message.tool_calls] == ["ls", "bash"]
    assert res.message.tool_calls[1].arguments == {"command": "pytest -q"}


@pytest.mark.parametrize("tok", ROUTES)
def test_plain_reply_and_reasoning(tok):
    res = parse_output("<think>\nthe tests pass\n</think>\n\nAll done.<|im_end|>", tok, prefix=PROMPT)
    assert res.message.content == "All done."
    assert res.message.reasoning == "the tests pass"
    assert res.message.tool_calls == ()


@pytest.mark.parametrize("tok", ROUTES)
@pytest.mark.parametrize(
    "raw, kind",
    [
        ('<tool_call>\n{"name": "read", "arguments": {"path": "a.py"}\n</tool_call>', "invalid_json"),
        ('<tool_call>\n{"name": "read", "arguments": {"path": "a.py"}}', "unclosed_tool_call"),
        ('<tool_call>\n{"name": "read", "argu', "unclosed_tool_call"),
        ("done</tool_call>", "unclosed_tool_call"),
        ('<tool_call>\n{"arguments": {"path": "a.py"}}\n</tool_call>', "missing_name"),
        ('<tool_call>\n["read", "a.py"]\n</tool_call>', "missing_name"),
        ('<tool_call>\n{"name": "read", "arguments": [1, 2]}\n</tool_call>', "bad_arguments"),
        ('<tool_call>\n{"name": "read", "arguments": "path=a.py"}\n</tool_call>', "bad_arguments"),
    ],
)
def test_failures_have_a_kind_and_no_message(tok, raw, kind):
    res = parse_output(raw, tok, prefix=PROMPT)
    assert res.message is None
    assert res.error == kind
    assert res.detail


def test_arguments_given_as_json_string_are_decoded():
    res = parse_output(call("bash", None, body_args=json.dumps({"command": "ls"})))
    assert res.message.tool_calls[0].arguments == {"command": "ls"}


@pytest.mark.parametrize(
    "raw",
    [
        '[TOOL_CALLS][{"name": "grep", "arguments": {"pattern": "TODO"}}]</s>',
        '<|python_tag|>{"name": "grep", "parameters": {"pattern": "TODO"}}<|eom_id|>',
        '{"name": "grep", "arguments": {"pattern": "TODO"}}',
        '```json\n{"name": "grep", "arguments": {"pattern": "TODO"}}\n```',
    ],
    ids=["mistral", "llama3", "bare_json", "fenced_json"],
)
def test_other_conventions(raw):
    res = parse_output(raw)
    assert res.ok, res
    assert [(c.name, c.arguments) for c in res.message.tool_calls] == [("grep", {"pattern": "TODO"})]


def test_json_that_is_not_a_call_stays_text():
    res = parse_output('{"status": "ok"}')
    assert res.message.tool_calls == () and res.message.content == '{"status": "ok"}'


def test_empty_output_is_a_stop_not_a_failure():
    res = parse_output("<|im_end|>", TemplateTokenizer(), prefix=PROMPT)
    assert res.ok and res.message.content == "" and res.message.tool_calls == ()


def test_custom_eos_token_cuts_the_text():
    class Tok:
        eos_token = "<END>"
        pad_token = None

    assert parse_output("hello<END>garbage", Tok()).message.content == "hello"


def test_real_tiny_student_tokenizer_round_trip(tmp_path):
    """The student's own chat template writes a call; its tokenizer parses it back to the same call."""
    from tracetune.train.student import train_tokenizer

    tok = train_tokenizer(vocab_size=400)
    messages = [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "write", "arguments": {"path": "x.txt", "content": "a\nb"}}}]}]
    prompt = tok.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(messages, tokenize=False)
    res = parse_output(full[len(prompt):], tok, prefix=prompt)
    assert res.ok
    assert [(c.name, c.arguments) for c in res.message.tool_calls] == [("write", {"path": "x.txt", "content": "a\nb"})]
