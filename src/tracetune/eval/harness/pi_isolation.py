"""Run the pi CLI inside bubblewrap with no network but one relayed model endpoint.

What it covers:

- **Filesystem**: pi sees the system directories (``/usr``, ``/etc``,
  ``/opt`` and the ``/bin``, ``/lib`` links), node and the pi package
  read-only, the task's workspace and its own scratch folder (temp HOME, pi
  agent dir, session dir) read-write, a fresh ``/tmp``, and nothing else: the
  user's home, ``~/.pi`` and the rest of the host are not mounted.
- **Network**: a new network namespace (``--unshare-net``). The one way out is
  the model endpoint: inside, a small node launcher listens on
  ``127.0.0.1:PORT`` and forwards each connection over a Unix socket in the
  scratch folder; outside, ``LoopbackRelay`` forwards that socket to the real
  endpoint. Every other connection (the internet, other host ports) fails.
- **Processes**: new PID namespace, ``--die-with-parent``, ``--new-session``,
  every capability dropped; the caller's time limit kills the whole tree.

Not covered: plain ``http://`` endpoints only (a relayed ``https://`` URL
would fail certificate checks; run those with ``sandbox=False``); no
memory/CPU quota; not a security boundary against a determined attacker.
"""

from __future__ import annotations

import shutil
import socket
import socketserver
import threading
from pathlib import Path

from tracetune.engines.procs import SYSTEM_DIRS, bwrap_system_args
from tracetune.errors import TracetuneError


#: Node entry point run inside the sandbox: a TCP -> Unix socket relay, then pi's own CLI in the same process.
LAUNCHER_JS = """\
import net from "node:net";
import { pathToFileURL } from "node:url";
const sock = process.env.TRACETUNE_RELAY_SOCKET;
const port = Number(process.env.TRACETUNE_RELAY_PORT);
const server = net.createServer((client) => {
  const upstream = net.connect(sock);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
  client.unref();
  upstream.unref();
});
server.listen(port, "127.0.0.1", async () => {
  server.unref();
  await import(pathToFileURL(process.env.TRACETUNE_PI_CLI).href);
});
"""


def bwrap_path() -> str | None:
    """The bubblewrap executable on PATH, or None."""
    return shutil.which("bwrap")


def bwrap_argv(*, workspace: Path, scratch: Path, read_only: list[Path], env: dict[str, str]) -> list[str]:
    """The ``bwrap ...`` prefix: system dirs and ``read_only`` read-only, workspace and scratch writable.

    The executable is the one ``bwrap_path`` found, run by its full path (pi's own PATH may not hold it).
    """
    found = bwrap_path()
    if found is None:
        raise TracetuneError("bubblewrap (bwrap) is not installed", hint="apt-get install bubblewrap")
    args = bwrap_system_args(found)
    for path in read_only:
        if not any(str(path).startswith(d + "/") for d in SYSTEM_DIRS):
            args += ["--ro-bind", str(path), str(path)]
    for path in (scratch, workspace):
        args += ["--bind", str(path), str(path)]
    args += ["--chdir", str(workspace), "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


class _Pump(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        host, port = self.server.target  # type: ignore[attr-defined]
        try:
            upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
        back.start()
        _copy(self.request, upstream)
        back.join()
        upstream.close()


def _copy(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class LoopbackRelay:
    """Forward connections on a Unix socket to ``(host, port)``, in a background thread."""

    def __init__(self, socket_path: Path, host: str, port: int):
        self.socket_path = Path(socket_path)
        self._server = _UnixServer(str(self.socket_path), _Pump)
        self._server.target = (host, port)  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "LoopbackRelay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)
