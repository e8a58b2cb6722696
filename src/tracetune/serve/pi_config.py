"""Add the served student to the user's pi ``models.json``, without clobbering anything.

pi (``@mariozechner/pi-coding-agent``, read in version 0.73.1: ``docs/models.md``,
``dist/config.js`` ``getAgentDir``/``getModelsPath``) reads custom providers
from ``$PI_CODING_AGENT_DIR/models.json`` (``~`` expanded) or else
``~/.pi/agent/models.json``: ``{"providers": {NAME: {baseUrl, api, apiKey,
compat, models: [{id, ...}]}}}``. Its ``apiKey`` is an environment variable's
name or else a literal; local servers ignore it.

``add_pi_provider`` keeps every other provider and top-level key as they were,
copies the old file to ``models.json.bak-<UTC time>`` first (same permissions),
writes the new file atomically (a temp file renamed into place, the old file's
mode kept: it may hold API keys), refuses a file that is not a JSON object,
and on a re-run replaces only its own provider entry (by name).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from tracetune.errors import TracetuneError

PI_PROVIDER = "tracetune"
LOCAL_API_KEY = "tracetune-local"  # not a valid variable name, so pi uses it as a literal
NEW_FILE_MODE = 0o600


@dataclass(frozen=True)
class PiConfigResult:
    path: Path
    provider: str
    model: str
    backup: Path | None  # None when there was no file before
    replaced: bool  # an entry of the same provider name was there before

    @property
    def command(self) -> str:
        """The ``pi`` command line that talks to the served model."""
        return f"pi --provider {self.provider} --model {self.model}"


def pi_models_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where pi reads ``models.json``: ``$PI_CODING_AGENT_DIR`` or ``~/.pi/agent``."""
    env = os.environ if environ is None else environ
    agent_dir = env.get("PI_CODING_AGENT_DIR")
    base = Path(agent_dir).expanduser() if agent_dir else Path.home() / ".pi" / "agent"
    return base / "models.json"


def add_pi_provider(base_url: str, model_name: str, *, provider: str = PI_PROVIDER, path: Path | None = None,
                    context_window: int = 32768, max_tokens: int = 1024) -> PiConfigResult:
    """Add (or replace) the provider ``provider`` serving ``model_name`` at ``base_url``."""
    from tracetune.engines.pi_provider import provider_entry

    shown = Path(path) if path is not None else pi_models_path()
    path = shown.resolve() if shown.is_symlink() else shown  # keep a dotfiles link a link
    check_pi_models(path)
    data = _read(path)
    providers = data.setdefault("providers", {})
    replaced = provider in providers
    providers[provider] = provider_entry(base_url, model_name, max_tokens=min(max_tokens, context_window // 2),
                                         context_window=context_window, api_key=LOCAL_API_KEY)
    backup = _backup(path) if path.exists() else None
    _write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return PiConfigResult(shown, provider, model_name, backup, replaced)


def check_pi_models(path: Path | None = None) -> None:
    """Raise now (before a server starts) if ``add_pi_provider`` would refuse this file."""
    path = Path(path) if path is not None else pi_models_path()
    providers = _read(path.resolve() if path.is_symlink() else path).get("providers", {})
    if not isinstance(providers, dict):
        raise TracetuneError(f"{path}: \"providers\" is not a JSON object; tracetune will not change this file",
                             hint="fix the file by hand (see pi's docs/models.md), then rerun with --pi")


def _read(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TracetuneError(f"{path} is not valid JSON ({exc}); tracetune will not overwrite it",
                             hint="fix or move the file, then rerun with --pi") from exc
    if not isinstance(data, dict):
        raise TracetuneError(f"{path} does not hold a JSON object; tracetune will not overwrite it",
                             hint="pi expects {\"providers\": {...}}; fix or move the file, then rerun with --pi")
    return data


def _backup(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
        n += 1
    shutil.copy2(path, backup)
    return backup


def _write_atomic(path: Path, text: str) -> None:
    """Write beside ``path`` with the old file's mode (0600 for a new file), then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else NEW_FILE_MODE
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
