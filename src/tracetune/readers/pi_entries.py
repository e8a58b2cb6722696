"""pi session files as a tree of entries: parsing, migration, parent links.

Follows pi's own ``parseSessionEntries`` + ``migrateSessionEntries`` (npm
package ``@mariozechner/pi-coding-agent``, ``dist/core/session-manager.js``):

- version 1 (no header ``version``, or ``1``): a linear list. Every
  non-header entry gets an id and the previous entry as its parent; pi draws
  random ids, we use ``L<line>`` so Episode ids are stable. A compaction's
  ``firstKeptEntryIndex`` indexes the parsed entries *including* the header at
  index 0 (as pi's ``migrateV1ToV2`` does) and becomes ``firstKeptEntryId``.
- version 2: the ``id``/``parentId`` tree. Messages with role
  ``hookMessage`` are renamed ``custom`` (pi's v2 -> v3 migration).
- version 3: the current format, read as it is.

Where pi would loop or crash we repair and warn instead: a ``parentId`` that
points nowhere makes the entry a root (``dangling_parent``; pi's walk from
a child stops there, though pi's context *for* such an entry would fall back
to the file's last entry), a cycle is broken at its earliest entry (``cycle``), a
duplicate id resolves to the last entry with that id, as pi's ``Map`` does
(``duplicate_id``). A file without a header is read as version 3 when its
entries carry ids and as version 1 otherwise (``missing_header``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracetune.readers.base import Line, WarningSink, iter_json_lines


@dataclass
class Entry:
    """One non-header line of the file, after migration."""

    pos: int  # position among the non-header entries (file order)
    line: int  # 1-based line in the file
    type: str
    id: str
    raw: dict[str, Any]
    parent_id: str | None = None
    parent: int | None = None  # pos of the resolved parent, None for a root

    @property
    def message(self) -> dict[str, Any] | None:
        """The entry's ``message`` object, or None when it has none."""
        msg = self.raw.get("message")
        return msg if isinstance(msg, dict) else None

    @property
    def role(self) -> str | None:
        """The role of the entry's message, or None."""
        msg = self.message
        role = msg.get("role") if msg else None
        return role if isinstance(role, str) else None


@dataclass
class PiTree:
    header: dict[str, Any]
    version: int
    entries: list[Entry]
    children: list[list[int]] = field(default_factory=list)
    duplicated_ids: set[str] = field(default_factory=set)

    @property
    def leaves(self) -> list[int]:
        """Positions of the entries with no children."""
        return [e.pos for e in self.entries if not self.children[e.pos]]

    @property
    def branch_points(self) -> int:
        """How many entries have more than one child."""
        return sum(1 for kids in self.children if len(kids) > 1)

    def path(self, pos: int) -> list[int]:
        """Positions from the root down to ``pos`` (cycles are already broken)."""
        out = []
        cur: int | None = pos
        while cur is not None:
            out.append(cur)
            cur = self.entries[cur].parent
        out.reverse()
        return out


def parse_tree(text: str, sink: WarningSink) -> PiTree:
    """The migrated entry tree of one file's text; problems go to ``sink``."""
    objects = list(iter_json_lines(text, sink))
    header, header_at = _find_header(objects, sink)
    body = [o for o in objects if o is not header]
    version = _version(header, body, sink)
    entries = _migrate_v1(objects, header, sink) if version < 2 else _entries_v2(body, sink)
    if version < 3:
        for e in entries:
            if e.type == "message" and e.role == "hookMessage":
                e.raw = {**e.raw, "message": {**e.raw["message"], "role": "custom"}}
    tree = PiTree(header=header.value if header else {}, version=version, entries=entries)
    _link(tree, sink)
    return tree


def _find_header(objects: list[Line], sink: WarningSink) -> tuple[Line | None, int]:
    headers = [i for i, o in enumerate(objects) if o.value.get("type") == "session"]
    if not headers:
        if objects:
            sink.warn("missing_header", "no session header line; reading the entries anyway", objects[0].number)
        return None, -1
    first = headers[0]
    if first != 0:
        sink.warn("missing_header", "the session header is not the first line", objects[first].number)
    for i in headers[1:]:
        sink.warn("ignored_line", "a second session header; ignored", objects[i].number)
    return objects[first], first


