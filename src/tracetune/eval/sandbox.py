"""Run one shell command in a sandboxed temporary workspace (Linux, bubblewrap).

What it covers:

- **Filesystem**: the command sees the system directories (``/usr``, ``/etc``
  and the ``/bin``, ``/lib`` links) read-only, its workspace read-write, a
  fresh empty ``/tmp``, and nothing else: home directories, ``/root``,
  ``/work`` and the rest of the host are not mounted at all. A write outside
  the workspace fails with "Read-only file system" or "No such file".
- **Network**: a new, empty network namespace (``--unshare-net``): no
  interface but loopback, so connections to the host or the internet fail.
- **Privileges**: every capability dropped (``--cap-drop ALL``), so even when
  tracetune runs as root the command cannot remount the read-only binds.
- **Processes**: a new PID namespace (``--unshare-pid``), ``--die-with-parent``
  and ``--new-session``; on timeout the whole process group (bubblewrap and
  everything under it) is killed, which tears the namespace down.
- **Resources**: ``prlimit`` caps address space (memory), file size and the
  number of processes; output is read up to a byte limit and the rest is
  dropped with a marker; the environment is cleared (no inherited secrets).

What it does not cover: it is not a security boundary against a determined
attacker (no seccomp filter, no cgroup CPU quota; ``/etc`` is readable);
``RLIMIT_NPROC`` counts every process of the calling user on the host, so its
default is generous (4096) and a fork bomb is stopped by the time limit and
the PID namespace teardown rather than by the process cap. Where bubblewrap is missing (macOS, a container without it) it refuses
with a ``TracetuneError``, unless the caller passes ``allow_unsandboxed=True``:
then the command runs as a plain subprocess in the workspace with the same
time, output and resource limits and a cleared environment, but with full
read/write access to the host and the network. That mode is for trusted
commands only (the scripted teacher's own checks, macOS development).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tracetune.errors import TracetuneError
from tracetune.eval.procs import bwrap_system_args, signal_group

TRUNCATION_MARKER = "\n[output truncated: {dropped} more bytes not shown]"
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 30.0
    max_output_bytes: int = 50 * 1024
    memory_mb: int = 1024
    max_processes: int = 4096  # RLIMIT_NPROC counts the user's processes outside the sandbox too
    max_file_mb: int = 64


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None  # None when killed at the time limit
    output: str  # stdout and stderr interleaved, truncated at the output limit
    timed_out: bool = False
    truncated: bool = False
    sandboxed: bool = True
    seconds: float = 0.0


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def require_sandbox(allow_unsandboxed: bool = False) -> bool:
    """True when commands will be sandboxed; a TracetuneError when they cannot be and that was not allowed."""
    if bwrap_path() is not None:
        return True
    if allow_unsandboxed:
        return False
    raise TracetuneError(
        "the live agent loop needs bubblewrap (bwrap) to sandbox tool commands, and it is not installed",
        hint="apt-get install bubblewrap (Debian/Ubuntu), or pass allow_unsandboxed=True "
        "to run trusted commands without isolation",
    )


def _bwrap_args(workspace: Path) -> list[str]:
    ws = str(workspace)
    args = bwrap_system_args() + ["--bind", ws, ws, "--chdir", ws]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    return args


def _prlimit_args(limits: SandboxLimits) -> list[str]:
    if not shutil.which("prlimit"):
        return []
    return [
        "prlimit",
        f"--as={limits.memory_mb * 1024 * 1024}",
        f"--fsize={limits.max_file_mb * 1024 * 1024}",
        f"--nproc={limits.max_processes}",
        "--",
    ]


def _env(workspace: Path) -> dict[str, str]:
    return {"PATH": _SAFE_PATH, "HOME": str(workspace), "LANG": "C.UTF-8", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}


def build_argv(command: str, workspace: Path, limits: SandboxLimits, sandboxed: bool) -> list[str]:
    inner = _prlimit_args(limits) + ["bash", "-c", command]
    return _bwrap_args(workspace) + ["--clearenv"] + _setenv_args(workspace) + inner if sandboxed else inner


def _setenv_args(workspace: Path) -> list[str]:
    out: list[str] = []
    for key, value in _env(workspace).items():
        out += ["--setenv", key, value]
    return out


def run_sandboxed(
    command: str,
    workspace: str | Path,
    limits: SandboxLimits = SandboxLimits(),
    *,
    allow_unsandboxed: bool = False,
) -> SandboxResult:
    """Run ``command`` with bash inside ``workspace``; never raises for the command's own failure."""
    workspace = Path(workspace).resolve()
    if not workspace.is_dir():
        raise TracetuneError(f"sandbox workspace {workspace} is not a directory")
    sandboxed = require_sandbox(allow_unsandboxed)
    argv = build_argv(command, workspace, limits, sandboxed)
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=workspace,
        env=_env(workspace),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output, dropped, timed_out = _collect(proc, limits)
    text = output.decode("utf-8", errors="replace")
    if dropped:
        text += TRUNCATION_MARKER.format(dropped=dropped)
    return SandboxResult(
        exit_code=None if timed_out else proc.returncode,
        output=text,
        timed_out=timed_out,
        truncated=dropped > 0,
        sandboxed=sandboxed,
        seconds=time.monotonic() - start,
    )


def _collect(proc: subprocess.Popen, limits: SandboxLimits) -> tuple[bytes, int, bool]:
    """Read output up to the limit (draining the rest) until exit or the deadline."""
    import selectors

    deadline = time.monotonic() + limits.timeout_s
    kept, dropped, timed_out = bytearray(), 0, False
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not sel.select(timeout=min(remaining, 0.5)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            room = limits.max_output_bytes - len(kept)
            kept += chunk[: max(room, 0)]
            dropped += max(len(chunk) - max(room, 0), 0)
    finally:
        sel.close()
    if not timed_out:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            timed_out = True
    signal_group(proc, signal.SIGKILL)  # stragglers too: a background job must not outlive its command
    proc.wait()
    proc.stdout.close()
    return bytes(kept), dropped, timed_out
