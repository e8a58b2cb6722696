"""Property: the Claude Code, Codex and messages readers never raise on mutated files, and lose nothing silently.

Mutations of the hand-written fixtures (and the real shared traces, when present): garble or
truncate a line, replace a value anywhere inside a line with one of the wrong type, duplicate
or swap lines (structural changes, like a new ``uuid`` or ``parentUuid``). Invariants:

- ``read`` returns Sessions (no exception), and every warning names the file and a known kind;
- every line that is not valid JSON has a warning on that line;
- no Episode holds a tool result without its call (orphans are dropped *and* warned);
- when a corruption that is not structural makes the reader keep fewer assistant turns, tool calls
  or tool results than it kept from the intact file, the reading says so: a warning, or a line
  counted as ignored.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetune.conversation.types import WarningKind
from tracetune.readers import claude_code, codex, messages

ROOT = Path(__file__).resolve().parent
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
KINDS = set(typing.get_args(WarningKind))


def _bases():
    out = []
    for reader, folder, shared in ((claude_code, "claude_code", "claude-code"), (codex, "codex", "codex"),
                                   (messages, "messages", None)):
        files = sorted((ROOT / "fixtures" / folder).glob("*.jsonl"))
        if shared and (SHARED / shared).is_dir():
            files += sorted((SHARED / shared).glob("*.jsonl"))
        out += [(reader, f.name, f.read_text(encoding="utf-8").splitlines()) for f in files]
    return out


BASES = _bases()
#: Keys that link a Claude Code entry into its tree: a new value re-parents entries (a structural change, like a
#: swap): a tool call can end up last on its branch, where no result is expected (the agent may have been stopped).
TREE_LINKS = {"uuid", "parentUuid"}
JUNK = st.sampled_from([None, 7, -1.5, True, "", "x", [], [1, "a"], {}, {"type": "text"}])


def _paths(value, prefix=()):
    """Every (container path) inside a JSON value, for picking one to overwrite."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _set(obj, path, value):
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


@st.composite
def mutated(draw):
    reader, name, lines = draw(st.sampled_from(BASES))
    lines = list(lines)
    structural = False
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["garble", "truncate", "value", "value", "value", "duplicate", "swap"]))
        if op == "truncate":
            lines[i] = lines[i][: draw(st.integers(1, max(1, len(lines[i]) - 2)))]
        elif op == "garble":
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.sampled_from(["{", "]", '"', "\\", "\x7f,"])) + lines[i][k:]
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
            structural = True
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            structural = True
        else:
            try:
                obj = json.loads(lines[i])
            except json.JSONDecodeError:
                continue
            paths = _paths(obj)
            if paths:
                where = draw(st.sampled_from(paths))
                _set(obj, where, draw(JUNK))
                lines[i] = json.dumps(obj)
                structural = structural or where[-1] in TREE_LINKS
    return reader, name, lines, structural


def _figures(sessions):
    turns = calls = results = 0
    for s in sessions:
        turns += s.assistant_turns
        for ep in s.episodes:
            for m in ep.messages:
                if m.role == "assistant" and m.untrainable_reason != "seen":
                    calls += len(m.tool_calls)
                elif m.role == "tool":
                    results += 1
    return turns, calls, results


def _ignored(sessions):
    return sum(n for s in sessions for n in s.stats.ignored.values())


_INTACT: dict[str, tuple] = {}


def _intact(reader, name, lines, tmp):
    if name not in _INTACT:
        path = tmp / f"intact-{name}"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        sessions = reader.read(path)
        _INTACT[name] = (_figures(sessions), _ignored(sessions))
    return _INTACT[name]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_files_never_raise_and_nothing_is_lost_silently(case, tmp_path):
    reader, name, lines, structural = case
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sessions = reader.read(path)
    assert sessions
    warnings = [w for s in sessions for w in s.warnings]
    for w in warnings:
        assert w.kind in KINDS and w.path == str(path)
    warned_lines = {w.line for w in warnings}
    for n, raw in enumerate(lines, 1):
        if raw.strip():
            try:
                json.loads(raw)
            except json.JSONDecodeError:
                assert n in warned_lines, f"line {n} is not JSON and has no warning"
    if reader is not messages:
        for s in sessions:
            for ep in s.episodes:
                called = set()
                for m in ep.messages:
                    called.update(c.id for c in m.tool_calls)
                    assert m.role != "tool" or m.tool_call_id in called
    (turns, calls, results), ignored = _intact(reader, name, BASES_BY_NAME[name], tmp_path)
    lost = any(a < b for a, b in zip(_figures(sessions), (turns, calls, results)))
    if lost and not structural:
        assert warnings or _ignored(sessions) > ignored, "fewer turns/calls/results with no warning"


BASES_BY_NAME = {name: lines for _, name, lines in BASES}


def test_binary_and_non_utf8_files_raise_a_clear_error(tmp_path):
    from tracetune.errors import UnreadableFileError

    for reader in (claude_code, codex, messages):
        path = tmp_path / "x.jsonl"
        path.write_bytes(b'{"a": "\xff\xfe"}\n')
        try:
            reader.read(path)
        except UnreadableFileError as exc:
            assert "UTF-8" in str(exc)
        else:
            raise AssertionError("non-UTF-8 file read without an error")
