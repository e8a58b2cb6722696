"""``--on hf-jobs``: the train and sweep stages of a run on Hugging Face Jobs, from a laptop.

Steps: plan (spec + upload set) -> print it and stop (``--dry-run``) -> reattach
to a recorded job that is still running, or upload the inputs and submit ->
follow status and logs -> on Ctrl-C ask whether to cancel -> pull the outputs
back into the run directory, where eval, card and publish continue as for a
local run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tracetune.errors import TracetuneError
from tracetune.remote.config import JobsConfig
from tracetune.remote.hf_jobs import (
    TERMINAL,
    JobState,
    cancel,
    follow,
    pull_outputs,
    reattachable,
    secret_values,
    submit,
    upload_inputs,
)
from tracetune.remote.plan import JobPlan, describe, plan_job, wheel_name, with_wheel


@dataclass
class RemoteRun:
    plan: JobPlan
    job_id: str | None = None
    final_stage: str | None = None
    outputs: Path | None = None
    reattached: bool = False


def project_root() -> Path:
    """The source checkout tracetune is installed from (where ``pyproject.toml`` is); else a ``TracetuneError``."""
    import tracetune

    root = Path(tracetune.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").exists():
        raise TracetuneError(
            "install = 'wheel' needs tracetune installed from a source checkout",
            hint="set [jobs] install = 'pypi' to install the same version from PyPI in the job",
        )
    return root


def build_wheel(out_dir: Path) -> Path:
    """A wheel of this exact checkout, so the job runs the same code."""
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out_dir), str(project_root())]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheel = out_dir / wheel_name()
    if done.returncode != 0 or not wheel.exists():
        raise TracetuneError(f"could not build the tracetune wheel for the job: {done.stderr.strip()[-500:]}")
    return wheel


def make_plan(jobs: JobsConfig, *, run_name: str, config_file: Path, prepared_dir: Path, api: Any | None) -> JobPlan:
    """The plan, with the wheel named but not built (it is built only when a job is submitted)."""
    namespace = jobs.namespace or (api.whoami()["name"] if api is not None else "<your-hf-user>")
    wheel = Path("<built at submit>") / wheel_name() if jobs.install == "wheel" else None
    return plan_job(jobs, run_name=run_name, namespace=namespace, config_file=config_file, prepared_dir=prepared_dir, wheel=wheel)


def run_remote(
    jobs: JobsConfig,
    *,
    run_name: str,
    run_dir: Path,
    config_file: Path,
    prepared_dir: Path,
    dry_run: bool = False,
    api: Any | None = None,
    print_fn: Callable[[str], None] = print,
    confirm: Callable[[str], bool] = lambda _q: False,
    environ: dict[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> RemoteRun:
    """Run the sweep remotely and bring its outputs back (or only describe it with ``dry_run``)."""
    if dry_run:
        plan = make_plan(jobs, run_name=run_name, config_file=config_file, prepared_dir=prepared_dir, api=None)
        print_fn(describe(plan))
        print_fn("dry run: nothing was uploaded or submitted")
        return RemoteRun(plan)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    secrets = secret_values(jobs.secrets, environ)
    with tempfile.TemporaryDirectory() as tmp:
        plan = make_plan(jobs, run_name=run_name, config_file=config_file, prepared_dir=prepared_dir, api=api)
        result = RemoteRun(plan)
        state = JobState.load(run_dir)
        stage = reattachable(api, state)
        inputs = plan.inputs_sha256()
        same_inputs = state is not None and state.inputs_sha256 == inputs
        if state is not None and stage is not None and stage not in TERMINAL and not same_inputs:
            raise TracetuneError(
                f"job {state.job_id} of this run is still {stage} with other inputs (the config or data changed)",
                hint=f"wait for it, or cancel it (`hf jobs cancel {state.job_id}`) and rerun",
            )
        if same_inputs and stage is not None and (stage not in TERMINAL or stage == "COMPLETED"):
            print_fn(f"reattaching to job {state.job_id} ({stage})")
            result.reattached = True
        else:
            if jobs.install == "wheel":
                plan = with_wheel(plan, build_wheel(Path(tmp)))
                result.plan = plan
            upload_inputs(api, plan)
            job_id = submit(api, plan, secrets)
            state = JobState(job_id, plan.namespace, plan.artifacts_repo, inputs)
            state.save(run_dir)
            print_fn(f"submitted job {job_id} on {plan.flavor}")
    result.job_id = state.job_id
    extra = {"sleep": sleep} if sleep else {}
    try:
        result.final_stage = follow(
            api, state, poll_seconds=jobs.poll_seconds, max_transient_errors=jobs.max_transient_errors,
            on_log=lambda line: print_fn(f"  [job] {line}"), on_stage=lambda s: print_fn(f"job {state.job_id}: {s}"), **extra,
        )
    except KeyboardInterrupt:
        if confirm(f"Cancel the remote job {state.job_id}?"):
            cancel(api, state)
            print_fn(f"cancelled job {state.job_id}")
        else:
            print_fn(f"job {state.job_id} keeps running; rerun the same command to reattach")
        raise
    if result.final_stage != "COMPLETED":
        raise TracetuneError(
            f"job {state.job_id} ended with stage {result.final_stage}",
            hint=f"read its logs with `hf jobs logs {state.job_id}`; rerun to submit a new job",
        )
    result.outputs = pull_outputs(state, run_dir, token=getattr(api, "token", None), endpoint=getattr(api, "endpoint", None))
    return result
