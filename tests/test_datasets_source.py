"""Trace datasets as sources: ``save_to_disk`` folders, parquet and JSONL shards, ``hf://`` repos of parquet.

A ``trace`` column is the session file's text, read exactly by the raw file's
reader: ``inspect`` must give the same figures as on the files. A
``messages``-only dataset is read through the messages reader and flagged
``lossy_messages_source``.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hubstub import HubStub, StubRepo
from tracetune.cli.main import app
from tracetune.readers import read_paths
from tracetune.readers.datasets_source import LOSSY, trace_text

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
SAMPLE = ROOT / "src" / "tracetune" / "data" / "sample_pi_session.jsonl"
REAL = ["pi/before-compaction.jsonl", "claude-code/example_claude_code.jsonl", "codex/example_codex_session.jsonl"]


def inspect_json(*paths) -> dict:
    out = CliRunner().invoke(app, ["inspect", "--json", *map(str, paths)])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def trace_dataset(files: dict[str, Path]):
    """Rows as ``datasets`` builds them for agent traces: ``trace`` (Json), converted columns, ``file_path``."""
    from datasets import Dataset, Features, Json, List, Value

    features = Features({"harness": Value("string"), "messages": List(Json()), "tools": List(Json()),
                         "trace": Json(), "file_path": Value("string")})
    rows = [{"harness": name.split("/")[0], "messages": [{"role": "user", "content": "converted"}], "tools": [],
             "trace": path.read_text(encoding="utf-8"), "file_path": name} for name, path in files.items()]
    return Dataset.from_list(rows, features=features)


@pytest.fixture(scope="module")
def real_files() -> dict[str, Path]:
    files = {name: SHARED / name for name in REAL}
    if not all(p.is_file() for p in files.values()):
        pytest.skip("the shared real traces are absent")
    return files


@pytest.fixture(scope="module")
def saved(real_files, tmp_path_factory) -> dict[str, Path]:
    """The real sessions as a dataset: save_to_disk folder, parquet shard, JSONL shard."""
    out = tmp_path_factory.mktemp("datasets")
    ds = trace_dataset(real_files)
    ds.save_to_disk(str(out / "disk"))
    ds.to_parquet(str(out / "parquet" / "train-00000-of-00001.parquet"))
    ds.to_json(str(out / "jsonl" / "train.jsonl"))
    return {"disk": out / "disk", "parquet": out / "parquet" / "train-00000-of-00001.parquet",
            "jsonl": out / "jsonl" / "train.jsonl"}


@pytest.mark.parametrize("layout", ["disk", "parquet", "jsonl"])
def test_inspect_gives_the_raw_files_figures(real_files, saved, layout):
    raw = inspect_json(*real_files.values())
    assert raw["total"]["files"] == 3 and set(raw["by_agent"]) == {"pi", "claude-code", "codex"}
    assert inspect_json(saved[layout]) == raw


def test_trace_cells_are_the_files_byte_for_byte(real_files, saved):
    import pyarrow.parquet as pq

    table = pq.read_table(saved["parquet"])
    for name, cell in zip(table.column("file_path").to_pylist(), table.column("trace").to_pylist()):
        assert trace_text(cell).encode("utf-8") == real_files[name].read_bytes()


def test_rows_are_named_after_their_files(real_files, saved):
    result = read_paths([saved["parquet"]])
    assert sorted(result.formats.values()) == ["claude-code", "codex", "pi"]
    assert {s.source.rsplit("::", 1)[1] for s in result.sessions} == set(REAL)
    assert sorted(s.id for s in result.sessions) == sorted(s.id for s in read_paths(real_files.values()).sessions)


def test_hf_parquet_repo_through_the_hub_stub(real_files, saved, tmp_path, monkeypatch):
    import importlib

    discover = importlib.import_module("tracetune.readers.discover")  # the package exports a function of that name
    hub_source = importlib.import_module("tracetune.readers.hub")

    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    with HubStub() as hub:
        hub.repos["alice/agent-traces"] = StubRepo({
            "data/train-00000-of-00001.parquet": saved["parquet"].read_bytes(),
            "README.md": b"---\nconfigs: []\n---\n",
        }, sha="c" * 40)
        resolve = functools.partial(hub_source.resolve_hub_source, endpoint=hub.endpoint, cache_dir=tmp_path / "hub")
        monkeypatch.setattr(discover, "resolve_hub_source", resolve)  # the address is parsed and downloaded as ever
        got = inspect_json("hf://datasets/alice/agent-traces")
        result = read_paths(["hf://datasets/alice/agent-traces"], token=False)
    assert got["total"] == inspect_json(*real_files.values())["total"]
    assert result.sources[0].commit_sha == "c" * 40 and result.sources[0].files == 1
    assert not any("README" in path for _, path in hub.requests)


# --- without the shared traces -------------------------------------------------------------------------


def test_messages_only_dataset_is_read_and_flagged_lossy(tmp_path):
    from datasets import Dataset

    rows = [{"messages": [{"role": "user", "content": f"task {i}"},
                          {"role": "assistant", "content": "", "tool_calls": [
                              {"id": f"c{i}", "type": "function", "function": {"name": "read", "arguments": '{"path": "a"}'}}]},
                          {"role": "tool", "tool_call_id": f"c{i}", "content": "text"},
                          {"role": "assistant", "content": "done"}],
             "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]}
            for i in range(3)]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "m.parquet"))
    result = read_paths([tmp_path / "m.parquet"])
    assert len(result.sessions) == 3 and {s.agent for s in result.sessions} == {"messages"}
    assert all(s.warnings[0].kind == LOSSY for s in result.sessions)
    assert [t.name for t in result.sessions[0].tools] == ["read"]
    assert result.sessions[0].episodes[0].messages[1].tool_calls[0].arguments == {"path": "a"}
    data = inspect_json(tmp_path / "m.parquet")["total"]
    assert data["warnings"][LOSSY] == 3 and data["assistant_turns"] == 6


def test_prepare_says_a_messages_only_dataset_is_lossy(tmp_path, tiny_student):
    from datasets import Dataset

    from tracetune.prepare.config import PrepareConfig
    from tracetune.prepare.notes import prepare_notes
    from tracetune.prepare.stage import prepare

    rows = [{"messages": [{"role": "user", "content": f"task {i}"}, {"role": "assistant", "content": f"done {i}"}]}
            for i in range(4)]
    Dataset.from_list(rows).to_parquet(str(tmp_path / "m.parquet"))
    result = prepare(PrepareConfig(student=str(tiny_student), eval_fraction=0.25), [tmp_path / "m.parquet"], tmp_path / "out")
    assert result.stats.read.warnings_by_kind[LOSSY] == 4
    (note,) = [n for n in prepare_notes(result.stats) if "lossy" in n]
    assert note.startswith("4 sessions were read from a dataset's `messages` column only") and "`trace` column" in note
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="lossy"' in html and f"{LOSSY} 4" in html


def test_mixed_rows_hostile_names_and_foreign_shards(tmp_path):
    from datasets import Dataset

    text = SAMPLE.read_text(encoding="utf-8")
    Dataset.from_list([
        {"trace": text, "messages": None, "file_path": "../../../escape/sample.jsonl"},
        {"trace": None, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
         "file_path": "m.jsonl"},
        {"trace": None, "messages": None, "file_path": "nothing.jsonl"},
        {"trace": "not json at all", "messages": None, "file_path": "junk.jsonl"},
    ]).save_to_disk(str(tmp_path / "ds"))
    Dataset.from_list([{"input_ids": [1, 2]}]).to_parquet(str(tmp_path / "ds" / "other.parquet"))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = read_paths([tmp_path / "ds"])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written beside the data
    assert not (tmp_path.parent / "escape").exists()
    raw = read_paths([SAMPLE]).sessions
    exact = [s for s in result.sessions if s.agent == "pi"]
    assert [s.id for s in exact] == [s.id for s in raw] and exact[0].source.endswith("::../../../escape/sample.jsonl")
    assert [s.agent for s in result.sessions if s.warnings and s.warnings[0].kind == LOSSY] == ["messages"]
    errors = {e.path.rsplit("::", 1)[-1]: e.message for e in result.errors}
    assert set(errors) == {"nothing.jsonl", "junk.jsonl", str(tmp_path / "ds" / "other.parquet")}
    assert "neither" in errors["nothing.jsonl"] and "neither a 'trace' nor a 'messages' column" in errors[
        str(tmp_path / "ds" / "other.parquet")]
    assert "tracetune-rows" not in errors["junk.jsonl"]  # the row is named, not the temporary file


def test_plain_session_jsonl_is_not_taken_for_a_shard(tmp_path):
    assert inspect_json(SAMPLE) == inspect_json(SAMPLE.parent)  # the sample folder holds only the session file


def test_reading_a_shard_imports_neither_datasets_nor_torch(tmp_path):
    from datasets import Dataset

    Dataset.from_list([{"trace": SAMPLE.read_text(encoding="utf-8")}]).to_parquet(str(tmp_path / "s.parquet"))
    code = (
        "import sys; from tracetune.readers import read_paths; "
        f"r = read_paths([{str(tmp_path / 's.parquet')!r}]); assert r.sessions and not r.errors, r.errors; "
        "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
