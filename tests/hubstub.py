"""A local stand-in for the Hugging Face Hub HTTP API, for tests.

It speaks the few endpoints tracetune reaches (dataset info, tree, file
resolve, whoami, Jobs) on 127.0.0.1, so the real ``huggingface_hub`` client
code runs unchanged and only the network peer is replaced. State lives in
plain dicts a test can inspect and script (gated repos, transient errors,
job stages, logs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlparse

from localhttp import LocalServer, QuietHandler


@dataclass
class StubRepo:
    files: dict[str, bytes]
    sha: str = "a" * 40
    gated: bool = False
    private: bool = False
    revisions: dict[str, str] = field(default_factory=dict)  # branch/tag -> sha


@dataclass
class StubJob:
    id: str
    spec: dict
    stages: list[str]  # stages reported by successive inspect calls; the last one sticks
    logs: list[str]
    cancelled: bool = False
    inspects: int = 0


class HubStub(LocalServer):
    def __init__(self, token: str = "hf_stubtoken_0123456789"):
        self.token = token
        self.repos: dict[str, StubRepo] = {}
        self.jobs: dict[str, StubJob] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_next: dict[str, int] = {}  # path prefix -> number of 503s still to send
        self.job_stages: list[str] = ["RUNNING", "COMPLETED"]
        self.job_logs: list[str] = ["step 1", "step 2"]
        self.on_job_complete = None  # called once with the StubJob when it first reports COMPLETED
        super().__init__(self._handler())

    def __enter__(self) -> "HubStub":
        """Serve, and let the Hub client reach this loopback stub even where HF_HUB_OFFLINE is set (CI sets it)."""
        import huggingface_hub.constants as hub_constants

        self._offline = hub_constants.HF_HUB_OFFLINE
        hub_constants.HF_HUB_OFFLINE = False
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        import huggingface_hub.constants as hub_constants

        super().__exit__(*exc)
        hub_constants.HF_HUB_OFFLINE = self._offline

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _handler(self):
        stub = self

        class Handler(QuietHandler):
            def do_GET(self):
                stub._dispatch(self, "GET")

            def do_HEAD(self):
                stub._dispatch(self, "HEAD")

            def do_POST(self):
                stub._dispatch(self, "POST")

        return Handler

    # -- routing -------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        path = unquote(url.path)
        self.requests.append((method, path))
        for prefix, count in list(self.fail_next.items()):
            if path.startswith(prefix) and count > 0:
                self.fail_next[prefix] = count - 1
                return self._send(h, 503, {"error": "transient"})
        authed = h.headers.get("authorization") == f"Bearer {self.token}"
        parts = path.strip("/").split("/")
        if path == "/api/whoami-v2":
            return self._send(h, 200, {"name": "alice", "type": "user"}) if authed else self._send(h, 401, {"error": "Invalid credentials"})
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo(h, authed)
        if parts[:2] == ["api", "datasets"] and len(parts) >= 6 and parts[4] in ("preupload", "commit"):
            return self._commit(h, parts, authed)
        if parts[:2] == ["api", "datasets"] and len(parts) >= 6:
            return self._dataset_api(h, parts, authed)
        if parts[:1] == ["datasets"] and len(parts) >= 6 and parts[3] == "resolve":
            return self._resolve(h, method, parts, authed)
        if parts[:2] == ["api", "jobs"]:
            return self._jobs(h, method, parts, authed)
        self._send(h, 404, {"error": f"no route {path}"})

    def _repo(self, h, repo_id: str, authed: bool, rev: str | None):
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authed):
            self._send(h, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return None, None
        if repo.gated and not authed:
            self._send(h, 401, {"error": "Access to this repo is restricted"}, {"X-Error-Code": "GatedRepo"})
            return None, None
        if rev in (None, "main", repo.sha) or rev in repo.revisions.values():
            sha = repo.sha if rev in (None, "main") else rev
        else:
            sha = repo.revisions.get(rev)
        if sha is None:
            self._send(h, 404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
            return None, None
        return repo, sha

    def _body(self, h) -> bytes:
        return h.rfile.read(int(h.headers.get("content-length", 0)))

    def _create_repo(self, h, authed):
        body = json.loads(self._body(h) or b"{}")
        if not authed:
            return self._send(h, 401, {"error": "Invalid credentials"})
        repo_id = f"{body.get('organization') or 'alice'}/{body['name']}"
        if repo_id in self.repos:
            return self._send(h, 409, {"error": "You already created this repo", "url": f"{self.endpoint}/datasets/{repo_id}"})
        self.repos[repo_id] = StubRepo({}, private=body.get("private", body.get("visibility") == "private"))
        self._send(h, 200, {"url": f"{self.endpoint}/datasets/{repo_id}"})

    def _commit(self, h, parts, authed):
        repo_id = f"{parts[2]}/{parts[3]}"
        repo = self.repos.get(repo_id)
        body = self._body(h)
        if not authed or repo is None:
            return self._send(h, 404 if authed else 401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if parts[4] == "preupload":
            files = json.loads(body)["files"]
            return self._send(h, 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        import base64

        for line in body.decode().splitlines():
            item = json.loads(line)
            if item.get("key") == "file":
                value = item["value"]
                repo.files[value["path"]] = base64.b64decode(value["content"])
        repo.sha = hashlib.sha1(json.dumps(sorted(repo.files)).encode() + body).hexdigest()
        self._send(h, 200, {"commitUrl": f"{self.endpoint}/datasets/{repo_id}/commit/{repo.sha}", "commitOid": repo.sha})

    def _dataset_api(self, h, parts, authed):
        repo_id, kind, rev = f"{parts[2]}/{parts[3]}", parts[4], unquote(parts[5])
        repo, sha = self._repo(h, repo_id, authed, rev)
        if repo is None:
            return
        if kind == "revision":
            siblings = [{"rfilename": name} for name in sorted(repo.files)]
            return self._send(h, 200, {"id": repo_id, "sha": sha, "private": repo.private, "siblings": siblings})
        if kind == "tree":
            entries = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in sorted(repo.files.items())
            ]
            return self._send(h, 200, entries)
        self._send(h, 404, {"error": "unknown dataset api"})

    def _resolve(self, h, method, parts, authed):
        repo_id, rev, name = f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:])
        repo, sha = self._repo(h, repo_id, authed, rev)
        if repo is None:
            return
        if name not in repo.files:
            return self._send(h, 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        data = repo.files[name]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
        self._send_bytes(h, 200, data if method == "GET" else b"", headers, length=len(data))

    def _jobs(self, h, method, parts, authed):
        if not authed:
            return self._send(h, 401, {"error": "Invalid credentials"})
        namespace = parts[2] if len(parts) > 2 else None
        if method == "POST" and len(parts) == 3:
            body = json.loads(h.rfile.read(int(h.headers.get("content-length", 0))) or b"{}")
            job = StubJob(f"job{len(self.jobs) + 1:04d}", body, list(self.job_stages), list(self.job_logs))
            self.jobs[job.id] = job
            return self._send(h, 200, self._job_info(job, namespace))
        if method == "GET" and len(parts) == 3:
            return self._send(h, 200, [self._job_info(j, namespace) for j in self.jobs.values()])
        job = self.jobs.get(parts[3]) if len(parts) > 3 else None
        if job is None:
            return self._send(h, 404, {"error": "Job not found"})
        if len(parts) == 4:
            job.inspects += 1
            return self._send(h, 200, self._job_info(job, namespace))
        if parts[4] == "cancel":
            job.cancelled = True
            return self._send(h, 200, {})
        if parts[4] == "logs":
            body = "".join(f"data: {json.dumps({'data': line, 'timestamp': '2026-01-01T00:00:00Z'})}\n\n" for line in job.logs)
            return self._send_bytes(h, 200, body.encode(), {"Content-Type": "text/event-stream"})
        self._send(h, 404, {"error": "unknown job route"})

    def _job_info(self, job: StubJob, namespace: str | None) -> dict:
        if job.cancelled:
            stage = "CANCELED"
        else:
            stage = job.stages[min(job.inspects, len(job.stages) - 1)]
        if stage == "COMPLETED" and self.on_job_complete and not getattr(job, "_done", False):
            job._done = True
            self.on_job_complete(job)
        spec = job.spec
        return {
            "id": job.id,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "dockerImage": spec.get("dockerImage"),
            "spaceId": spec.get("spaceId"),
            "command": spec.get("command"),
            "arguments": spec.get("arguments", []),
            "environment": spec.get("environment", {}),
            "secrets": sorted(spec.get("secrets", {}) or {}),
            "flavor": spec.get("flavor"),
            "labels": spec.get("labels"),
            "status": {"stage": stage, "message": None},
            "owner": {"id": "1", "name": namespace or "alice", "type": "user"},
        }

    # -- responses -----------------------------------------------------------------------
    def _send(self, h, code: int, payload, headers: dict | None = None) -> None:
        self._send_bytes(h, code, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send_bytes(self, h, code: int, body: bytes, headers: dict, length: int | None = None) -> None:
        h.send_response(code)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        if body:
            h.wfile.write(body)
