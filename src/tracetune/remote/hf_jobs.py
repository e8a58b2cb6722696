"""Run a ``JobPlan`` on Hugging Face Jobs: upload, submit, follow, reattach, cancel, pull back.

The state of a submitted job lives in ``RUN_DIR/remote_job.json`` (job id,
repo, plan hash; never a secret), so rerunning ``tracetune run --on hf-jobs``
reattaches to a job that is still running instead of starting another.
Following uses huggingface_hub's own wait and log stream, and tolerates
transient network and 5xx errors up to a limit.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tracetune.errors import TracetuneError
from tracetune.remote.plan import OUTPUTS, JobPlan
from tracetune.util.files import atomic_write_json

TERMINAL = ("COMPLETED", "ERROR", "CANCELED", "DELETED")
STATE_FILE = "remote_job.json"


@dataclass(frozen=True)
class JobState:
    job_id: str
    namespace: str
    artifacts_repo: str
    inputs_sha256: str  # the config + prepared data the job was started with

    def save(self, run_dir: Path) -> None:
        """Write this state to ``run_dir/remote_job.json`` (atomically)."""
        atomic_write_json(run_dir / STATE_FILE, self.__dict__, end="")

    @classmethod
    def load(cls, run_dir: Path) -> "JobState | None":
        """The state recorded in ``run_dir``, or None when no job was recorded there."""
        path = run_dir / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


def secret_values(names: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Name -> value of each secret the job needs, from the environment; a missing one is a ``TracetuneError``."""
    env = os.environ if environ is None else environ
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise TracetuneError(
            f"the job needs the secret(s) {', '.join(missing)}, which are not set in your environment",
            hint="export them (e.g. HF_TOKEN from https://huggingface.co/settings/tokens) or remove them from [jobs].secrets",
        )
    return {n: env[n] for n in names}


def upload_inputs(api: Any, plan: JobPlan) -> None:
    """Create the private artifacts repo and upload the plan's files in one commit."""
    from huggingface_hub import CommitOperationAdd

    api.create_repo(plan.artifacts_repo, repo_type="dataset", private=True, exist_ok=True)
    ops = [CommitOperationAdd(path_in_repo=u.path_in_repo, path_or_fileobj=str(u.local)) for u in plan.uploads]
    api.create_commit(plan.artifacts_repo, ops, repo_type="dataset", commit_message=f"tracetune inputs for run {plan.run_name}")


def submit(api: Any, plan: JobPlan, secrets: dict[str, str]) -> str:
    """Start the job the plan describes, with these secret values; returns its id."""
    job = api.run_job(
        image=plan.image,
        command=plan.command,
        env=plan.env,
        secrets=secrets,
        flavor=plan.flavor,
        timeout=plan.timeout,
        labels=plan.labels,
        namespace=plan.namespace,
    )
    return job.id


def _transient(exc: Exception) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return status is None or status >= 500 or status == 429
    return isinstance(exc, (ConnectionError, TimeoutError, OSError)) or type(exc).__module__.startswith(("httpx", "httpcore"))


def follow(
    api: Any,
    state: JobState,
    *,
    poll_seconds: float,
    max_transient_errors: int,
    on_log: Callable[[str], None],
    on_stage: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Report the job's stages and stream its log lines until it ends; returns the final stage.

    huggingface_hub does the waiting and the streaming: ``wait_for_job`` until the job runs,
    then ``fetch_job_logs(follow=True)``, which holds one connection open and receives each
    line once (it reconnects by itself while the job runs). A transient error (network, 5xx,
    429) opens the stream again, and the lines already shown are skipped.
    """
    errors, shown, stage = 0, 0, None
    ids = {"job_id": state.job_id, "namespace": state.namespace}
    while True:
        try:
            info = api.wait_for_job(**ids, stages=["RUNNING"], poll_interval=poll_seconds)
            if info.status.stage != stage:
                stage = info.status.stage
                on_stage(stage)
            finished = stage in TERMINAL
            for k, line in enumerate(api.fetch_job_logs(**ids, follow=not finished)):
                if k >= shown:
                    on_log(line)
                    shown = k + 1
            if finished:
                return stage
        except Exception as exc:
            if not _transient(exc):
                raise
            errors += 1
            if errors > max_transient_errors:
                raise TracetuneError(
                    f"lost contact with job {state.job_id} after {errors} failed checks ({exc})",
                    hint="rerun the same command later: it reattaches to the job",
                ) from exc
            sleep(min(poll_seconds * 2**errors, 300))


def reattachable(api: Any, state: JobState | None) -> str | None:
    """The stage of the recorded job, or None when there is none to go back to."""
    if state is None:
        return None
    try:
        info = api.inspect_job(job_id=state.job_id, namespace=state.namespace)
    except Exception as exc:
        if _transient(exc):
            raise TracetuneError(f"cannot reach the Jobs API to check job {state.job_id} ({exc})", hint="retry later") from exc
        return None
    return info.status.stage


def cancel(api: Any, state: JobState) -> None:
    """Ask Hugging Face Jobs to cancel the recorded job."""
    api.cancel_job(job_id=state.job_id, namespace=state.namespace)


def pull_outputs(state: JobState, run_dir: Path, *, token: str | None = None, endpoint: str | None = None) -> Path:
    """Download the job's outputs (adapters, metrics, selection, tracking) into the run directory."""
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        state.artifacts_repo,
        repo_type="dataset",
        allow_patterns=[f"{OUTPUTS}/**"],
        local_dir=run_dir / ".remote",
        token=token,
        endpoint=endpoint,
    )
    outputs = Path(folder) / OUTPUTS
    if not outputs.is_dir():
        raise TracetuneError(
            f"job {state.job_id} finished but left no outputs in {state.artifacts_repo}",
            hint="look at the job's logs: `hf jobs logs " + state.job_id + "`",
        )
    return outputs
