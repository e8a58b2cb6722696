"""``tracetune run CONFIG``: the whole recipe, resumable, into runs/<name>/."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""
    @app.command("run")
    def run(
        config: Path = typer.Argument(..., help="Run config (TOML); `tracetune init` writes an example."),
        set_: list[str] = typer.Option([], "--set", help="Override a field of the config, e.g. --set train.max_steps=20 (repeatable)."),
        name: str | None = typer.Option(None, "--name", help="Run name (the run folder is runs_dir/name)."),
        runs_dir: str | None = typer.Option(None, "--runs-dir", help="Folder holding the runs."),
        student: str | None = typer.Option(None, "--student", help="Model id, local folder, or 'tiny'."),
        traces: list[str] = typer.Option([], "--traces", help="Session file or folder (repeatable; replaces the config's)."),
        sidechains: str | None = typer.Option(None, "--sidechains", help="Claude Code subagent conversations: 'train' (default), 'context' (never targets) or 'drop'; sets [traces] sidechains."),
        repo_id: str | None = typer.Option(None, "--push-to", help="Hub repo to push the adapter and card to."),
        force: list[str] = typer.Option([], "--force", help="Rerun this stage even if unchanged ('all' for every stage)."),
        on: str = typer.Option("local", "--on", help="Where the train/sweep stage runs: 'local' or 'hf-jobs' (Hugging Face Jobs)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="With --on hf-jobs: print the job spec and upload list, send nothing."),
        verbose: bool = typer.Option(False, "--verbose", help="Show the libraries' progress bars and warnings (hidden by default)."),
    ) -> None:
        """Prepare, sweep, evaluate, write the card and publish; rerun to resume or to redo only what changed."""
        if not verbose:
            from tracetune.util import quiet

            quiet.quiet_libraries()
        from tracetune.pipeline.config import load_config
        from tracetune.pipeline.runner import run as run_pipeline

        flags = {"name": name, "runs_dir": runs_dir, "student.model": student, "publish.repo_id": repo_id,
                 "traces.paths": list(traces) or None, "traces.sidechains": sidechains}
        from tracetune.errors import TracetuneError
        from tracetune.pipeline.stages import default_stages

        if on not in ("local", "hf-jobs"):
            raise TracetuneError(f"--on must be 'local' or 'hf-jobs', not {on!r}")
        if dry_run and on != "hf-jobs":
            raise TracetuneError("--dry-run describes a remote job", hint="use it with --on hf-jobs")
        cfg = load_config(config, overrides=set_, **flags)
        console = Console()
        if dry_run:
            from tracetune.pipeline.remote_stage import dry_run as describe_job

            describe_job(cfg, print_fn=lambda line: console.print(line, highlight=False, markup=False))
            return
        from tracetune.pipeline.stages import preflight

        live = preflight(cfg)
        if live:
            console.print(f"live loop: {live}", highlight=False, markup=False)
        result = run_pipeline(cfg, console=console, force=tuple(force), stages=default_stages(on))
        console.print(f"[bold green]run finished[/] {result.run_dir}  (manifest: {result.run_dir / 'manifest.json'})",
                      highlight=False)
        print_outputs(console, result.run_dir, cfg)
        figures = result.run_dir / "eval" / "results.json"
        if figures.is_file():
            import json

            from tracetune.cli.eval import print_results

            print_results(console, json.loads(figures.read_text("utf-8")))


def print_outputs(console: Console, run_dir: Path, cfg) -> None:
    """Where a finished run's reports, card, model and dashboard are."""
    from tracetune.pipeline.stages import run_outputs

    for label, where in run_outputs(run_dir, cfg):
        console.print(f"  {label:<12} {where}", highlight=False, markup=False)
