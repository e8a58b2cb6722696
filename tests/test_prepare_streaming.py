"""``prepare`` streams: same redaction, catalog and families as the all-in-memory path; same output for any workers.

The streaming pieces are checked against the functions that hold every
session at once (``redact_sessions``, ``ToolCatalog.from_sessions``,
``assign_families``) on the canary corpus, the reader fixtures and the shared
real traces (when present). ``--workers 1`` and ``--workers 2`` must write
byte-identical datasets.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tracetune.conversation.families import assign_families
from tracetune.prepare import stream, tasks, workers
from tracetune.prepare.config import PrepareConfig
from tracetune.prepare.corpus import CatalogBuilder, family_stub
from tracetune.prepare.dataset import Rows
from tracetune.prepare.redact import redact_sessions
from tracetune.prepare.redact_stream import StreamRedactor, learn_files
from tracetune.prepare.stage import prepare
from tracetune.prepare.tools import ToolCatalog
from tracetune.readers import read_paths
from tracetune.readers.discover import discover, read_one

TESTS = Path(__file__).resolve().parent
SHARED = TESTS.parents[1] / "shared" / "traces"
_spec = importlib.util.spec_from_file_location("canary_corpus", TESTS / "fixtures" / "canaries" / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("canary_corpus", corpus)
_spec.loader.exec_module(corpus)


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("traces")
    corpus.write_pi_sessions(root)
    folders = [root, TESTS / "fixtures" / "pi", TESTS / "fixtures" / "claude_code", TESTS / "fixtures" / "codex"]
    if SHARED.is_dir():
        folders.append(SHARED)
    return discover(folders)


def _streamed(files: list[Path]):
    redactor = StreamRedactor()
    learn_files(redactor, (read_one(p).sessions for p in files))
    sessions = [s for p in files for s in redactor.redact_file(read_one(p).sessions)]
    return sessions, redactor


def test_streamed_redaction_equals_redacting_everything_at_once(trace_files):
    read = read_paths(trace_files)
    expected, report = redact_sessions(read.sessions)
    sessions, redactor = _streamed(trace_files)
    assert sessions == expected
    redactor.finish(len(sessions))
    errors = [f"cannot read /Users/{corpus.USER}/x.jsonl", "plain", f"cannot read /Users/{corpus.USER}/x.jsonl"]
    assert [redactor.report.scrub(e) for e in errors] == [report.scrub(e) for e in errors]
    got = redactor.report.to_dict()
    want = report.to_dict()
    got.pop("seconds"), want.pop("seconds")
    assert got == want
    assert want["secrets"]["total"] > 0 and want["paths"]["home_paths"] > 0


def test_a_secret_first_seen_in_the_last_file_is_replaced_in_the_first(tmp_path):
    password = "Xk9mQ2vL8pR4tZ7w"  # strong: replaced wherever it stands once learned
    first, last = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps({"messages": [{"role": "user", "content": f"the log shows {password} twice"}]}) + "\n")
    last.write_text(json.dumps({"messages": [{"role": "user", "content": f"export DB_PASSWORD={password}"}]}) + "\n")
    sessions, _ = _streamed([first, last])
    texts = [m.content for s in sessions for e in s.episodes for m in e.messages]
    assert len(texts) == 2 and not any(password in t for t in texts), texts


def test_catalog_and_families_from_metadata_equal_the_whole_corpus(trace_files):
    sessions, _ = _streamed(trace_files)
    ids = [s.id for s in sessions]
    builder = CatalogBuilder(repeated_ids=frozenset(i for i in ids if ids.count(i) > 1))
    for session in sessions:
        builder.add(session)
    assert builder.build().to_dict() == ToolCatalog.from_sessions(sessions).to_dict()
    assert assign_families(family_stub(s) for s in sessions) == assign_families(sessions)


def test_rows_spilled_to_disk_read_back_like_rows_held(tmp_path):
    from array import array

    held, spilled = Rows(), Rows(tmp_path / "rows.bin")
    for i in range(5):
        args = (array("i", range(i, i + 40 * i + 1)), bytes([i % 2]) * (40 * i + 1), f"e{i}", "s", "f", i, 40 * i + 1,
                i, json.dumps([{"role": "user", "content": "é" * i}]), "[]")
        held.add_row(*args)
        spilled.add_row(*args)
    for a, b in zip(held.records(), spilled.records()):
        assert a.keys() == b.keys()
        assert all((a[k] == b[k]).all() if hasattr(a[k], "all") else a[k] == b[k] for k in a)
    assert list(spilled.columns["input_ids"][3]) == list(range(3, 124))
    assert spilled.columns["num_tokens"] == held.columns["num_tokens"]
    spilled.close()


def test_saved_dataset_loads_back_in_shards_and_empty(tmp_path, monkeypatch):
    from array import array

    from datasets import load_from_disk

    from tracetune.prepare import dataset

    monkeypatch.setattr(dataset, "SHARD_BYTES", 200)  # a shard every row or two
    train = Rows(tmp_path / "train.bin")
    for i in range(5):
        train.add_row(array("i", [i] * 30), bytes([1, 0] * 15), f"e{i}", "s", "f", i, 30, 15, "[]", "[]")
    dataset.save_dataset(tmp_path / "dataset", {"train": train, "eval": Rows()})
    train.close()
    loaded = load_from_disk(str(tmp_path / "dataset"))
    assert len(list((tmp_path / "dataset" / "train").glob("data-*.arrow"))) > 2
    assert [row["episode_id"] for row in loaded["train"]] == [f"e{i}" for i in range(5)]
    assert loaded["train"][3]["input_ids"] == [3] * 30 and loaded["train"][3]["assistant_masks"] == [1, 0] * 15
    assert len(loaded["eval"]) == 0 and loaded["eval"].features == loaded["train"].features


def _outputs(folder: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "report.html":
            data = path.read_bytes()
            if path.suffix == ".json" and path.name in ("prepare_stats.json", "redaction_report.json"):
                value = json.loads(data)
                value.pop("seconds", None)
                data = json.dumps(value, sort_keys=True).encode()
            out[path.relative_to(folder).as_posix()] = data
    return out


@pytest.mark.slow
def test_one_worker_and_two_write_identical_datasets(tmp_path, tiny_student, monkeypatch):
    traces = tmp_path / "Users" / corpus.USER / "sessions"
    traces.mkdir(parents=True)
    corpus.write_pi_sessions(traces)
    for path in (TESTS / "fixtures" / "pi").glob("*.jsonl"):
        (traces / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(workers, "MIN_PARALLEL_BYTES", 0)
    config = PrepareConfig(student=str(tiny_student), eval_fraction=0.5, max_length=4096, long_turns="truncate")
    one = prepare(config, [traces], tmp_path / "one", workers=1)
    two = prepare(config, [traces], tmp_path / "two", workers=2)
    assert one.stats.turns.supervised > 0 and one.stats.windows > 3
    assert two.stats.turns == one.stats.turns
    a, b = _outputs(tmp_path / "one"), _outputs(tmp_path / "two")
    assert a.keys() == b.keys() and any(k.startswith("dataset/") and k.endswith(".arrow") for k in a)
    assert [k for k in a if a[k] != b[k]] == []
    assert not (tmp_path / "one" / ".spill").exists()


@pytest.mark.parametrize("count", [3, workers.EARLY + 7])
def test_tasks_drawn_while_the_processes_start_come_back_in_order(count, tiny_student):
    """``run`` draws tasks before the processes are up (up to ``EARLY``), then submits them: same results, same order."""
    from tracetune.engines.tokenizer import load_tokenizer

    config = PrepareConfig(student=str(tiny_student))
    tokenizer = load_tokenizer(str(tiny_student))
    texts = [[f"line {n} api_key = 'AbC123xYz{n:04d}Q9'", f"nothing {n}", f"mail me at jane.doe{n}@acme-mail.com"]
             for n in range(count)]
    with workers.Workers(1, tokenizer, config) as here:
        expected = list(here.run(tasks.detect, enumerate(texts)))
    drawn = []

    def items():
        for n, part in enumerate(texts):
            drawn.append(n)
            yield n, part

    with workers.Workers(2, tokenizer, config) as pool:
        got = list(pool.run(tasks.detect, items()))
    assert got == expected and [n for n, _ in got] == list(range(count)) == drawn
    assert all(found[0] and found[2] and not found[1] for _, found in got)  # the key and the address, per text


def _copied_fixtures(tmp_path: Path) -> Path:
    traces = tmp_path / "traces"
    traces.mkdir()
    for path in (TESTS / "fixtures" / "pi").glob("*.jsonl"):
        (traces / path.name).write_bytes(path.read_bytes())
    return traces


def test_a_file_that_changes_while_it_is_read_is_skipped_with_an_error(tmp_path, tiny_student, monkeypatch):
    traces = _copied_fixtures(tmp_path)
    victim = min(traces.glob("*.jsonl"))
    real = stream.read_one

    def growing(path, *args, **kwargs):
        read = real(path, *args, **kwargs)
        if path == victim:
            with victim.open("a") as fh:  # an agent appends to its session while prepare reads it
                fh.write("\n")
        return read

    monkeypatch.setattr(stream, "read_one", growing)
    result = prepare(PrepareConfig(student=str(tiny_student)), [traces], tmp_path / "out")
    errors = result.stats.read.file_errors
    assert len(errors) == 1 and victim.name in errors[0].path and "changed while prepare" in errors[0].error
    assert result.stats.read.sessions == len(list(traces.glob("*.jsonl"))) - 1


def test_each_file_is_read_once_and_redacted_as_it_was_learned(tmp_path, tiny_student, monkeypatch):
    traces = _copied_fixtures(tmp_path)
    victim = min(traces.glob("*.jsonl"))
    before = prepare(PrepareConfig(student=str(tiny_student)), [traces], tmp_path / "before")
    reads = []
    real_read, real_survey = stream.read_one, stream.survey_pass
    monkeypatch.setattr(stream, "read_one", lambda path, *a, **k: reads.append(path) or real_read(path, *a, **k))

    def appended(files, *args, **kwargs):
        with victim.open("a") as fh:  # written after it was read: the snapshot read is what is prepared
            fh.write('{"type": "message", "id": "zz", "parentId": null, "message": {"role": "user", "content": "x"}}\n')
        return real_survey(files, *args, **kwargs)

    monkeypatch.setattr(stream, "survey_pass", appended)
    after = prepare(PrepareConfig(student=str(tiny_student)), [traces], tmp_path / "after")
    assert sorted(reads) == sorted(traces.glob("*.jsonl"))
    assert not after.stats.read.file_errors
    assert _outputs(tmp_path / "after") == _outputs(tmp_path / "before")
    assert before.stats.turns == after.stats.turns


def test_failed_prepare_leaves_no_staging_folder(tmp_path, tiny_student):
    from tracetune.errors import TracetuneError

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.jsonl").write_text("")
    with pytest.raises(TracetuneError):
        prepare(PrepareConfig(student=str(tiny_student)), [empty], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_prepare_command_takes_workers_and_long_turns(tmp_path, tiny_student):
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["prepare", str(TESTS / "fixtures" / "pi"), "--student", str(tiny_student),
                                      "--out", str(out), "--workers", "2", "--long-turns", "truncate"])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "prepare_stats.json").read_text())
    assert "truncated" in stats["turns"] and stats["read"]["sessions"] >= 3
    bad = CliRunner().invoke(app, ["prepare", str(TESTS / "fixtures" / "pi"), "--student", str(tiny_student),
                                   "--out", str(tmp_path / "x"), "--long-turns", "chop"])
    assert bad.exit_code != 0 and "long_turns" in str(bad.exception)


def test_workers_from_a_script_without_the_main_guard_fail_fast_and_say_why(tmp_path, tiny_student):
    import subprocess

    script = tmp_path / "noguard.py"
    script.write_text(
        "from tracetune.prepare import workers\n"
        "from tracetune.prepare.config import PrepareConfig\n"
        "from tracetune.prepare.stage import prepare\n"
        "workers.MIN_PARALLEL_BYTES = 0\n"
        f"prepare(PrepareConfig(student={str(tiny_student)!r}), [{str(TESTS / 'fixtures' / 'pi')!r}], "
        f"{str(tmp_path / 'out')!r}, workers=2)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode != 0
    assert "a prepare worker process died" in done.stderr
    assert 'if __name__ == "__main__"' in done.stderr


def test_a_rows_messages_json_is_json_dumps_of_the_list():
    """Rows' ``messages`` column joins each message's JSON, dumped once per Episode: the same text as one dump."""
    shared = {"role": "tool", "content": "é \"quoted\" \\ \n", "tool_call_id": "c1", "extra": [1, 2.5, None, True]}
    windows = [[{"role": "user", "content": "task"}, shared], [shared, {"role": "assistant", "content": None}], [], [shared]]
    dumped: dict = {}
    for window in windows:
        assert tasks._json_list(window, dumped) == json.dumps(window, ensure_ascii=False)
    assert len(dumped) == 3
