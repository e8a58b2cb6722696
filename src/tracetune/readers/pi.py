"""Reader for pi coding-agent sessions (``~/.pi/agent/sessions/--cwd--/*.jsonl``), versions 1-3.

For every assistant entry, the context it was generated from is pi's own
``convertToLlm(buildSessionContext(entries, entry.parentId).messages)``
(checked against the npm package by ``tests/test_pi_oracle.py``).

Episodes: every leaf of the entry tree (in file order) is a path; the path
is cut into segments at its compaction entries. Each (leaf, segment) is one
Episode: the context at the start of the segment (after a compaction: pi's
summary message, then the kept entries from ``firstKeptEntryId`` up to the
compaction) followed by the segment's own messages, so for a target at index
``i`` ``messages[:i]`` is exactly its context. An assistant entry is judged
once, in the first Episode where it appears in a segment (a target, or
context only as ``aborted`` / ``error`` / ``empty``); later appearances
(a shared branch prefix, the kept tail after a compaction) are marked
``seen``. Episodes without a newly judged assistant turn are dropped.

Not covered: pi's provider layer (``pi-ai``) later drops aborted / error
assistant turns and answers unanswered tool calls with a synthetic "No
result provided" before calling a model; the Episodes keep pi's context as
``buildSessionContext`` gives it. pi records no system prompt and no tool
definitions in its session files. An empty file is read as a Session with
no Episodes and an ``empty_file`` warning (only a binary or non-UTF-8 file
raises ``UnreadableFileError``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Episode, Message, Session, SessionStats
from tracetune.conversation.validate import pairing_issues
from tracetune.readers.base import WarningSink, open_text
from tracetune.readers.pi_context import compaction_summary, convert_entry, message_model
from tracetune.readers.pi_entries import PiTree, parse_tree

FORMAT = "pi"
PI_ROLES = {"user", "assistant", "toolResult", "bashExecution", "custom", "hookMessage"}


def sniff(first_objects: list[dict[str, Any]]) -> bool:
    """Whether the first objects look like a pi session (a ``session`` header or a pi ``message`` entry)."""
    for obj in first_objects:
        if obj.get("type") == "session":
            return True
        msg = obj.get("message")
        if obj.get("type") == "message" and isinstance(msg, dict) and msg.get("role") in PI_ROLES:
            return True
    return False


def read(path: Path | str) -> list[Session]:
    """The one ``Session`` of the pi file at ``path``: an Episode per leaf and compaction segment."""
    path = Path(path)
    text = open_text(path)
    sink = WarningSink(path)
    if not text.strip():
        sink.warn("empty_file", "the file is empty")
        sid = _session_id({}, path)
        return [Session(id=sid, source=str(path), agent=FORMAT, episodes=(), warnings=tuple(sink.items))]
    tree = parse_tree(text, sink)
    context = _Context(tree, sink)
    episodes = _Episodes(tree, context, _session_id(tree.header, path), sink).build()
    _warn_pairing(episodes, context, sink)
    return [_session(path, tree, context, episodes, sink)]


def _session_id(header: dict[str, Any], path: Path) -> str:
    sid = header.get("id")
    stem = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return sid if isinstance(sid, str) and sid else stem.split("_")[-1] or stem


class _Context:
    """Each entry's message (converted once), its teacher model, what was skipped."""

    def __init__(self, tree: PiTree, sink: WarningSink):
        self.tree = tree
        self.ignored: Counter[str] = Counter()
        header_model = message_model({"provider": tree.header.get("provider"), "model": tree.header.get("modelId")})
        self._model_at: dict[int | None, str | None] = {None: header_model}
        self.messages: list[Message | None] = []
        for entry in tree.entries:
            fallback = None
            if entry.role == "assistant" and not message_model(entry.message or {}):
                fallback = self.model_before(entry.pos)
            converted = convert_entry(entry, sink, fallback)
            self.messages.append(converted.message)
            if converted.ignored_as:
                self.ignored[converted.ignored_as] += 1
        self.summaries = {e.pos: compaction_summary(e) for e in tree.entries if e.type == "compaction"}

    def model_before(self, pos: int) -> str | None:
        """The teacher model in force at ``pos``: the last model_change or assistant model above it."""
        walk, cur = [], self.tree.entries[pos].parent
        while cur not in self._model_at:
            walk.append(cur)
            cur = self.tree.entries[cur].parent
        model = self._model_at[cur]
        for p in reversed(walk):
            entry = self.tree.entries[p]
            if entry.type == "model_change" and isinstance(entry.raw.get("modelId"), str):
                model = message_model({"provider": entry.raw.get("provider"), "model": entry.raw["modelId"]})
            elif entry.role == "assistant":
                model = message_model(entry.message or {}) or model
            self._model_at[p] = model
        return model


