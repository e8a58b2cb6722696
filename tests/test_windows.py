"""Windows: long Episodes are cut at turn boundaries, carry their context, and lose no turn that fits."""

from __future__ import annotations

import pytest

from tracetune.conversation.types import Episode, Message, Session, ToolCall
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import CLIP_MARKER, ConversationCounts, clip_text, convert_episode, to_conversation
from tracetune.prepare.render import span_texts
from tracetune.prepare.stage import examples_for
from tracetune.engines.tokenizer import load_tokenizer

TASK = "Please refactor the parser module and keep the tests green."


def agent_episode(turns: int, result_chars: int = 300, *, big_result_at: int | None = None, big_call_at: int | None = None) -> Episode:
    messages = [Message("user", TASK)]
    for k in range(turns):
        args = {"command": f"cat src/file_{k}.py"}
        if k == big_call_at:
            args = {"path": "big.py", "content": "x = 1\n" * 3000}
        messages.append(Message("assistant", f"Step {k}: let me check file {k}.", (ToolCall(f"c{k}", "bash", args),), trainable=True, model="t/m"))
        size = 20000 if k == big_result_at else result_chars
        messages.append(Message("tool", (f"line {k} of output\n" * 400)[:size], tool_call_id=f"c{k}", name="bash"))
    messages.append(Message("assistant", "All done.", trainable=True, model="t/m"))
    return Episode("ep", tuple(messages))


def conversation(episode: Episode, config: PrepareConfig, system: str | None = "You are a coding agent."):
    session = Session("s1", "src", "pi", (episode,))
    converted = convert_episode(episode, config, ConversationCounts())
    tools = ()
    return to_conversation(session, converted, tools, system)


@pytest.fixture(scope="module")
def tok(tiny_student):
    return load_tokenizer(tiny_student)


def supervised_targets(result) -> list[int]:
    return sorted(t for ex in result.examples for t in ex.targets)


def test_short_episode_is_one_example(tok):
    config = PrepareConfig(max_length=4096)
    conv = conversation(agent_episode(3), config)
    result = examples_for(tok, conv, config)
    assert len(result.examples) == 1 and not result.windowed
    assert supervised_targets(result) == list(conv.targets)
    assert len(span_texts(result.examples[0].rendered, tok)) == len(conv.targets)


def test_long_episode_is_windowed_every_turn_once_with_context(tok):
    config = PrepareConfig(max_length=768)
    conv = conversation(agent_episode(30), config)
    result = examples_for(tok, conv, config)
    assert result.windowed and len(result.examples) > 3
    assert supervised_targets(result) == list(conv.targets)  # each target exactly once, none lost
    for ex in result.examples:
        assert ex.rendered.num_tokens <= 768
        msgs = list(ex.messages)
        assert msgs[0] == {"role": "system", "content": "You are a coding agent."}
        assert msgs[1]["role"] == "user" and msgs[1]["content"].startswith(TASK)
        called = set()
        for m in msgs:  # a window never starts with a tool result whose call it lacks
            called.update(c["id"] for c in m.get("tool_calls") or [])
            if m["role"] == "tool":
                assert m["tool_call_id"] in called
        assert len(span_texts(ex.rendered, tok)) == len(ex.targets)
    later = [ex for ex in result.examples if ex.window > 0]
    assert later and all("earlier messages omitted" in ex.messages[1]["content"] for ex in later)


def test_each_window_starts_with_the_turn_the_target_answers(tok):
    config = PrepareConfig(max_length=768, window_context=0.0)
    conv = conversation(agent_episode(20), config)
    result = examples_for(tok, conv, config)
    assert len(result.examples) > 2
    for ex in result.examples[1:]:
        first = ex.targets[0]
        assert conv.messages[first - 1]["role"] == "tool"
        assert conv.messages[first - 1] in ex.messages and conv.messages[first - 2] in ex.messages


def test_marker_can_be_switched_off(tok):
    config = PrepareConfig(max_length=768, window_marker=False)
    result = examples_for(tok, conversation(agent_episode(30), config), config)
    assert not any("omitted" in str(ex.messages) for ex in result.examples)


