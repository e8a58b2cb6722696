"""``tracetune dashboard RUN``: the run's Trackio dashboard, served on this machine only."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to ``app``."""
    @app.command("dashboard")
    def dashboard(
        run: Path = typer.Argument(..., help="A run folder (runs/NAME) or the --out folder of `tracetune train`."),
        port: Optional[int] = typer.Option(None, "--port", help="Port to serve on (default: the first free one from 7860)."),
        project: Optional[str] = typer.Option(None, "--project", help="Trackio project (default: the run's [train] trackio_project)."),
        open_browser: bool = typer.Option(False, "--open", help="Also open the dashboard in a browser."),
    ) -> None:
        """Serve the run's training curves (trackio show, at 127.0.0.1) and print the URL; Ctrl-C stops it."""
        import signal
        import subprocess
        import sys

        from rich.console import Console

        from tracetune.train.tracking import dashboard_command, locate

        data = locate(run, project)
        argv, env = dashboard_command(data, port=port, open_browser=open_browser)
        Console(stderr=True).print(f"trackio show --project {data.project}  (TRACKIO_DIR={data.folder})",
                                   highlight=False, markup=False, style="dim")
        process = subprocess.Popen(argv, env=env)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the dashboard is stopped with us
        try:
            code = process.wait()
        except KeyboardInterrupt:
            code = process.wait()  # the dashboard got the same Ctrl-C and closes itself
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        if code not in (0, -2, 130):
            raise typer.Exit(code)
