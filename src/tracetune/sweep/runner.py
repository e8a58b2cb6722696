"""``run_sweep``: train every variant in turn, then select with the rule fixed beforehand.

Layout of ``out_dir``: ``selection_rule.json`` (written first), ``sweep.json``
(the rule's hash and each variant's status, updated as they finish),
``variants/<name>/`` (one ``train`` run each), ``trackio/`` (one dashboard
for all variants) and ``selection.json``. Each variant trains in a process of its
own (``sweep.isolate_variants``; see ``isolated.py``). A variant that fails is
recorded (``error.txt`` and its entry) and the others still run. Running again skips
finished variants and resumes interrupted ones from their last checkpoint.

With ``rule.rung_steps`` (successive halving, one rung), every variant stops
at that step with its figures in ``rung.json``; the rule picks among them and
only the winner resumes, on the same schedule, to ``max_steps``.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from tracetune.errors import ConfigError, TracetuneError
from tracetune.sweep.config import SweepConfig
from tracetune.sweep.isolated import run_isolated
from tracetune.sweep.selection import RULE_FILE, Selection, VariantOutcome, eval_set_hash, fix_rule, select
from tracetune.sweep.variants import Variant, expand
from tracetune.train.config import TrainConfig
from tracetune.train.trainer import point_trackio_at, stop_at_step, train
from tracetune.util.files import atomic_write_json, sha256_file
from tracetune.util.memory import trim_heap

STATE_FILE = "sweep.json"
RUNG_FILE = "rung.json"  # a variant's figures at the rung, when the rule has one

RuleWritten = Callable[[Path, str], None]
VariantDone = Callable[[VariantOutcome], None]
StepDone = Callable[[str, int, int, dict[str, float]], None]  # variant, step, max steps, last logged figures


@dataclass(frozen=True)
class SweepResult:
    out_dir: Path
    rule_sha256: str
    outcomes: list[VariantOutcome]
    selection: Selection

    @property
    def winner(self) -> str | None:
        """The selected variant's name, or None when none was selected."""
        return self.selection.winner

    @property
    def winner_dir(self) -> Path | None:
        """The selected variant's folder, or None when none was selected."""
        return self.out_dir / "variants" / self.winner if self.winner else None


def run_sweep(
    sweep_config: SweepConfig,
    train_config: TrainConfig,
    dataset_dir: str | Path,
    out_dir: str | Path,
    on_rule_written: RuleWritten | None = None,
    *,
    on_variant: VariantDone | None = None,
    on_step: StepDone | None = None,
) -> SweepResult:
    """Fix the rule, train the variants one after another, select; see the module docstring."""
    out = Path(out_dir)
    variants = expand(sweep_config, train_config)
    recorded = _recorded_sha(out)
    if recorded and sha256_file(out / RULE_FILE) != recorded:
        raise TracetuneError(
            f"{out / RULE_FILE} changed after it was written; refusing to continue this sweep",
            hint="restore the original rule file, or start a new sweep in another folder",
        )
    rung = _rung(sweep_config, train_config)
    sha = fix_rule(out, sweep_config.rule, eval_set_hash(dataset_dir), [v.name for v in variants])
    _save_state(out, sha, [])
    if on_rule_written is not None:
        on_rule_written(out / RULE_FILE, sha)
    point_trackio_at(out, train_config)

    trim_heap()  # what reading and rendering freed goes back before the variants' processes start
    outcomes: list[VariantOutcome] = []
    for variant in variants:
        outcome = _run_variant(variant, train_config, dataset_dir, out / "variants" / variant.name, on_step,
                               isolate=sweep_config.isolate_variants, stop_at=rung)
        outcomes.append(outcome)
        _save_state(out, sha, outcomes)
        if on_variant is not None:
            on_variant(outcome)
    selection = select(out, sha, outcomes, eval_set_hash(dataset_dir))
    if selection.winner is None:
        raise no_winner_error(sweep_config.rule.metric, outcomes, selection.path)
    if rung is not None:
        winner = next(v for v in variants if v.name == selection.winner)
        final = _continue(winner, train_config, dataset_dir, out / "variants" / winner.name, on_step,
                          isolate=sweep_config.isolate_variants)
        outcomes = [final if o.name == final.name else o for o in outcomes]
        _save_state(out, sha, outcomes)
    return SweepResult(out, sha, outcomes, selection)


def _rung(sweep: SweepConfig, train: TrainConfig) -> int | None:
    rung = sweep.rule.rung_steps
    if rung is not None and (not train.max_steps or rung >= train.max_steps):
        raise ConfigError(
            f"sweep.rule.rung_steps = {rung} needs train.max_steps above it (now {train.max_steps})",
            hint="set [train] max_steps, or remove rung_steps to train every variant in full",
        )
    return rung


