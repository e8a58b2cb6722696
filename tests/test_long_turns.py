"""``long_turns``: a target turn longer than any window is dropped (default) or supervised in its first part."""

from __future__ import annotations

from tracetune.conversation.types import Episode, Message, Session, ToolCall
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.conversations import ConversationCounts, convert_episode, to_conversation
from tracetune.prepare.render import render_conversation
from tracetune.prepare.stage import examples_for
from tracetune.prepare.stats import PrepareStats

CONTENT = "".join(f"def f{i}(x):\n    return x * {i}\n\n" for i in range(600))


def _conversation(config: PrepareConfig, system: str = "You write code."):
    messages = [Message("user", "Write the module, then list the folder.")]
    for k, args in enumerate(({"path": "big.py", "content": CONTENT}, {"command": "ls"})):
        messages.append(Message("assistant", f"Step {k}.", (ToolCall(f"c{k}", "bash" if k else "write", args),),
                                trainable=True, model="t/m"))
        messages.append(Message("tool", "ok", tool_call_id=f"c{k}", name="bash" if k else "write"))
    messages.append(Message("assistant", "Done.", trainable=True, model="t/m"))
    episode = Episode("ep", tuple(messages))
    converted = convert_episode(episode, config, ConversationCounts())
    return to_conversation(Session("s", "src", "pi", (episode,)), converted, (), system)


def test_long_turn_is_dropped_by_default(tiny_tokenizer):
    config = PrepareConfig(max_length=1024)
    result = examples_for(tiny_tokenizer, _conversation(config), config)
    assert result.dropped == {"too_long": 1} and result.truncated_turns == 0
    assert sorted(t for ex in result.examples for t in ex.targets) == [3, 5]


def test_truncate_supervises_the_first_part_of_a_long_turn(tiny_tokenizer):
    config = PrepareConfig(max_length=1024, long_turns="truncate")
    conv = _conversation(config)
    result = examples_for(tiny_tokenizer, conv, config)
    assert not result.dropped and result.truncated_turns == 1
    assert sorted(t for ex in result.examples for t in ex.targets) == [1, 3, 5]
    (cut,) = [ex for ex in result.examples if ex.truncated]
    assert cut.targets == (1,) and cut.rendered.num_tokens == 1024
    assert cut.rendered.num_supervised >= 1024 * 0.125
    # the same ids and mask as the whole window rendered the prefix-diff way, cut at max_length
    (whole,) = render_conversation(tiny_tokenizer, list(cut.messages), None, list(cut.rendered.turns)).examples
    assert whole.num_tokens > 1024
    assert cut.rendered.ids == whole.ids[:1024] and cut.rendered.mask == whole.mask[:1024]
    supervised = tiny_tokenizer.decode([i for i, m in zip(cut.rendered.ids, cut.rendered.mask) if m])
    assert supervised.startswith("Step 0.") and "def f1(x)" in supervised and "<|im_end|>" not in supervised
    stats = PrepareStats()
    stats.add_episode("train", result, [])
    assert stats.to_dict()["turns"]["truncated"] == 1 and stats.to_dict()["turns"]["supervised"] == 3


def test_truncate_drops_a_turn_that_would_keep_too_little(tiny_tokenizer):
    config = PrepareConfig(max_length=1024, long_turns="truncate")
    conv = _conversation(config, system="You write code, and you write it well. " * 90)  # most of the window
    result = examples_for(tiny_tokenizer, conv, config)
    assert result.dropped.get("too_long") and not result.truncated_turns
