"""Pure scoring functions: one student output against the teacher's next message.

Action types: ``tool_call`` (the message calls at least one tool: the agent
loop continues), ``reply`` (text only: the agent hands the turn back) and
``stop`` (neither text nor call). An output that did not parse has no action.

Argument agreement compares the student's first call with the teacher's first
call when both name the same tool, key by key: path-like keys must match
exactly (after normalising ``./`` and trailing slashes), other strings score a
whitespace-normalised ``difflib`` ratio, other values score 1 when equal.
Keys present on one side only score 0.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

from tracetune.conversation.types import Message, ToolCall, ToolSpec
from tracetune.eval.schema import validate

ActionType = Literal["tool_call", "reply", "stop"]

PATH_KEYS = frozenset({"path", "file_path", "filepath", "filename", "file", "dir", "directory", "cwd", "notebook_path"})


@dataclass(frozen=True)
class TurnScore:
    """Every measure for one sample. ``None`` means the measure does not apply."""

    parsed: bool
    parse_error: str | None
    teacher_action: ActionType
    action: ActionType | None
    action_match: bool
    continue_match: bool  # both continue the loop (tool call) or both hand the turn back
    teacher_tool: str | None
    tool: str | None
    known_tool: bool | None  # every student call names a tool of the episode
    schema_valid: bool | None  # every student call to a known tool validates
    schema_errors: tuple[str, ...]
    tool_match: bool | None  # the first calls name the same tool (teacher called one)
    args_similarity: float | None  # same tool: mean per-key agreement
    path_match: bool | None  # same tool with a path argument: all paths exact
    reply_similarity: float | None  # teacher replied: similarity of the texts

    @property
    def valid_call(self) -> bool | None:
        """Whether the student's calls name known tools with valid arguments; None when it called none."""
        if self.known_tool is None:
            return None
        return bool(self.known_tool and self.schema_valid)

    def to_dict(self) -> dict[str, Any]:
        """This score as a JSON-ready dict, ``valid_call`` included."""
        out = asdict(self)
        out["schema_errors"] = list(self.schema_errors)
        out["valid_call"] = self.valid_call
        return out


def action_type(message: Message) -> ActionType:
    """What ``message`` does: ``tool_call``, ``reply`` (text) or ``stop`` (nothing)."""
    if message.tool_calls:
        return "tool_call"
    return "reply" if message.content.strip() else "stop"


def normalise_text(text: str) -> str:
    """``text`` with each run of whitespace made one space, and stripped."""
    return re.sub(r"\s+", " ", text).strip()


def text_similarity(a: str, b: str) -> float:
    """``difflib`` ratio of whitespace-normalised texts; two empty texts agree fully."""
    a, b = normalise_text(a), normalise_text(b)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def normalise_path(value: str) -> str:
    """``value`` as a normalised POSIX path, without a leading ``./``."""
    value = value.strip()
    if not value:
        return value
    normal = posixpath.normpath(value)
    return normal[2:] if normal.startswith("./") else normal


def is_path_key(key: str) -> bool:
    """Whether the argument ``key`` holds a path (a known path key, or one ending in ``path``)."""
    lowered = key.lower()
    return lowered in PATH_KEYS or lowered.endswith("path")


def value_agreement(key: str, teacher: Any, student: Any) -> float:
    """How far the student's value agrees with the teacher's, from 0 to 1 (paths must match exactly)."""
    if isinstance(teacher, str) and isinstance(student, str):
        if is_path_key(key):
            return float(normalise_path(teacher) == normalise_path(student))
        return text_similarity(teacher, student)
    return float(teacher == student)


def argument_agreement(teacher: Mapping[str, Any], student: Mapping[str, Any]) -> tuple[float, bool | None]:
    """Mean per-key agreement and whether every path-like key matched exactly (None: no path key)."""
    keys = sorted(set(teacher) | set(student))
    if not keys:
        return 1.0, None
    scores = {k: value_agreement(k, teacher[k], student[k]) if k in teacher and k in student else 0.0 for k in keys}
    path_keys = [k for k in keys if is_path_key(k)]
    path_match = all(scores[k] == 1.0 for k in path_keys) if path_keys else None
    return sum(scores.values()) / len(keys), path_match


def check_calls(calls: tuple[ToolCall, ...], tools: Mapping[str, ToolSpec]) -> tuple[bool, bool | None, tuple[str, ...]]:
    """Whether every call names a known tool, whether the known ones validate (None: none known), the problems."""
    unknown = [f"{c.name}: unknown tool" for c in calls if c.name not in tools]
    known_calls = [c for c in calls if c.name in tools]
    problems = [f"{c.name}: {e}" for c in known_calls for e in validate(c.arguments, tools[c.name].parameters)]
    schema_ok = not problems if known_calls else None
    return not unknown, schema_ok, tuple(unknown + problems)


def score_turn(
    teacher: Message,
    student: Message | None,
    tools: Mapping[str, ToolSpec],
    parse_error: str | None = None,
) -> TurnScore:
    """Score one student output (``None`` when it did not parse) against the teacher's message."""
    teacher_action = action_type(teacher)
    teacher_tool = teacher.tool_calls[0].name if teacher.tool_calls else None
    if student is None:
        return TurnScore(
            parsed=False, parse_error=parse_error or "unparsed", teacher_action=teacher_action, action=None,
            action_match=False, continue_match=False, teacher_tool=teacher_tool, tool=None, known_tool=None,
            schema_valid=None, schema_errors=(), tool_match=False if teacher_tool else None,
            args_similarity=None, path_match=None, reply_similarity=0.0 if teacher_action == "reply" else None,
        )
    action = action_type(student)
    tool = student.tool_calls[0].name if student.tool_calls else None
    known = schema_ok = None
    errors: tuple[str, ...] = ()
    if student.tool_calls:
        known, schema_ok, errors = check_calls(student.tool_calls, tools)
    tool_match = (tool == teacher_tool) if teacher_tool else None
    args_sim = path_match = None
    if tool_match:
        args_sim, path_match = argument_agreement(teacher.tool_calls[0].arguments, student.tool_calls[0].arguments)
    reply_sim = text_similarity(teacher.content, student.content) if teacher_action == "reply" else None
    return TurnScore(
        parsed=True, parse_error=None, teacher_action=teacher_action, action=action,
        action_match=action == teacher_action, continue_match=(action == "tool_call") == (teacher_action == "tool_call"),
        teacher_tool=teacher_tool, tool=tool, known_tool=known, schema_valid=schema_ok, schema_errors=errors,
        tool_match=tool_match, args_similarity=args_sim, path_match=path_match, reply_similarity=reply_sim,
    )
