"""Session families: parent links and near-duplicates group sessions."""

from __future__ import annotations

from tracetune.conversation.families import assign_families
from tracetune.conversation.types import Episode, Message, Session

TASK = "please refactor the tokenizer module so that it streams its input lazily"


def session(sid, first="task " + "x" * 50, parent=None, source=None, reply="ok"):
    msgs = (
        Message(role="system", content="you are pi"),
        Message(role="user", content=first),
        Message(role="assistant", content=reply, trainable=True),
    )
    return Session(id=sid, source=source or f"/s/{sid}.jsonl", agent="pi",
                   episodes=(Episode(id=f"{sid}-0", messages=msgs),), parent_ref=parent)


def test_unrelated_sessions_get_their_own_family():
    fams = assign_families([session("a", first="first " + TASK), session("b", first="second " + TASK)])
    assert fams == {"a": "a", "b": "b"}


def test_parent_by_id_path_basename_and_pi_stem():
    sessions = [
        session("root", first="one " + TASK, source="/home/u/.pi/sessions/2025-12-09T00-52_root.jsonl"),
        session("by-path", first="two " + TASK, parent="/home/u/.pi/sessions/./2025-12-09T00-52_root.jsonl"),
        session("by-name", first="three " + TASK, parent="/elsewhere/2025-12-09T00-52_root.jsonl"),
        session("by-id", first="four " + TASK, parent="by-path"),
        session("by-stem-id", first="five " + TASK, parent="/x/2026-01-01T00-00_by-name.jsonl"),
        session("orphan", first="six " + TASK, parent="/nowhere/missing.jsonl"),
    ]
    fams = assign_families(sessions)
    assert {fams[s] for s in ("root", "by-path", "by-name", "by-id", "by-stem-id")} == {"root"}
    assert fams["orphan"] == "orphan"


def test_family_named_after_root_not_smallest_id():
    fams = assign_families([session("z-root", first="one " + TASK), session("a-child", first="two " + TASK, parent="z-root")])
    assert fams == {"z-root": "z-root", "a-child": "z-root"}


def test_same_first_message_after_normalisation_is_a_duplicate():
    fams = assign_families([session("a", first=TASK), session("b", first="  " + TASK.upper().replace(" ", "\n ") + " ")])
    assert fams["a"] == fams["b"]


def test_short_first_message_alone_does_not_merge():
    fams = assign_families([session("a", first="hi", reply="hello"), session("b", first="hi", reply="what?")])
    assert fams["a"] != fams["b"]


def test_identical_prefix_merges_even_with_short_first_message():
    def long(sid):
        msgs = (Message(role="user", content="go"), Message(role="assistant", content="reading"),
                Message(role="user", content="yes"), Message(role="assistant", content="done"),
                Message(role="user", content=sid))
        return Session(id=sid, source=sid, agent="pi", episodes=(Episode(id=sid, messages=msgs),))
    fams = assign_families([long("a"), long("b")])
    assert fams["a"] == fams["b"]


def test_transitive_links_and_cycles():
    sessions = [session("a", first="1 " + TASK, parent="c"), session("b", first="2 " + TASK, parent="a"),
                session("c", first="3 " + TASK, parent="b"), session("d", first="4 " + TASK)]
    fams = assign_families(sessions)
    assert fams["a"] == fams["b"] == fams["c"] == "a"
    assert fams["d"] == "d"


def test_ambiguous_basename_does_not_link():
    sessions = [session("a", first="1 " + TASK, source="/p/one/s.jsonl"),
                session("b", first="2 " + TASK, source="/p/two/s.jsonl"),
                session("c", first="3 " + TASK, parent="/q/s.jsonl")]
    fams = assign_families(sessions)
    assert len(set(fams.values())) == 3


def test_windows_paths_match():
    sessions = [session("a", first="1 " + TASK, source="C:\\Users\\al\\s\\root.jsonl"),
                session("b", first="2 " + TASK, parent="C:/Users/al/s/root.jsonl")]
    assert assign_families(sessions)["b"] == "a"
