"""The canary corpus: planted secrets of every kind, in every field, must not survive.

The corpus (tests/fixtures/canaries/) plants seeded fake credentials and a
canary user name in user text, assistant text, reasoning, tool-call arguments,
tool results, bash output, cwd, system prompt, raw arguments, tool
descriptions and reader warnings. The checker looks for each whole canary and
for 10-character windows of its random part, so a partial leak (14 characters
or more) fails too.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracetune.prepare.redact import RedactOptions, redact_sessions

_CORPUS = Path(__file__).resolve().parent / "fixtures" / "canaries" / "corpus.py"
_spec = importlib.util.spec_from_file_location("canary_corpus", _CORPUS)
corpus = importlib.util.module_from_spec(_spec)
sys.modules["canary_corpus"] = corpus
_spec.loader.exec_module(corpus)

CANARIES = corpus.canaries()


def _sessions():
    first, second = corpus.sessions()
    return [corpus.with_trace_tools(first), second]


def _dump(sessions) -> str:
    return json.dumps([asdict(s) for s in sessions], ensure_ascii=False)


def test_corpus_plants_every_kind_in_every_field():
    sessions = _sessions()
    text = _dump(sessions)
    assert len(corpus.leaks_in(text, CANARIES, "raw")) == len(CANARIES) + 1  # the checker sees them all
    kinds = {c.kind for c in CANARIES}
    assert {"aws_access_key_id", "aws_secret_access_key", "google_api_key", "azure_key", "github_token",
            "huggingface_token", "openai_key", "anthropic_key", "slack_token", "stripe_key", "private_key",
            "jwt", "env_secret", "bearer_token", "url_password", "basic_auth", "cli_password", "header_secret",
            "discord_webhook", "docker_token", "gcp_private_key_id", "password_phrase",
            "email", "phone", "ip_address", "payment_card"} <= kinds
    s = sessions[0]
    episode = s.episodes[0]
    call = episode.messages[1].tool_calls[0]
    fields = [episode.messages[0].content, episode.messages[1].content, episode.messages[1].reasoning,
              json.dumps(call.arguments["command"]), "\n".join(call.arguments["headers"]), call.arguments_raw,
              episode.messages[2].content, episode.messages[3].content, s.system_prompt, s.tools[0].description]
    assert all(CANARIES[0].value in f for f in fields)
    assert corpus.USER in s.cwd and corpus.USER in s.source and corpus.USER in s.warnings[0].path


def test_redaction_leaves_no_canary_in_sessions_or_report():
    out, report = redact_sessions(_sessions(), RedactOptions())
    assert corpus.leaks_in(_dump(out), CANARIES, "sessions") == []
    assert corpus.leaks_in(json.dumps(report.to_dict()), CANARIES, "report") == []
    d = report.to_dict()
    pii = sum(1 for c in CANARIES if c.kind in ("email", "phone", "ip_address", "payment_card"))
    assert d["secrets"]["distinct_total"] >= len(CANARIES) - pii and d["pii"]["distinct_total"] >= pii
    assert d["where"]["tool_argument_keys"] and d["where"]["tool_result"] and d["where"]["bash_execution"]


@pytest.mark.parametrize("canary", CANARIES, ids=lambda c: f"{c.kind}-{c.value[:6]}")
def test_each_canary_alone_in_each_field(canary):
    """One canary per session, so no other canary's context can help it get caught."""
    base = corpus.sessions()[0]
    episode = corpus._episode("one", [canary.line])
    session = replace(base, episodes=(episode,), system_prompt=canary.line, warnings=())
    (out,), _ = redact_sessions([session])
    assert corpus.leaks_in(_dump([out]), [canary], "session") == []


def test_the_checker_fails_on_a_leaked_canary():
    out, _ = redact_sessions(_sessions())
    clean = _dump(out)
    for canary in (CANARIES[0], CANARIES[-1], next(c for c in CANARIES if c.kind == "private_key")):
        assert corpus.leaks_in(clean + canary.value, CANARIES, "x") == [f"{canary.kind} in x"]
        piece = canary.random_parts[0][1 : corpus.CHUNK + corpus.STEP]  # a fragment, not the whole value
        assert corpus.leaks_in(clean + piece, CANARIES, "x") == [f"{canary.kind} in x"]
    assert corpus.leaks_in(clean + f"/home/{corpus.USER}", CANARIES, "x") == ["user name in x"]


def test_redaction_with_secrets_off_would_leak():
    """The test would catch a redactor that stopped working."""
    out, _ = redact_sessions(_sessions(), RedactOptions(secrets=False, paths=False, pii=False))
    assert len(corpus.leaks_in(_dump(out), CANARIES, "sessions")) == len(CANARIES) + 1


