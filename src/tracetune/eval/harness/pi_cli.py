"""Drive the real pi coding agent CLI (``pi -p``) against any OpenAI-compatible endpoint.

``run_pi_task`` runs one task: pi works in the task's workspace with its own
tools (read, bash, edit, write, ...), asking the served model (a tuned student
behind ``transformers serve`` or ``vllm serve``) for every step, and writes a
pi session file, which tracetune reads back with its own pi reader.

pi never sees the user's configuration: HOME and ``PI_CODING_AGENT_DIR``
point at a fresh scratch folder holding only a ``models.json`` that defines
one custom provider (``tracetune``, API ``openai-completions``); the
environment is cleared (no inherited API keys); startup network calls are off
(``--offline``); context files, extensions, skills, prompt templates and themes
are not loaded. pi's session files are written to the scratch folder, copied
out, and the scratch folder is deleted. Where bubblewrap exists, pi also runs
in a sandbox whose only network is the model endpoint (see ``pi_isolation``).

The workspace itself is pi's to change: pass a copy of the task, never a
user's folder. The instruction goes in on stdin, so no text is taken for a
flag or an ``@file``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tracetune.conversation.types import ReadWarning, Session
from tracetune.errors import TracetuneError
from tracetune.eval.harness import pi_isolation as iso
from tracetune.engines.pi_provider import API_KEY_ENV, PROVIDER, provider_entry
from tracetune.engines.procs import signal_group

PACKAGE = Path("node_modules") / "@mariozechner" / "pi-coding-agent"
INSTALL_HINT = "bash scripts/install-pi-oracle.sh (needs node and npm), or pass pi_bin=PATH/TO/dist/cli.js"


@dataclass(frozen=True)
class PiRunResult:
    exit_code: int | None  # None when pi was killed at the time limit
    stdout: str
    stderr: str
    timed_out: bool
    sandboxed: bool
    seconds: float
    session_paths: tuple[Path, ...]  # copies of the session files pi wrote
    sessions: tuple[Session, ...]
    read_errors: tuple[str, ...] = ()
    warnings: tuple[ReadWarning, ...] = field(default=())


def find_pi(pi_bin: str | Path | None = None) -> tuple[str, Path]:
    """``(node, cli.js)``: the pi CLI given, ``$TRACETUNE_PI_BIN``, ``pi`` on PATH, or this checkout's install."""
    node = shutil.which("node")
    if node is None:
        raise TracetuneError("the pi harness needs node (Node.js 20+), which is not installed", hint=INSTALL_HINT)
    if pi_bin is not None:
        cli = Path(pi_bin).expanduser().resolve()
        if not (cli.is_file() and cli.suffix in (".js", ".mjs")):
            raise TracetuneError(f"pi CLI not found at {pi_bin} (expected pi's dist/cli.js)", hint=INSTALL_HINT)
        return str(Path(node).resolve()), cli
    candidates = [os.environ.get("TRACETUNE_PI_BIN"), shutil.which("pi")]
    candidates += [Path(p) / ".cache" / "pi-oracle" / PACKAGE / "dist" / "cli.js" for p in _roots()]
    for candidate in candidates:
        cli = Path(candidate).resolve() if candidate else None
        if cli is not None and cli.is_file() and cli.suffix in (".js", ".mjs"):
            return str(Path(node).resolve()), cli
    raise TracetuneError("the pi coding agent CLI is not installed", hint=INSTALL_HINT)


def _roots() -> list[Path]:
    return [Path.cwd(), Path(__file__).resolve().parents[4]]


def models_json(base_url: str, model_name: str, *, max_tokens: int, context_window: int,
                compat: dict | None = None) -> dict:
    """pi's ``models.json`` with one custom OpenAI-compatible provider holding one model."""
    provider = provider_entry(base_url, model_name, max_tokens=max_tokens, context_window=context_window,
                              compat=compat)
    return {"providers": {PROVIDER: provider}}


def pi_args(model_name: str, session_dir: Path, tools: list[str] | None, system_prompt: str | None = None) -> list[str]:
    """pi CLI arguments for one offline print-mode run of ``model_name``, extensions, skills and context files off."""
    args = ["-p", "--provider", PROVIDER, "--model", model_name, "--session-dir", str(session_dir), "--offline",
            "--no-extensions", "--no-skills", "--no-prompt-templates", "--no-themes", "--no-context-files"]
    args += ["--system-prompt", system_prompt] if system_prompt is not None else []
    return args + (["--tools", ",".join(tools)] if tools is not None else [])


