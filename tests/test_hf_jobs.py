"""Training on Hugging Face Jobs: plan, dry run, submit, follow, reattach, cancel, pull back.

The real ``huggingface_hub`` client runs against a local stand-in of the Hub
HTTP API (tests/hubstub.py): only the network peer is replaced.
"""

from __future__ import annotations

import pytest

from hubstub import HubStub
from tracetune.errors import TracetuneError
from tracetune.remote.config import JobsConfig
from tracetune.remote.hf_jobs import JobState
from tracetune.remote.plan import plan_job
from tracetune.remote.run import build_wheel, run_remote

TOKEN = "hf_CANARYtokenZZ9876543210abcdef"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)


@pytest.fixture
def run_files(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"name": "demo"}')
    prepared = tmp_path / "run" / "prepared"
    (prepared / "dataset" / "train").mkdir(parents=True)
    (prepared / "dataset" / "train" / "data-00000-of-00001.arrow").write_bytes(b"ARROW")
    (prepared / "prepare_stats.json").write_text("{}")
    (prepared / "report.html").write_text("<html>")
    return config, prepared, tmp_path / "run"


@pytest.fixture
def hub():
    with HubStub(token=TOKEN) as stub:
        def finish(job):  # what the worker does at the end of a real job
            repo = stub.repos["alice/tracetune-demo"]
            repo.files["outputs/selection.json"] = b'{"winner": "lr1e-3-r8-len1k"}'
            repo.files["outputs/variants/lr1e-3-r8-len1k/adapter/adapter_config.json"] = b"{}"
        stub.on_job_complete = finish
        yield stub


def _api(stub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=stub.endpoint, token=TOKEN)


def _run(stub, run_files, lines, **kw):
    config, prepared, run_dir = run_files
    jobs = JobsConfig(**({"install": "pypi", "poll_seconds": 0.01} | kw.pop("jobs", {})))
    return run_remote(
        jobs, run_name="demo", run_dir=run_dir, config_file=config, prepared_dir=prepared,
        api=_api(stub), print_fn=lines.append, sleep=lambda s: None, **kw,
    )


def test_plan_spec_and_upload_set(run_files, tmp_path):
    config, prepared, _ = run_files
    wheel = tmp_path / "tracetune-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    plan = plan_job(JobsConfig(flavor="a100-large", timeout="3h"), run_name="demo", namespace="alice",
                    config_file=config, prepared_dir=prepared, wheel=wheel)
    assert plan.artifacts_repo == "alice/tracetune-demo" and plan.flavor == "a100-large" and plan.timeout == "3h"
    assert "tracetune job-worker --repo alice/tracetune-demo" in plan.command[-1]
    assert "hf download alice/tracetune-demo inputs/tracetune-0.1.0-py3-none-any.whl" in plan.command[-1]
    assert sorted(u.path_in_repo for u in plan.uploads) == [
        "inputs/config.json",
        "inputs/prepared/dataset/train/data-00000-of-00001.arrow",
        "inputs/prepared/prepare_stats.json",
        "inputs/tracetune-0.1.0-py3-none-any.whl",
    ]
    assert plan.to_dict()["secrets"] == {"HF_TOKEN": "<from local environment, not shown>"}


def test_dry_run_prints_a_spec_and_sends_nothing(run_files):
    config, prepared, run_dir = run_files
    lines: list[str] = []
    result = run_remote(JobsConfig(), run_name="demo", run_dir=run_dir, config_file=config,
                        prepared_dir=prepared, dry_run=True, print_fn=lines.append)
    text = "\n".join(lines)
    assert "flavor          a10g-large" in text and "inputs/prepared/prepare_stats.json" in text
    assert "nothing was uploaded or submitted" in text and result.job_id is None
    assert TOKEN not in text and not (run_dir / "remote_job.json").exists()


def test_submit_follow_through_transient_error_and_pull(hub, run_files):
    hub.fail_next["/api/jobs/alice/job0001"] = 1  # one 503 while following
    lines: list[str] = []
    result = _run(hub, run_files, lines)
    assert result.final_stage == "COMPLETED" and result.job_id == "job0001"
    spec = hub.jobs["job0001"].spec
    assert spec["flavor"] == "a10g-large" and spec["labels"]["tracetune-run"] == "demo"
    assert "inputs/config.json" in hub.repos["alice/tracetune-demo"].files
    assert hub.repos["alice/tracetune-demo"].private
    assert (result.outputs / "selection.json").read_text().startswith('{"winner"')
    assert "  [job] step 1" in lines and "  [job] step 2" in lines
    assert JobState.load(run_files[2]).job_id == "job0001"


