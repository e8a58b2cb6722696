"""Session families: parent links and near-duplicates group sessions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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
    for opener in ("hi", "please continue", "go on then, thanks"):
        fams = assign_families([session("a", first=opener, reply="hello"), session("b", first=opener, reply="what?")])
        assert fams["a"] != fams["b"], opener


def test_one_short_task_given_twice_is_one_family():
    fams = assign_families([session("a", first="Fix the bug in calc.py"), session("b", first="fix the bug in  calc.py")])
    assert fams["a"] == fams["b"]


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


@settings(max_examples=50, deadline=None)
@given(
    links=st.lists(st.tuples(st.integers(0, 15), st.one_of(st.none(), st.integers(0, 15))), min_size=1, max_size=16),
    dup=st.lists(st.integers(0, 3), min_size=16, max_size=16),
    data=st.data(),
)
def test_families_are_components_whatever_the_order(links, dup, data):
    """Each family is a connected component of parent links + shared first messages, order-free."""
    ids = sorted({f"s{i}" for i, _ in links})
    parent = {f"s{i}": (f"s{p}" if p is not None else None) for i, p in links}
    texts = {sid: f"{TASK} #{dup[int(sid[1:])]}" if dup[int(sid[1:])] else f"{TASK} unique {sid}" for sid in ids}
    sessions = [session(sid, first=texts[sid], parent=parent[sid]) for sid in ids]
    fams = assign_families(sessions)
    shuffled = data.draw(st.permutations(sessions))
    assert assign_families(shuffled) == fams
    for sid in ids:  # linked sessions share a family
        if parent[sid] in fams:
            assert fams[sid] == fams[parent[sid]]
        for other in ids:
            if texts[sid] == texts[other]:
                assert fams[sid] == fams[other]
    # and nothing else does: merge by hand and compare the partitions
    groups = {sid: {sid} for sid in ids}
    edges = [(s, parent[s]) for s in ids if parent[s] in groups] + [(a, b) for a in ids for b in ids if texts[a] == texts[b]]
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            if groups[a] is not groups[b]:
                merged = groups[a] | groups[b]
                for x in merged:
                    groups[x] = merged
                changed = True
    assert all((fams[a] == fams[b]) == (b in groups[a]) for a in ids for b in ids)
