"""What a stage of the recipe is (``Stage``) and what it may read while it runs (``StageContext``).

The runner (``runner.py``) runs stages; the recipe (``stages.py``) defines them. Both import this
module, and neither imports the other's internals the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from tracetune.pipeline.config import RunConfig
from tracetune.pipeline.manifest import Manifest, write_manifest


@dataclass
class StageContext:
    """What a running stage may read: the config, the run folder, earlier stages' folders."""

    config: RunConfig
    run_dir: Path
    manifest: Manifest
    console: Console
    current: str = ""
    folders: dict[str, str] = field(default_factory=dict)
    trace_paths: list[Path] | None = None  # the traces as local paths, once resolved
    hub_sources: list[dict[str, Any]] = field(default_factory=list)  # Hub trace datasets, pinned to commits
    input_labels: dict[str, str] = field(default_factory=dict)  # local trace path -> the source as configured
    on_progress: Callable[[str, int, int, str], None] | None = None

    def progress(self, step: str, done: int, total: int, note: str = "") -> None:
        """Stages report ``(step, done, total)`` here, with a short note (e.g. the loss); the runner shows it."""
        if self.on_progress is not None:
            self.on_progress(step, done, total, note)

    def path(self, stage: str) -> Path:
        """The final folder of a stage (earlier stages' outputs live there)."""
        return self.run_dir / self.folders.get(stage, stage)

    def record(self, key: str, value: Any) -> None:
        """Record a fact about the running stage in the manifest now (written at once)."""
        self.manifest.stage(self.current).extra[key] = value
        write_manifest(self.run_dir, self.manifest)


@dataclass
class Stage:
    """One step of the recipe: ``run(ctx, out_dir)`` writes the stage's outputs into ``out_dir``."""

    name: str
    run: Callable[[StageContext, Path], dict[str, Any] | None]
    sections: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    input_paths: Callable[[StageContext], list[Path]] | None = None
    atomic: bool = True
    verify: Callable[[Path], str | None] | None = None  # returns a problem, or None when complete
    folder: str = ""

    def __post_init__(self) -> None:
        self.folder = self.folder or self.name
