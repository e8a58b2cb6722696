"""Run one shell command of the live loop, in bubblewrap or as a limited plain process; the sandbox modes.

Modes (``eval.live.sandbox``, resolved by ``resolve_mode``):

- ``auto`` (the default): ``bwrap`` where bubblewrap is installed and can
  start a sandbox here, else ``workspace-tools``. Never unconfined.
- ``bwrap``: the model's ``bash`` commands and the task checks run in
  bubblewrap (below). Refused before anything runs where bwrap is unusable.
- ``workspace-tools``: the model gets no shell: a ``bash`` call returns an
  error result saying so; read, write, edit, ls, find and grep still work,
  confined to the workspace (``live/tools.py``). The task's check command is
  ours, but it runs code the model wrote (tests import it), so it runs in
  bubblewrap where that works, and otherwise as a limited plain process: a
  cleared environment, the time limit, rlimits (memory, file size, processes,
  CPU time), its own session killed at the end. That plain process still sees
  the host's files and network with the user's rights: the one residual risk
  of this mode, closed by installing bubblewrap.
- ``unsandboxed`` (only when asked for: ``tracetune demo --unsandboxed``,
  ``eval.live.sandbox = "unsandboxed"``, or the deprecated
  ``eval.live.allow_unsandboxed = true``): the model's commands and the
  checks run as limited plain processes, with full access to the host.

What bubblewrap covers:

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
  number of processes; output is read up to a byte limit and the rest
  is dropped with a marker.

Every child, sandboxed or not, gets an environment built from scratch (PATH,
HOME = the workspace, LANG, TMPDIR): nothing is inherited from tracetune's own
environment, so no ``HF_TOKEN``, ``OPENAI_API_KEY``, ``AWS_*`` or other
credential reaches it, and ``scrub_env`` drops any credential-like name as a
second guard. The bubblewrap found on PATH by ``bwrap_path`` is the one run.

What it does not cover: it is not a security boundary against a determined
attacker (no seccomp filter, no cgroup CPU quota; ``/etc`` is readable);
``RLIMIT_NPROC`` counts every process of the calling user on the host, so its
default is generous (4096) and a fork bomb is stopped by the time limit and
the PID namespace teardown rather than by the process cap. A plain process
(no bubblewrap) can leave its session (``setsid``) and outlive the kill; a
CPU-time limit (four times the time limit) still stops it from spinning.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tracetune.errors import TracetuneError
from tracetune.engines.procs import bwrap_system_args, signal_group

TRUNCATION_MARKER = "\n[output truncated: {dropped} more bytes not shown]"
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

SandboxSetting = Literal["auto", "bwrap", "workspace-tools", "unsandboxed"]
SandboxMode = Literal["bwrap", "workspace-tools", "unsandboxed"]
SETTINGS: tuple[str, ...] = ("auto", "bwrap", "workspace-tools", "unsandboxed")
SANDBOX_KEY = "eval.live.sandbox"
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
MODE_SUMMARY = {
    "bwrap": "model commands and task checks run in bubblewrap (workspace-only writes, no network, no host files)",
    "workspace-tools": "no shell for the model (bash calls return an error); read, write, edit, ls, find and grep "
                       "inside the workspace only; task checks run {checks}",
    "unsandboxed": "UNCONFINED: model commands and task checks run as plain host processes "
                   "(cleared environment, time and resource limits only)",
}
_PLAIN_CHECKS = "as limited plain processes (cleared environment, time and resource limits; host files visible)"
_SECRET_NAME = re.compile(
    r"(TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|AUTH|COOKIE|SESSION)S?$"
    r"|^(AWS|AZURE|GCP|GOOGLE|GH|GITHUB|HF|HUGGING_?FACE|OPENAI|ANTHROPIC|WANDB|SSH)_", re.IGNORECASE)


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
    """The bubblewrap executable on PATH: the one path every sandboxed command is then started with."""
    return shutil.which("bwrap")


_PROBED: dict[str, str | None] = {}


def bwrap_problem() -> str | None:
    """None when bubblewrap is installed and starts a sandbox here; else why not (probed once per path)."""
    return _probe(bwrap_path())


def _probe(path: str | None) -> str | None:
    if path is None:
        return "bubblewrap (bwrap) is not installed"
    if path not in _PROBED:
        with tempfile.TemporaryDirectory(prefix="tracetune-bwrap-probe-") as tmp:
            try:
                result = _run("true", Path(tmp).resolve(), SandboxLimits(timeout_s=15), bwrap=path)
            except OSError as exc:
                result = SandboxResult(exit_code=1, output=str(exc))
        tail = " ".join(result.output.split())[-300:] or f"exit code {result.exit_code}"
        _PROBED[path] = None if result.exit_code == 0 else f"bubblewrap ({path}) cannot start a sandbox here: {tail}"
    return _PROBED[path]


def unusable_hint(problem: str) -> str:
    """What to do about ``problem`` (why bubblewrap cannot be used): install it, or allow user namespaces."""
    if "not installed" in problem:
        return INSTALL_HINT
    return ("bubblewrap needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 "
            "an AppArmor profile for bwrap) or a container started with them allowed")


def resolve_mode(setting: str) -> SandboxMode:
    """The mode a ``sandbox`` setting runs in here; a TracetuneError naming ``eval.live.sandbox`` when it cannot."""
    if setting not in SETTINGS:
        raise TracetuneError(f"{SANDBOX_KEY} = {setting!r} is not a sandbox mode", hint="use one of " + ", ".join(SETTINGS))
    if setting == "auto":
        return "bwrap" if bwrap_problem() is None else "workspace-tools"
    if setting == "bwrap":
        problem = bwrap_problem()
        if problem is not None:
            raise TracetuneError(f'{SANDBOX_KEY} = "bwrap", but {problem}',
                                 hint=f'{unusable_hint(problem)}; or set {SANDBOX_KEY} = "auto" '
                                      "(without bubblewrap the model gets no shell, only the workspace tools)")
    return setting  # type: ignore[return-value]


def checks_confined(mode: SandboxMode) -> bool:
    """Whether task checks run in bubblewrap in ``mode`` (in ``workspace-tools``: where bubblewrap works)."""
    return mode == "bwrap" or (mode == "workspace-tools" and bwrap_problem() is None)


def describe_mode(mode: SandboxMode) -> str:
    """One line (no digits) saying what runs where in ``mode``."""
    checks = "in bubblewrap" if checks_confined(mode) else _PLAIN_CHECKS
    return MODE_SUMMARY[mode].format(checks=checks)


def mode_record(mode: SandboxMode) -> dict[str, Any]:
    """How a live run was confined, for its results file, the eval report and the model card."""
    return {"mode": mode, "shell": mode != "workspace-tools", "checks": "bwrap" if checks_confined(mode) else "plain",
            "summary": describe_mode(mode)}


def require_sandbox(allow_unsandboxed: bool = False) -> bool:
    """True when commands will be sandboxed; a TracetuneError when they cannot be and that was not allowed."""
    problem = bwrap_problem()
    if problem is None:
        return True
    if allow_unsandboxed:
        return False
    raise _refusal(problem)


def _refusal(problem: str) -> TracetuneError:
    return TracetuneError(
        f"the live agent loop cannot sandbox tool commands: {problem}",
        hint=f'{unusable_hint(problem)}; or set {SANDBOX_KEY} = "auto" (the model then gets no shell, only the '
             f'workspace tools), or {SANDBOX_KEY} = "unsandboxed" to run its commands without isolation',
    )


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name looks like it holds a credential (``*_TOKEN``, ``AWS_*``, ...)."""
    return bool(_SECRET_NAME.search(name))