def test_pi_files_through_the_reader_and_redaction(tmp_path):
    from tracetune.readers import pi

    paths = corpus.write_pi_sessions(tmp_path)
    sessions = [s for p in paths for s in pi.read(p)]
    assert corpus.leaks_in(_dump(sessions), CANARIES, "read")  # planted where the reader looks
    out, report = redact_sessions(sessions)
    assert corpus.leaks_in(_dump(out), CANARIES, "sessions") == []
    assert report.scrub(f"error in /Users/{corpus.USER}/x: {CANARIES[0].value}") == \
        "error in /home/user/x: " + report.scrub(CANARIES[0].value)
    assert corpus.leaks_in(report.scrub(CANARIES[0].line), CANARIES, "scrub") == []


def _prepare_stage():
    try:
        from tracetune.prepare.config import PrepareConfig
        from tracetune.prepare.stage import prepare
    except ImportError:
        pytest.skip("the prepare stage is not there yet")
    return PrepareConfig, prepare


def _run_prepare(tmp_path, tiny_student, caplog, capfd, extra_files=()):
    PrepareConfig, prepare = _prepare_stage()
    traces = tmp_path / "Users" / corpus.USER / ".pi" / "agent" / "sessions"
    traces.mkdir(parents=True)
    corpus.write_pi_sessions(traces)
    for name, data in extra_files:
        (traces / name).write_bytes(data)
    out = tmp_path / "out"
    config = PrepareConfig(student=str(tiny_student), eval_fraction=0.5, max_length=4096, report_examples=2,
                           include_reasoning=True)
    with caplog.at_level(logging.DEBUG):
        result = prepare(config, [traces], out)
    captured = capfd.readouterr()
    assert (out / "dataset").is_dir() and (out / "redaction_report.json").is_file()
    leaks = corpus.leaks_in_dir(out, CANARIES)
    leaks += corpus.leaks_in(caplog.text, CANARIES, "logs")
    leaks += corpus.leaks_in(captured.out + captured.err, CANARIES, "stdout/stderr")
    leaks += corpus.leaks_in(result.stats.model_dump_json(), CANARIES, "PrepareResult.stats")
    return out, leaks


@pytest.mark.slow
def test_prepare_output_logs_and_stdout_hold_no_canary(tmp_path, tiny_student, caplog, capfd):
    # an unreadable file beside the sessions: its path (with the user name) lands in the stats
    out, leaks = _run_prepare(tmp_path, tiny_student, caplog, capfd, [("broken.jsonl", b"\x00\x01 not a session")])
    assert leaks == []
    report = json.loads((out / "redaction_report.json").read_text())
    assert report["secrets"]["total"] > 0
    rows = (out / "train_episodes.jsonl").read_text() + (out / "eval_episodes.jsonl").read_text()
    assert "<REDACTED:github_token:" in rows and "/home/user/work/canary-" in rows
    stats = json.loads((out / "prepare_stats.json").read_text())
    assert "broken.jsonl" in json.dumps(stats)  # the error is reported, only without the name
    assert stats["turns"]["supervised"] > stats["turns"]["trainable"] // 2  # rows were written, not all dropped
    from datasets import load_from_disk

    from tracetune.engines.tokenizer import load_tokenizer

    tokenizer, data = load_tokenizer(tiny_student), load_from_disk(str(out / "dataset"))
    decoded = "\n".join(tokenizer.decode(ids) for split in data.values() for ids in split["input_ids"])
    assert "<REDACTED:" in decoded  # the token ids were rendered from the redacted text
    assert corpus.leaks_in(decoded, CANARIES, "decoded input_ids") == []
    # the rows read back as values (not only their bytes, in case Arrow ever compresses them)
    rows = json.dumps([{k: v for k, v in row.items() if k not in ("input_ids", "assistant_masks")}
                       for split in data.values() for row in split], default=str)
    assert "<REDACTED:" in rows and corpus.leaks_in(rows, CANARIES, "dataset rows") == []
    # every file prepare wrote was searched, and each is of a kind the byte search can read
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"train_episodes.jsonl", "eval_episodes.jsonl", "tools.json", "split.json", "student.json",
            "prepare_stats.json", "redaction_report.json", "report.html"} <= written
    assert any(name.startswith("dataset/") and name.endswith(".arrow") for name in written)
    assert {Path(name).suffix for name in written} <= {".arrow", ".json", ".jsonl", ".html"}, written
    tools = (out / "tools.json").read_text()
    assert "<REDACTED:" in tools  # the secrets used as argument keys reached the inferred schema, redacted
    html = (out / "report.html").read_text()
    assert 'id="redaction"' in html and "tool_argument_keys" in html and "header_secret" in html


