"""``manifest.json``: the versioned record of one run.

Modelled on inspect_ai's ``EvalLog``: a format ``version``, a run ``status``
(``started`` -> ``success`` | ``error`` | ``cancelled``) and the ``error`` that
ended it, followed by the bulky parts: the full config, the hashes of the
inputs and of every stage's outputs, library versions, timestamps and the
status of each stage. ``read_manifest(path, header_only=True)`` returns the
small header without the config and hashes.

``inputs`` names every trace file a run read: per source as configured, each
session file's path relative to that source, its size and sha256, and for a
``hf://`` source the commit read. ``input_changes`` compares two of them, so a
rerun can say which inputs changed since the folder's last run.

A stage's status is recorded as ``done`` only after its outputs are in place,
so a crash leaves it ``running`` (or ``interrupted``), never ``done``.
"""

from __future__ import annotations

import json
import traceback
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from tracetune.util.files import atomic_write_json

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
RunStatus = Literal["started", "success", "error", "cancelled"]
StageStatus = Literal["pending", "running", "done", "error", "interrupted"]
LIBRARIES = (
    "tracetune", "torch", "transformers", "trl", "peft", "datasets",
    "accelerate", "trackio", "huggingface_hub", "tokenizers", "safetensors", "pydantic",
)


def now() -> str:
    """The current UTC time as an ISO 8601 string, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunError(BaseModel):
    message: str
    kind: str
    traceback: str = ""


class StageRecord(BaseModel):
    status: StageStatus = "pending"
    inputs_hash: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict, description="Every output file (relative to the stage folder) -> sha256.")
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    error: RunError | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Stage facts worth auditing, e.g. the selection rule hash.")


class ManifestHeader(BaseModel):
    version: int = MANIFEST_VERSION
    name: str
    status: RunStatus = "started"
    error: RunError | None = None
    started_at: str = Field(default_factory=now)
    ended_at: str | None = None
    stage_status: dict[str, StageStatus] = Field(default_factory=dict)


class Manifest(ManifestHeader):
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="Trace source as configured -> {'revision': commit read (hf:// sources), 'files': "
                    "{path relative to the source: {'size', 'sha256'}}}.",
    )
    libraries: dict[str, str] = Field(default_factory=dict)
    stages: dict[str, StageRecord] = Field(default_factory=dict)

    def stage(self, name: str) -> StageRecord:
        """The record of stage ``name``, added as ``pending`` if the manifest has none yet."""
        return self.stages.setdefault(name, StageRecord())

    def header(self) -> ManifestHeader:
        """The small header part of this manifest (no config, inputs or stage records)."""
        return ManifestHeader.model_validate(self.model_dump(include=set(ManifestHeader.model_fields)))


def input_changes(before: dict[str, Any], after: dict[str, Any], names: int = 3) -> str | None:
    """One line saying which input files were added, removed or changed between two ``inputs`` records.

    None when nothing changed or ``before`` is empty (a first run, or a manifest from before inputs were
    recorded). Files are named as ``source/relative path`` when the records hold several sources.
    """
    if not before:
        return None
    many = len(set(before) | set(after)) > 1

    def files(record: dict[str, Any]) -> dict[str, str]:
        return {(f"{source}/{rel}" if many else rel): str(info.get("sha256", info.get("error")))
                for source, entry in record.items() if isinstance(entry, dict)
                for rel, info in (entry.get("files") or {}).items() if isinstance(info, dict)}

    old, new = files(before), files(after)
    kinds = {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": sorted(k for k in set(old) & set(new) if old[k] != new[k]),
    }
    parts = [f"{len(v)} {kind} ({', '.join(v[:names])}{f', {len(v) - names} more' if len(v) > names else ''})"
             for kind, v in kinds.items() if v]
    revisions = [f"{s} now at {str(after[s].get('revision'))[:12]} (was {str(before[s].get('revision'))[:12]})"
                 for s in sorted(set(before) & set(after))
                 if isinstance(before[s], dict) and isinstance(after[s], dict)
                 and before[s].get("revision") != after[s].get("revision")]
    if not parts and not revisions:
        return None
    return "the traces changed since this run folder's last run: " + "; ".join(parts + revisions)


def library_versions() -> dict[str, str]:
    """Installed version of each library in ``LIBRARIES``; those not installed are left out."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def error_of(exc: BaseException) -> RunError:
    """``exc`` as a ``RunError``: its message, class name and the last 8000 characters of its traceback."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return RunError(message=str(exc) or type(exc).__name__, kind=type(exc).__name__, traceback=text[-8000:])


def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    """Write (atomically) with the header fields first, so a person reading the file sees them first."""
    manifest.stage_status = {k: v.status for k, v in manifest.stages.items()}
    path = run_dir / MANIFEST_NAME
    atomic_write_json(path, manifest.model_dump(mode="json"))
    return path


def read_manifest(path: Path, header_only: bool = False) -> Manifest | ManifestHeader:
    """Read a manifest (a file or a run folder); ``header_only`` drops config, hashes and stage records."""
    if path.is_dir():
        path = path / MANIFEST_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version", 0) > MANIFEST_VERSION:
        from tracetune.errors import TracetuneError

        raise TracetuneError(
            f"{path} has manifest version {data['version']}, newer than this tracetune understands ({MANIFEST_VERSION}).",
            hint="Upgrade tracetune.",
        )
    if header_only:
        return ManifestHeader.model_validate({k: data[k] for k in ManifestHeader.model_fields if k in data})
    return Manifest.model_validate(data)


def load_or_new(run_dir: Path, name: str) -> Manifest:
    """The manifest already in ``run_dir``, else a new one for run ``name`` (nothing is written)."""
    path = run_dir / MANIFEST_NAME
    if path.is_file():
        manifest = read_manifest(path)
        assert isinstance(manifest, Manifest)
        return manifest
    return Manifest(name=name)