def scrub_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the variables whose names look like credentials."""
    return {k: v for k, v in env.items() if not is_secret_name(k)}


def child_env(workspace: Path) -> dict[str, str]:
    """The whole environment of a command: built from scratch, nothing inherited."""
    return scrub_env({"PATH": _SAFE_PATH, "HOME": str(workspace), "LANG": "C.UTF-8", "TMPDIR": "/tmp",
                      "PYTHONDONTWRITEBYTECODE": "1"})


def _bwrap_args(bwrap: str, workspace: Path) -> list[str]:
    ws = str(workspace)
    args = [*bwrap_system_args(bwrap), "--bind", ws, ws, "--chdir", ws]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    return args


def _rlimits(limits: SandboxLimits, plain: bool) -> dict[str, int]:
    """Per-process limits; a plain process also gets a CPU-time cap (generous: its threads add up), since
    one that leaves its session survives the kill at the time limit (bubblewrap's PID namespace does not)."""
    out = {"as": limits.memory_mb * 1024 * 1024, "fsize": limits.max_file_mb * 1024 * 1024, "nproc": limits.max_processes}
    return {**out, "cpu": int(limits.timeout_s * 4) + 5} if plain else out


def _prlimit_args(limits: SandboxLimits, plain: bool) -> list[str]:
    prlimit = shutil.which("prlimit", path=_SAFE_PATH)
    if not prlimit:
        return []
    return [prlimit, *(f"--{name}={value}" for name, value in _rlimits(limits, plain).items()), "--"]


def _set_rlimits(limits: SandboxLimits):
    """A ``preexec_fn`` setting the limits itself, for hosts without ``prlimit`` (plain processes only)."""
    import resource

    names = {"as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE, "nproc": resource.RLIMIT_NPROC, "cpu": resource.RLIMIT_CPU}
    values = _rlimits(limits, plain=True)

    def apply() -> None:
        for name, value in values.items():
            resource.setrlimit(names[name], (value, value))

    return apply


def build_argv(command: str, workspace: Path, limits: SandboxLimits, bwrap: str | None) -> list[str]:
    """The argv of one command: under ``bwrap`` (the executable's path) or, when None, as a plain process."""
    shell = shutil.which("bash", path=_SAFE_PATH)
    if shell is None:
        raise TracetuneError(f"bash is not installed (looked in {_SAFE_PATH})")
    inner = _prlimit_args(limits, plain=bwrap is None) + [shell, "-c", command]
    if bwrap is None:
        return inner
    return _bwrap_args(bwrap, workspace) + ["--clearenv"] + _setenv_args(workspace) + inner


def _setenv_args(workspace: Path) -> list[str]:
    out: list[str] = []
    for key, value in child_env(workspace).items():
        out += ["--setenv", key, value]
    return out


def run_command(command: str, workspace: str | Path, limits: SandboxLimits = SandboxLimits(), *, confined: bool) -> SandboxResult:
    """Run ``command`` with bash in ``workspace``: in bubblewrap when ``confined`` (refused where unusable), else plain.

    Never raises for the command's own failure.
    """
    workspace = Path(workspace).resolve()
    if not workspace.is_dir():
        raise TracetuneError(f"sandbox workspace {workspace} is not a directory")
    bwrap = bwrap_path() if confined else None  # the path probed is the path run
    if confined and (problem := _probe(bwrap)) is not None:
        raise _refusal(problem)
    return _run(command, workspace, limits, bwrap=bwrap)


def run_sandboxed(
    command: str,
    workspace: str | Path,
    limits: SandboxLimits = SandboxLimits(),
    *,
    allow_unsandboxed: bool = False,
) -> SandboxResult:
    """Like ``run_command``: in bubblewrap where it works, else plain when ``allow_unsandboxed`` (trusted commands only)."""
    return run_command(command, workspace, limits, confined=require_sandbox(allow_unsandboxed))


def _run(command: str, workspace: Path, limits: SandboxLimits, *, bwrap: str | None) -> SandboxResult:
    argv = build_argv(command, workspace, limits, bwrap)
    plain_without_prlimit = bwrap is None and not argv[0].endswith("prlimit")
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=workspace,
        env=child_env(workspace),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_set_rlimits(limits) if plain_without_prlimit else None,
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
        sandboxed=bwrap is not None,
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