def run_pi_task(
    task_workspace: str | Path,
    instruction: str,
    endpoint_url: str,
    model_name: str,
    *,
    timeout: float,
    pi_bin: str | Path | None = None,
    sessions_out: str | Path | None = None,
    api_key: str | None = None,
    max_tokens: int = 1024,
    context_window: int = 32768,
    tools: list[str] | None = None,
    system_prompt: str | None = None,
    compat: dict | None = None,
    sandbox: bool | None = None,
) -> PiRunResult:
    """Run ``pi -p`` on one task in ``task_workspace`` against ``endpoint_url`` (``http://HOST:PORT/v1``).

    ``sandbox``: None uses bubblewrap where installed, True requires it, False
    runs pi as a plain process (scratch HOME, cleared environment, no network
    isolation). Session files are copied to ``sessions_out`` (a new temp
    folder by default) and read with tracetune's pi reader. ``system_prompt``
    replaces pi's own (``--system-prompt``), e.g. with the prompt the student
    was trained on; ``tools`` is pi's ``--tools`` allowlist.
    """
    workspace = Path(task_workspace).resolve()
    if not workspace.is_dir():
        raise TracetuneError(f"{workspace}: the task workspace is not a folder")
    node, cli = find_pi(pi_bin)
    sandboxed = _want_sandbox(sandbox, endpoint_url)
    scratch = Path(tempfile.mkdtemp(prefix="tracetune-pi-"))
    try:
        for name in ("home", "agent", "sessions", "tmp"):
            (scratch / name).mkdir()
        agent, sessions = scratch / "agent", scratch / "sessions"
        env = _pi_env(node, scratch, sandboxed, api_key)
        url = _inner_url(endpoint_url) if sandboxed else endpoint_url
        spec = models_json(url, model_name, max_tokens=max_tokens, context_window=context_window, compat=compat)
        (agent / "models.json").write_text(json.dumps(spec, indent=2), "utf-8")
        args = pi_args(model_name, sessions, tools, system_prompt)
        start = time.monotonic()
        if sandboxed:
            code, out, err, timed_out = _run_sandboxed(node, cli, args, workspace, scratch, env, endpoint_url,
                                                       instruction, timeout)
        else:
            code, out, err, timed_out = _run([node, str(cli), *args], workspace, {**env}, instruction, timeout)
        seconds = time.monotonic() - start
        copies = _copy_sessions(sessions, sessions_out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    read = _read(copies)
    return PiRunResult(code, out, err, timed_out, sandboxed, seconds, tuple(copies), *read)


def _pi_env(node: str, scratch: Path, sandboxed: bool, api_key: str | None) -> dict[str, str]:
    """pi's whole environment: nothing inherited, everything pointing into the scratch folder."""
    return {
        "PATH": f"{Path(node).parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "NO_COLOR": "1",
        "HOME": str(scratch / "home"), "PI_CODING_AGENT_DIR": str(scratch / "agent"),
        "TMPDIR": "/tmp" if sandboxed else str(scratch / "tmp"),
        "PI_OFFLINE": "1", "PI_SKIP_VERSION_CHECK": "1", "PI_TELEMETRY": "0",
        API_KEY_ENV: api_key or "tracetune-local",
    }


def _want_sandbox(sandbox: bool | None, endpoint_url: str) -> bool:
    plain_http = urllib.parse.urlsplit(endpoint_url).scheme == "http"
    if sandbox is False:
        return False
    if sandbox is None:
        return iso.bwrap_path() is not None and plain_http
    if iso.bwrap_path() is None:
        raise TracetuneError("sandbox=True needs bubblewrap (bwrap), which is not installed",
                             hint="apt-get install bubblewrap, or pass sandbox=False")
    if not plain_http:
        raise TracetuneError("the pi sandbox relays plain http:// endpoints only", hint="pass sandbox=False")
    return True


def _inner_url(endpoint_url: str) -> str:
    parts = urllib.parse.urlsplit(endpoint_url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{_inner_port(parts)}"))


def _inner_port(parts: urllib.parse.SplitResult) -> int:
    """The endpoint's port inside the sandbox; a high port when it is privileged (capabilities are dropped)."""
    return _port(parts) if _port(parts) >= 1024 else 8080


def _port(parts: urllib.parse.SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _run_sandboxed(node, cli, args, workspace, scratch, env, endpoint_url, instruction, timeout):
    parts = urllib.parse.urlsplit(endpoint_url)
    launcher = scratch / "launch.mjs"
    launcher.write_text(iso.LAUNCHER_JS, "utf-8")
    sock = scratch / "endpoint.sock"
    env = {**env, "TRACETUNE_RELAY_SOCKET": str(sock), "TRACETUNE_RELAY_PORT": str(_inner_port(parts)),
           "TRACETUNE_PI_CLI": str(cli)}
    read_only = [Path(node).parent, _node_modules(cli)]
    prefix = iso.bwrap_argv(workspace=workspace, scratch=scratch, read_only=read_only, env=env)
    with iso.LoopbackRelay(sock, parts.hostname or "127.0.0.1", _port(parts)):
        return _run([*prefix, node, str(launcher), *args], workspace, {"PATH": env["PATH"]}, instruction, timeout)


def _node_modules(cli: Path) -> Path:
    """The outermost ``node_modules`` above pi's CLI (pi's dependencies live beside it)."""
    found = [p for p in cli.parents if p.name == "node_modules"]
    return found[-1] if found else cli.parents[1]


def _run(argv: list[str], cwd: Path, env: dict, stdin: str, timeout: float):
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        return proc.returncode, out, err, False
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err, True


def _copy_sessions(session_dir: Path, sessions_out: str | Path | None) -> list[Path]:
    found = sorted(p for p in session_dir.rglob("*.jsonl") if p.is_file())
    if not found:
        return []
    out = Path(sessions_out) if sessions_out else Path(tempfile.mkdtemp(prefix="tracetune-pi-sessions-"))
    out.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in found:
        target = out / path.name
        shutil.copy2(path, target)
        copies.append(target)
    return copies


def _read(paths: list[Path]) -> tuple[tuple[Session, ...], tuple[str, ...], tuple[ReadWarning, ...]]:
    from tracetune.readers import read_paths

    if not paths:
        return (), (), ()
    result = read_paths(paths, fmt="pi")
    return tuple(result.sessions), tuple(f"{e.path}: {e.message}" for e in result.errors), tuple(result.warnings)
