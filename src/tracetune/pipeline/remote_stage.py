"""Both ends of the remote sweep: the job's worker, and the local stage that starts it.

Inside the job, ``tracetune job-worker`` downloads the inputs, runs the same
``run_sweep`` a local run uses, with the same resolved config, and uploads
the sweep folder (without checkpoints) to ``outputs/``. Locally, the sweep
stage of ``tracetune run --on hf-jobs`` prepares the upload, starts or
reattaches to the job, and copies the outputs into the run's ``sweep/``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tracetune.errors import TracetuneError
from tracetune.remote.plan import CONFIG_NAME, INPUTS, OUTPUTS

SKIP_OUTPUTS = ["**/checkpoints/**", "**/checkpoint-*/**", "**/.*"]


def job_student(model: str, seed: int, workdir: Path) -> str:
    """The student inside the job: a built-in one is rebuilt there (deterministic), a Hub id is used as is."""
    from tracetune.pipeline.student import BUILTIN_STUDENTS, build_builtin_student

    if model in BUILTIN_STUDENTS:
        return str(build_builtin_student(model, workdir / "run" / "student", seed=seed))
    return model


def run_worker(repo: str, workdir: Path, *, api: Any | None = None) -> Path:
    """Download inputs, run the sweep, upload its outputs; returns the local sweep folder."""
    from huggingface_hub import HfApi, snapshot_download

    from tracetune.pipeline.config import validate_config
    from tracetune.sweep.runner import run_sweep

    api = api or HfApi()
    snapshot_download(repo, repo_type="dataset", allow_patterns=[f"{INPUTS}/**"], local_dir=workdir,
                      token=api.token, endpoint=api.endpoint)
    config = validate_config(json.loads((workdir / INPUTS / CONFIG_NAME).read_text("utf-8")), source=CONFIG_NAME)
    prepared = workdir / INPUTS / "prepared"
    train = config.train.model_copy(update={"model": job_student(config.student.model, config.student.tiny_seed, workdir)})
    sweep_dir = workdir / "run" / "sweep"
    run_sweep(config.sweep, train, prepared / "dataset", sweep_dir)
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=str(sweep_dir), path_in_repo=OUTPUTS,
                      ignore_patterns=SKIP_OUTPUTS, commit_message="tracetune sweep outputs")
    return sweep_dir


def check_remote_student(model: str) -> None:
    """Raise ``TracetuneError`` when ``model`` is a local folder, which a Hugging Face Job cannot read."""
    from tracetune.pipeline.student import BUILTIN_STUDENTS

    if model not in BUILTIN_STUDENTS and Path(model).expanduser().exists():
        raise TracetuneError(
            f"the student {model!r} is a local folder, which a Hugging Face Job cannot read",
            hint="name a Hub model id in [student] model (or push the folder to the Hub first)",
        )


def remote_inputs(config: Any, run_dir: Path) -> Path:
    """The resolved run config the job will run, written beside the run."""
    from tracetune.util.files import atomic_write_json

    inputs = run_dir / ".remote-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    config_file = inputs / CONFIG_NAME
    # the student is named once, in [student]; validation fills the stage copies back in
    atomic_write_json(config_file, config.model_dump(mode="json", exclude={"train": {"model"}, "prepare": {"student"}}))
    return config_file


def dry_run(config: Any, print_fn: Any = print) -> None:
    """Print the job spec and upload list of ``--on hf-jobs``; sends nothing, needs no network."""
    from tracetune.remote.run import run_remote

    check_remote_student(config.student.model)
    run_dir = config.run_dir()
    run_remote(config.jobs, run_name=config.name, run_dir=run_dir, config_file=run_dir / ".remote-inputs" / CONFIG_NAME,
               prepared_dir=run_dir / "prepare", dry_run=True, print_fn=print_fn)


def remote_sweep(ctx: Any, out: Path, *, api: Any | None = None) -> dict[str, Any]:
    """The sweep stage for ``--on hf-jobs``: the job does the training, this copies the results in."""
    from tracetune.remote.run import run_remote

    config = ctx.config
    check_remote_student(config.student.model)
    result = run_remote(
        config.jobs, run_name=config.name, run_dir=ctx.run_dir, config_file=remote_inputs(config, ctx.run_dir),
        prepared_dir=ctx.path("prepare"), api=api,
        print_fn=lambda line: ctx.console.print(line, highlight=False, markup=False),
        confirm=_confirm,
    )
    for item in result.outputs.iterdir():
        target = out / item.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.copytree(item, target) if item.is_dir() else shutil.copy2(item, target)
    rule_sha = json.loads((out / "sweep.json").read_text("utf-8")).get("rule_sha256") if (out / "sweep.json").exists() else None
    if rule_sha:
        ctx.record("selection_rule_sha256", rule_sha)
    ctx.record("remote_job", {"job_id": result.job_id, "artifacts_repo": result.plan.artifacts_repo,
                              "flavor": result.plan.flavor, "reattached": result.reattached})
    return {"remote_job": result.job_id}


def _confirm(question: str) -> bool:
    import sys

    if not sys.stdin.isatty():
        return False
    import typer

    return typer.confirm(question, default=False)