class _Episodes:
    def __init__(self, tree: PiTree, context: _Context, session_id: str, sink: WarningSink):
        self.tree, self.context, self.session_id, self.sink = tree, context, session_id, sink
        self.missing_kept: set[int] = set()  # compactions already warned for a firstKeptEntryId off their path
        self.judged: set[int] = set()  # assistant positions already given their one non-"seen" appearance
        self.covered: set[int] = set()  # positions already placed in some segment

    def build(self) -> list[tuple[Episode, list[int]]]:
        out = []
        for leaf in self.tree.leaves:
            path = self.tree.path(leaf)
            cuts = [i for i, p in enumerate(path) if self.tree.entries[p].type == "compaction"]
            starts = [0] + [c + 1 for c in cuts]
            ends = cuts + [len(path)]
            for k, (start, end) in enumerate(zip(starts, ends)):
                episode = self._episode(leaf, path, k, start, end, cuts[k - 1] if k else None)
                if episode is not None:
                    out.append(episode)
        return out

    def _base(self, path: list[int], cut: int | None) -> list[tuple[Message, int]]:
        """pi's context right after the compaction at ``path[cut]``: summary, then the kept entries."""
        if cut is None:
            return []
        comp = self.tree.entries[path[cut]]
        base = [(self.context.summaries[comp.pos], comp.pos)]
        first_kept = comp.raw.get("firstKeptEntryId")
        kept = False
        for p in path[:cut]:
            kept = kept or self.tree.entries[p].id == first_kept
            if kept and self.context.messages[p] is not None:
                base.append((_seen(self.context.messages[p]), p))
        already_warned = self.tree.version < 2 and first_kept is None  # the v1 migration said why
        if not kept and not already_warned and comp.pos not in self.missing_kept:
            self.missing_kept.add(comp.pos)
            self.sink.warn(
                "compaction_target_missing",
                f"firstKeptEntryId {first_kept!r} is not on the path; the context keeps only the summary, as in pi",
                comp.line,
            )
        return base

    def _episode(self, leaf: int, path: list[int], k: int, start: int, end: int, cut: int | None):
        if start >= end:
            return None
        pairs = self._base(path, cut)
        fresh = False
        start_kind = "compaction" if k else ("branch" if path[0] in self.covered else "root")
        for p in path[start:end]:
            self.covered.add(p)
            message = self.context.messages[p]
            if message is None:
                continue
            if message.role == "assistant":
                if p in self.judged:
                    message = _seen(message)
                else:
                    self.judged.add(p)
                    fresh = True
            pairs.append((message, p))
        if not fresh:
            return None
        leaf_entry = self.tree.entries[leaf]
        key = leaf_entry.id if leaf_entry.id not in self.tree.duplicated_ids else f"{leaf_entry.id}@L{leaf_entry.line}"
        episode = Episode(
            id=f"{self.session_id}:{key}:{k}",
            messages=tuple(m for m, _ in pairs),
            start=start_kind,
            leaf_id=leaf_entry.id,
        )
        return episode, [p for _, p in pairs]


def _seen(message: Message) -> Message:
    if message.role != "assistant" or message.untrainable_reason == "seen":
        return message
    return replace(message, trainable=False, untrainable_reason="seen")


def _warn_pairing(episodes: list[tuple[Episode, list[int]]], context: _Context, sink: WarningSink) -> None:
    """Tool call <-> result problems, once per entry however many Episodes show it."""
    done: set[tuple[str, int]] = set()
    for episode, positions in episodes:
        for issue in pairing_issues(episode.messages):
            pos = positions[issue.index]
            if (issue.kind, pos) in done:
                continue
            done.add((issue.kind, pos))
            entry = context.tree.entries[pos]
            what = "tool result answers no earlier call" if issue.kind == "orphan_tool_result" else "tool call gets no result"
            sink.warn(issue.kind, f"{what} (id {issue.tool_call_id!r}); kept in the context as pi does", entry.line)


def _session(path: Path, tree: PiTree, context: _Context, episodes: list, sink: WarningSink) -> Session:
    header = tree.header
    parent = header.get("parentSession") or header.get("branchedFrom")
    models: list[str] = []
    for m in context.messages:
        if m is not None and m.role == "assistant" and m.model and m.model not in models:
            models.append(m.model)
    stats = SessionStats(
        entries=len(tree.entries),
        assistant_entries=sum(1 for e in tree.entries if e.type == "message" and e.role == "assistant"),
        compactions=sum(1 for e in tree.entries if e.type == "compaction"),
        branch_points=tree.branch_points,
        leaves=len(tree.leaves),
        images=sum(m.images for m in context.messages if m is not None),
        ignored=dict(context.ignored),
    )
    cwd = header.get("cwd")
    return Session(
        id=_session_id(tree.header, path),
        source=str(path),
        agent=FORMAT,
        episodes=tuple(ep for ep, _ in episodes),
        format_version=str(tree.version),
        parent_ref=parent if isinstance(parent, str) else None,
        cwd=cwd if isinstance(cwd, str) else None,
        teacher_models=tuple(models),
        warnings=tuple(sink.items),
        stats=stats,
    )