def _version(header: Line | None, body: list[Line], sink: WarningSink) -> int:
    if header is None:
        return 3 if any(isinstance(o.value.get("id"), str) for o in body) else 1
    version = header.value.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        sink.warn("bad_field", f"header version {version!r} is not 1, 2 or 3; read as 3", header.number)
        return 3
    if version > 3:
        sink.warn("bad_field", f"header version {version} is newer than this reader knows (3); read as 3", header.number)
        return 3
    return version


def _entry_type(line: Line, sink: WarningSink) -> str:
    kind = line.value.get("type")
    if not isinstance(kind, str):
        sink.warn("bad_field", f"entry has no string 'type' ({kind!r})", line.number)
        return ""
    return kind


def _migrate_v1(objects: list[Line], header: Line | None, sink: WarningSink) -> list[Entry]:
    entries: list[Entry] = []
    ids_by_index: dict[int, str] = {}
    for index, obj in enumerate(objects):
        if obj is header or obj.value.get("type") == "session":
            continue
        prev = entries[-1].id if entries else None
        entry = Entry(len(entries), obj.number, _entry_type(obj, sink), f"L{obj.number}", dict(obj.value), prev)
        entry.raw["id"], entry.raw["parentId"] = entry.id, prev
        ids_by_index[index] = entry.id
        if entry.type == "compaction" and "firstKeptEntryIndex" in entry.raw:
            kept = entry.raw.pop("firstKeptEntryIndex")
            if isinstance(kept, int) and kept in ids_by_index:
                entry.raw["firstKeptEntryId"] = ids_by_index[kept]
            else:
                sink.warn("compaction_target_missing", f"firstKeptEntryIndex {kept!r} is no earlier entry", obj.number)
        entries.append(entry)
    return entries


def _entries_v2(body: list[Line], sink: WarningSink) -> list[Entry]:
    entries: list[Entry] = []
    for obj in body:
        raw = obj.value
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not entry_id:
            sink.warn("bad_field", f"entry has no string id ({entry_id!r}); nothing can hang below it", obj.number)
            entry_id = f"L{obj.number}"
        parent_id = raw.get("parentId")
        if parent_id is not None and not isinstance(parent_id, str):
            sink.warn("bad_field", f"parentId {parent_id!r} is not a string; taken as a root", obj.number)
            parent_id = None
        entries.append(Entry(len(entries), obj.number, _entry_type(obj, sink), entry_id, raw, parent_id or None))
    return entries


def _link(tree: PiTree, sink: WarningSink) -> None:
    by_id: dict[str, int] = {}
    for e in tree.entries:
        if e.id in by_id:
            tree.duplicated_ids.add(e.id)
            sink.warn("duplicate_id", f"id {e.id!r} is used again; links to it go to this entry", e.line)
        by_id[e.id] = e.pos
    for e in tree.entries:
        if e.parent_id is None:
            continue
        e.parent = by_id.get(e.parent_id)
        if e.parent is None:
            sink.warn("dangling_parent", f"parentId {e.parent_id!r} matches no entry; taken as a root", e.line)
    _break_cycles(tree, sink)
    tree.children = [[] for _ in tree.entries]
    for e in tree.entries:
        if e.parent is not None:
            tree.children[e.parent].append(e.pos)


def _break_cycles(tree: PiTree, sink: WarningSink) -> None:
    """Each entry has one parent, so each cycle is broken by cutting one link: its earliest entry's."""
    state = [0] * len(tree.entries)  # 0 new, 1 on the current walk, 2 done
    for start in range(len(tree.entries)):
        walk: list[int] = []
        cur = start
        while cur is not None and state[cur] == 0:
            state[cur] = 1
            walk.append(cur)
            cur = tree.entries[cur].parent
        if cur is not None and state[cur] == 1:
            cycle = walk[walk.index(cur):]
            first = tree.entries[min(cycle)]
            first.parent = None
            lines = ", ".join(str(tree.entries[p].line) for p in sorted(cycle))
            sink.warn("cycle", f"parent links form a cycle (lines {lines}); this entry taken as a root", first.line)
        for p in walk:
            state[p] = 2
