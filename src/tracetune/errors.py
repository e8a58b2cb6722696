"""Errors a user can act on. The CLI prints them without a traceback, with the hint."""

from __future__ import annotations


class TracetuneError(Exception):
    """A problem with the user's input or environment, with a hint how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UnreadableFileError(TracetuneError):
    """A whole file cannot be read (missing, binary, not the format asked for)."""


class MissingExtraError(TracetuneError):
    """An optional engine is not installed."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed.",
            hint=f"pip install 'tracetune[{extra}]'",
        )
        self.package = package
        self.extra = extra


class ConfigError(TracetuneError):
    """A run config that does not validate; lists every bad key at once."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise ``MissingExtraError`` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc
