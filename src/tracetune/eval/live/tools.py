"""pi-compatible tools that act only inside one workspace directory.

Every path argument is resolved against the workspace (symlinks and ``..``
followed) and refused when it lands outside it. Files are opened without
following a last symlink and without blocking, and only regular files are read
or written: a FIFO, socket or device in the workspace is refused by read, write
and edit and skipped by grep, as are hard-linked files by write and edit and
files over ``MAX_FILE_BYTES``. Every tool but bash stops at the command time
limit (checked in its loops; in the main thread a timer also interrupts a
runaway regular expression). ``bash`` runs through ``tracetune.eval.sandbox``
in the given mode; in ``workspace-tools`` mode it is refused with an error
result (no shell without a sandbox). Result texts follow pi's conventions
("Successfully wrote N bytes to PATH", "(empty directory)", "No matches
found", "Command exited with code N", ...) so recorded sessions read like pi's
own. A failing call returns ``is_error=True`` with the reason, as pi records a
thrown error.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import signal
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tracetune.eval.live.specs import argument_problem, normalize_arguments, spec_for
from tracetune.eval.sandbox import SandboxLimits, SandboxMode, run_command, run_sandboxed

MAX_LINES = 2000
MAX_BYTES = 50 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
_SKIP_DIRS = {".git", "node_modules", "__pycache__"}
SHELL_UNAVAILABLE = ("bash is unavailable in this mode: commands cannot be run here (no sandbox), only the "
                     "workspace tools. Use read, edit, write, ls, find and grep.")


@dataclass(frozen=True)
class ToolResult:
    text: str
    is_error: bool = False


class ToolError(Exception):
    """A refused or failed call; its message becomes the error result."""


class _TimedOut(ToolError):
    pass


class WorkspaceTools:
    """Executes tool calls against ``workspace`` (which must exist).

    ``mode``: how bash runs (``bwrap``, ``unsandboxed``) or that it is refused
    (``workspace-tools``). Without it, the older ``allow_unsandboxed`` decides:
    bubblewrap where it works, else a plain process only when allowed.
    """

    def __init__(self, workspace: str | Path, limits: SandboxLimits = SandboxLimits(), allow_unsandboxed: bool = False,
                 *, mode: SandboxMode | None = None):
        self.root = Path(workspace).resolve()
        self.limits = limits
        self.allow_unsandboxed = allow_unsandboxed
        self.mode = mode
        self._deadline = float("inf")
        self._impl: dict[str, Callable[..., str]] = {
            "read": self.read, "bash": self.bash, "edit": self.edit, "write": self.write,
            "ls": self.ls, "find": self.find, "grep": self.grep,
        }

    def execute(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        """Run one tool call; a refused or failed call becomes an error result, never an exception."""
        spec = spec_for(name)
        if spec is None:
            return ToolResult(f"Tool {name} not found", is_error=True)
        args = normalize_arguments(name, arguments)
        problem = argument_problem(spec, args)
        if problem:
            return ToolResult(f'Validation failed for tool "{name}": {problem}', is_error=True)
        try:
            if name == "bash":
                return ToolResult(self.bash(**args))
            with self._time_limit():
                text = self._impl[name](**args)
            return ToolResult(text)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        except (OSError, UnicodeDecodeError, ValueError, OverflowError) as exc:
            return ToolResult(f"{type(exc).__name__}: {exc}", is_error=True)

    @contextlib.contextmanager
    def _time_limit(self) -> Iterator[None]:
        """Stop the tool at the command time limit: loops check ``_tick``; in the main thread a timer interrupts too."""
        seconds = self.limits.timeout_s
        self._deadline = time.monotonic() + seconds
        timer = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if timer and signal.getitimer(signal.ITIMER_REAL)[0] > 0:
            timer = False  # someone else's timer is running: leave it alone, rely on the loop checks

        def on_alarm(signum, frame):
            raise _TimedOut(f"Tool timed out after {seconds:g} seconds")

        old = signal.signal(signal.SIGALRM, on_alarm) if timer else None
        try:
            if timer:
                signal.setitimer(signal.ITIMER_REAL, seconds)
            yield
        finally:
            self._deadline = float("inf")
            if timer:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)

    def _tick(self) -> None:
        if time.monotonic() > self._deadline:
            raise _TimedOut(f"Tool timed out after {self.limits.timeout_s:g} seconds")

    def resolve(self, path: str) -> Path:
        """The real path of ``path`` inside the workspace; ToolError when it escapes (symlinks included)."""
        raw = path[1:] if path.startswith("@") else path
        if "\0" in raw:
            raise ToolError(f"Invalid path (NUL byte): {path!r}")
        if raw.startswith("~"):
            raise ToolError(f"Path outside the workspace: {path}")
        real = Path(os.path.realpath(self.root / raw))
        if real != self.root and self.root not in real.parents:
            raise ToolError(f"Path outside the workspace: {path}")
        return real

    def read(self, path: str, offset: float | None = None, limit: float | None = None) -> str:
        """The text of a file, from ``offset`` for ``limit`` lines, with a note when there is more."""
        real = self.resolve(path)
        if not real.exists():
            raise ToolError(f"File not found: {path}")
        lines = read_regular(real, path).decode("utf-8").split("\n")
        start = max(int(offset) - 1, 0) if offset else 0
        if start >= len(lines):
            raise ToolError(f"Offset {int(offset or 0)} is beyond end of file ({len(lines)} lines total)")
        end = min(start + int(limit), len(lines)) if limit is not None else len(lines)
        shown = _head(lines[start:end])
        text = "\n".join(shown)
        last = start + len(shown)
        if last < end:
            text += f"\n\n[Showing lines {start + 1}-{last} of {len(lines)}. Use offset={last + 1} to continue.]"
        elif end < len(lines):
            text += f"\n\n[{len(lines) - end} more lines in file. Use offset={end + 1} to continue.]"
        return text

    def write(self, path: str, content: str) -> str:
        """Write ``content`` to a file, creating parent directories."""
        real = self.resolve(path)
        real.parent.mkdir(parents=True, exist_ok=True)
        write_regular(real, content.encode("utf-8"), path)
        return f"Successfully wrote {len(content)} bytes to {path}"

    def edit(self, path: str, edits: list[dict[str, str]]) -> str:
        """Replace each unique ``oldText`` of ``edits`` with its ``newText`` in one file."""
        real = self.resolve(path)
        if not real.exists():
            raise ToolError(f"Could not edit file: {path}. File not found.")
        if not edits:
            raise ToolError("Edit tool input is invalid. edits must contain at least one replacement.")
        content = read_regular(real, path).decode("utf-8")
        spans = []
        for i, e in enumerate(edits):
            label = "the text" if len(edits) == 1 else f"edits[{i}]"
            if not e["oldText"]:
                raise ToolError(f"oldText must not be empty in {path}.")
            count = content.count(e["oldText"])
            if count == 0:
                raise ToolError(f"Could not find {label} in {path}. The old text must match exactly including all whitespace and newlines.")
            if count > 1:
                raise ToolError(f"Found {count} occurrences of {label} in {path}. The text must be unique.")
            at = content.index(e["oldText"])
            spans.append((at, at + len(e["oldText"]), e["newText"]))
        spans.sort()
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            raise ToolError(f"Edits overlap in {path}. Merge them into one edit.")
        new = content
        for start, end, text in reversed(spans):
            new = new[:start] + text + new[end:]
        if new == content:
            raise ToolError(f"No changes made to {path}. The replacement produced identical content.")
        write_regular(real, new.encode("utf-8"), path)
        return f"Successfully replaced {len(edits)} block(s) in {path}."

    def ls(self, path: str = ".", limit: float | None = None) -> str:
        """A directory's entries, sorted, directories marked with ``/``, at most ``limit``."""
        real = self.resolve(path)
        if not real.exists():
            raise ToolError(f"Path not found: {path}")
        if not real.is_dir():
            raise ToolError(f"Not a directory: {path}")
        cap = int(limit or 500)
        names = sorted(os.listdir(real), key=str.lower)
        entries = []
        for n in names[:cap]:
            self._tick()
            entries.append(n + ("/" if (real / n).is_dir() else ""))
        if not entries:
            return "(empty directory)"
        text = "\n".join(entries)
        return text + (f"\n\n[{cap} entries limit reached. Use limit={cap * 2} for more]" if len(names) > cap else "")

    def find(self, pattern: str, path: str = ".", limit: float | None = None) -> str:
        """Paths under ``path`` (relative to it) matching the glob ``pattern``, at most ``limit``."""
        base = self.resolve(path)
        if not base.is_dir():
            raise ToolError(f"Path not found: {path}")
        cap = int(limit or 1000)
        hits = [rel for rel, _ in _walk(base, self.root, self._tick) if _glob_match(rel, pattern)]
        if not hits:
            return "No files found matching pattern"
        text = "\n".join(hits[:cap])
        return text + (f"\n\n[{cap} results limit reached]" if len(hits) > cap else "")

    def grep(self, pattern: str, path: str = ".", glob: str | None = None, ignoreCase: bool = False,
             literal: bool = False, context: float | None = None, limit: float | None = None) -> str:
        """``path:line: text`` for each line matching ``pattern`` (with context lines), at most ``limit`` matches."""
        base = self.resolve(path)
        if not base.exists():
            raise ToolError(f"Path not found: {path}")
        try:
            rx = re.compile(re.escape(pattern) if literal else pattern, re.IGNORECASE if ignoreCase else 0)
        except re.error as exc:
            raise ToolError(f"Invalid regular expression: {exc}") from exc
        if base.is_dir():
            files = [(rel, real) for rel, real in _walk(base, self.root, self._tick) if not glob or _glob_match(rel, glob)]
        else:
            files = [(base.name, base)]
        out, matches, cap, ctx = [], 0, int(limit or 100), int(context or 0)
        for shown, real in files:
            if matches >= cap:
                break
            lines = _text_lines(real)
            for n, line in enumerate(lines, 1):
                self._tick()
                if matches >= cap or not rx.search(line):
                    continue
                matches += 1
                for k in range(max(1, n - ctx), min(len(lines), n + ctx) + 1):
                    sep = ":" if k == n else "-"
                    out.append(f"{shown}{sep}{k}{sep} {lines[k - 1][:500]}")
        if not out:
            return "No matches found"
        text = "\n".join(out)
        return text + (f"\n\n[{cap} matches limit reached. Use limit={cap * 2} for more, or refine pattern]" if matches >= cap else "")

    def bash(self, command: str, timeout: float | None = None) -> str:
        """The output of a shell command run in the workspace as the mode allows; ``ToolError`` when it fails."""
        if self.mode == "workspace-tools":
            raise ToolError(SHELL_UNAVAILABLE)
        if "\0" in command:
            raise ToolError("Invalid command (NUL byte)")
        limits = self.limits
        if timeout and timeout > 0 and timeout < limits.timeout_s:
            limits = SandboxLimits(**{**limits.__dict__, "timeout_s": float(timeout)})
        if self.mode is None:
            result = run_sandboxed(command, self.root, limits, allow_unsandboxed=self.allow_unsandboxed)
        else:
            result = run_command(command, self.root, limits, confined=self.mode == "bwrap")
        text = result.output.rstrip("\n")
        if result.timed_out:
            raise ToolError(_status(text, f"Command timed out after {limits.timeout_s:g} seconds"))
        if result.exit_code != 0:
            raise ToolError(_status(text, f"Command exited with code {result.exit_code}"))
        return text or "(no output)"


