"""``tracetune init``: write a commented example run config."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tracetune.errors import TracetuneError


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        path: Path = typer.Argument(Path("tracetune.toml"), help="Where to write the config."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    ) -> None:
        """Write a commented example run config (every section, every option that matters)."""
        from tracetune.pipeline.config import EXAMPLE_CONFIG

        if path.exists() and not force:
            raise TracetuneError(f"{path} already exists", hint="pass --force to overwrite it, or another path")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
        Console().print(f"[green]wrote[/] {path}  next: edit [bold]traces.paths[/], then [bold]tracetune run {path}[/]",
                        highlight=False)
