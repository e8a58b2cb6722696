"""Trace sources on the Hugging Face Hub: ``hf://datasets/OWNER/NAME[@REVISION][/SUBDIR]``.

Only session files (``*.jsonl``, ``*.jsonl.gz``) and the shards of a trace
dataset (``*.parquet`` as ``push_to_hub`` writes them, ``*.arrow`` of a
``save_to_disk`` folder; see ``datasets_source``) are downloaded, with
``huggingface_hub.snapshot_download`` into the normal Hub cache, so a second
run reuses them. The resolved commit sha is returned so the run manifest can
pin exactly what was read. Every failure (gated or missing repo, unknown
revision, no token, no network and nothing cached) becomes one
``TracetuneError`` naming the repo and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tracetune.errors import TracetuneError

HF_SCHEME = "hf://"
_URI = re.compile(
    r"^hf://datasets/(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[^/]+))?(?:/(?P<sub>.+?))?/?$"
)
SESSION_PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.parquet", "*.arrow")
SOURCE_SUFFIXES = tuple(p.removeprefix("*") for p in SESSION_PATTERNS)


def is_hub_uri(spec: str | Path) -> bool:
    """Whether ``spec`` names a Hub dataset (``hf://...``) rather than a local path."""
    return str(spec).startswith(HF_SCHEME)


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    revision: str | None = None
    subdir: str | None = None

    @property
    def uri(self) -> str:
        """The ``hf://datasets/...`` address of this source, revision and subfolder included."""
        rev = f"@{self.revision}" if self.revision else ""
        sub = f"/{self.subdir}" if self.subdir else ""
        return f"hf://datasets/{self.repo_id}{rev}{sub}"

    def allow_patterns(self) -> list[str]:
        """Glob patterns of the session files to download, limited to the subfolder if one is set."""
        prefix = f"{self.subdir.strip('/')}/" if self.subdir else ""
        return [f"{prefix}{p}" for p in SESSION_PATTERNS] + [f"{prefix}**/{p}" for p in SESSION_PATTERNS]


@dataclass(frozen=True)
class ResolvedSource:
    """A Hub source downloaded to the local cache, pinned to a commit."""

    uri: str
    repo_id: str
    revision: str | None
    commit_sha: str
    local_path: Path  # the snapshot folder (or its subdir) holding the session files
    files: int

    def to_dict(self) -> dict[str, object]:
        """This source as a JSON-ready dict (address, repo, revision, commit and files)."""
        return {
            "uri": self.uri,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit_sha": self.commit_sha,
            "files": self.files,
        }


def parse_hub_uri(spec: str) -> HubSource:
    """The ``HubSource`` an ``hf://datasets/OWNER/NAME[@REV][/SUBDIR]`` address names; ``TracetuneError`` otherwise."""
    match = _URI.match(spec.strip())
    if not match:
        raise TracetuneError(
            f"not a Hub dataset address: {spec!r}",
            hint="write hf://datasets/OWNER/NAME, optionally @REVISION and /SUBDIR",
        )
    return HubSource(match["repo"], match["rev"], match["sub"])


def resolve_hub_source(
    spec: str,
    *,
    token: str | None = None,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
) -> ResolvedSource:
    """Download the session files of ``spec`` (or reuse the cache) and pin the commit."""
    from huggingface_hub import snapshot_download

    source = parse_hub_uri(spec)
    try:
        folder = snapshot_download(
            source.repo_id,
            repo_type="dataset",
            revision=source.revision,
            allow_patterns=source.allow_patterns(),
            cache_dir=cache_dir,
            token=token,
            endpoint=endpoint,
        )
    except Exception as exc:  # every hub failure becomes one clear, actionable error
        raise _explain(source, exc) from exc
    root = Path(folder)
    local = root / source.subdir if source.subdir else root
    if not local.is_dir():
        raise TracetuneError(
            f"{source.uri}: the folder '{source.subdir}' holds no session files at this revision",
            hint="check the path inside the dataset repo (files must end in .jsonl, .jsonl.gz, .parquet or .arrow)",
        )
    files = sum(1 for p in local.rglob("*") if p.name.endswith(SOURCE_SUFFIXES))
    if files == 0:
        raise TracetuneError(
            f"{source.uri}: no session files (*.jsonl, *.jsonl.gz) or dataset shards (*.parquet, *.arrow) in this dataset",
            hint="point at a dataset (or subfolder) of raw agent session files, or of rows with a 'trace' column",
        )
    return ResolvedSource(source.uri, source.repo_id, source.revision, root.name, local, files)


def _explain(source: HubSource, exc: Exception) -> TracetuneError:
    from huggingface_hub import errors

    repo = source.repo_id
    if isinstance(exc, errors.GatedRepoError):
        return TracetuneError(
            f"{repo} is a gated dataset and this token has no access to it",
            hint=f"accept its conditions on https://huggingface.co/datasets/{repo} and set HF_TOKEN",
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return TracetuneError(
            f"{repo} has no revision '{source.revision}'",
            hint="use a branch, tag or commit sha that exists in the dataset repo",
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return TracetuneError(
            f"dataset {repo} was not found (or it is private and no valid token was given)",
            hint="check the name; for a private dataset set HF_TOKEN or run `hf auth login`",
        )
    if isinstance(exc, errors.LocalEntryNotFoundError):
        return TracetuneError(
            f"cannot reach the Hub to download {repo}, and it is not in the local cache",
            hint="connect to the network once (the files are then cached), or pass a local path",
        )
    if isinstance(exc, errors.HfHubHTTPError):
        return TracetuneError(f"the Hub refused to serve {repo}: {exc}", hint="check the token and the repo id")
    return TracetuneError(f"could not download {repo}: {exc}", hint="check the network and the repo id")
