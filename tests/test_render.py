"""The assistant mask, checked by decoding every supervised run back to the message it came from.

Several chat templates: the tiny student's (ChatML with tools), a Qwen2-style
one (tool results grouped into a user turn), a Gemma-style one (bos, "model"
role, trimmed content, alternation enforced), one that drops old reasoning
(not prefix-stable), and one with ``{% generation %}`` markers to compare with
transformers' own assistant mask. None of the first four has generation markers.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetune.errors import TracetuneError
from tracetune.prepare.render import render_conversation, span_texts
from tracetune.prepare.template_audit import check_template
from tracetune.engines.tokenizer import load_tokenizer

TEMPLATES = Path(__file__).parent / "assets" / "templates"
TOOLS = [
    {"type": "function", "function": {"name": n, "description": f"{n} tool", "parameters": {"type": "object", "properties": {}}}}
    for n in ("read", "bash", "edit")
]


@pytest.fixture(scope="module")
def tokenizers(tiny_student):
    out = {"tiny": load_tokenizer(tiny_student)}
    for name in ("qwen2_style", "gemma_style", "reasoning_dropping", "chatml_generation"):
        tok = load_tokenizer(tiny_student, chat_template=(TEMPLATES / f"{name}.jinja").read_text())
        if name == "gemma_style":  # as in a real Gemma tokenizer, its turn markers are single tokens
            tok.add_special_tokens({"bos_token": "<bos>", "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
        out[name] = tok
    return out


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


TEXT = (
    st.lists(
        st.text(
            alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "Sm", "So"), exclude_characters="<>|`\\"),
            min_size=1,
            max_size=24,
        ),
        min_size=1,
        max_size=3,
    )
    .map(lambda parts: _nfc("\n".join(parts)))
    .filter(bool)
)
ARGS = st.dictionaries(st.sampled_from(["path", "command", "n", "flag"]), st.one_of(TEXT, st.integers(-5, 500), st.booleans()), max_size=3)


@st.composite
def conversations(draw, reasoning: bool = False):
    """(messages, targets): user, then assistant turns with tool calls and results, some trainable."""
    messages = [{"role": "system", "content": draw(TEXT)}] if draw(st.booleans()) else []
    messages.append({"role": "user", "content": draw(TEXT)})
    targets, calls_made = [], 0
    turns = draw(st.integers(1, 5))
    for k in range(turns):
        content = draw(st.one_of(st.just(""), TEXT))
        calls = []
        for _ in range(draw(st.integers(0 if content else 1, 2))):
            calls_made += 1
            calls.append({"id": f"c{calls_made}", "type": "function", "function": {"name": draw(st.sampled_from(["read", "bash", "edit"])), "arguments": draw(ARGS)}})
        message = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        if reasoning and draw(st.booleans()):
            message["reasoning_content"] = draw(TEXT)
        if draw(st.booleans()) or (k == turns - 1 and not targets):
            targets.append(len(messages))
        messages.append(message)
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"], "content": draw(TEXT)})
        if (not calls and k < turns - 1) or draw(st.booleans()) and k < turns - 1 and not calls:
            messages.append({"role": "user", "content": draw(TEXT)})
    return messages, targets


def parse_chatml(run: str, end: str = "<|im_end|>") -> dict:
    assert run.endswith(end), run
    body = run[: -len(end)]
    reasoning = None
    m = re.match(r"<think>\n(.*?)\n</think>\n\n", body, re.S)
    if m:
        reasoning, body = m.group(1), body[m.end() :]
    calls = [json.loads(c) for c in re.findall(r"<tool_call>\n(.*?)\n</tool_call>", body, re.S)]
    content = body.split("<tool_call>")[0]
    content = content[:-1] if calls and content.endswith("\n") else content
    return {"content": content.lstrip("\n") if not calls else content, "calls": calls, "reasoning": reasoning}


def parse_gemma(run: str) -> dict:
    assert run.endswith("<end_of_turn>"), run
    body = run[: -len("<end_of_turn>")]
    calls = [json.loads(c) for c in re.findall(r"```tool_call\n(.*?)\n```", body, re.S)]
    content = body.split("```tool_call")[0]
    return {"content": content[:-1] if calls and content.endswith("\n") else content, "calls": calls, "reasoning": None}


def expected(message: dict, *, trim: bool = False, reasoning: bool = False) -> dict:
    calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in message.get("tool_calls") or []]
    content = message["content"].strip() if trim else message["content"]
    return {"content": content, "calls": calls, "reasoning": message.get("reasoning_content") if reasoning else None}


def check_runs(tok, messages, targets, parse, **expect):
    outcome = render_conversation(tok, messages, TOOLS, targets)
    assert not outcome.failed and not outcome.fallback_turns
    [example] = outcome.examples
    runs = span_texts(example, tok)
    assert len(runs) == len(targets)
    assert [parse(r) for r in runs] == [expected(messages[t], **expect) for t in targets]
    assert example.ids == tuple(tok(example.text, add_special_tokens=False)["input_ids"])
    return example


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(conv=conversations())
def test_tiny_template_masks_exactly_the_target_turns(tokenizers, conv):
    tok = tokenizers["tiny"]
    messages, targets = conv
    example = check_runs(tok, messages, targets, parse_chatml)
    for run, t in zip(span_texts(example, tok), targets):  # the student's own parser reads them back too
        parsed = tok.parse_response(run, prefix="")
        assert [c["function"] for c in parsed.get("tool_calls", [])] == expected(messages[t])["calls"]


@PROPERTY
@given(conv=conversations())
def test_qwen2_style_template(tokenizers, conv):
    check_runs(tokenizers["qwen2_style"], *conv, parse_chatml)


@PROPERTY
@given(conv=conversations())
def test_gemma_style_template(tokenizers, conv):
    check_runs(tokenizers["gemma_style"], *conv, parse_gemma, trim=True)


@PROPERTY
@given(conv=conversations(reasoning=True))
def test_reasoning_is_supervised_when_rendered(tokenizers, conv):
    check_runs(tokenizers["tiny"], *conv, parse_chatml, reasoning=True)


@PROPERTY
@given(conv=conversations())
def test_same_mask_as_transformers_generation_markers(tokenizers, conv):
    tok = tokenizers["chatml_generation"]
    messages, _ = conv
    targets = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    [example] = render_conversation(tok, messages, None, targets).examples
    theirs = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    assert list(example.ids) == theirs["input_ids"]
    assert list(example.mask) == theirs["assistant_masks"]


def test_template_rewriting_old_turns_falls_back_to_one_example_per_turn(tokenizers):
    tok = tokenizers["reasoning_dropping"]
    call = {"id": "c1", "type": "function", "function": {"name": "read", "arguments": {"path": "a.py"}}}
    messages = [
        {"role": "user", "content": "look at a.py"},
        {"role": "assistant", "content": "", "reasoning_content": "need to read it", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "x = 1"},
        {"role": "assistant", "content": "It sets x.", "reasoning_content": "simple"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "You are welcome.", "reasoning_content": "polite"},
    ]
    outcome = render_conversation(tok, messages, None, [1, 3, 5])
    assert outcome.fallback_turns == [1, 3]
    assert not outcome.failed
    assert sorted(ex.turns for ex in outcome.examples) == [(1,), (3,), (5,)]
    for ex in outcome.examples:
        [run] = span_texts(ex, tok)
        assert parse_chatml(run) == expected(messages[ex.turns[0]], reasoning=True)


def test_context_only_assistant_turns_are_not_supervised(tokenizers):
    tok = tokenizers["tiny"]
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "second answer"},
    ]
    [example] = render_conversation(tok, messages, None, [3]).examples
    assert span_texts(example, tok) == ["second answer<|im_end|>"]
    assert example.turns == (3,)


def test_a_template_that_drops_tool_calls_is_refused_with_a_hint(tiny_student):
    dropping = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tok = load_tokenizer(tiny_student, chat_template=dropping)
    with pytest.raises(TracetuneError) as err:
        check_template(tok, "smol")
    assert "renders empty" in err.value.message and "tool definitions" in err.value.message
    assert "chatml_tools" in err.value.hint and "--template tool-aware" in err.value.hint
    check_template(load_tokenizer(tiny_student))


def test_a_template_error_is_a_counted_failure_not_a_crash(tokenizers):
    tok = tokenizers["gemma_style"]
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]
    outcome = render_conversation(tok, messages, None, [2])
    assert not outcome.examples
    assert outcome.failed[2].startswith("template_error")
