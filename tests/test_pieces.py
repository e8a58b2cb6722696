"""Rendering an Episode once (``prepare.pieces``) gives the prefix-diff method's ids and masks.

Every window the trajectory planner emits from pieces is rendered again with
``render_conversation`` (two renders per target, the whole window tokenized):
same ids, same mask, same supervised turns. On every shared real trace (skipped
when ``../shared/traces`` is absent) and on generated conversations under
templates that group tool results, drop old reasoning or enforce alternation
(those fall back to the prefix-diff method, which must be detected, not
assumed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetune.engines.tokenizer import load_tokenizer
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import ConversationCounts, convert_episode, to_conversation
from tracetune.prepare.pieces import RenderedEpisode
from tracetune.prepare.render import render_conversation
from tracetune.prepare.stage import examples_for
from tracetune.prepare.tools import ToolCatalog
from tracetune.readers import read_paths

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
TRACES = sorted(p for p in SHARED.rglob("*.jsonl")) if SHARED.is_dir() else []
TEMPLATES = Path(__file__).parent / "assets" / "templates"
TOOLS = [{"type": "function", "function": {"name": n, "description": f"{n} tool", "parameters": {"type": "object", "properties": {}}}}
         for n in ("read", "bash")]


def _same_as_prefix_diff(tokenizer, conv, result) -> int:
    """Every example re-rendered the prefix-diff way; returns how many were checked."""
    for ex in result.examples:
        exact = render_conversation(tokenizer, list(ex.messages), conv.tools or None, list(ex.rendered.turns))
        assert not exact.failed and not exact.fallback_turns
        (again,) = exact.examples
        assert again.ids == ex.rendered.ids
        assert again.mask == ex.rendered.mask
        assert again.turns == ex.rendered.turns and again.spans == ex.rendered.spans
        assert again.boundary_tokens == ex.rendered.boundary_tokens
    return len(result.examples)


def _conversations(path: Path, config: PrepareConfig):
    read = read_paths([path])
    catalog = ToolCatalog.from_sessions(read.sessions)
    for session in read.sessions:
        for episode in session.episodes:
            converted = convert_episode(episode, config, ConversationCounts())
            if converted.target_indices:
                yield to_conversation(session, converted, catalog.for_session(session), session.system_prompt)


@pytest.mark.skipif(not TRACES, reason="shared traces absent")
@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
@pytest.mark.parametrize("max_length", [1024, 4096])
def test_windows_from_pieces_equal_the_prefix_diff_masks(tiny_tokenizer, path, max_length):
    config = PrepareConfig(max_length=max_length)
    checked = built = 0
    for conv in _conversations(path, config):
        rendered = RenderedEpisode.build(tiny_tokenizer, conv.with_system([]), conv.messages, conv.tools, conv.targets)
        built += rendered is not None and rendered.split_safe
        checked += _same_as_prefix_diff(tiny_tokenizer, conv, examples_for(tiny_tokenizer, conv, config))
    assert built  # the fast path was taken, not silently skipped
    if max_length == 4096 and path.parent.name.startswith("pi"):
        assert checked  # (the Claude Code and Codex prefixes alone fill most of 4096 tiny-student tokens)


@pytest.mark.skipif(not TRACES, reason="shared traces absent")
def test_whole_episode_from_pieces_equals_one_prefix_diff_render(tiny_tokenizer):
    path = next(p for p in TRACES if p.name == "before-compaction.jsonl") if any(p.name == "before-compaction.jsonl" for p in TRACES) else TRACES[0]
    conv = next(_conversations(path, PrepareConfig()))
    messages = conv.with_system(conv.messages)
    offset = len(messages) - len(conv.messages)
    rendered = RenderedEpisode.build(tiny_tokenizer, conv.with_system([]), conv.messages, conv.tools, conv.targets)
    targets = [offset + t for t in conv.targets]
    fast = rendered.outcome(tiny_tokenizer, messages, [-1] * offset + list(range(len(conv.messages))), targets)
    exact = render_conversation(tiny_tokenizer, messages, conv.tools, targets)
    assert [(e.ids, e.mask, e.turns) for e in fast.examples] == [(e.ids, e.mask, e.turns) for e in exact.examples]
    assert fast.failed == exact.failed


def _tokenizers(tiny_student):
    out = {"tiny": load_tokenizer(tiny_student)}
    for name in ("qwen2_style", "gemma_style", "reasoning_dropping", "chatml_generation", "role_prompt"):
        tok = load_tokenizer(tiny_student, chat_template=(TEMPLATES / f"{name}.jinja").read_text())
        if name == "gemma_style":
            tok.add_special_tokens({"bos_token": "<bos>", "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
        out[name] = tok
    return out


@pytest.fixture(scope="module")
def tokenizers(tiny_student):
    return _tokenizers(tiny_student)


WORDS = st.text(alphabet="abcdefghij klmnop\n.,:=()", min_size=1, max_size=30).map(str.strip).filter(bool)


@st.composite
def episodes(draw):
    """(system, messages, targets): a user task, assistant turns with calls and results, a user follow-up."""
    system = [{"role": "system", "content": draw(WORDS)}] if draw(st.booleans()) else []
    messages = [{"role": "user", "content": draw(WORDS)}]
    targets, n = [], 0
    for _ in range(draw(st.integers(1, 5))):
        content = draw(st.one_of(st.just(""), WORDS))
        calls = []
        for _ in range(draw(st.integers(0 if content else 1, 2))):
            n += 1
            calls.append({"id": f"c{n}", "type": "function",
                          "function": {"name": draw(st.sampled_from(["read", "bash"])), "arguments": {"x": draw(WORDS)}}})
        message = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        if draw(st.booleans()):
            message["reasoning_content"] = draw(WORDS)
        if draw(st.booleans()):
            targets.append(len(messages))
        messages.append(message)
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"], "content": draw(WORDS)})
        if not calls and draw(st.booleans()):
            messages.append({"role": "user", "content": draw(WORDS)})
    return system, messages, targets


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=episodes(), name=st.sampled_from(["tiny", "qwen2_style", "gemma_style", "reasoning_dropping", "chatml_generation",
                                              "role_prompt"]),
       tools=st.booleans())
def test_generated_episodes_render_once_like_the_prefix_diff(tokenizers, case, name, tools):
    system, messages, targets = case
    tok = tokenizers[name]
    rendered = RenderedEpisode.build(tok, system, messages, TOOLS if tools else None, targets)
    if rendered is None:  # the template does not allow pieces: the caller renders the prefix-diff way
        return
    window = system + messages
    index = [-1] * len(system) + list(range(len(messages)))
    local = [len(system) + t for t in targets]
    fast = rendered.outcome(tok, window, index, local)
    exact = render_conversation(tok, window, TOOLS if tools else None, local)
    if exact.fallback_turns:  # a turn that renders differently later cannot come from pieces
        assert fast is None or not fast.examples
        return
    assert fast is not None
    assert [(e.ids, e.mask, e.turns, e.text) for e in fast.examples] == [(e.ids, e.mask, e.turns, e.text) for e in exact.examples]
    assert fast.failed == exact.failed
    # a window that ends at an earlier target: a prefix of the pieces
    for cut, t in enumerate(targets):
        end = t + 1
        sub = system + messages[:end]
        fast = rendered.outcome(tok, sub, index[: len(system) + end], [len(system) + u for u in targets[: cut + 1]])
        exact = render_conversation(tok, sub, TOOLS if tools else None, [len(system) + u for u in targets[: cut + 1]])
        if fast is None or exact.fallback_turns:
            continue
        assert [(e.ids, e.mask) for e in fast.examples] == [(e.ids, e.mask) for e in exact.examples]


def test_template_that_drops_old_reasoning_is_not_rendered_from_pieces(tokenizers):
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": "one", "reasoning_content": "first thought"},
                {"role": "user", "content": "more"},
                {"role": "assistant", "content": "two", "reasoning_content": "second thought"}]
    assert RenderedEpisode.build(tokenizers["reasoning_dropping"], [], messages, None, [1, 3]) is None
    assert RenderedEpisode.build(tokenizers["tiny"], [], messages, None, [1, 3]) is not None


def test_a_prompt_that_depends_on_the_role_before_it_is_found_per_role(tokenizers):
    """Segments render without context here, but the prompt after a user message holds ``<answer>`` and after a
    tool result does not: each target is supervised from where its own prompt ends, as in the prefix diff."""
    tok = tokenizers["role_prompt"]
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": "a", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "read", "arguments": {"x": "y"}}}]},
                {"role": "tool", "tool_call_id": "c1", "name": "read", "content": "out"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "more"},
                {"role": "assistant", "content": "c"}]
    system = [{"role": "system", "content": "sys"}]
    rendered = RenderedEpisode.build(tok, system, messages, None, [1, 3, 5])
    assert rendered is not None and rendered.context == 0
    window, index, local = system + messages, [-1] + list(range(len(messages))), [2, 4, 6]
    fast, exact = rendered.outcome(tok, window, index, local), render_conversation(tok, window, None, local)
    assert [(e.ids, e.mask, e.turns) for e in fast.examples] == [(e.ids, e.mask, e.turns) for e in exact.examples]
    text = exact.examples[0].text
    assert [text[a:b] for a, b in exact.examples[0].spans] == ["a\n<tool_call>\n{\"name\": \"read\", \"arguments\": {\"x\": \"y\"}}\n</tool_call><|im_end|>",
                                                               "<answer>b<|im_end|>", "c<|im_end|>"]


def _window_choices(tokenizer, conv, config):
    result = examples_for(tokenizer, conv, config)
    return [(ex.targets, ex.rendered.ids, ex.rendered.mask) for ex in result.examples], dict(result.dropped)


@pytest.mark.skipif(not TRACES, reason="shared traces absent")
@pytest.mark.parametrize("max_length", [1024, 2048])
def test_pruned_attempts_never_change_the_windows(tiny_tokenizer, monkeypatch, max_length):
    """Windows skipped unbuilt (planned too long, or counted too long from their pieces) are ones that could not fit."""
    from tracetune.prepare import windows

    path = next((p for p in TRACES if p.name == "before-compaction.jsonl"), TRACES[0])
    config = PrepareConfig(max_length=max_length)
    convs = list(_conversations(path, config))[:3]
    pruned = [_window_choices(tiny_tokenizer, conv, config) for conv in convs]
    monkeypatch.setattr(windows.Windows, "_surely_over", lambda self, start, end: False)
    monkeypatch.setattr(windows.Windows, "_too_long", lambda self, messages, index, local: False)
    assert pruned == [_window_choices(tiny_tokenizer, conv, config) for conv in convs]


@pytest.mark.skipif(not TRACES, reason="shared traces absent")
def test_a_window_counted_from_its_pieces_has_the_tokens_it_renders_to(tiny_tokenizer, monkeypatch):
    from tracetune.prepare import windows

    path = next((p for p in TRACES if p.name == "before-compaction.jsonl"), TRACES[0])
    config = PrepareConfig(max_length=1024)
    seen = []
    emit = windows.Windows.emit

    def counted(self, start, targets, squeeze=None):
        messages, index = self.planner.window_messages(start, targets[-1], squeeze, targets[0])
        local = [index.index(t) for t in targets]
        count = self.planner.rendered.tokens(tiny_tokenizer, messages, index, local)
        outcome = self.planner.rendered.outcome(tiny_tokenizer, messages, index, local)
        if count is not None and outcome is not None and outcome.examples:
            seen.append((count, outcome.examples[0].num_tokens))
        return emit(self, start, targets, squeeze)

    monkeypatch.setattr(windows.Windows, "emit", counted)
    for conv in list(_conversations(path, config))[:2]:
        examples_for(tiny_tokenizer, conv, config)
    assert len(seen) > 20 and any(count > 1024 for count, _ in seen)  # fitting and too-long windows both counted
    assert all(count == tokens for count, tokens in seen)
