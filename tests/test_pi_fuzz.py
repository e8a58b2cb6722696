"""Property: the pi reader never raises on mutated session files, and never loses an assistant entry.

Mutations of real pi-written files (the fixtures): delete, duplicate, shuffle and truncate
lines, and replace fields (ids, parent ids, types, roles, content, whole messages) with values
of the wrong type. Every line that is still a JSON assistant entry must be judged once in an
Episode; everything else that went wrong must be a warning with the file and a line.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetune.errors import UnreadableFileError
from tracetune.readers import pi

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pi"
BASES = [(FIXTURES / n).read_text().splitlines() for n in ("branched.jsonl", "compacted.jsonl", "v1_linear.jsonl")]

JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=5), st.just("u1"),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
FIELDS = ["id", "parentId", "type", "message", "summary", "firstKeptEntryId", "firstKeptEntryIndex", "content", "version"]
MESSAGE_FIELDS = ["role", "content", "toolCallId", "stopReason", "provider", "model", "command", "excludeFromContext"]


@st.composite
def mutated(draw) -> str:
    lines = list(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "field", "message_field", "block"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        else:
            lines[i] = _corrupt(lines[i], op, draw)
    tail = draw(st.sampled_from(["\n", ""]))
    return "\n".join(lines) + tail


def _corrupt(line: str, op: str, draw) -> str:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return line
    target = obj
    if op in ("message_field", "block"):
        target = obj.get("message") if isinstance(obj, dict) else None
        if not isinstance(target, dict):
            return line
    if op == "block":
        content = target.get("content")
        if isinstance(content, list) and content:
            k = draw(st.integers(0, len(content) - 1))
            content[k] = draw(st.one_of(JUNK, st.fixed_dictionaries({"type": st.sampled_from(["text", "toolCall", "image", "thinking", "x"]), "text": JUNK, "arguments": JUNK})))
        return json.dumps(obj)
    key = draw(st.sampled_from(MESSAGE_FIELDS if op == "message_field" else FIELDS))
    target[key] = draw(JUNK)
    return json.dumps(obj)


def _assistant_lines(text: str) -> list[int]:
    out = []
    for n, raw in enumerate(text.split("\n"), 1):
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            continue
        message = obj.get("message") if isinstance(obj, dict) else None
        if obj.get("type") == "message" if isinstance(obj, dict) else False:
            if isinstance(message, dict) and message.get("role") == "assistant":
                out.append(n)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mutated_files_never_crash_nor_lose_assistant_turns(tmp_path, text):
    path = tmp_path / "mutated.jsonl"
    path.write_text(text)
    try:
        [session] = pi.read(path)
    except UnreadableFileError:
        assert "\x00" in text
        return
    assert session.assistant_turns == len(_assistant_lines(text))
    for warning in session.warnings:
        assert warning.path == str(path)
        assert warning.line is not None or warning.kind == "empty_file"
    for episode in session.episodes:
        assert any(m.role == "assistant" and m.untrainable_reason != "seen" for m in episode.messages)
        for i in episode.target_indices:
            assert episode.messages[i].role == "assistant"


ENTRY = st.fixed_dictionaries(
    {"type": st.sampled_from(["session", "message", "compaction", "branch_summary", "custom_message", "label", "x"])},
    optional={
        "id": st.sampled_from(["a", "b", "c", "d"]), "parentId": st.sampled_from(["a", "b", "c", "d", None]),
        "version": JUNK, "summary": JUNK, "firstKeptEntryId": st.sampled_from(["a", "b"]), "content": JUNK,
        "firstKeptEntryIndex": st.integers(-1, 6),
        "message": st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "toolResult", "bashExecution", "custom", "zzz"])},
                                         optional={"content": JUNK, "toolCallId": JUNK, "stopReason": JUNK, "command": JUNK}),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(ENTRY, max_size=12))
def test_arbitrary_entry_soup_never_crashes(tmp_path, entries):
    text = "\n".join(json.dumps(e) for e in entries)
    path = tmp_path / "soup.jsonl"
    path.write_text(text)
    [session] = pi.read(path)
    assert session.assistant_turns == len(_assistant_lines(text))
