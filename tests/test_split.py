"""Train/eval split: whole families on one side, seeded, deterministic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracetune.conversation.types import Episode, Message, Session
from tracetune.errors import TracetuneError
from tracetune.prepare.split import split_families, split_sessions


def session(sid: str, parent: str | None = None, first: str | None = None) -> Session:
    text = first or f"task number {sid}: make the parser handle nested brackets correctly"
    msgs = (Message(role="user", content=text), Message(role="assistant", content=f"on it {sid}", trainable=True))
    return Session(id=sid, source=f"/t/{sid}.jsonl", agent="pi",
                   episodes=(Episode(id=sid, messages=msgs),), parent_ref=parent)


@st.composite
def forests(draw):
    """Sessions whose parent links form random trees (some parents missing from the set)."""
    n = draw(st.integers(min_value=1, max_value=30))
    sessions = []
    for i in range(n):
        parent = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=i + 3)))
        ref = f"s{parent}" if parent is not None and parent != i else None
        sessions.append(session(f"s{i}", parent=ref))
    return sessions


@settings(max_examples=60, deadline=None)
@given(sessions=forests(), fraction=st.floats(min_value=0.0, max_value=0.9), seed=st.integers(0, 2**16))
def test_no_family_on_both_sides(sessions, fraction, seed):
    result = split_sessions(sessions, fraction, seed)
    ids = {s.id for s in sessions}
    assert set(result.train_ids) | set(result.eval_ids) == ids
    assert not set(result.train_ids) & set(result.eval_ids)
    train_fams = {result.families[s] for s in result.train_ids}
    eval_fams = {result.families[s] for s in result.eval_ids}
    assert not train_fams & eval_fams
    for s in sessions:  # a child always shares its parent's side
        if s.parent_ref in ids:
            assert result.split_of(s.id) == result.split_of(s.parent_ref)
    if fraction > 0 and result.family_count >= 2:
        assert result.eval_ids and result.train_ids


def test_same_seed_same_split_whatever_the_input_order():
    sessions = [session(f"s{i}") for i in range(40)]
    a = split_sessions(sessions, 0.25, seed=7)
    b = split_sessions(list(reversed(sessions)), 0.25, seed=7)
    assert a.eval_ids == b.eval_ids and a.train_ids == b.train_ids
    assert len(a.eval_ids) == 10


def test_seed_changes_the_split():
    sessions = [session(f"s{i}") for i in range(40)]
    splits = {tuple(split_sessions(sessions, 0.25, seed=s).eval_ids) for s in range(5)}
    assert len(splits) > 1


def test_near_duplicates_land_together():
    task = "rewrite the config loader to validate every key and list all the bad ones"
    sessions = [session("a", first=task), session("b", first=task + "  "), *(session(f"x{i}") for i in range(10))]
    for seed in range(20):
        result = split_sessions(sessions, 0.5, seed)
        assert result.split_of("a") == result.split_of("b")
    assert result.families["a"] == result.families["b"]


def test_single_family_is_all_train_with_a_warning():
    sessions = [session("root"), session("child", parent="root")]
    result = split_sessions(sessions, 0.2, seed=0)
    assert result.eval_ids == [] and result.train_ids == ["child", "root"]
    assert "eval is empty" in result.warning
    assert result.to_dict()["warning"] == result.warning


def test_two_families_with_a_tiny_fraction_still_give_eval_one():
    result = split_sessions([session("a"), session("b")], 0.01, seed=3)
    assert len(result.eval_ids) == 1 and len(result.train_ids) == 1
    assert result.warning is None


def test_zero_fraction_means_no_eval_and_no_warning():
    result = split_sessions([session("a"), session("b")], 0.0, seed=3)
    assert result.eval_ids == [] and result.warning is None


def test_bad_fraction_is_a_user_error():
    with pytest.raises(TracetuneError):
        split_families({"a": "a"}, 1.0, seed=0)


def test_to_dict_counts():
    sessions = [session("r"), session("c", parent="r"), session("o")]
    d = split_sessions(sessions, 0.3, seed=1).to_dict()
    assert d["families"]["total"] == 2 and d["families"]["multi_session"] == 1
    assert d["sessions"]["train"] + d["sessions"]["eval"] == 3
    assert d["family_of"]["c"] == "r"


def test_a_huge_family_does_not_swallow_eval():
    big = [session("root")] + [session(f"fork{i}", parent="root") for i in range(30)]
    small = [session(f"solo{i}") for i in range(10)]
    for seed in range(10):
        result = split_sessions(big + small, 0.1, seed)
        assert "root" in result.train_ids
        assert 1 <= len(result.eval_ids) <= 5


def test_when_no_family_fits_the_smallest_goes_to_eval():
    big = [session("a")] + [session(f"a{i}", parent="a") for i in range(5)]
    mid = [session("b")] + [session(f"b{i}", parent="b") for i in range(2)]
    result = split_sessions(big + mid, 0.1, seed=0)
    assert result.eval_ids == ["b", "b0", "b1"]
