"""Child processes: signalling a process group, and the bubblewrap arguments every sandbox starts with.

tracetune starts each child (sandboxed command, pi, an inference server) in a
session of its own (``start_new_session=True``), so signalling its process
group reaches everything it spawned.
"""

from __future__ import annotations

import os
import signal
import subprocess

SYSTEM_DIRS = ("/usr", "/etc", "/opt")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32")


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to ``proc``'s process group (nothing if the group is already gone)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def stop_group(proc: subprocess.Popen, grace_s: float, kill_wait_s: float | None = None) -> None:
    """SIGTERM the group; SIGKILL it if ``proc`` has not exited after ``grace_s``, then wait ``kill_wait_s`` (None: for ever)."""
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=kill_wait_s)


def bwrap_system_args(bwrap: str = "bwrap") -> list[str]:
    """``bwrap`` (the executable found at detection) with the system folders bound read-only, their links,
    and fresh /dev, /proc and /tmp."""
    args = [bwrap]
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    return args + ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
