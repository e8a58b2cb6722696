"""Train/eval split by session family: a family is never on both sides.

Families come from ``conversation.families.assign_families`` (parent links
and near-duplicates). Whole families go to eval, in an order drawn from
``seed`` over the sorted family ids, as long as they fit in ``eval_fraction``
of the sessions (rounded up; counting sessions, not turns, keeps eval from
being one long session). The split depends only on the sessions and the
seed, not on the order they were read in.

With two families or more, eval gets at least one and train keeps at least
one. With a single family everything is train and eval is empty;
``SplitResult.warning`` says so, for the caller to show.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Iterable

from tracetune.conversation.families import assign_families
from tracetune.conversation.types import Session
from tracetune.errors import TracetuneError


@dataclass(frozen=True)
class SplitResult:
    train_ids: list[str]
    eval_ids: list[str]
    families: dict[str, str]  # session id -> family id
    eval_fraction: float
    seed: int
    eval_families: list[str] = field(default_factory=list)
    warning: str | None = None

    @property
    def family_count(self) -> int:
        """How many session families the split was drawn over."""
        return len(set(self.families.values()))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_eval_set", frozenset(self.eval_ids))

    def split_of(self, session_id: str) -> str:
        """``eval`` for a held-out session, else ``train``."""
        return "eval" if session_id in self._eval_set else "train"

    def to_dict(self) -> dict[str, Any]:
        """The split as recorded: seed, fraction, session and family counts, ids and each session's family."""
        sizes: dict[str, int] = {}
        for family in self.families.values():
            sizes[family] = sizes.get(family, 0) + 1
        return {
            "seed": self.seed,
            "eval_fraction": self.eval_fraction,
            "sessions": {"train": len(self.train_ids), "eval": len(self.eval_ids)},
            "families": {
                "total": self.family_count,
                "eval": len(self.eval_families),
                "multi_session": sum(1 for n in sizes.values() if n > 1),
            },
            "train_ids": self.train_ids,
            "eval_ids": self.eval_ids,
            "eval_families": self.eval_families,
            "family_of": dict(sorted(self.families.items())),
            "warning": self.warning,
        }


def _family_order(family_ids: list[str], seed: int) -> list[str]:
    """A seeded shuffle of the sorted ids: independent of input order and of Python's hash seed."""
    order = sorted(family_ids)
    random.Random(seed).shuffle(order)
    return order


def _pick_eval(order: list[str], sizes: dict[str, int], eval_fraction: float) -> list[str]:
    """Families for eval, in seeded order, filling ``eval_fraction`` of the sessions without passing it.

    A family too big to fit is skipped (one huge family must not swallow eval);
    if none fits, the smallest family goes to eval alone. Train always keeps one.
    """
    if eval_fraction == 0.0 or len(order) < 2:
        return []
    target = math.ceil(eval_fraction * sum(sizes.values()))
    picked: list[str] = []
    taken = 0
    for family in order:
        if taken + sizes[family] <= target and len(picked) + 1 < len(order):
            picked.append(family)
            taken += sizes[family]
    if not picked:
        picked = [min(order, key=lambda f: sizes[f])]  # the first of the smallest, in seeded order
    return picked


def split_families(families: dict[str, str], eval_fraction: float, seed: int) -> SplitResult:
    """Split ``session id -> family id`` into whole-family train and eval sets."""
    if not 0.0 <= eval_fraction < 1.0:
        raise TracetuneError(
            f"eval_fraction must be at least 0 and below 1 (got {eval_fraction})", hint="e.g. --eval-fraction 0.1"
        )
    members: dict[str, list[str]] = {}
    for session_id, family in sorted(families.items()):
        members.setdefault(family, []).append(session_id)
    order = _family_order(sorted(members), seed)
    eval_families = _pick_eval(order, {f: len(ids) for f, ids in members.items()}, eval_fraction)
    eval_set = set(eval_families)
    eval_ids = sorted(s for f in eval_families for s in members[f])
    train_ids = sorted(s for f, ids in members.items() if f not in eval_set for s in ids)
    return SplitResult(
        train_ids=train_ids,
        eval_ids=eval_ids,
        families=dict(families),
        eval_fraction=eval_fraction,
        seed=seed,
        eval_families=sorted(eval_families),
        warning=_warning(len(order), eval_fraction, eval_ids),
    )


def _warning(family_count: int, eval_fraction: float, eval_ids: list[str]) -> str | None:
    if eval_fraction > 0 and family_count <= 1:
        return (
            f"only {family_count} session family: every session is in train and eval is empty "
            "(sessions forked from one another, or near-duplicates, cannot be split apart)"
        )
    if eval_fraction > 0 and not eval_ids:
        return "eval is empty"
    return None


def split_sessions(sessions: Iterable[Session], eval_fraction: float, seed: int, *, all_eval: bool = False) -> SplitResult:
    """Whole session families into train and eval (see the module docstring).

    ``all_eval`` holds every session out (scoring a trained run on sessions it never saw).
    """
    families = assign_families(sessions)
    if all_eval:
        return SplitResult(train_ids=[], eval_ids=sorted(families), families=dict(families), eval_fraction=1.0,
                           seed=seed, eval_families=sorted(set(families.values())))
    return split_families(families, eval_fraction, seed)
