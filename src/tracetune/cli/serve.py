"""``tracetune serve``: serve a trained student (run folder, model folder, adapter or Hub id) for an agent."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

_ENGINES = ("transformers", "vllm")


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""
    @app.command("serve")
    def serve(
        target: str = typer.Argument(..., help="A run folder, a merged model folder, a LoRA adapter folder or a Hub model id."),
        engine: str = typer.Option("transformers", "--engine", help="transformers (`transformers serve`, CPU) or vllm (`vllm serve`, GPU)."),
        name: str = typer.Option("student", "--name", help="Model name clients ask for."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="Port to listen on (0: a free one, transformers only)."),
        device: str = typer.Option("cpu", "--device", help="transformers: device to load the model on."),
        print_only: bool = typer.Option(False, "--print-only", help="vllm: print the `vllm serve` command, do not run it."),
        vllm_executable: str = typer.Option("vllm", "--vllm-executable", help="vllm: the `vllm` of vLLM's own environment."),
        startup_timeout: float = typer.Option(600.0, "--startup-timeout", help="Seconds to wait for the server to be ready."),
        pi: bool = typer.Option(False, "--pi", help="Add a provider for the served model to pi's models.json (backed up first)."),
        pi_provider: str = typer.Option("tracetune", "--pi-provider", help="Provider name to write with --pi."),
        pi_models: Optional[Path] = typer.Option(None, "--pi-models", help="models.json to edit (default: $PI_CODING_AGENT_DIR or ~/.pi/agent)."),
    ) -> None:
        """Serve a student over an OpenAI-compatible API until Ctrl-C; optionally register it with pi."""
        from tracetune.errors import TracetuneError
        from tracetune.serve.options import ServeOptions
        from tracetune.serve.resolve import resolve_target
        from tracetune.serve.run import PiRequest, check_target, for_engine, print_only as plan, serve as run

        if engine not in _ENGINES:
            raise TracetuneError(f"unknown engine {engine!r}", hint="pass --engine transformers or --engine vllm")
        if print_only and engine != "vllm":
            raise TracetuneError("--print-only prints the `vllm serve` command", hint="add --engine vllm")
        if port == 0 and engine == "vllm":
            raise TracetuneError("vllm needs a fixed --port", hint="pass --port 8000 (or any free port)")
        try:
            opts = ServeOptions(engine=engine, name=name, host=host, port=port, device=device,
                                startup_timeout_s=startup_timeout, vllm_executable=vllm_executable)
        except ValueError as exc:
            raise TracetuneError(f"invalid option: {exc}") from exc
        console = Console(highlight=False)
        resolved = for_engine(resolve_target(target), opts)
        console.print(f"[bold]serving[/] {resolved.origin} with {engine}")
        for warning in check_target(resolved, opts):
            console.print(f"[yellow]warning:[/] {warning}")
        request = PiRequest(pi_provider, pi_models) if pi else None
        if print_only:
            argv, pi_result = plan(resolved, opts, request)
            print(shlex.join(argv))
            _print_pi(console, pi_result)
            return
        run(resolved, opts, lambda ready: _print_ready(console, ready), pi=request)
        console.print("[green]server stopped[/]")


def _print_ready(console: Console, ready) -> None:
    console.print(f"[green]ready[/]  base URL [bold]{ready.endpoint.base_url}[/]  model [bold]{ready.endpoint.model_name}[/]")
    console.print("try it:", style="dim")
    print(ready.curl, flush=True)
    _print_pi(console, ready.pi)
    console.print("Ctrl-C stops the server.", style="dim")


def _print_pi(console: Console, result) -> None:
    if result is None:
        return
    done = "replaced its entry in" if result.replaced else "added it to"
    console.print(f"pi: {done} {result.path}" + (f" (backup: {result.backup})" if result.backup else ""))
    console.print("run pi with:", style="dim")
    print(result.command, flush=True)
