"""The prepared dataset as the trainer takes it: masks from ``prepare``, cut to ``max_length``.

TRL turns the ``assistant_masks`` column into labels (-100 where the mask is
0) and silently drops examples left with no supervised token after its own
truncation. We truncate first (keeping the start, as TRL would), count what
was cut and what is left without a supervised token, and drop those here, so
the numbers are reported instead of lost. The masks are never recomputed.

The eval split the trainer scores during training (before, every
``eval_steps``, after) is a seeded sample of the eval windows within a token
budget: on CPU, scoring 215 windows of 4k tokens takes longer than the
training itself. The full held-out scoring belongs to the eval stage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tracetune.errors import TracetuneError

REQUIRED = ("input_ids", "assistant_masks")


@dataclass(frozen=True)
class SplitSummary:
    """What one split gave the trainer, and what it did not and why."""

    examples: int  # rows in the prepared split
    kept: int
    truncated: int  # kept rows cut to max_length
    no_supervised: int  # dropped: no mask=1 token within max_length
    tokens: int  # tokens kept (after truncation)
    supervised_tokens: int
    sampled: int | None = None  # eval: rows scored during training, within the token budget
    sampled_tokens: int | None = None

    def to_dict(self) -> dict[str, int]:
        """The summary's fields as a plain dict."""
        return asdict(self)


def load_prepared(dataset_dir: str | Path):
    """The ``DatasetDict`` written by ``tracetune prepare`` (``dataset_dir/dataset``)."""
    from datasets import DatasetDict, load_from_disk

    root = Path(dataset_dir)
    path = root / "dataset" if (root / "dataset").is_dir() else root
    if not (path / "dataset_dict.json").exists():
        raise TracetuneError(
            f"no prepared dataset in {root}", hint="run `tracetune prepare` first and pass its output folder"
        )
    data = load_from_disk(str(path))
    if not isinstance(data, DatasetDict) or "train" not in data:
        raise TracetuneError(f"{path} has no 'train' split", hint="re-run `tracetune prepare`")
    for name, split in data.items():
        missing = [c for c in REQUIRED if c not in split.column_names]
        if missing:
            raise TracetuneError(
                f"split {name!r} of {path} lacks the columns {missing}",
                hint="the dataset must come from `tracetune prepare` (input_ids + assistant_masks)",
            )
    return data


def fit_split(split, max_length: int) -> tuple[Any, SplitSummary]:
    """Cut rows to ``max_length`` and drop rows with nothing to learn; keep only what TRL needs."""
    ids_col, mask_col = split["input_ids"], split["assistant_masks"]
    keep, truncated, empty, tokens, supervised = [], 0, 0, 0, 0
    for i, (ids, mask) in enumerate(zip(ids_col, mask_col)):
        if len(ids) != len(mask):
            raise TracetuneError(
                f"row {i}: {len(ids)} input_ids but {len(mask)} assistant_masks", hint="re-run `tracetune prepare`"
            )
        cut = mask[:max_length]
        if not any(cut):
            empty += 1
            continue
        keep.append(i)
        truncated += len(ids) > max_length
        tokens += min(len(ids), max_length)
        supervised += sum(cut)
    slim = split.select_columns(list(REQUIRED)).select(keep)
    if truncated:
        slim = slim.map(lambda row: {k: row[k][:max_length] for k in REQUIRED})
    summary = SplitSummary(len(ids_col), len(keep), truncated, empty, tokens, supervised)
    return slim, summary


def sample_within(split, budget: int | None, seed: int) -> tuple[Any, int]:
    """A seeded sample of rows whose tokens add up to at most ``budget`` (at least one row), in file order."""
    lengths = [len(ids) for ids in split["input_ids"]]
    if budget is None or sum(lengths) <= budget:
        return split, sum(lengths)
    import random

    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    chosen, used = [], 0
    for i in order:
        if chosen and used + lengths[i] > budget:
            continue
        chosen.append(i)
        used += lengths[i]
    return split.select(sorted(chosen)), used


def prepare_splits(dataset_dir: str | Path, max_length: int, eval_max_tokens: int | None = None,
                   seed: int = 0) -> tuple[Any, Any | None, dict[str, SplitSummary]]:
    """Train and eval splits ready for ``SFTTrainer`` (eval is None when empty or absent).

    The eval split is cut to a seeded sample within ``eval_max_tokens`` (None: all of it).
    """
    data = load_prepared(dataset_dir)
    train, train_summary = fit_split(data["train"], max_length)
    if train_summary.kept == 0:
        raise TracetuneError(
            f"no training example has a supervised token within max_length={max_length} "
            f"({train_summary.examples} examples, all dropped)",
            hint="raise max_length, or prepare with shorter windows",
        )
    summaries = {"train": train_summary}
    evaluation = None
    if "eval" in data and len(data["eval"]):
        evaluation, summary = fit_split(data["eval"], max_length)
        if summary.kept == 0:
            evaluation = None
        else:
            evaluation, used = sample_within(evaluation, eval_max_tokens, seed)
            summary = replace(summary, sampled=len(evaluation), sampled_tokens=used)
        summaries["eval"] = summary
    return train, evaluation, summaries
