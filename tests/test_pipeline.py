"""The runner with stand-in stages: skip what is unchanged, resume after a crash, ignore partial outputs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from tracetune.pipeline.config import load_config
from tracetune.pipeline.manifest import read_manifest
from tracetune.pipeline.runner import Stage, StageContext, run


class FakeStages:
    """prepare -> sweep (resumable, two variants) -> card; counts the work each really does."""

    def __init__(self):
        self.calls: Counter[str] = Counter()
        self.variants_trained: list[str] = []
        self.crash_after_variant: str | None = None
        self.crash_in_card = False

    def prepare(self, ctx: StageContext, out: Path):
        self.calls["prepare"] += 1
        (out / "dataset.json").write_text(json.dumps({"lr": ctx.config.train.lr, "seed": ctx.config.seed}))

    def sweep(self, ctx: StageContext, out: Path):
        self.calls["sweep"] += 1
        rule = out / "selection_rule.json"
        if not rule.exists():
            rule.write_text('{"metric": "eval_loss"}')
        ctx.record("selection_rule_sha256", "rulehash")
        for name in ("v1", "v2"):
            done = out / name / "metrics.json"
            if done.exists():
                continue
            self.variants_trained.append(name)
            (out / name).mkdir(exist_ok=True)
            done.write_text(json.dumps({"eval_loss": 1.0, "lr": ctx.config.train.lr}))
            if self.crash_after_variant == name:
                raise KeyboardInterrupt
        (out / "selection.json").write_text('{"selected": "v1"}')
        return {"selected": "v1"}

    def card(self, ctx: StageContext, out: Path):
        self.calls["card"] += 1
        (out / "README.md").write_text("half a card")
        if self.crash_in_card:
            raise RuntimeError("disk full")
        assert (ctx.path("sweep") / "selection.json").exists()

    def stages(self) -> list[Stage]:
        return [
            Stage("prepare", self.prepare, sections=("traces",), input_paths=lambda c: []),
            Stage("sweep", self.sweep, sections=("train",), needs=("prepare",), atomic=False,
                  verify=lambda p: None if (p / "selection.json").exists() else "no selection.json"),
            Stage("card", self.card, sections=("publish",), needs=("prepare", "sweep")),
        ]


def _run(config, run_dir, fake, **kw):
    return run(config, run_dir, stages=fake.stages(), console=Console(quiet=True), **kw)


@pytest.fixture
def config():
    return load_config(None, ["train.lr=1e-3"], name="t")


def test_rerun_skips_unchanged_stages_and_reruns_changed_ones(tmp_path, config):
    fake = FakeStages()
    first = _run(config, tmp_path, fake)
    assert first.ran == ["prepare", "sweep", "card"]
    assert read_manifest(tmp_path).status == "success"

    second = _run(config, tmp_path, fake)
    assert second.ran == [] and second.skipped == ["prepare", "sweep", "card"]

    changed = load_config(None, ["train.lr=5e-4"], name="t")
    third = _run(changed, tmp_path, fake)
    assert third.skipped == ["prepare"] and third.ran == ["sweep", "card"]
    assert fake.calls["prepare"] == 1
    assert fake.variants_trained == ["v1", "v2", "v1", "v2"], "changed inputs retrain from scratch"


def test_interrupt_mid_sweep_resumes_without_redoing_prepare(tmp_path, config):
    fake = FakeStages()
    fake.crash_after_variant = "v1"
    with pytest.raises(KeyboardInterrupt):
        _run(config, tmp_path, fake)
    m = read_manifest(tmp_path)
    assert m.status == "cancelled"
    assert m.stages["prepare"].status == "done" and m.stages["sweep"].status == "interrupted"
    assert m.stages["sweep"].extra["selection_rule_sha256"] == "rulehash", "rule recorded before the first variant"
    assert "card" not in m.stages or m.stages["card"].status == "pending"

    fake.crash_after_variant = None
    result = _run(config, tmp_path, fake)
    assert result.skipped == ["prepare"] and result.ran == ["sweep", "card"]
    assert fake.calls["prepare"] == 1
    assert fake.variants_trained == ["v1", "v2"], "the finished variant is not trained again"
    assert read_manifest(tmp_path).status == "success"


def test_partial_outputs_of_a_crashed_stage_are_never_taken_as_finished(tmp_path, config):
    fake = FakeStages()
    fake.crash_in_card = True
    with pytest.raises(RuntimeError, match="disk full"):
        _run(config, tmp_path, fake)
    m = read_manifest(tmp_path)
    assert m.status == "error" and m.error.message == "disk full"
    assert m.stages["card"].status == "error"
    assert not (tmp_path / "card").exists(), "the half-written card never takes the stage's name"
    assert (tmp_path / "card.failed" / "README.md").exists(), "kept aside for inspection"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    fake.crash_in_card = False
    result = _run(config, tmp_path, fake)
    assert result.ran == ["card"] and (tmp_path / "card" / "README.md").exists()
    assert not (tmp_path / "card.failed").exists()


def test_a_finished_stage_whose_outputs_changed_or_vanished_runs_again(tmp_path, config):
    fake = FakeStages()
    _run(config, tmp_path, fake)
    (tmp_path / "card" / "README.md").write_text("edited by hand")
    assert _run(config, tmp_path, fake).ran == ["card"]
    (tmp_path / "sweep" / "selection.json").unlink()
    result = _run(config, tmp_path, fake)
    assert "sweep" in result.ran and fake.calls["prepare"] == 1


def test_files_added_later_to_a_finished_stage_do_not_make_it_stale(tmp_path, config):
    fake = FakeStages()
    _run(config, tmp_path, fake)
    (tmp_path / "prepare" / "cache-1234.arrow").write_text("written by a later reader")
    assert _run(config, tmp_path, fake).ran == []


def test_force_reruns_a_stage(tmp_path, config):
    fake = FakeStages()
    _run(config, tmp_path, fake)
    result = _run(config, tmp_path, fake, force=("prepare",))
    assert result.ran[0] == "prepare" and fake.calls["prepare"] == 2


def test_manifest_records_hashes_config_and_timings(tmp_path, config):
    fake = FakeStages()
    _run(config, tmp_path, fake)
    m = read_manifest(tmp_path)
    assert m.config["train"]["learning_rate"] == 1e-3
    for name in ("prepare", "sweep", "card"):
        rec = m.stages[name]
        assert rec.status == "done" and rec.inputs_hash and rec.outputs
        assert all(len(sha) == 64 and (tmp_path / name / rel).is_file() for rel, sha in rec.outputs.items())
        assert rec.started_at <= rec.ended_at
    assert m.stages["sweep"].extra["selected"] == "v1"


def _fake_prepare(ctx, out):
    (out / "dataset").mkdir()
    (out / "eval_episodes.jsonl").write_text("")
    (out / "prepare_stats.json").write_text(json.dumps({"sessions": 5, "turns": {"kept": 40, "dropped": {"aborted": 2}}}))
    (out / "redaction_report.json").write_text(json.dumps({"counts": {"github_token": 1}}))


def _fake_sweep(ctx, out):
    """Writes what the sweep writes, with a real (untrained, non-zero) LoRA adapter on the student."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracetune.pipeline.stages import student_model

    (out / "selection_rule.json").write_text(json.dumps({"metric": "eval_loss", "direction": "min"}))
    for name, loss in (("lr1e-3-r4", 2.5), ("lr2e-3-r4", 2.25)):
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(student_model(ctx)),
                               LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
        model.save_pretrained(out / "variants" / name / "adapter")
        (out / "variants" / name / "metrics.json").write_text(json.dumps({"metrics": {"eval_loss": loss}}))
    (out / "selection.json").write_text(json.dumps({"winner": "lr2e-3-r4"}))