def _continue(variant: Variant, base: TrainConfig, dataset_dir: str | Path, vdir: Path,
              on_step: StepDone | None, *, isolate: bool) -> VariantOutcome:
    """The selected variant, resumed from its rung checkpoint to ``max_steps``."""
    outcome = _run_variant(variant, base, dataset_dir, vdir, on_step, isolate=isolate, until=base.max_steps)
    if outcome.status != "ok":
        raise TracetuneError(
            f"the selected variant {variant.name} failed while continuing to step {base.max_steps}: {outcome.error}",
            hint=f"see {vdir / 'error.txt'}; running again resumes it from its last checkpoint",
        )
    return outcome


def no_winner_error(metric: str, outcomes: list[VariantOutcome], selection_path: Path) -> TracetuneError:
    """Why no variant could be selected, naming each failed variant's own error."""
    failed = [o for o in outcomes if o.status != "ok"]
    if failed:
        causes = "; ".join(f"{o.name}: {o.error}" for o in failed)
        return TracetuneError(
            f"{len(failed)} of {len(outcomes)} variant(s) failed and none produced {metric!r}: {causes}",
            hint=f"the full tracebacks are in {failed[0].out_dir}/error.txt (one per failed variant)",
        )
    hint = (f"the variants trained without an eval split, so no {metric!r} exists: check the eval split in "
            "prepare's report (prepare_stats.json 'examples.eval')" if metric.startswith("eval_")
            else f"choose a [sweep.rule] metric that metrics.json holds; see {selection_path}")
    return TracetuneError(f"every variant finished, but none reported {metric!r}", hint=hint)


def _run_variant(variant: Variant, base: TrainConfig, dataset_dir: str | Path, vdir: Path,
                 on_step: StepDone | None = None, *, isolate: bool = False, stop_at: int | None = None,
                 until: int | None = None) -> VariantOutcome:
    finished = _finished(vdir, until) if stop_at is None else _at_rung(vdir)
    if finished is not None:
        return VariantOutcome(variant.name, variant.params(), "ok", finished, None, str(vdir))
    args = (variant, base, dataset_dir, vdir, stop_at)
    if isolate:
        outcome = run_isolated(train_variant, args, variant.name, variant.params(), vdir, on_step)
    else:
        outcome = train_variant(*args, on_step)
    if stop_at is not None and outcome.status == "ok":
        atomic_write_json(vdir / RUNG_FILE, {"step": stop_at, "metrics": outcome.metrics})
    return outcome


def train_variant(variant: Variant, base: TrainConfig, dataset_dir: str | Path, vdir: Path, stop_at: int | None = None,
                  on_step: StepDone | None = None) -> VariantOutcome:
    """Train one variant (resuming its checkpoint), up to step ``stop_at`` when given; a failure is
    recorded in ``error.txt`` and returned, not raised."""
    progress = None
    if on_step is not None:
        def progress(step: int, total: int, logs: dict[str, float]) -> None:
            on_step(variant.name, step, min(total, stop_at or total), logs)
    try:
        stop = (stop_at_step(stop_at),) if stop_at is not None else ()
        result = train(variant.apply(base), dataset_dir, vdir, resume=True, callbacks=stop, on_progress=progress)
    except Exception as exc:  # a failed variant is recorded, the sweep goes on
        vdir.mkdir(parents=True, exist_ok=True)
        (vdir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        return VariantOutcome(variant.name, variant.params(), "failed", {}, f"{type(exc).__name__}: {exc}", str(vdir))
    (vdir / "error.txt").unlink(missing_ok=True)
    return VariantOutcome(variant.name, variant.params(), "ok", dict(result.metrics), None, str(vdir))


def _finished(vdir: Path, at_step: int | None = None) -> dict[str, float] | None:
    """The metrics of a variant trained to the end (to ``at_step`` at least, when given), or None."""
    metrics = vdir / "metrics.json"
    if metrics.exists() and (vdir / "adapter" / "adapter_config.json").exists():
        record = json.loads(metrics.read_text("utf-8"))
        if at_step is None or record.get("global_step", 0) >= at_step:
            return record.get("metrics", {})
    return None


def _at_rung(vdir: Path) -> dict[str, float] | None:
    """The metrics a variant had at the rung (kept apart: the winner's metrics.json moves on), or None."""
    rung = vdir / RUNG_FILE
    return json.loads(rung.read_text("utf-8"))["metrics"] if rung.exists() else None


def _recorded_sha(out: Path) -> str | None:
    state = out / STATE_FILE
    if state.exists() and (out / RULE_FILE).exists():
        return json.loads(state.read_text("utf-8")).get("rule_sha256")
    return None


def _save_state(out: Path, sha: str, outcomes: list[VariantOutcome]) -> None:
    data = {"rule_sha256": sha, "variants": [asdict(o) for o in outcomes]}
    atomic_write_json(out / STATE_FILE, data)
