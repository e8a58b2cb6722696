"""The selection rule, written before any score exists, and the selection it makes afterwards.

``fix_rule`` writes ``selection_rule.json`` (metric, direction, tolerance,
tie-break, the candidate variants and the hash of the eval set) before the
first variant trains and returns the file's sha256; the caller records that
hash (``sweep.json``, the run manifest). ``select`` re-reads the file,
refuses if its hash or the eval set changed, applies that rule and nothing
else, and writes ``selection.json`` with every variant's figures.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracetune.errors import TracetuneError
from tracetune.sweep.config import SelectionRule
from tracetune.util.files import atomic_write_json, sha256_file

RULE_FILE = "selection_rule.json"
SELECTION_FILE = "selection.json"
RULE_VERSION = 1


@dataclass(frozen=True)
class VariantOutcome:
    name: str
    params: dict[str, Any]
    status: str  # "ok" | "failed"
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    out_dir: str | None = None


@dataclass(frozen=True)
class Selection:
    winner: str | None
    ranking: list[str]
    rule_sha256: str
    path: Path


def eval_set_hash(dataset_dir: str | Path) -> str:
    """sha256 of the eval split's ``input_ids`` and ``assistant_masks``, row by row."""
    from tracetune.train.data import load_prepared

    data = load_prepared(dataset_dir)
    digest = hashlib.sha256()
    if "eval" in data:
        for ids, mask in zip(data["eval"]["input_ids"], data["eval"]["assistant_masks"]):
            digest.update(json.dumps([ids, mask], separators=(",", ":")).encode())
    return digest.hexdigest()


def fix_rule(out_dir: str | Path, rule: SelectionRule, eval_hash: str, variants: list[str]) -> str:
    """Write the rule file (or confirm an existing one says the same); return its sha256."""
    path = Path(out_dir) / RULE_FILE
    content = {"version": RULE_VERSION, **rule.model_dump(mode="json", exclude_none=True), "eval_set_sha256": eval_hash, "variants": variants}
    if path.exists():
        existing = json.loads(path.read_text("utf-8"))
        if existing != content:
            changed = sorted(k for k in set(existing) | set(content) if existing.get(k) != content.get(k))
            raise TracetuneError(
                f"{path} was fixed before this sweep started and differs from the current one ({', '.join(changed)})",
                hint="a sweep's rule, grid and eval set cannot change after the fact: use a new output folder",
            )
        return sha256_file(path)
    atomic_write_json(path, content)
    return sha256_file(path)


def load_rule(out_dir: str | Path, expected_sha256: str) -> tuple[SelectionRule, dict[str, Any]]:
    """The rule as written before training; refuses a file whose hash changed since."""
    path = Path(out_dir) / RULE_FILE
    if not path.exists():
        raise TracetuneError(f"{path} is missing: no rule was fixed for this sweep", hint="run the sweep again in a new folder")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise TracetuneError(
            f"{path} changed after it was written (sha256 {actual[:12]}..., recorded {expected_sha256[:12]}...); "
            "refusing to select",
            hint="restore the original rule file, or run a new sweep with the new rule",
        )
    data = json.loads(path.read_text("utf-8"))
    rule = SelectionRule(**{k: data[k] for k in SelectionRule.model_fields if k in data})
    return rule, data


def _score(outcome: VariantOutcome, metric: str) -> float | None:
    value = outcome.metrics.get(metric)
    if outcome.status != "ok" or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def rank(outcomes: list[VariantOutcome], rule: SelectionRule) -> list[str]:
    """Scored variants best first: by metric (ties within tolerance), then the tie-break keys."""
    scored = [(o, s) for o in outcomes if (s := _score(o, rule.metric)) is not None]
    sign = 1.0 if rule.direction == "min" else -1.0
    order: list[str] = []
    while scored:
        best = min(sign * s for _, s in scored)
        tied = [(o, s) for o, s in scored if sign * s - best <= rule.tolerance]
        tied.sort(key=lambda pair: tuple(pair[0].name if k == "name" else pair[0].params.get(k, 0) for k in rule.tie_break) + (pair[0].name,))
        order.append(tied[0][0].name)
        scored = [p for p in scored if p[0].name != tied[0][0].name]
    return order


def select(out_dir: str | Path, expected_sha256: str, outcomes: list[VariantOutcome], eval_hash_now: str) -> Selection:
    """Apply the fixed rule to the outcomes and write ``selection.json``."""
    rule, fixed = load_rule(out_dir, expected_sha256)
    if fixed.get("eval_set_sha256") != eval_hash_now:
        raise TracetuneError(
            "the eval set changed since the selection rule was fixed; refusing to select",
            hint="select against the dataset the sweep started with, or run a new sweep",
        )
    ranking = rank(outcomes, rule)
    winner = ranking[0] if ranking else None
    record = {
        "rule_sha256": expected_sha256,
        "rule": rule.model_dump(mode="json"),
        "eval_set_sha256": eval_hash_now,
        "winner": winner,
        "ranking": ranking,
        "variants": [asdict(o) | {"score": _score(o, rule.metric)} for o in outcomes],
    }
    path = Path(out_dir) / SELECTION_FILE
    atomic_write_json(path, record)
    return Selection(winner, ranking, expected_sha256, path)


def selected_adapter(sweep_dir: Path) -> Path:
    """The adapter folder of the variant that ``selection.json`` names."""
    selection = json.loads((sweep_dir / "selection.json").read_text(encoding="utf-8"))
    name = selection.get("winner")
    if not name:
        raise TracetuneError(f"{sweep_dir / 'selection.json'} selects no variant (did every variant fail?)")
    adapter = sweep_dir / "variants" / name / "adapter"
    if not adapter.is_dir():
        raise TracetuneError(f"the selected variant {name!r} has no adapter folder ({adapter})")
    return adapter
