"""Session families: sessions that must stay on the same side of a split.

Two sessions share a family when

- one was forked or branched from the other (``Session.parent_ref``, e.g.
  pi's ``branchedFrom`` / ``parentSession``). A reference is matched against
  the other sessions by session id, by resolved path of ``Session.source``,
  by file name, by file stem, and by the id at the end of a pi file stem
  (``<timestamp>_<id>.jsonl``). A reference that matches nothing in the set
  is ignored (the parent was not read);
- they are near-duplicates: the same first user message after normalisation
  (case and whitespace folded; only messages of at least
  ``MIN_FIRST_MESSAGE_CHARS`` characters and ``MIN_FIRST_MESSAGE_WORDS``
  words, so that "hi" or "please continue" do not merge unrelated work, while
  one task given several times, "Fix the bug in calc.py", stays on one side),
  or the same first ``PREFIX_MESSAGES`` messages (system messages left out)
  compared by content hash.

Families are the connected components of these links (union-find). A
family's id is the id of its root: the smallest session id among members
whose parent is not in the set (or the smallest id overall when every member
has a parent in the set, as in a cycle). Pure: no I/O, the paths are only
compared as strings (``os.path.normpath``, never ``resolve()``).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from typing import Iterable

from tracetune.conversation.types import Message, Session

MIN_FIRST_MESSAGE_CHARS = 20
MIN_FIRST_MESSAGE_WORDS = 3
PREFIX_MESSAGES = 4

_SPACE = re.compile(r"\s+")


class _UnionFind:
    def __init__(self, items: Iterable[str]):
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _norm_path(path: str) -> str:
    return posixpath.normpath(path.replace("\\", "/"))


def _basename(path: str) -> str:
    return _norm_path(path).rsplit("/", 1)[-1]


def _stem(path: str) -> str:
    name = _basename(path)
    for suffix in (".gz", ".jsonl", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _ref_keys(ref: str) -> list[str]:
    """Every string a parent reference may be known by."""
    stem = _stem(ref)
    keys = [ref, _norm_path(ref), _basename(ref), stem]
    if "_" in stem:
        keys.append(stem.rsplit("_", 1)[-1])
    return keys


def _session_keys(session: Session) -> list[str]:
    keys = [session.id]
    if session.source:
        keys += [_norm_path(session.source), _basename(session.source), _stem(session.source)]
    return keys


def _index(sessions: list[Session]) -> dict[str, str | None]:
    """key -> session id; a key shared by two sessions maps to None (ambiguous)."""
    index: dict[str, str | None] = {}
    for session in sessions:
        for key in dict.fromkeys(_session_keys(session)):
            if key in index and index[key] != session.id:
                index[key] = None
            else:
                index.setdefault(key, session.id)
    return index


def resolve_parent(session: Session, index: dict[str, str | None]) -> str | None:
    """The id of the session ``session.parent_ref`` points to, if it is in ``index``."""
    if not session.parent_ref:
        return None
    for key in _ref_keys(session.parent_ref):
        found = index.get(key)
        if found and found != session.id:
            return found
    return None


def _first_messages(session: Session) -> list[Message]:
    for episode in session.episodes:
        visible = [m for m in episode.messages if m.role != "system"]
        if visible:
            return visible
    return []


def _normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _message_value(message: Message) -> list[object]:
    calls = [[c.name, c.arguments] for c in message.tool_calls]
    return [message.role, _normalise(message.content), calls]


def duplicate_keys(session: Session) -> list[str]:
    """Content hashes under which near-duplicate sessions collide."""
    messages = _first_messages(session)
    keys = []
    first_user = next((m for m in messages if m.role == "user"), None)
    if first_user is not None:
        text = _normalise(first_user.content)
        if len(text) >= MIN_FIRST_MESSAGE_CHARS and len(text.split()) >= MIN_FIRST_MESSAGE_WORDS:
            keys.append("first-user:" + _hash(text))
    if len(messages) >= PREFIX_MESSAGES:
        keys.append("prefix:" + _hash([_message_value(m) for m in messages[:PREFIX_MESSAGES]]))
    return keys


def assign_families(sessions: Iterable[Session]) -> dict[str, str]:
    """session id -> family id for every session (see the module docstring)."""
    sessions = list(sessions)
    uf = _UnionFind(s.id for s in sessions)
    index = _index(sessions)
    parents: dict[str, str] = {}
    for session in sessions:
        parent = resolve_parent(session, index)
        if parent is not None:
            parents[session.id] = parent
            uf.union(session.id, parent)
    first_with_key: dict[str, str] = {}
    for session in sessions:
        for key in duplicate_keys(session):
            other = first_with_key.setdefault(key, session.id)
            uf.union(session.id, other)
    return _name_families(sessions, uf, parents)


def _name_families(sessions: list[Session], uf: _UnionFind, parents: dict[str, str]) -> dict[str, str]:
    members: dict[str, list[str]] = {}
    for session in sessions:
        members.setdefault(uf.find(session.id), []).append(session.id)
    names: dict[str, str] = {}
    for group in members.values():
        roots = [sid for sid in group if sid not in parents] or group
        name = min(roots)
        for sid in group:
            names[sid] = name
    return names
