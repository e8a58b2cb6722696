"""``tracetune job-worker``: what a Hugging Face Job runs (started by ``tracetune run --on hf-jobs``)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the hidden ``job-worker`` command to ``app``."""
    @app.command("job-worker", hidden=True)
    def job_worker(
        repo: str = typer.Option(..., "--repo", help="Private dataset repo holding inputs/ (written by the local run)."),
        workdir: Path = typer.Option(Path("/tmp/tracetune-job"), "--workdir", help="Scratch folder inside the job."),
    ) -> None:
        """Download the run's inputs, run its sweep, upload the outputs (inside the job)."""
        from tracetune.pipeline.remote_stage import run_worker

        sweep = run_worker(repo, workdir)
        typer.echo(f"sweep finished: {sweep}; outputs uploaded to {repo}/outputs")