def test_rerun_reattaches_instead_of_submitting(hub, run_files):
    hub.job_stages = ["RUNNING"]
    config, prepared, run_dir = run_files

    def interrupt(line: str) -> None:
        if line.startswith("  [job]"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C, and the user keeps the job running
        run_remote(JobsConfig(install="pypi", poll_seconds=0.01), run_name="demo", run_dir=run_dir, config_file=config,
                   prepared_dir=prepared, api=_api(hub), print_fn=interrupt, sleep=lambda s: None, confirm=lambda q: False)
    assert not hub.jobs["job0001"].cancelled
    hub.jobs["job0001"].stages = ["RUNNING", "RUNNING", "COMPLETED"]
    hub.jobs["job0001"].inspects = 0
    lines: list[str] = []
    result = _run(hub, run_files, lines)
    assert result.reattached and list(hub.jobs) == ["job0001"] and result.final_stage == "COMPLETED"
    assert any("reattaching to job job0001" in line for line in lines)


def test_ctrl_c_asks_and_cancels(hub, run_files):
    hub.job_stages = ["RUNNING"]
    asked: list[str] = []

    def interrupt(line: str) -> None:
        if line.startswith("  [job]"):
            raise KeyboardInterrupt

    config, prepared, run_dir = run_files
    with pytest.raises(KeyboardInterrupt):
        run_remote(JobsConfig(install="pypi", poll_seconds=0.01), run_name="demo", run_dir=run_dir, config_file=config,
                   prepared_dir=prepared, api=_api(hub), print_fn=interrupt, sleep=lambda s: None,
                   confirm=lambda q: asked.append(q) or True)
    assert asked == ["Cancel the remote job job0001?"] and hub.jobs["job0001"].cancelled


def test_failed_job_is_a_clear_error(hub, run_files):
    hub.job_stages = ["RUNNING", "ERROR"]
    with pytest.raises(TracetuneError, match="ended with stage ERROR"):
        _run(hub, run_files, [])


def test_missing_secret_is_named_not_shown(hub, run_files, monkeypatch):
    with pytest.raises(TracetuneError, match="WANDB_API_KEY"):
        _run(hub, run_files, [], jobs={"secrets": ["HF_TOKEN", "WANDB_API_KEY"]})


def test_token_never_in_output_or_files(hub, run_files):
    lines: list[str] = []
    _run(hub, run_files, lines)
    assert TOKEN not in "\n".join(lines)
    for path in run_files[2].rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_secret_values_are_rejected_in_config():
    with pytest.raises(ValueError, match="NAMES"):
        JobsConfig(secrets=[TOKEN])


def test_wheel_of_this_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    assert wheel.name == "tracetune-0.1.0-py3-none-any.whl" and wheel.stat().st_size > 1000


def test_changed_inputs_never_reuse_an_old_job(hub, run_files):
    _run(hub, run_files, [])  # job0001 completes with the first config
    config, _, _ = run_files
    config.write_text('{"name": "demo", "train": {"lr": 0.001}}')
    lines: list[str] = []
    result = _run(hub, run_files, lines)  # completed job, different inputs: a new job, not job0001's outputs
    assert not result.reattached and result.job_id == "job0002" and list(hub.jobs) == ["job0001", "job0002"]


def test_a_running_job_with_other_inputs_is_refused(hub, run_files):
    hub.job_stages = ["RUNNING"]
    JobState("job0009", "alice", "alice/tracetune-demo", "0" * 64).save(run_files[2])
    hub.jobs["job0009"] = __import__("hubstub").StubJob("job0009", {}, ["RUNNING"], [])
    with pytest.raises(TracetuneError, match="still RUNNING with other inputs"):
        _run(hub, run_files, [])


def test_the_wheel_is_built_only_for_a_new_job(hub, run_files, monkeypatch):
    import tracetune.remote.run as remote_run

    built: list[str] = []
    real = remote_run.build_wheel
    monkeypatch.setattr(remote_run, "build_wheel", lambda out: built.append("wheel") or real(out))
    _run(hub, run_files, [], jobs={"install": "wheel"})
    assert built == ["wheel"] and "inputs/tracetune-0.1.0-py3-none-any.whl" in hub.repos["alice/tracetune-demo"].files
    hub.jobs["job0001"].stages, hub.jobs["job0001"].inspects = ["RUNNING", "COMPLETED"], 0
    result = _run(hub, run_files, [], jobs={"install": "wheel"})
    assert result.reattached and built == ["wheel"]
