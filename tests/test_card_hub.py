"""The card the Hub understands: license, usage, scores-only model-index, the run's real tools and settings,
the merged model in its own repo with its own card, and `tracetune train`'s own card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from tracetune.card.model_card import build_model_card, merged_card, write_model_card, write_train_card
from tracetune.publish.hub import push_to_hub

from hubstub import HubStub
from test_card import unsourced_numbers


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


CLAUDE_TOOLS = ["Read", "Bash", "Edit", "Glob"]


@pytest.fixture
def run_dir(tmp_path):
    """A finished run on SmolLM2 with Claude Code traces: two variants, both r8 (the config said r16)."""
    run = tmp_path / "runs" / "claude-run"
    _write(run / "manifest.json", {
        "version": 1, "name": "claude-run", "status": "success",
        "config": {"name": "claude-run", "runs_dir": "runs", "student": {"model": "smollm2"},
                   "train": {"model": "smollm2", "learning_rate": 0.0002, "lora_r": 16, "max_steps": 40},
                   "sweep": {"grid": {"learning_rate": [0.001, 0.002], "lora_r": [8]}},
                   "eval": {"max_new_tokens": 96},
                   "publish": {"repo_id": "me/claude-student", "push_merged": True, "merge": True}},
        "libraries": {"torch": "2.13.0"},
    })
    _write(run / "prepare/prepare_stats.json", {"read": {"sessions": 3}, "turns": {"supervised": 41}})
    _write(run / "prepare/tools.json", {"agents": {"claude-code": {
        "tools": [{"type": "function", "function": {"name": n, "parameters": {}}} for n in CLAUDE_TOOLS],
        "calls": {"Read": 12, "Bash": 9}}}, "sessions_with_own_tools": 0})
    _write(run / "sweep/selection_rule.json", {"metric": "eval_loss", "direction": "min"})
    _write(run / "sweep/selection.json", {"winner": "lr1e-3-r8-len2k"})
    for name, lr, loss in (("lr1e-3-r8-len2k", 0.001, 1.25), ("lr2e-3-r8-len2k", 0.002, 1.5)):
        config = {"model": "/cache/smollm2", "learning_rate": lr, "lora_r": 8, "lora_alpha": None, "max_length": 2048,
                  "max_steps": 40, "run_name": name, "gradient_accumulation_steps": 1}
        _write(run / f"sweep/variants/{name}/train_config.json", {"config": config})
        _write(run / f"sweep/variants/{name}/metrics.json", {"global_step": 40, "metrics": {"eval_loss": loss}})
        _write(run / f"sweep/variants/{name}/adapter/adapter_config.json",
               {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["v_proj", "q_proj"],
                "peft_type": "LORA"})
    _write(run / "eval/results.json", {"models": {
        "base": {"fidelity.tool_match": 0.25, "fidelity.samples": 60, "live.success_rate": 0.0, "live.mean_tokens": 812.5},
        "tuned": {"fidelity.tool_match": 0.5, "fidelity.samples": 60, "live.success_rate": 0.375, "live.mean_tokens": 640.25,
                  "live.mean_turns": 0.75},
    }})
    return run


def test_card_parses_with_license_usage_and_scores_only(run_dir, tmp_path):
    path = write_model_card(run_dir, tmp_path / "README.md")
    card = ModelCard.load(path)  # what the Hub client reads back
    assert card.data.license == "apache-2.0" and card.data.library_name == "peft"
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    scored = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert scored == {"fidelity.tool_match": 0.5, "live.success_rate": 0.375}  # no samples, mean_tokens, mean_turns
    text = card.text
    assert 'AutoPeftModelForCausalLM.from_pretrained("me/claude-student")' in text
    assert 'AutoModelForCausalLM.from_pretrained("me/claude-student-merged")' in text
    assert "tracetune serve me/claude-student-merged --pi" in text and "pi --provider tracetune --model student" in text
    assert "max_new_tokens=96" in text
    assert "| fidelity.samples | 60 | 60 |" in text  # counts stay in the body's table


def test_card_names_the_runs_real_tools_and_shared_settings(run_dir):
    text = str(build_model_card(run_dir))
    assert "claude-code: Read, Bash, Edit, Glob" in text
    assert "ls, find, grep" not in text
    assert "| lora_r | 8 |" in text and "| lora_r | 16 |" not in text  # the variants', not the config's
    assert "the variants differ in `learning_rate`" in text
    assert "| lora_alpha | 16 |" in text and "| target_modules | q_proj, v_proj |" in text
    assert "| max_length | 2048 |" in text and "run_name" not in text


def test_every_number_still_has_a_source(run_dir):
    text = str(build_model_card(run_dir)).replace("apache-2.0", "apache").replace("SmolLM2-135M", "SmolLM2")  # names
    assert unsourced_numbers(text, run_dir) == []


def test_configured_license_wins_and_unknown_base_has_none(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["config"]["publish"]["license"] = "mit"
    _write(run_dir / "manifest.json", manifest)
    assert build_model_card(run_dir).data.license == "mit"
    manifest["config"]["publish"].pop("license")
    manifest["config"]["student"]["model"] = "someone/unknown-model"
    _write(run_dir / "manifest.json", manifest)
    card = build_model_card(run_dir)
    assert card.data.license is None and "set `[publish] license`" in card.text


def test_merged_card_says_transformers_and_merge(run_dir):
    merged = merged_card(str(build_model_card(run_dir)), adapter_repo="me/claude-student")
    again = ModelCard(str(merged))
    assert again.data.library_name == "transformers" and again.data.base_model_relation == "merge"
    assert again.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and again.data.license == "apache-2.0"
    assert "peft" not in again.data.tags and "merge" in again.data.tags
    assert "This is the merged model" in again.text and "https://huggingface.co/me/claude-student" in again.text
    assert again.text.lstrip().startswith("# claude-run")


class ModelHubStub(HubStub):
    def _dispatch(self, h, method):
        if h.path.startswith("/api/validate-yaml"):
            return self._send(h, 200, {"errors": [], "warnings": []})
        h.path = h.path.replace("/api/models/", "/api/datasets/", 1)
        return super()._dispatch(h, method)


def test_merged_model_goes_to_its_own_repo_with_its_own_card(run_dir, tmp_path):
    adapter, merged = tmp_path / "adapter", tmp_path / "merged"
    for folder in (adapter, merged):
        folder.mkdir()
    write_model_card(run_dir, adapter / "README.md")
    (adapter / "adapter_config.json").write_text("{}")
    (merged / "config.json").write_text("{}")
    with ModelHubStub() as hub:
        pushed = push_to_hub("me/claude-student", adapter, token=hub.token, merged_dir=merged, endpoint=hub.endpoint)
        repos = dict(hub.repos)
    assert pushed.uploaded == ["me/claude-student", "me/claude-student-merged"]
    assert not any(f.startswith("merged/") for f in repos["me/claude-student"].files)
    on_hub = ModelCard(repos["me/claude-student-merged"].files["README.md"].decode())
    assert on_hub.data.library_name == "transformers" and on_hub.data.base_model_relation == "merge"
    assert "config.json" in repos["me/claude-student-merged"].files and repos["me/claude-student-merged"].private
    assert ModelCard(repos["me/claude-student"].files["README.md"].decode()).data.library_name == "peft"
    with ModelHubStub() as hub:
        pushed = push_to_hub("me/a", adapter, token=hub.token, merged_dir=merged, endpoint=hub.endpoint,
                             merged_repo_id="me/a-full")
    assert pushed.merged_repo_id == "me/a-full"


def test_train_card_replaces_pefts_placeholder(tmp_path):
    out = tmp_path / "train-out"
    adapter = out / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "README.md").write_text("---\nlibrary_name: peft\n---\n# Model Card for Model ID\n[More Information Needed]\n")
    _write(adapter / "adapter_config.json", {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]})
    _write(out / "train_config.json", {"config": {"model": "smollm2", "learning_rate": 0.003, "lora_r": 4,
                                                  "lora_alpha": None, "run_name": None}})
    _write(out / "metrics.json", {"global_step": 12, "metrics": {"eval_loss": 2.5, "eval_loss_before": 3.25},
                                  "adapter": str(adapter), "history": [{"loss": 9.5}]})
    card = ModelCard.load(write_train_card(out))
    assert "More Information Needed" not in card.text and card.data.license == "apache-2.0"
    assert card.data.library_name == "peft" and card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert "| learning_rate | 0.003 |" in card.text and "| lora_alpha | 8 |" in card.text
    assert "| metrics.eval_loss_before | 3.25 |" in card.text and "9.5" not in card.text
    assert f'AutoPeftModelForCausalLM.from_pretrained("{adapter}")' in card.text


def test_tracetune_train_writes_its_own_card(tiny_student, tmp_path):
    """A real (one-step) `tracetune train`: the adapter's README is tracetune's card, not PEFT's placeholder."""
    from datasets import Dataset, DatasetDict
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    rows = [{"input_ids": [1, 2, 3, 4], "assistant_masks": [0, 1, 1, 1]}] * 2
    DatasetDict({"train": Dataset.from_list(rows), "eval": Dataset.from_list(rows)}).save_to_disk(
        str(tmp_path / "data" / "dataset"))
    config = tmp_path / "train.toml"
    config.write_text("[train]\neval_before_train = false\nsave_steps = 1\n")
    res = CliRunner().invoke(app, ["train", str(tmp_path / "data"), "--model", str(tiny_student), "--out",
                                   str(tmp_path / "out"), "--config", str(config), "--max-steps", "1",
                                   "--max-length", "16", "--lora-r", "2", "--report-to", "none"])
    assert res.exit_code == 0, res.output
    card = ModelCard.load(tmp_path / "out" / "adapter" / "README.md")
    assert "More Information Needed" not in card.text and card.data.library_name == "peft"
    assert "| lora_r | 2 |" in card.text and "| lora_alpha | 4 |" in card.text and "global_step" in card.text
