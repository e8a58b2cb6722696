"""Sweep: named variants, a selection rule fixed before training, and a refusal when it changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracetune.errors import ConfigError, TracetuneError
from tracetune.sweep import runner
from tracetune.sweep.config import SelectionRule, SweepConfig
from tracetune.sweep.isolated import run_isolated
from tracetune.sweep.selection import RULE_FILE, VariantOutcome, fix_rule, rank, select
from tracetune.sweep.variants import expand, format_length, format_lr, variant_name
from tracetune.train.config import TrainConfig


def test_variant_names_read_like_the_grid():
    assert variant_name(2e-4, 16, 4096) == "lr2e-4-r16-len4k"
    assert [format_lr(x) for x in (1e-3, 1.5e-4, 3e-5, 0.01)] == ["1e-3", "1.5e-4", "3e-5", "1e-2"]
    assert [format_length(n) for n in (512, 1536, 2048, 3000, 32768)] == ["512", "1.5k", "2k", "3000", "32k"]


def test_grid_expands_in_order_and_keeps_base_values():
    base = TrainConfig(model="m", lr=1e-4, lora_r=8, max_length=2048)
    variants = expand(SweepConfig(grid={"lr": [1e-4, 2e-4], "lora_r": [8, 16]}), base)
    assert [v.name for v in variants] == ["lr1e-4-r8-len2k", "lr1e-4-r16-len2k", "lr2e-4-r8-len2k", "lr2e-4-r16-len2k"]
    applied = variants[3].apply(base)
    assert (applied.lr, applied.lora_r, applied.max_length, applied.run_name) == (2e-4, 16, 2048, "lr2e-4-r16-len2k")
    assert applied.alpha == 32


def test_repeated_grid_values_are_refused():
    with pytest.raises(ConfigError):
        expand(SweepConfig(grid={"lr": [2e-4, 0.0002]}), TrainConfig(model="m"))


def outcome(name, score, r=8, status="ok", metric="eval_loss"):
    return VariantOutcome(name, {"lr": 1e-4, "lora_r": r, "max_length": 512}, status, {metric: score} if score is not None else {})


def test_rank_applies_direction_tolerance_and_tie_break():
    outs = [outcome("a", 1.00, r=16), outcome("b", 1.005, r=8), outcome("c", 0.90, status="failed"),
            outcome("d", float("nan")), outcome("e", None), outcome("f", 1.5)]
    assert rank(outs, SelectionRule()) == ["a", "b", "f"]
    assert rank(outs, SelectionRule(tolerance=0.01)) == ["b", "a", "f"]
    assert rank(outs, SelectionRule(direction="max")) == ["f", "b", "a"]


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    from datasets import Dataset, DatasetDict

    rows = [{"input_ids": [1, 2, 3], "assistant_masks": [0, 1, 1]}]
    DatasetDict({"train": Dataset.from_list(rows), "eval": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "data" / "dataset"))
    return tmp_path / "data"


def test_editing_the_rule_file_makes_selection_refuse(tmp_path):
    sha = fix_rule(tmp_path, SelectionRule(), "evalhash", ["a", "b"])
    outs = [outcome("a", 1.0), outcome("b", 2.0)]
    assert select(tmp_path, sha, outs, "evalhash").winner == "a"
    rule = json.loads((tmp_path / RULE_FILE).read_text())
    rule["direction"] = "max"
    (tmp_path / RULE_FILE).write_text(json.dumps(rule))
    with pytest.raises(TracetuneError, match="changed after it was written"):
        select(tmp_path, sha, outs, "evalhash")


def test_a_changed_eval_set_makes_selection_refuse(tmp_path):
    sha = fix_rule(tmp_path, SelectionRule(), "evalhash", ["a"])
    with pytest.raises(TracetuneError, match="eval set changed"):
        select(tmp_path, sha, [outcome("a", 1.0)], "another")


def test_a_sweep_folder_keeps_its_first_rule(tmp_path):
    fix_rule(tmp_path, SelectionRule(), "h", ["a"])
    assert fix_rule(tmp_path, SelectionRule(), "h", ["a"])  # same rule: accepted
    with pytest.raises(TracetuneError, match="metric"):
        fix_rule(tmp_path, SelectionRule(metric="eval_mean_token_accuracy", direction="max"), "h", ["a"])


def fake_train(calls: list[str], fail: set[str]):
    def _train(config, dataset_dir, out_dir, resume=False, **kwargs):
        calls.append(config.run_name)
        if config.run_name in fail:
            raise RuntimeError("out of memory (pretend)")
        adapter = Path(out_dir) / "adapter"
        adapter.mkdir(parents=True, exist_ok=True)
        (adapter / "adapter_config.json").write_text("{}")
        loss = config.lr * 1000 + config.lora_r / 100
        (Path(out_dir) / "metrics.json").write_text(json.dumps({"metrics": {"eval_loss": loss}}))
        return type("R", (), {"metrics": {"eval_loss": loss}})()

    return _train


def test_a_failing_variant_is_recorded_and_the_rest_run(tmp_path, tiny_dataset, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(runner, "train", fake_train(calls, fail={"lr1e-4-r4-len512"}))
    sweep = SweepConfig(grid={"lr": [1e-4, 2e-4], "lora_r": [4, 8]}, isolate_variants=False)
    base = TrainConfig(model="m", max_length=512, report_to="none")
    rule_seen: list[str] = []
    result = runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "sweep", on_rule_written=lambda p, sha: rule_seen.append(sha))
    assert len(calls) == 4 and rule_seen == [result.rule_sha256]
    assert result.winner == "lr1e-4-r8-len512"
    record = json.loads((tmp_path / "sweep" / "selection.json").read_text())
    failed = [v for v in record["variants"] if v["status"] == "failed"]
    assert [v["name"] for v in failed] == ["lr1e-4-r4-len512"] and "out of memory" in failed[0]["error"]
    assert (tmp_path / "sweep" / "variants" / "lr1e-4-r4-len512" / "error.txt").exists()

    calls.clear()
    monkeypatch.setattr(runner, "train", fake_train(calls, fail=set()))
    again = runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "sweep")
    assert calls == ["lr1e-4-r4-len512"], "finished variants are skipped, the failed one retried"
    assert again.winner == "lr1e-4-r4-len512" and again.rule_sha256 == result.rule_sha256


def test_no_winner_names_each_failed_variants_real_error(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setattr(runner, "train", fake_train([], fail={"lr1e-4-r16-len4k", "lr2e-4-r16-len4k"}))
    sweep, base = SweepConfig(grid={"lr": [1e-4, 2e-4]}, isolate_variants=False), TrainConfig(model="m", report_to="none")
    with pytest.raises(TracetuneError, match="2 of 2 variant") as err:
        runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "s")
    assert "out of memory (pretend)" in err.value.message and "error.txt" in err.value.hint
    assert (tmp_path / "s" / "variants" / "lr1e-4-r16-len4k" / "error.txt").is_file()


def test_no_winner_without_an_eval_metric_points_at_the_eval_split(tmp_path, tiny_dataset, monkeypatch):
    def no_eval(config, dataset_dir, out_dir, resume=False, **kw):
        (Path(out_dir) / "adapter").mkdir(parents=True, exist_ok=True)
        return type("R", (), {"metrics": {"train_loss": 1.0}})()

    monkeypatch.setattr(runner, "train", no_eval)
    with pytest.raises(TracetuneError, match="none reported 'eval_loss'") as err:
        runner.run_sweep(SweepConfig(grid={"lr": [1e-4]}, isolate_variants=False), TrainConfig(model="m", report_to="none"), tiny_dataset, tmp_path / "s")
    assert "eval split" in err.value.hint


def test_an_isolated_variant_reports_steps_logs_and_outcome_from_its_own_process(tmp_path, caplog):
    import os

    from sweep_children import three_steps

    steps: list[tuple] = []
    with caplog.at_level("WARNING", logger="tracetune"):
        outcome = run_isolated(three_steps, ("v1", 0.9), "v1", {}, tmp_path, lambda *a: steps.append(a))
    assert outcome.status == "ok" and outcome.metrics["eval_loss"] == 0.9
    assert outcome.metrics["pid"] != os.getpid()
    assert [(v, s, t) for v, s, t, _ in steps] == [("v1", 1, 3), ("v1", 2, 3), ("v1", 3, 3)]
    assert steps[1][3] == {"loss": 0.45}
    assert "1 of 9 examples left out" in caplog.text  # the child's warning reaches the parent's logging


def test_a_variant_killed_for_memory_is_a_failed_outcome_that_says_so(tmp_path):
    from sweep_children import killed, raises

    steps: list[tuple] = []
    outcome = run_isolated(killed, ("v2",), "v2", {"learning_rate": 2e-3}, tmp_path / "v2", lambda *a: steps.append(a))
    assert outcome.status == "failed" and outcome.params == {"learning_rate": 2e-3}
    assert "killed by SIGKILL" in outcome.error and "out-of-memory" in outcome.error
    assert "killed by SIGKILL" in (tmp_path / "v2" / "error.txt").read_text()
    assert steps == [("v2", 1, 5, {})]
    crashed = run_isolated(raises, ("v3",), "v3", {}, tmp_path / "v3")
    assert crashed.status == "failed" and "exited with code 3" in crashed.error


def rung_train(calls: list[tuple[str, int]], fail_after_rung: bool = False):
    def _train(config, dataset_dir, out_dir, resume=False, callbacks=(), **kwargs):
        steps = next((c[1] for c in callbacks if isinstance(c, tuple) and c[0] == "stop"), config.max_steps)
        calls.append((config.run_name, steps))
        if fail_after_rung and steps == config.max_steps:
            raise RuntimeError("disk full (pretend)")
        (Path(out_dir) / "adapter").mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "adapter" / "adapter_config.json").write_text("{}")
        loss = config.lr * 1000 - steps / 100
        (Path(out_dir) / "metrics.json").write_text(json.dumps({"global_step": steps, "metrics": {"eval_loss": loss}}))
        return type("R", (), {"metrics": {"eval_loss": loss}})()

    return _train


def test_a_rung_scores_every_variant_early_and_only_the_winner_trains_on(tmp_path, tiny_dataset, monkeypatch):
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(runner, "train", rung_train(calls))
    monkeypatch.setattr(runner, "stop_at_step", lambda n: ("stop", n))
    sweep = SweepConfig(grid={"learning_rate": [2e-4, 1e-4]}, rule={"rung_steps": 4}, isolate_variants=False)
    base = TrainConfig(model="m", max_steps=10, max_length=512, report_to="none")
    result = runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "s")
    assert calls == [("lr2e-4-r16-len512", 4), ("lr1e-4-r16-len512", 4), ("lr1e-4-r16-len512", 10)]
    assert result.winner == "lr1e-4-r16-len512"
    assert json.loads((tmp_path / "s" / RULE_FILE).read_text())["rung_steps"] == 4  # fixed before any score
    scores = {v["name"]: v["score"] for v in json.loads((tmp_path / "s" / "selection.json").read_text())["variants"]}
    assert scores == {"lr2e-4-r16-len512": pytest.approx(0.16), "lr1e-4-r16-len512": pytest.approx(0.06)}
    final = {v["name"]: v["metrics"] for v in json.loads((tmp_path / "s" / "sweep.json").read_text())["variants"]}
    assert final["lr1e-4-r16-len512"]["eval_loss"] == pytest.approx(0.0)  # the winner's figures at step 10
    calls.clear()
    again = runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "s")
    assert calls == [] and again.winner == result.winner, "a finished halving sweep trains nothing on a rerun"


def test_a_rung_needs_max_steps_above_it_and_a_failed_continuation_is_an_error(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setattr(runner, "stop_at_step", lambda n: ("stop", n))
    sweep = SweepConfig(grid={"learning_rate": [1e-4]}, rule={"rung_steps": 10}, isolate_variants=False)
    with pytest.raises(ConfigError, match="rung_steps = 10 needs train.max_steps above it"):
        runner.run_sweep(sweep, TrainConfig(model="m", max_steps=10, report_to="none"), tiny_dataset, tmp_path / "a")
    assert not (tmp_path / "a" / RULE_FILE).exists()
    monkeypatch.setattr(runner, "train", rung_train([], fail_after_rung=True))
    sweep = SweepConfig(grid={"learning_rate": [1e-4]}, rule={"rung_steps": 3}, isolate_variants=False)
    with pytest.raises(TracetuneError, match="failed while continuing to step 10: RuntimeError: disk full"):
        runner.run_sweep(sweep, TrainConfig(model="m", max_steps=10, report_to="none"), tiny_dataset, tmp_path / "b")


def test_rerun_refuses_an_edited_rule_file(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setattr(runner, "train", fake_train([], fail=set()))
    sweep, base = SweepConfig(grid={"lr": [1e-4, 2e-4]}, isolate_variants=False), TrainConfig(model="m", report_to="none")
    runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "s")
    rule_path = tmp_path / "s" / RULE_FILE
    rule_path.write_text(rule_path.read_text().replace('"min"', '"max"'))
    with pytest.raises(TracetuneError, match="changed after it was written"):
        runner.run_sweep(sweep, base, tiny_dataset, tmp_path / "s")


@pytest.mark.slow
def test_sweep_of_two_variants_on_the_tiny_student(tiny_student, tmp_path, tmp_path_factory):
    torch = pytest.importorskip("torch")
    from train_data import PI_TRACE, shared_pi_dataset

    if not PI_TRACE.exists():
        pytest.skip("shared pi trace absent")
    data = shared_pi_dataset(tiny_student, tmp_path_factory)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = TrainConfig(model=str(tiny_student), max_steps=6, per_device_batch_size=1, grad_accumulation=1,
                           max_length=512, save_steps=6, logging_steps=3, report_to="none", warmup_ratio=0.0)
        steps: list[tuple] = []
        result = runner.run_sweep(SweepConfig(grid={"lr": [1e-5, 5e-3], "lora_r": [4]}, isolate_variants=False), base, data,
                                  tmp_path / "sweep", on_step=lambda *a: steps.append(a))
    finally:
        torch.set_num_threads(threads)
    for name in ("lr1e-5-r4-len512", "lr5e-3-r4-len512"):  # progress fires for every optimizer step of each variant
        assert [(s, t) for v, s, t, _ in steps if v == name] == [(k, 6) for k in range(1, 7)]
    assert any("loss" in logs for *_, logs in steps)
    record = json.loads((tmp_path / "sweep" / "selection.json").read_text())
    scores = {v["name"]: v["score"] for v in record["variants"]}
    assert set(scores) == {"lr1e-5-r4-len512", "lr5e-3-r4-len512"}
    assert record["winner"] == min(scores, key=scores.get) == result.winner
    assert (result.winner_dir / "adapter" / "adapter_model.safetensors").exists()

    rule_path = tmp_path / "sweep" / RULE_FILE
    rule_path.write_text(rule_path.read_text().replace('"eval_loss"', '"eval_mean_token_accuracy"'))
    with pytest.raises(TracetuneError, match="changed after it was written"):
        select(tmp_path / "sweep", result.rule_sha256, result.outcomes, record["eval_set_sha256"])


@pytest.mark.slow
def test_halving_sweep_in_child_processes_on_the_tiny_student(tiny_student, tmp_path, tmp_path_factory):
    from train_data import PI_TRACE, shared_pi_dataset

    if not PI_TRACE.exists():
        pytest.skip("shared pi trace absent")
    data = shared_pi_dataset(tiny_student, tmp_path_factory)
    base = TrainConfig(model=str(tiny_student), max_steps=6, per_device_batch_size=1, grad_accumulation=1,
                       max_length=512, save_steps=6, logging_steps=1, report_to="none", warmup_ratio=0.0)
    steps: list[tuple] = []
    sweep = SweepConfig(grid={"learning_rate": [1e-5, 5e-3], "lora_r": [4]}, rule={"rung_steps": 3})
    result = runner.run_sweep(sweep, base, data, tmp_path / "sweep", on_step=lambda *a: steps.append(a))
    winner, loser = result.winner, ({"lr1e-5-r4-len512", "lr5e-3-r4-len512"} - {result.winner}).pop()
    assert [(s, t) for v, s, t, _ in steps if v == loser] == [(1, 3), (2, 3), (3, 3)]
    assert [(s, t) for v, s, t, _ in steps if v == winner] == [(1, 3), (2, 3), (3, 3), (4, 6), (5, 6), (6, 6)]
    variants = tmp_path / "sweep" / "variants"
    assert json.loads((variants / loser / "metrics.json").read_text())["global_step"] == 3
    final = json.loads((variants / winner / "metrics.json").read_text())
    assert final["global_step"] == 6 and [h["step"] for h in final["history"] if "eval_loss" in h] == [0, 3, 6]
    rates = [h["learning_rate"] for h in final["history"] if "learning_rate" in h]
    assert len(rates) == 6 and rates == sorted(rates, reverse=True)  # one cosine schedule across the rung
    assert json.loads((variants / winner / "rung.json").read_text())["step"] == 3


def test_cli_rejects_a_bad_rule_without_a_traceback(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tracetune.cli.main", "sweep", str(tmp_path), "--out", str(tmp_path / "s"),
         "--model", "m", "--lr", "1e-4,2e-4", "--direction", "up"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "rule.direction" in done.stderr and "Traceback" not in done.stderr
