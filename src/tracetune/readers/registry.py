"""Which reader reads which file: registration, detection, ``--format``, reader options."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, get_args

from tracetune.errors import TracetuneError, UnreadableFileError
from tracetune.readers.base import first_objects

#: format name -> module implementing the reader protocol (imported on first use).
#: Detection tries them in this order; the first whose ``sniff`` accepts wins.
READERS: dict[str, str] = {
    "pi": "tracetune.readers.pi",
    "claude-code": "tracetune.readers.claude_code",
    "codex": "tracetune.readers.codex",
    "messages": "tracetune.readers.messages",
}
#: other spellings users write (the Python module's name, the product's name)
ALIASES: dict[str, str] = {"claude_code": "claude-code", "claude": "claude-code", "pi-coding-agent": "pi"}


SidechainMode = Literal["train", "context", "drop"]


@dataclass(frozen=True)
class ReadOptions:
    """Reading choices a user makes (``[traces]`` in a run config, ``--sidechains`` on the commands).

    A reader takes the fields it names in its module's ``OPTIONS`` as keyword
    arguments of ``read``; the others do not concern it.
    """

    sidechains: SidechainMode = "train"  # Claude Code subagent conversations: see TracesConfig.sidechains

    def __post_init__(self) -> None:
        if self.sidechains not in get_args(SidechainMode):
            raise TracetuneError(f"unknown sidechains mode {self.sidechains!r}",
                                 hint=f"choose one of: {', '.join(get_args(SidechainMode))}")

    def for_reader(self, module: ModuleType) -> dict[str, Any]:
        """The keyword arguments of ``read`` for ``module``: only the options it lists in ``OPTIONS``."""
        return {name: getattr(self, name) for name in getattr(module, "OPTIONS", ())}


def format_name(name: str) -> str:
    """The registered name of a format, accepting the aliases."""
    return ALIASES.get(name, name)


def reader_for(name: str) -> ModuleType:
    """The reader module of a format (aliases accepted)."""
    name = format_name(name)
    if name not in READERS:
        raise TracetuneError(f"unknown trace format '{name}'", hint=f"choose one of: {', '.join(READERS)}")
    return importlib.import_module(READERS[name])


def detect_format(path: Path) -> str:
    """The format of one file, from its first JSON objects."""
    objects = first_objects(path)
    if not objects:
        raise UnreadableFileError(f"{path}: holds no JSON object lines", hint="is this a session file?")
    for name in READERS:
        if reader_for(name).sniff(objects):
            return name
    raise UnreadableFileError(
        f"{path}: not a session format tracetune knows",
        hint=f"known formats: {', '.join(READERS)}; force one with --format",
    )