@pytest.mark.slow
def test_prepare_command_prints_no_canary(tmp_path, tiny_student):
    pytest.importorskip("tracetune.cli.prepare")
    from typer.testing import CliRunner

    from tracetune.cli.main import app

    traces = tmp_path / "Users" / corpus.USER / "sessions"
    traces.mkdir(parents=True)
    corpus.write_pi_sessions(traces)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["prepare", str(traces), "--student", str(tiny_student), "--out", str(out),
                                      "--max-length", "4096", "--eval-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    assert "sessions" in result.output
    assert corpus.leaks_in(result.output, CANARIES, "output") == []


def test_checker_reads_binary_dataset_files(tmp_path):
    """A canary inside an Arrow file is found, so the prepare test cannot pass by not looking."""
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"messages": ["ok", CANARIES[3].line]}).save_to_disk(str(tmp_path / "d"))
    assert corpus.leaks_in_dir(tmp_path, CANARIES) == [f"{CANARIES[3].kind} in d/data-00000-of-00001.arrow"]


_FILLER = ["", "ok", "$ cat .env", "import os", "def f(x):\n    return x", '{"a": 1}', "-- end --", "```"]
_SEPARATORS = [" ", "\n", "\t", "\n\n", "; ", ", ", "\r\n", " && "]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.sampled_from(range(len(CANARIES))), min_size=1, max_size=4),
    filler=st.lists(st.sampled_from(_FILLER), min_size=1, max_size=4),
    seps=st.lists(st.sampled_from(_SEPARATORS), min_size=1, max_size=4),
    wrap=st.sampled_from(["{}", '"{}"', "'{}'", "`{}`", "({})", "[{}]", "<code>{}</code>", "# {}", "json"]),
)
def test_canaries_in_random_surroundings_never_survive(picks, filler, seps, wrap):
    from tracetune.prepare.redact import Redactor

    parts = []
    for i, pick in enumerate(picks):
        line = CANARIES[pick].line
        parts += [filler[i % len(filler)], json.dumps({"text": line}) if wrap == "json" else wrap.format(line)]
    text = "".join(p + seps[i % len(seps)] for i, p in enumerate(parts))
    once = Redactor().apply(text)
    assert corpus.leaks_in(once, [CANARIES[p] for p in picks], "text") == []
    assert Redactor().apply(once) == once  # placeholders are never redacted again


def test_checker_sees_through_html_markup(tmp_path):
    value = CANARIES[0].value
    (tmp_path / "report.html").write_text(f"<p>{value[:9]}<span class=s>{value[9:]}</span></p>")
    assert corpus.leaks_in_dir(tmp_path, CANARIES) == [f"{CANARIES[0].kind} in report.html"]


@pytest.mark.slow
def test_a_whole_run_leaves_no_canary_in_model_card_trackio_logs_or_eval(tmp_path, tiny_student, capfd):
    """prepare -> sweep (Trackio on) -> eval -> card -> export on the canary sessions: no output holds one."""
    import os

    from typer.testing import CliRunner

    from tracetune.cli.main import app

    traces = tmp_path / "Users" / corpus.USER / ".pi" / "agent" / "sessions"
    traces.mkdir(parents=True)
    corpus.write_pi_sessions(traces)
    config = tmp_path / "run.toml"
    config.write_text(f'''name = "canary"
runs_dir = "{tmp_path / 'runs'}"
[traces]
paths = ["{traces}"]
[student]
model = "{tiny_student}"
[prepare]
eval_fraction = 0.5
include_reasoning = true
[train]
max_steps = 2
max_length = 4096
save_steps = 2
logging_steps = 1
[sweep.grid]
learning_rate = [1e-3, 2e-3]
[eval]
max_samples = 3
max_new_tokens = 8
[eval.backend]
device = "cpu"
[publish]
merge = false
''')
    result = CliRunner().invoke(app, ["run", str(config)])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "canary"
    for name in ("card/README.md", "eval/results.json", "eval/report.html", "publish/adapter/README.md"):
        assert (run / name).is_file(), name
    shown = " ".join(result.output.split())
    assert "next-action fidelity (3 samples, 95% intervals)" in shown and "tuned − base" in shown  # the figures, not a path only
    captured = capfd.readouterr()
    # manifest.json records the run's own config and input paths as the user typed them (local, never published)
    leaks = [leak for leak in corpus.leaks_in_dir(run, CANARIES) if not leak.endswith(" in manifest.json")]
    trackio_dir = os.environ.get("TRACKIO_DIR")  # Trackio keeps the folder of the first run in a process
    assert trackio_dir and any(Path(trackio_dir).glob("*.db"))
    leaks += corpus.leaks_in_dir(Path(trackio_dir), CANARIES)
    leaks += corpus.leaks_in(result.output + captured.out + captured.err, CANARIES, "run output")
    assert leaks == []
