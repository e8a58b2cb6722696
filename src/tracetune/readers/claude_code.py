"""Claude Code sessions (``~/.claude/projects/<project>/<session>.jsonl``).

Each line is one entry. Conversation entries (``user``, ``assistant``,
``system``, and pass-through kinds such as ``progress``) carry a ``uuid`` and a
``parentUuid``: the file is a tree, and what the model saw at any point is the
chain from a root down to that entry.

Semantics (what this reader decides):

- **Paths.** Every message entry with no message below it is a leaf; its chain
  from the root is one Episode. Abandoned branches (a prompt edited or retried)
  become their own Episodes and are never concatenated with the live one. A
  path that only adds a dangling non-message entry (``progress``, ``system``)
  is not a leaf. Episodes are ordered by the leaf's line; an assistant turn is
  a target in the first Episode that holds it and ``seen`` in later ones.
- **Split assistant messages.** Claude Code writes one line per content block;
  lines sharing ``message.id`` are one model response and are merged into one
  assistant ``Message`` (text joined, thinking -> ``reasoning``, ``tool_use`` ->
  tool calls). Tool results written between two parts of the same response
  (parallel tool calls) are moved after the merged message, in file order. A
  result whose line hangs off a sibling branch of the same response is spliced
  in, and that one-result branch is not an Episode of its own.
- **Tool results.** ``tool_result`` blocks in user lines become ``tool``
  messages (``is_error`` kept); text in the same line follows as a user
  message. A result with no matching call earlier on the path is dropped with
  an ``orphan_tool_result`` warning; a call never answered is warned about
  (``unanswered_tool_call``) and kept.
- **Compaction.** A ``system`` line with subtype ``compact_boundary`` starts a
  new root; the summary user message after it (``isCompactSummary``) opens a
  new Episode (start ``compaction``). Nothing before the boundary is carried.
- **Sidechains** (``isSidechain``: subagent conversations of the Task/Agent
  tool) are read as their own tree into their own Episodes (start
  ``sidechain``), never mixed into the main conversation. Each starts at its
  own root with the prompt the main agent wrote for it as a user message, so
  it is a whole conversation. ``sidechains`` chooses what they give:
  ``"train"`` (default) their assistant turns are targets like the main
  conversation's; ``"context"`` they stay context only (reason ``sidechain``:
  the subagent ran with its own system prompt, tool subset and often model);
  ``"drop"`` they are not read (their entries counted in ``stats.ignored`` as
  ``sidechain``). A subagent file (all lines sidechain) reads the same.
- **Context, never targets.** Injected system reminders and command wrappers
  (``isMeta`` lines, ``<command-name>`` / ``<local-command-stdout>`` text) stay
  user messages with an ``origin``. Synthetic assistant lines (API errors,
  model ``<synthetic>``) are context with reason ``error``; a response with no
  text and no tool call is ``empty``.
- **Ignored, counted** in ``stats.ignored``: ``queue-operation``,
  ``file-history-snapshot``, ``last-prompt``, ``summary`` (titles), ``progress``,
  ``attachment`` (rendered by Claude Code into the prompt in ways the file does
  not record), other ``system`` subtypes, ``redacted_thinking`` and server-side
  tool blocks. Any other entry type is an ``unknown_entry`` warning.

Teacher model ids are kept as recorded (``claude-opus-4-6``): the file does not
say which provider served them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tracetune.conversation.types import Episode, Message, Session, SessionStats
from tracetune.readers import claude_code_blocks as blocks
from tracetune.readers.claude_code_blocks import Node
from tracetune.readers.base import WarningSink, iter_json_lines, open_text
from tracetune.readers.tool_pairing import dedupe_warnings, mark_seen

FORMAT = "claude-code"
AGENT = "claude-code"
OPTIONS = ("sidechains",)  # the ReadOptions fields this reader takes

META_TYPES = frozenset(
    {"queue-operation", "file-history-snapshot", "last-prompt", "summary", "progress", "attachment",
     "custom-title", "tag", "agent-name", "pr-link"}
)
NODE_TYPES = frozenset({"user", "assistant", "system", "progress", "attachment"})


def sniff(first_objects: list[dict[str, Any]]) -> bool:
    """Whether the first objects look like Claude Code entries (tree messages or its meta entries)."""
    for obj in first_objects:
        kind = _type(obj)
        if kind in ("user", "assistant", "system") and "uuid" in obj and "parentUuid" in obj:
            return True
        if kind in META_TYPES and ("sessionId" in obj or "leafUuid" in obj or "snapshot" in obj):
            return True
    return False


def read(path: Path, sidechains: str = "train") -> list[Session]:
    """The file's one Session; ``sidechains``: "train", "context" or "drop" (see the module docstring)."""
    path = Path(path)
    sink = WarningSink(path)
    lines = list(iter_json_lines(open_text(path), sink))
    ignored: dict[str, int] = {}
    nodes = _index(lines, sink, ignored)
    if not lines:
        sink.warn("empty_file", "file holds no entries")
    session_id = _first_field(lines, "sessionId") or path.stem
    main = {u: n for u, n in nodes.items() if not n.sidechain}
    side = {u: n for u, n in nodes.items() if n.sidechain}
    conv = blocks.Converter(ignored, sink, blocks.call_names(nodes.values()))
    episodes, leaves, branch_points = _tree_episodes(main, session_id, sink, conv, sidechain=False)
    if sidechains == "drop":
        if side:
            ignored["sidechain"] = len(side)
    else:
        side_eps, _, _ = _tree_episodes(side, session_id, sink, conv, sidechain=True, train=sidechains == "train")
        episodes += side_eps
    models = sorted({m.model for ep in episodes for m in ep.messages if m.model})
    stats = SessionStats(
        entries=len(lines),
        assistant_entries=sum(1 for ln in lines if ln.value.get("type") == "assistant"),
        compactions=sum(1 for n in nodes.values() if n.kind == "boundary"),
        branch_points=branch_points,
        leaves=leaves,
        images=conv.images,
        ignored=dict(sorted(ignored.items())),
    )
    return [
        Session(
            id=session_id,
            source=str(path),
            agent=AGENT,
            episodes=tuple(episodes),
            format_version=_first_field(lines, "version"),
            cwd=_first_field(lines, "cwd"),
            teacher_models=tuple(models),
            warnings=tuple(dedupe_warnings(sink.items)),
            stats=stats,
        )
    ]


