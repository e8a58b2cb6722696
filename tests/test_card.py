"""The model card: every number in it traces to a file of the run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tracetune.card.model_card import build_model_card, load_artifacts, write_model_card

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)*(?:[eE][-+]?\d+)?")


def _walk(value, numbers: list[float], strings: list[str]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        numbers.append(float(value))
    elif isinstance(value, str):
        strings.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            strings.append(str(k))
            _walk(v, numbers, strings)
    elif isinstance(value, list):
        for v in value:
            _walk(v, numbers, strings)


def unsourced_numbers(card: str, run_dir: Path) -> list[str]:
    """Numbers in ``card`` found in no artifact: as a value, as shown (4 significant digits, or one
    decimal from 1000 up), or inside a string or file path of the run."""
    numbers: list[float] = []
    strings: list[str] = []
    for path in load_artifacts(run_dir).files():
        strings.append(path.relative_to(run_dir).as_posix())
        _walk(json.loads(path.read_text()), numbers, strings)
    missing = []
    for token in NUMBER.findall(card):
        try:
            x = float(token)
        except ValueError:
            x = None
        if x is not None and any(x == v or float(f"{v:.4g}") == x or round(v, 1) == x for v in numbers):
            continue
        if any(token in s for s in strings):
            continue
        missing.append(token)
    return missing


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def run_dir(tmp_path):
    """A run folder holding the artifacts of a finished run (as the stages write them)."""
    _write(tmp_path / "manifest.json", {
        "version": 1, "name": "demo-run", "status": "success",
        "config": {"student": {"model": "Qwen/Qwen2.5-0.5B-Instruct"},
                   "train": {"model": "Qwen/Qwen2.5-0.5B-Instruct", "lr": 0.0002, "lora_r": 16, "max_steps": 37}},
        "libraries": {"torch": "2.13.0", "peft": "0.21.2"},
        "stages": {"prepare": {"extra": {"hub_sources": [
            {"uri": "hf://datasets/badlogicgames/pi-mono", "repo_id": "badlogicgames/pi-mono", "commit_sha": "c0ffee"}]}}},
    })
    _write(tmp_path / "prepare/prepare_stats.json", {
        "version": 1, "read": {"files": 14, "sessions": 12, "episodes": 19},
        "turns": {"trainable": 438, "supervised": 431, "dropped_by_reason": {"aborted": 7, "teacher_filter": 3},
                  "kept_fraction": 0.984},
        "examples": {"train": {"examples": 58}, "eval": {"examples": 9}},
        "tokens": {"tokens_per_supervised_token": 3.14159265, "throughput": 72183.25}, "seconds": {"render": 0.731},
        "file_errors": [],
    })
    _write(tmp_path / "prepare/redaction_report.json", {"counts": {"aws_access_key": 2, "home_path": 118}})
    _write(tmp_path / "sweep/selection_rule.json", {"metric": "eval_loss", "direction": "min",
                                                    "tie_break": "fewer_params", "eval_set_sha256": "ab12cd"})
    _write(tmp_path / "sweep/selection.json", {"winner": "lr2e-4-r16", "ranking": ["lr2e-4-r16", "lr1e-4-r8"]})
    for name, loss, train_loss in (("lr2e-4-r16", 1.23456789, 1.5), ("lr1e-4-r8", 1.4, 1.71)):
        _write(tmp_path / f"sweep/variants/{name}/metrics.json", {
            "global_step": 37, "metrics": {"eval_loss": loss, "train_loss": train_loss},
            "adapter": f"/tmp/run-{name}-991/adapter", "history": [{"step": 5, "loss": 9.75}],
        })
    _write(tmp_path / "eval/results.json", {"settings": {"seed": 0}, "models": {
        "base": {"fidelity.parse_rate": 0.125, "fidelity.tool_name": 0.0, "live.success_rate": 0.0},
        "tuned": {"fidelity.parse_rate": 0.8125, "fidelity.tool_name": 0.4375, "live.success_rate": 0.3333333},
    }})
    return tmp_path


def test_card_has_metadata_and_every_section(run_dir):
    card = build_model_card(run_dir)
    assert card.data.library_name == "peft"
    assert card.data.base_model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert card.data.datasets == ["badlogicgames/pi-mono"]
    assert "tracetune" in card.data.tags
    by_metric = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert by_metric["fidelity.parse_rate"] == 0.8125 and by_metric["live.success_rate"] == 0.3333333
    text = str(card)
    assert "model-index" in text
    for heading in ("## Data", "## Training setup", "## Selection", "## Evaluation: base vs tuned",
                    "## Intended use", "## Known limits"):
        assert heading in text
    assert "| fidelity.parse_rate | 0.125 | 0.8125 |" in text
    assert "| live.success_rate | 0 | 0.3333 |" in text
    assert "| turns.dropped_by_reason.aborted | 7 |" in text
    assert "seconds" not in text, "timings are not data figures"
    assert "| tokens.throughput | 72183.2 |" in text and "file_errors" not in text
    assert "| counts.aws_access_key | 2 |" in text
    assert "### Variant `lr2e-4-r16` (selected)" in text and "### Variant `lr1e-4-r8`" in text
    assert "| metrics.eval_loss | 1.235 |" in text
    assert "/tmp/run-" not in text and "9.75" not in text, "no local paths or log history in the card"


def test_every_number_in_the_card_has_a_source_in_the_run(run_dir):
    card = str(build_model_card(run_dir))
    assert len(NUMBER.findall(card)) > 20, "the card should actually carry the run's figures"
    assert unsourced_numbers(card, run_dir) == []


def test_an_injected_number_without_source_is_caught(run_dir):
    card = str(build_model_card(run_dir))
    injected = card.replace("## Known limits", "Tuned beats base by 27.5 points.\n\n## Known limits")
    assert unsourced_numbers(injected, run_dir) == ["27.5"]


def test_a_changed_artifact_makes_the_old_card_untraceable(run_dir):
    card = str(build_model_card(run_dir))
    _write(run_dir / "eval/results.json", {"models": {"base": {"parse_rate": 0.5}, "tuned": {"parse_rate": 0.75}}})
    assert "0.8125" in unsourced_numbers(card, run_dir)


def test_missing_artifacts_say_not_available_and_invent_nothing(tmp_path):
    _write(tmp_path / "manifest.json", {"name": "bare", "config": {"student": {"model": "./local-model"}}})
    card = build_model_card(tmp_path)
    text = str(card)
    assert "Eval results: not available" in text and "Data statistics: not available" in text
    assert card.data.base_model is None, "a local path is not a Hub base_model"
    assert unsourced_numbers(text, tmp_path) == []


def test_card_is_written_atomically_and_reloads(run_dir, tmp_path):
    from huggingface_hub import ModelCard

    out = write_model_card(run_dir, tmp_path / "out" / "README.md")
    assert [p.name for p in out.parent.iterdir()] == ["README.md"]
    assert ModelCard.load(out).data.library_name == "peft"
