"""Trackio: metrics logged against the optimizer step, and the run's dashboard (``tracetune dashboard``).

transformers' ``TrackioCallback`` calls ``trackio.log(metrics)`` without a
step, so the dashboard's x-axis is Trackio's own log counter (train and eval
logs each advance it). ``log_against_optimizer_step`` swaps it for a subclass
that passes ``step=state.global_step``, Trackio's supported way to set the
step; everything else (init, config, finish, Spaces) stays transformers'.

``locate`` finds a run's Trackio data (``RUN/sweep/trackio`` of a
``tracetune run``, ``OUT/trackio`` of a ``tracetune train``) and its project;
``dashboard_command`` is the process that serves it with ``trackio.show`` on
127.0.0.1 (Trackio reads ``TRACKIO_DIR`` once, at import, so it runs in a
process of its own). Nothing here sends data anywhere.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracetune.errors import TracetuneError

DEFAULT_PROJECT = "tracetune"


def step_trackio_class() -> type:
    """transformers' ``TrackioCallback``, logging every figure at the optimizer step it belongs to."""
    from transformers.integrations import TrackioCallback

    class _AtStep:
        """The ``trackio`` module, with ``log`` pinned to one step."""

        def __init__(self, module: Any, step: int):
            self._module, self._step = module, step

        def __getattr__(self, name: str) -> Any:
            return getattr(self._module, name)

        def log(self, metrics: dict, step: int | None = None) -> None:
            self._module.log(metrics, step=self._step)

    class StepTrackioCallback(TrackioCallback):
        def _at(self, state, method: str, *args: Any, **kwargs: Any) -> None:
            module = self._trackio
            self._trackio = _AtStep(module, state.global_step)
            try:
                getattr(super(), method)(*args, **kwargs)
            finally:
                self._trackio = module

        def on_log(self, args, state, control, model=None, logs=None, **kwargs):
            self._at(state, "on_log", args, state, control, model=model, logs=logs, **kwargs)

        def on_predict(self, args, state, control, metrics, **kwargs):
            self._at(state, "on_predict", args, state, control, metrics, **kwargs)

    return StepTrackioCallback


def log_against_optimizer_step(trainer: Any) -> None:
    """Replace the trainer's ``TrackioCallback`` (if it reports to Trackio) with ``step_trackio_class()``."""
    from transformers.integrations import TrackioCallback

    for callback in list(trainer.callback_handler.callbacks):
        if type(callback) is TrackioCallback:
            trainer.callback_handler.remove_callback(callback)
            trainer.add_callback(step_trackio_class()())


@dataclass(frozen=True)
class TrackioData:
    folder: Path  # what TRACKIO_DIR pointed at while training
    project: str


def locate(run: Path, project: str | None = None) -> TrackioData:
    """The Trackio folder and project of a run folder (``tracetune run``) or a ``tracetune train`` output."""
    run = Path(run).expanduser()
    if not run.is_dir():
        raise TracetuneError(f"{run}: no such run folder", hint="pass the folder `tracetune run` wrote (runs/NAME)")
    for folder in (run / "sweep" / "trackio", run / "trackio"):
        if folder.is_dir():
            return TrackioData(folder.resolve(), project or _project_of(run))
    raise TracetuneError(
        f"{run} holds no Trackio data (looked in sweep/trackio and trackio)",
        hint="the run trained with [train] report_to = 'none', or has not trained yet",
    )


def _project_of(run: Path) -> str:
    """``[train] trackio_project`` as the run recorded it (the manifest, or a train folder's config)."""
    for path, keys in ((run / "manifest.json", ("config", "train")), (run / "train_config.json", ("config",))):
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in keys:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if isinstance(data, dict) and data.get("trackio_project"):
            return str(data["trackio_project"])
    return DEFAULT_PROJECT


SERVE = """
import contextlib, os, sys, threading
import trackio
project, host, port, open_browser = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # trackio's banner
    app, url, _share, full = trackio.show(project=project, host=host, server_port=port or None,
                                          open_browser=open_browser, block_thread=False)
print(f"Trackio dashboard: {url.rstrip('/')}/?project={project}", flush=True)
print(f"with write access (rename, delete runs; keep it private): {full}", file=sys.stderr, flush=True)
try:
    threading.Event().wait()
except KeyboardInterrupt:
    pass
finally:
    app.close()
"""


def dashboard_command(data: TrackioData, host: str = "127.0.0.1", port: int | None = None,
                      open_browser: bool = False) -> tuple[list[str], dict[str, str]]:
    """(argv, env) of the process serving ``data`` with ``trackio.show`` until interrupted."""
    env = {**os.environ, "TRACKIO_DIR": str(data.folder), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-c", SERVE, data.project, host, str(port or 0), "1" if open_browser else "0"]
    return argv, env