def _first_field(lines, key: str) -> str | None:
    return next((str(ln.value[key]) for ln in lines if isinstance(ln.value.get(key), str)), None)


def _index(lines, sink: WarningSink, ignored: dict[str, int]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for ln in lines:
        obj = ln.value
        kind = _type(obj)
        if kind == "system" and obj.get("subtype") != "compact_boundary":
            _bump(ignored, f"system:{obj.get('subtype') or 'other'}")
        elif kind in META_TYPES:
            _bump(ignored, str(kind))
        elif kind not in NODE_TYPES:
            sink.warn("unknown_entry", f"unknown entry type {kind!r}; skipped", ln.number)
            continue
        uuid = obj.get("uuid")
        if kind not in NODE_TYPES or not isinstance(uuid, str):
            if kind in ("user", "assistant"):
                sink.warn("bad_field", f"{kind} entry without a uuid; skipped", ln.number)
            continue
        if uuid in nodes:
            sink.warn("duplicate_id", f"uuid {uuid} seen before (line {nodes[uuid].line}); later copy skipped",
                      ln.number)
            continue
        parent = obj.get("parentUuid")
        node_kind = _node_kind(obj)
        if node_kind in ("user", "assistant") and not isinstance(obj.get("message"), dict):
            sink.warn("bad_field", f"{kind} entry has no message object; kept as a link only", ln.number)
            node_kind = "other"
        nodes[uuid] = Node(uuid, parent if isinstance(parent, str) else None, ln.number, node_kind, obj,
                           bool(obj.get("isSidechain")))
    return nodes


def _type(obj: dict[str, Any]) -> str | None:
    kind = obj.get("type")
    return kind if isinstance(kind, str) else None


def _node_kind(obj: dict[str, Any]) -> str:
    kind = obj.get("type")
    if kind == "system" and obj.get("subtype") == "compact_boundary":
        return "boundary"
    return kind if kind in ("user", "assistant") else "other"


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


def _tree_episodes(nodes: dict[str, Node], session_id: str, sink: WarningSink, conv: blocks.Converter,
                   sidechain: bool, train: bool = True) -> tuple[list[Episode], int, int]:
    """Episodes for every leaf of one tree (main conversation or sidechains; ``train=False``: context only)."""
    for node in nodes.values():
        if node.parent is not None and node.parent not in nodes:
            if not sidechain:
                sink.warn("dangling_parent", f"parent {node.parent} not in file; entry starts a new root", node.line)
            node.parent = None
    _break_cycles(nodes, sink)
    for node in nodes.values():
        if node.parent is not None:
            nodes[node.parent].children.append(node.uuid)
    leaves = _message_leaves(nodes)
    results = _result_index(nodes)
    built, spliced = [], set()
    for leaf in leaves:
        path = _path_to(leaf, nodes, sink)
        on_path = {n.uuid for n in path}
        messages = blocks.path_messages(path, on_path, results, spliced, conv)
        built.append((leaf, path, messages))
    episodes: list[Episode] = []
    seen_nodes: set[str] = set()
    seen_turns: set[str] = set()
    copies: dict[str, Message] = {}
    for leaf, path, messages in built:
        if leaf.uuid in spliced:
            continue
        start = _start(path, seen_nodes, sidechain)
        seen_nodes.update(n.uuid for n in path)
        before = len(seen_turns)
        messages = mark_seen(messages, seen_turns, copies)
        if len(seen_turns) == before:
            continue  # no assistant turn of its own: nothing to learn from this path
        if sidechain and not train:
            messages = [_as_sidechain(m) for m in messages]
        key = f"sidechain:{leaf.uuid}" if sidechain else leaf.uuid
        episodes.append(Episode(id=f"{session_id}:{key}", messages=tuple(messages), start=start, leaf_id=leaf.uuid))
    branch_points = sum(1 for n in nodes.values() if sum(1 for c in n.children if nodes[c].carries_messages) > 1)
    return episodes, len(leaves), branch_points


def _break_cycles(nodes: dict[str, Node], sink: WarningSink) -> None:
    """A parentUuid loop has no root: its earliest entry becomes one (warned)."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: reaches a root
    for start in nodes.values():
        walk, cur = [], start
        while cur is not None and cur.uuid not in state:
            state[cur.uuid] = 1
            walk.append(cur)
            cur = nodes[cur.parent] if cur.parent is not None else None
        if cur is not None and state[cur.uuid] == 1:
            loop = walk[walk.index(cur):]
            first = min(loop, key=lambda n: n.line)
            sink.warn("cycle", f"parentUuid chain loops through {len(loop)} entries; {first.uuid} made a root",
                      first.line)
            first.parent = None
        for node in walk:
            state[node.uuid] = 2


def _message_leaves(nodes: dict[str, Node]) -> list[Node]:
    """Message entries with no message entry below them, in file order."""
    has_below: set[str] = set()
    for node in nodes.values():
        if not node.carries_messages:
            continue
        cur, steps = node.parent, 0
        while cur is not None and cur not in has_below and steps <= len(nodes):
            has_below.add(cur)
            cur, steps = nodes[cur].parent, steps + 1
    return sorted((n for n in nodes.values() if n.carries_messages and n.uuid not in has_below), key=lambda n: n.line)


def _path_to(leaf: Node, nodes: dict[str, Node], sink: WarningSink) -> list[Node]:
    path, visited, cur = [], set(), leaf
    while cur is not None:
        if cur.uuid in visited:
            sink.warn("cycle", f"parentUuid chain loops at {cur.uuid}; path cut there", cur.line)
            break
        visited.add(cur.uuid)
        path.append(cur)
        cur = nodes.get(cur.parent) if cur.parent else None
    return path[::-1]


def _result_index(nodes: dict[str, Node]) -> dict[str, Node]:
    """tool_use_id -> the user entry holding its result (first one in the file wins)."""
    index: dict[str, Node] = {}
    for node in sorted(nodes.values(), key=lambda n: n.line):
        if node.kind != "user":
            continue
        for tool_id in blocks.result_ids(node.raw):
            index.setdefault(tool_id, node)
    return index


def _start(path: list[Node], seen_nodes: set[str], sidechain: bool) -> str:
    if sidechain:
        return "sidechain"
    if any(n.uuid in seen_nodes for n in path):
        return "branch"
    return "compaction" if path and path[0].kind == "boundary" else "root"


def _as_sidechain(m: Message) -> Message:
    if m.role == "assistant" and m.untrainable_reason is None:
        return replace(m, trainable=False, untrainable_reason="sidechain")
    return m
