"""``TemplateRenderer`` renders exactly what ``apply_chat_template`` renders, or steps aside.

Generated conversations (reasoning fields, ``None`` values, tool calls, tools,
generation prompts) under every test template are rendered both ways. A
renderer that disagrees (here: made to, by changing a variable the template
prints) must notice it in ``agrees`` and fall back, and an Episode built with
it must come out as if rendered the official way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetune.engines.tokenizer import load_tokenizer
from tracetune.prepare import pieces
from tracetune.prepare.pieces import RenderedEpisode
from tracetune.prepare.render import apply_template
from tracetune.prepare.template_renderer import TemplateRenderer

TEMPLATES = Path(__file__).parent / "assets" / "templates"
TOOLS = [{"type": "function", "function": {"name": "read", "description": "read a file",
                                            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]
TEXT = st.text(alphabet="abc xyz\n.:{}", min_size=0, max_size=20)


@pytest.fixture(scope="module")
def tokenizers(tiny_student):
    out = {"tiny": load_tokenizer(tiny_student)}
    for name in ("qwen2_style", "reasoning_dropping", "chatml_generation"):
        out[name] = load_tokenizer(tiny_student, chat_template=(TEMPLATES / f"{name}.jinja").read_text())
    return out


@st.composite
def conversations(draw):
    messages = [{"role": "user", "content": draw(TEXT)}]
    for n in range(draw(st.integers(0, 3))):
        message = {"role": "assistant", "content": draw(st.one_of(st.none(), TEXT))}
        if draw(st.booleans()):
            message["tool_calls"] = [{"id": f"c{n}", "type": "function",
                                      "function": {"name": "read", "arguments": {"path": draw(TEXT)}}}]
        if draw(st.booleans()):
            message[draw(st.sampled_from(["reasoning_content", "thinking", "reasoning"]))] = draw(TEXT)
        messages.append(message)
        if "tool_calls" in message:
            messages.append({"role": "tool", "tool_call_id": f"c{n}", "name": "read", "content": draw(TEXT)})
    return messages


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=conversations(), name=st.sampled_from(["tiny", "qwen2_style", "reasoning_dropping", "chatml_generation"]),
       tools=st.booleans(), generation=st.booleans())
def test_every_slice_renders_as_apply_chat_template_does(tokenizers, messages, name, tools, generation):
    tok = tokenizers[name]
    renderer = TemplateRenderer(tok)
    assert renderer.fast
    for start in range(len(messages)):
        for stop in range(start + 1, len(messages) + 1):
            part = messages[start:stop]
            try:
                official = apply_template(tok, part, TOOLS if tools else None, generation=generation)
            except Exception as exc:  # a template refusing a slice must refuse it both ways
                with pytest.raises(type(exc)):
                    renderer.render(part, TOOLS if tools else None, generation=generation)
                continue
            assert renderer.render(part, TOOLS if tools else None, generation=generation) == official


def test_the_same_message_objects_are_prepared_once(tokenizers):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes", "thinking": "t"}]
    renderer = TemplateRenderer(tokenizers["tiny"])
    for _ in range(3):
        renderer.render(messages)
    assert len(renderer._prepared) == 2
    messages[1] = {"role": "assistant", "content": "no"}  # a new object is prepared afresh, not confused with the old
    assert renderer.render(messages) == apply_template(tokenizers["tiny"], messages, None)


class _Disagreeing(TemplateRenderer):
    """Prepares every message with one character more: what a changed transformers helper could do."""

    def _message(self, message):
        prepared = dict(super()._message(message))
        if isinstance(prepared.get("content"), str):
            prepared["content"] += "!"
        return prepared


def test_a_renderer_that_disagrees_turns_itself_off(tokenizers):
    tok = tokenizers["tiny"]
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    renderer = _Disagreeing(tok)
    assert renderer.render(messages) != apply_template(tok, messages, None)
    assert renderer.agrees(messages) == apply_template(tok, messages, None)
    assert not renderer.fast
    assert renderer.render(messages) == apply_template(tok, messages, None)


def test_an_episode_built_with_a_disagreeing_renderer_equals_the_official_one(tokenizers, monkeypatch):
    tok = tokenizers["tiny"]
    system = [{"role": "system", "content": "be brief"}]
    messages = [{"role": "user", "content": "list files"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "read", "arguments": {"path": "a"}}}]},
                {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "a.txt"},
                {"role": "assistant", "content": "done"}]
    good = RenderedEpisode.build(tok, system, messages, TOOLS, [1, 3])
    monkeypatch.setattr(pieces, "TemplateRenderer", _Disagreeing)
    fallback = RenderedEpisode.build(tok, system, messages, TOOLS, [1, 3])
    assert not fallback.renderer.fast
    assert [(p.text, list(p.ids), p.mask) for p in [fallback.head, *fallback.segments]] == \
        [(p.text, list(p.ids), p.mask) for p in [good.head, *good.segments]]


def test_dict_names_and_missing_keys_read_as_jinja_reads_them(tiny_student):
    """Keys are read straight from plain dicts, but a name ``dict`` has (``items``, ``__class__``) stays the
    attribute the sandbox vets, and a missing key stays undefined."""
    template = ("{% for m in messages %}{{ m.role }}:{{ m.get('content') }}|{{ m.items is callable }}"
                "|{{ m.missing is defined }}|{{ m.__class__ }}|{{ m.tool_calls[0].function.name if m.tool_calls }}\n"
                "{% endfor %}")
    tok = load_tokenizer(tiny_student, chat_template=template)
    messages = [{"role": "user", "content": "hi", "items": "shadowed"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "read", "arguments": {}}}]}]
    renderer = TemplateRenderer(tok)
    rendered = renderer.render(messages)
    assert rendered == apply_template(tok, messages, None)
    assert rendered.startswith("user:hi|True|False||\n")


def test_remembered_json_keeps_each_object_and_each_format_apart(tiny_student):
    template = ("{% for m in messages %}{{ m.tool_calls[0].function.arguments | tojson }}"
                "|{{ m.tool_calls[0].function.arguments | tojson(indent=2) }}"
                "|{{ m.tool_calls[0].function.arguments | tojson(separators=[',', ':']) }}\n{% endfor %}")
    tok = load_tokenizer(tiny_student, chat_template=template)
    renderer = TemplateRenderer(tok)

    def call(path):
        return {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "read", "arguments": {"path": path}}}]}

    messages = [call("a"), call("b")]
    for _ in range(2):
        assert renderer.render(messages) == apply_template(tok, messages, None)
    assert renderer.render(messages).startswith('{"path": "a"}|{\n  "path": "a"\n}|{"path":"a"}\n{"path": "b"}')
    fresh = [call("c")]
    assert renderer.render(fresh) == apply_template(tok, fresh, None)
