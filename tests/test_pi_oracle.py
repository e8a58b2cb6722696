"""The pi reader against pi itself: for every assistant entry, our context must equal
``convertToLlm(buildSessionContext(entries, entry.parentId).messages)`` from the npm package
(``tests/oracle/contexts.mjs``; install it with ``bash scripts/install-pi-oracle.sh``).

Both sides are compared message by message after one normalisation: role (pi's ``toolResult``
is our ``tool``), text (non-empty text blocks joined with a newline, each image as ``[image]``),
reasoning (thinking blocks, joined the same way), tool calls (id, name, arguments), and for tool
results ``tool_call_id`` and ``is_error``. Assistant entries are matched by file line (v1 files
get ids from pi at random, so ids cannot match there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tracetune.readers import pi

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
FIXTURES = ROOT / "tests" / "fixtures" / "pi"
SAMPLE = ROOT / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"
SCRIPT = ROOT / "tests" / "oracle" / "contexts.mjs"
PACKAGE = Path(
    os.environ.get("TRACETUNE_PI_ORACLE", ROOT / ".cache" / "pi-oracle" / "node_modules" / "@mariozechner" / "pi-coding-agent")
)

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the pi oracle needs it"),
    pytest.mark.skipif(
        not (PACKAGE / "dist" / "core" / "session-manager.js").exists(),
        reason=f"the pi npm package is not at {PACKAGE}: run `bash scripts/install-pi-oracle.sh`",
    ),
]


def _join(parts):
    return "\n".join(p for p in parts if p)


def _pi_text(content):
    if isinstance(content, str):
        return content
    return _join("[image]" if b.get("type") == "image" else b.get("text", "") for b in content if b.get("type") in ("text", "image"))


def normalise_pi(m: dict) -> dict:
    role = {"toolResult": "tool"}.get(m["role"], m["role"])
    out = {"role": role, "tool_calls": [], "reasoning": None, "tool_call_id": None, "is_error": False}
    if role == "assistant":
        blocks = m["content"]
        out["content"] = _join(b["text"] for b in blocks if b["type"] == "text")
        out["reasoning"] = _join(b["thinking"] for b in blocks if b["type"] == "thinking" and not b.get("redacted")) or None
        out["tool_calls"] = [(b["id"], b["name"], b["arguments"]) for b in blocks if b["type"] == "toolCall"]
    else:
        out["content"] = _pi_text(m["content"])
    if role == "tool":
        out["tool_call_id"], out["is_error"] = m["toolCallId"], bool(m["isError"])
    return out


def normalise_ours(m) -> dict:
    return {
        "role": m.role,
        "content": m.content,
        "tool_calls": [(c.id, c.name, c.arguments) for c in m.tool_calls],
        "reasoning": m.reasoning,
        "tool_call_id": m.tool_call_id if m.role == "tool" else None,
        "is_error": m.is_error,
    }


def pi_contexts(path: Path) -> list[dict]:
    done = subprocess.run(["node", str(SCRIPT), str(PACKAGE), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    pool = [normalise_pi(m) for m in data["pool"]]
    return [{"line": a["line"], "id": a["id"], "context": [pool[i] for i in a["context"]]} for a in data["assistants"]]


def our_contexts(path: Path) -> dict[str, list[dict]]:
    """entry id -> the context of that assistant entry, from the one Episode that judges it."""
    [session] = pi.read(path)
    out: dict[str, list[dict]] = {}
    for episode in session.episodes:
        for i, m in enumerate(episode.messages):
            if m.role == "assistant" and m.untrainable_reason != "seen":
                assert m.entry_id not in out, f"{m.entry_id} judged twice"
                out[m.entry_id] = [normalise_ours(c) for c in episode.context_for(i)]
    return out


def mismatches(path: Path) -> list[str]:
    """Every difference between our contexts and pi's for the session file ``path`` (empty: none)."""
    legacy = pi.read(path)[0].format_version == "1"  # v1 entries: pi draws random ids, ours are L<line>
    theirs = pi_contexts(path)
    ours = our_contexts(path)
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"{len(ours)} assistant turns judged, pi has {len(theirs)}")
    for a in theirs:
        key = f"L{a['line']}" if legacy else a["id"]
        mine = ours.get(key)
        if mine is None:
            problems.append(f"line {a['line']}: no Episode judges this assistant entry")
        elif mine != a["context"]:
            where = next((i for i, (x, y) in enumerate(zip(mine, a["context"])) if x != y), min(len(mine), len(a["context"])))
            problems.append(f"line {a['line']}: context differs at message {where} ({len(mine)} vs pi {len(a['context'])})")
    return problems


CASES = [FIXTURES / n for n in ("branched.jsonl", "compacted.jsonl", "v2_hook.jsonl", "v1_linear.jsonl")] + [SAMPLE]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_generated_sessions_match_pi(path):
    assert mismatches(path) == []


def test_shared_real_session_matches_pi():
    path = SHARED / "pi" / "before-compaction.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    assert len(pi_contexts(path)) == 484
    assert mismatches(path) == []


def test_oracle_catches_broken_compaction_handling(monkeypatch):
    """Dropping the kept entries after a compaction must make the comparison fail."""
    original = pi._Episodes._base

    def no_kept_tail(self, path, cut):
        return original(self, path, cut)[:1]

    monkeypatch.setattr(pi._Episodes, "_base", no_kept_tail)
    assert mismatches(FIXTURES / "compacted.jsonl")


def test_odd_but_loadable_entries_match_pi(tmp_path):
    """Input pi itself loads without complaint: unknown entry types, an orphan tool result,
    a second child of one entry, a compaction keeping an entry off its path, an empty branch summary, a v3 ``hookMessage``."""
    def m(eid, parent, message):
        return {"type": "message", "id": eid, "parentId": parent, "timestamp": "2026-01-01T00:00:00Z", "message": message}

    def a(eid, parent, text):
        return m(eid, parent, {"role": "assistant", "content": [{"type": "text", "text": text}], "stopReason": "stop"})

    ts = "2026-01-01T00:00:00Z"
    entries = [
        {"type": "session", "version": 3, "id": "odd", "timestamp": ts, "cwd": "/p"},
        m("u1", None, {"role": "user", "content": "hello"}),
        {"type": "future_kind", "id": "f1", "parentId": "u1", "timestamp": ts},
        m("t1", "f1", {"role": "toolResult", "toolCallId": "ghost", "toolName": "bash", "content": [], "isError": True}),
        a("a1", "t1", "one"),
        m("h1", "a1", {"role": "hookMessage", "customType": "x", "content": "old hook", "display": True}),
        {"type": "branch_summary", "id": "b1", "parentId": "h1", "timestamp": ts, "fromId": "u1", "summary": ""},
        a("a2", "b1", "two"),
        a("a3", "b1", "three"),
        {"type": "compaction", "id": "c1", "parentId": "a3", "timestamp": ts, "summary": "S", "firstKeptEntryId": "nowhere", "tokensBefore": 1},
        m("u2", "c1", {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": ""}, {"type": "text", "text": "b"}]}),
        a("a4", "u2", "four"),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert mismatches(path) == []