def _fake_eval(ctx, out):
    (out / "results.json").write_text(json.dumps({"models": {"base": {"parse_rate": 0.0625}, "tuned": {"parse_rate": 0.5}}}))


def test_real_student_card_and_publish_stages_around_stand_in_training(tmp_path, monkeypatch):
    from tracetune.pipeline import stages as stages_mod

    stages = stages_mod.default_stages()
    for stage in stages:
        stage.run = {"prepare": _fake_prepare, "sweep": _fake_sweep, "eval": _fake_eval}.get(stage.name, stage.run)
    config = load_config(None, ["traces.paths=[]", "publish.repo_id=alice/x", "publish.token_env=TT_UNSET_TOKEN"],
                         name="real")
    monkeypatch.delenv("TT_UNSET_TOKEN", raising=False)
    stages[1].input_paths = None
    result = run(config, tmp_path, stages=stages, console=Console(quiet=True))
    assert result.ran == ["student", "prepare", "sweep", "eval", "card", "publish"]
    card = (tmp_path / "card" / "README.md").read_text()
    assert "| parse_rate | 0.0625 | 0.5 |" in card and "(selected)" in card
    publish = tmp_path / "publish"
    assert (publish / "adapter" / "README.md").read_text() == card
    assert list((publish / "merged").glob("*.safetensors"))
    facts = json.loads((publish / "publish.json").read_text())
    assert facts["exported"] is True and facts["pushed"] == "skipped: $TT_UNSET_TOKEN is not set"
    m = read_manifest(tmp_path)
    assert m.stages["card"].extra["card_sha256"] and m.status == "success"

    again = run(config, tmp_path, stages=stages, console=Console(quiet=True))
    assert again.ran == []


def test_a_configured_student_is_recorded_not_copied(tmp_path):
    from tracetune.pipeline.stages import default_stages, student_model

    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    config = load_config(None, [f"student.model='{model_dir}'"], name="s")
    seen = {}

    def fake_prepare(ctx, out):
        seen["student"] = student_model(ctx)

    stages = default_stages()[:2]
    stages[1].run, stages[1].input_paths, stages[1].verify = fake_prepare, None, None
    run(config, tmp_path / "run", stages=stages, console=Console(quiet=True))
    assert seen["student"] == str(model_dir)
    assert json.loads((tmp_path / "run" / "student" / "student.json").read_text())["model"] == str(model_dir)
    assert not list((tmp_path / "run" / "student").glob("*.safetensors"))