def test_turn_longer_than_max_length_is_dropped_and_counted_others_kept(tok):
    config = PrepareConfig(max_length=1024)
    conv = conversation(agent_episode(6, big_call_at=2), config)
    result = examples_for(tok, conv, config)
    assert result.dropped == {"too_long": 1}
    assert len(supervised_targets(result)) == len(conv.targets) - 1


def test_huge_context_is_squeezed_so_the_next_turn_still_trains(tok):
    config = PrepareConfig(max_length=1024, clip_tool_result_chars=None)
    conv = conversation(agent_episode(4, big_result_at=1), config)
    result = examples_for(tok, conv, config)
    assert supervised_targets(result) == list(conv.targets)
    assert result.squeezed_windows >= 1
    assert any("clipped by tracetune" in str(ex.messages) for ex in result.examples)


def test_per_turn_one_example_per_target_history_trimmed(tok):
    config = PrepareConfig(max_length=4096, strategy="per-turn", per_turn_history=4)
    conv = conversation(agent_episode(8), config)
    result = examples_for(tok, conv, config)
    assert [ex.targets for ex in result.examples] == [(t,) for t in conv.targets]
    for ex in result.examples:
        assert len(span_texts(ex.rendered, tok)) == 1
        assert len(ex.messages) <= 1 + 4 + 1  # system, history, the target
    full = examples_for(tok, conv, PrepareConfig(max_length=4096, strategy="per-turn", per_turn_history=0))
    traj = examples_for(tok, conv, PrepareConfig(max_length=4096))
    forwarded = lambda r: sum(e.rendered.num_tokens for e in r.examples) / sum(e.rendered.num_supervised for e in r.examples)  # noqa: E731
    assert forwarded(traj) * 3 < forwarded(full)


def test_clip_text_keeps_head_and_tail_with_a_visible_marker():
    text = "A" * 1000 + "B" * 1000
    clipped, removed = clip_text(text, 300)
    assert clipped.startswith("A" * 200) and clipped.endswith("B" * 100)
    assert CLIP_MARKER.format(n=removed) in clipped and removed == 1700
    assert clip_text("short", 300) == ("short", 0)


def test_conversion_drops_failed_turns_filters_teachers_and_reasoning():
    call = ToolCall("x1", "bash", {"command": "ls"})
    episode = Episode(
        "ep",
        (
            Message("user", "go"),
            Message("assistant", "", (call,), trainable=False, untrainable_reason="aborted"),
            Message("tool", "aborted", tool_call_id="x1", name="bash"),
            Message("assistant", "by A", reasoning="hmm", trainable=True, model="prov/a"),
            Message("user", "more"),
            Message("assistant", "by B", trainable=True, model="other/b"),
        ),
    )
    counts = ConversationCounts()
    out = convert_episode(episode, PrepareConfig(teacher_models=["prov/*"]), counts)
    assert [m.content for m in out.messages] == ["go", "by A", "more", "by B"]
    assert [m.content for m in out.messages if m.is_target] == ["by A"]
    assert out.messages[1].reasoning is None
    assert counts.to_dict()["dropped_context_turns"] == {"aborted": 1}
    assert counts.dropped_tool_results == 1 and counts.filtered_teacher == 1 and counts.reasoning_removed == 1
    kept = convert_episode(episode, PrepareConfig(drop_failed_turns=False, include_reasoning=True), ConversationCounts())
    assert len(kept.messages) == 6 and kept.messages[3].reasoning == "hmm"


def test_per_turn_fit_cuts_old_history_instead_of_dropping(tok):
    conv = conversation(agent_episode(30), PrepareConfig())
    dropped = examples_for(tok, conv, PrepareConfig(max_length=1024, strategy="per-turn", per_turn_history=0))
    fitted = examples_for(tok, conv, PrepareConfig(max_length=1024, strategy="per-turn", per_turn_history=0, per_turn_fit=True))
    assert dropped.dropped["too_long"] > 10
    assert [ex.targets for ex in fitted.examples] == [(t,) for t in conv.targets]
    assert all(ex.rendered.num_tokens <= 1024 and ex.messages[-1] == conv.messages[ex.targets[0]] for ex in fitted.examples)
