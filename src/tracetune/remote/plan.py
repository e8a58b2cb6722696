"""What a Hugging Face Job for a run looks like: the job spec and the upload set (pure, no network).

The job runs the same tracetune (a wheel built from this checkout, or the
same version from PyPI) with the same resolved run config: it downloads the
inputs from a private dataset repo, runs ``tracetune job-worker`` (the sweep
stage of the normal pipeline), and uploads the sweep's outputs back to the
same repo, from where the local run pulls them.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path

from tracetune import __version__
from tracetune.remote.config import JobsConfig
from tracetune.util.files import sha256_file

WORKDIR = "/tmp/tracetune-job"
INPUTS = "inputs"
CONFIG_NAME = "config.json"  # the resolved run config, as validated locally
OUTPUTS = "outputs"
#: Files of a prepared dataset directory that the job does not need.
SKIP_UPLOAD = ("report.html",)


@dataclass(frozen=True)
class Upload:
    local: Path
    path_in_repo: str


@dataclass(frozen=True)
class JobPlan:
    run_name: str
    namespace: str
    artifacts_repo: str
    image: str
    command: list[str]
    flavor: str
    timeout: str
    secret_names: list[str]
    labels: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The plan as JSON-ready data, secrets named but their values never shown."""
        return {
            "run_name": self.run_name,
            "namespace": self.namespace,
            "artifacts_repo": self.artifacts_repo,
            "image": self.image,
            "command": self.command,
            "flavor": self.flavor,
            "timeout": self.timeout,
            "env": self.env,
            "secrets": {name: "<from local environment, not shown>" for name in self.secret_names},
            "labels": self.labels,
            "uploads": [{"local": str(u.local), "path_in_repo": u.path_in_repo} for u in self.uploads],
        }

    def inputs_sha256(self) -> str:
        """What the job computes from: the config and the prepared data (not the wheel's build path)."""
        digest = hashlib.sha256()
        for upload in sorted(self.uploads, key=lambda u: u.path_in_repo):
            if upload.local.is_file() and not upload.path_in_repo.endswith(".whl"):
                digest.update(upload.path_in_repo.encode() + b"\0" + sha256_file(upload.local).encode())
        return digest.hexdigest()


def wheel_name(version: str = __version__) -> str:
    """The file name of the pure-Python wheel of tracetune ``version``."""
    return f"tracetune-{version}-py3-none-any.whl"


def job_command(repo: str, install: str, version: str = __version__) -> list[str]:
    """The shell command the job runs: install tracetune, then the worker."""
    quoted = shlex.quote(repo)
    if install == "pypi":
        setup = f"pip install -q tracetune=={version}"
    else:
        wheel = f"{INPUTS}/{wheel_name(version)}"
        setup = (
            "pip install -q 'huggingface_hub>=1.0' && "
            f"hf download {quoted} {wheel} --repo-type dataset --local-dir {WORKDIR} && "
            f"pip install -q {WORKDIR}/{wheel}"
        )
    return ["bash", "-lc", f"set -euo pipefail; {setup} && tracetune job-worker --repo {quoted} --workdir {WORKDIR}"]


def upload_set(config_file: Path, prepared_dir: Path, wheel: Path | None) -> list[Upload]:
    """Everything the job needs, and nothing else (no traces, no env files, no report)."""
    uploads = [Upload(config_file, f"{INPUTS}/{CONFIG_NAME}")]
    if not prepared_dir.is_dir():  # a dry run before the local prepare stage
        uploads.append(Upload(prepared_dir, f"{INPUTS}/prepared/** (written by the local prepare stage first)"))
    for path in sorted(prepared_dir.rglob("*")):
        if path.is_file() and path.name not in SKIP_UPLOAD:
            uploads.append(Upload(path, f"{INPUTS}/prepared/{path.relative_to(prepared_dir).as_posix()}"))
    if wheel is not None:
        uploads.append(Upload(wheel, f"{INPUTS}/{wheel.name}"))
    return uploads


def plan_job(
    config: JobsConfig,
    *,
    run_name: str,
    namespace: str,
    config_file: Path,
    prepared_dir: Path,
    wheel: Path | None,
) -> JobPlan:
    """The job spec and upload set for run ``run_name`` (artifacts repo by default ``NAMESPACE/tracetune-RUN``)."""
    repo = config.artifacts_repo or f"{namespace}/tracetune-{run_name}"
    return JobPlan(
        run_name=run_name,
        namespace=config.namespace or namespace,
        artifacts_repo=repo,
        image=config.image,
        command=job_command(repo, config.install),
        flavor=config.flavor,
        timeout=config.timeout,
        secret_names=list(config.secrets),
        labels={"tracetune-run": run_name, "tracetune-version": __version__},
        env={"TRACKIO_DIR": f"{WORKDIR}/run/trackio", "HF_HUB_DISABLE_PROGRESS_BARS": "1"},
        uploads=upload_set(config_file, prepared_dir, wheel if config.install == "wheel" else None),
    )


def describe(plan: JobPlan) -> str:
    """The plan as a person reads it (``--dry-run``): the spec and every file that would be sent."""
    lines = [
        f"Hugging Face Job for run '{plan.run_name}'",
        f"  namespace       {plan.namespace}",
        f"  flavor          {plan.flavor}",
        f"  timeout         {plan.timeout}",
        f"  image           {plan.image}",
        f"  command         {shlex.join(plan.command[:-1])} <script>, the script being:",
        *(f"                    {step}" for step in plan.command[-1].split(" && ")),
        f"  env             {', '.join(f'{k}={v}' for k, v in plan.env.items())}",
        f"  secrets         {', '.join(plan.secret_names) or '(none)'} (values read from your environment, never shown)",
        f"  labels          {', '.join(f'{k}={v}' for k, v in plan.labels.items())}",
        f"  artifacts repo  {plan.artifacts_repo} (private dataset)",
        f"  uploads         {len(plan.uploads)} files, {sum(u.local.stat().st_size for u in plan.uploads if u.local.exists()):,} bytes:",
    ]
    lines += [f"    {u.path_in_repo}  <-  {u.local}" for u in plan.uploads]
    return "\n".join(lines)


def with_wheel(plan: JobPlan, wheel: Path) -> JobPlan:
    """The plan uploading this built wheel in place of the one it only named."""
    uploads = [u for u in plan.uploads if not u.path_in_repo.endswith(".whl")] + [Upload(wheel, f"{INPUTS}/{wheel.name}")]
    return replace(plan, uploads=uploads)