def _status(text: str, status: str) -> str:
    return f"{text}\n\n{status}" if text else status


def _head(lines: list[str]) -> list[str]:
    kept, size = [], 0
    for line in lines[:MAX_LINES]:
        size += len(line.encode("utf-8")) + 1
        if size > MAX_BYTES:
            break
        kept.append(line)
    return kept


def _walk(base: Path, root: Path, tick: Callable[[], None]) -> list[tuple[str, Path]]:
    """Files under ``base`` as (relative posix path, real path), sorted, not following links out of ``root``."""
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        tick()
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            tick()
            full = Path(dirpath) / name
            real = Path(os.path.realpath(full))
            if root in real.parents:
                out.append((full.relative_to(base).as_posix(), real))
    return out


def _glob_match(rel: str, pattern: str) -> bool:
    if "/" not in pattern:
        return fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern)
    return fnmatch.fnmatch(rel, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(rel, pattern[3:]))


def read_regular(real: Path, shown: str) -> bytes:
    """The bytes of a regular file (no last symlink followed, never blocking on a FIFO); ToolError otherwise."""
    fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"Not a regular file: {shown}")
        if info.st_size > MAX_FILE_BYTES:
            raise ToolError(f"File too large: {shown} ({info.st_size} bytes; the limit is {MAX_FILE_BYTES})")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise ToolError(f"File too large: {shown} (the limit is {MAX_FILE_BYTES} bytes)")
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_regular(real: Path, data: bytes, shown: str) -> None:
    """Replace the content of a regular file (created when missing); refuse FIFOs, devices, links and hard links."""
    if real.is_symlink() or (real.exists() and not real.is_file()):
        raise ToolError(f"Not a regular file: {shown}")
    fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"Not a regular file: {shown}")
        if info.st_nlink > 1:
            raise ToolError(f"Refusing to write a hard-linked file: {shown}")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _text_lines(path: Path) -> list[str]:
    try:
        data = read_regular(path, path.name)
    except (OSError, ToolError):
        return []
    if b"\0" in data[:4096]:
        return []
    return data.decode("utf-8", errors="replace").replace("\r", "").split("\n")
