"""manifest.json names every trace file a run read, and a rerun warns when one changed."""

from __future__ import annotations

import io
import json

from rich.console import Console

from tracetune.pipeline.config import load_config
from tracetune.pipeline.files import input_record
from tracetune.pipeline.manifest import input_changes, read_manifest
from tracetune.pipeline.runner import run
from tracetune.pipeline.stages import default_stages
from tracetune.util.files import sha256_file


def session_line(i: int) -> str:
    return json.dumps({"messages": [
        {"role": "user", "content": f"Task {i}: explain module_{i}.py in project {i * 7}"},
        {"role": "assistant", "content": f"module_{i} returns {i}."},
    ]}) + "\n"


def _run(config):
    out = io.StringIO()
    stages = [s for s in default_stages() if s.name == "prepare"]
    result = run(config, stages=stages, console=Console(file=out, width=300))
    return result, out.getvalue()


def test_prepare_records_every_trace_file_and_a_changed_one_is_named_on_the_next_run(tiny_student, tmp_path):
    traces = tmp_path / "traces"
    (traces / "sub").mkdir(parents=True)
    (traces / "a.jsonl").write_text("".join(session_line(i) for i in range(3)))
    (traces / "sub" / "b.jsonl").write_text("".join(session_line(i) for i in range(3, 6)))
    (traces / "notes.txt").write_text("not a session file")
    config = load_config(None, ["prepare.max_length=400", "prepare.eval_fraction=0.3"], name="t",
                         **{"student.model": str(tiny_student), "traces.paths": [str(traces)],
                            "runs_dir": str(tmp_path / "runs")})
    first, printed = _run(config)
    inputs = read_manifest(first.run_dir).inputs
    assert list(inputs) == [str(traces)]
    files = inputs[str(traces)]["files"]
    assert set(files) == {"a.jsonl", "sub/b.jsonl"}
    for rel, info in files.items():
        assert info == {"size": (traces / rel).stat().st_size, "sha256": sha256_file(traces / rel)}
    assert "changed" not in printed

    (traces / "a.jsonl").write_text("".join(session_line(i) for i in range(4)))
    (traces / "c.jsonl").write_text(session_line(9))
    second, printed = _run(config)
    assert second.ran == ["prepare"]
    assert "warning:" in printed and "1 added (c.jsonl)" in printed and "1 changed (a.jsonl)" in printed
    assert read_manifest(second.run_dir).inputs[str(traces)]["files"]["a.jsonl"]["sha256"] == sha256_file(traces / "a.jsonl")

    third, printed = _run(config)
    assert third.skipped == ["prepare"] and "warning" not in printed


def test_input_changes_counts_and_names_at_most_a_few(tmp_path):
    before = {"src": {"files": {f"f{i}.jsonl": {"size": 1, "sha256": str(i)} for i in range(6)}}}
    after = {"src": {"files": {f"f{i}.jsonl": {"size": 1, "sha256": "x"} for i in range(1, 6)}}}
    line = input_changes(before, after)
    assert line is not None
    assert "1 removed (f0.jsonl)" in line and "5 changed (f1.jsonl, f2.jsonl, f3.jsonl, 2 more)" in line
    assert input_changes({}, after) is None and input_changes(after, after) is None


def test_a_hub_source_records_its_commit_and_a_new_commit_is_reported(tmp_path):
    snap = tmp_path / "snapshot"
    snap.mkdir()
    (snap / "s.jsonl").write_text(session_line(1))
    uri = "hf://datasets/me/traces"
    old = input_record([snap], {str(snap): uri}, [{"uri": uri, "commit_sha": "a" * 40}])
    assert old[uri]["revision"] == "a" * 40 and set(old[uri]["files"]) == {"s.jsonl"}
    new = input_record([snap], {str(snap): uri}, [{"uri": uri, "commit_sha": "b" * 40}])
    assert "now at bbbbbbbbbbbb (was aaaaaaaaaaaa)" in (input_changes(old, new) or "")
    written = input_record([snap], {str(snap): uri + "/"}, [{"uri": uri, "commit_sha": "c" * 40}])  # as configured
    assert written[uri + "/"]["revision"] == "c" * 40
