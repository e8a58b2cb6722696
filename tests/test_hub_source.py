"""Trace sources on the Hub, against a local stand-in for the Hub's HTTP API."""

from __future__ import annotations

import gzip

import pytest

from hubstub import HubStub, StubRepo
from tracetune.errors import TracetuneError
from tracetune.readers.hub import parse_hub_uri, resolve_hub_source

SHA_MAIN = "1" * 40
SHA_V1 = "2" * 40


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture
def stub():
    with HubStub() as hub:
        hub.repos["alice/traces"] = StubRepo(
            {
                "pi/s1.jsonl": b'{"type":"session","version":3,"id":"s1"}\n',
                "pi/deep/s2.jsonl.gz": gzip.compress(b'{"type":"session","version":3,"id":"s2"}\n'),
                "claude/c.jsonl": b"{}\n",
                "README.md": b"# traces",
                "data/train.parquet": b"PAR1",
            },
            sha=SHA_MAIN,
            revisions={"v1": SHA_V1},
        )
        hub.repos["org/gated"] = StubRepo({"a.jsonl": b"{}\n"}, gated=True)
        yield hub


def test_parse_uri_forms():
    assert parse_hub_uri("hf://datasets/a/b") .repo_id == "a/b"
    src = parse_hub_uri("hf://datasets/badlogicgames/pi-mono@v2/sessions/x")
    assert (src.repo_id, src.revision, src.subdir) == ("badlogicgames/pi-mono", "v2", "sessions/x")
    assert src.uri == "hf://datasets/badlogicgames/pi-mono@v2/sessions/x"
    for bad in ("hf://models/a/b", "hf://datasets/onlyname", "datasets/a/b"):
        with pytest.raises(TracetuneError, match="not a Hub dataset address"):
            parse_hub_uri(bad)


def test_downloads_only_session_files_and_shards_and_pins_commit(stub, tmp_path):
    got = resolve_hub_source("hf://datasets/alice/traces", cache_dir=tmp_path, endpoint=stub.endpoint, token=False)
    names = sorted(p.relative_to(got.local_path).as_posix() for p in got.local_path.rglob("*") if p.is_file())
    assert names == ["claude/c.jsonl", "data/train.parquet", "pi/deep/s2.jsonl.gz", "pi/s1.jsonl"]
    assert got.commit_sha == SHA_MAIN and got.files == 4
    assert not any("README" in path for _, path in stub.requests)


def test_subdir_and_revision_pin(stub, tmp_path):
    got = resolve_hub_source("hf://datasets/alice/traces@v1/pi", cache_dir=tmp_path, endpoint=stub.endpoint, token=False)
    assert got.commit_sha == SHA_V1 and got.revision == "v1"
    assert sorted(p.name for p in got.local_path.rglob("*.jsonl*")) == ["s1.jsonl", "s2.jsonl.gz"]
    assert got.to_dict()["commit_sha"] == SHA_V1


def test_cache_is_reused_without_network(stub, tmp_path):
    first = resolve_hub_source("hf://datasets/alice/traces/pi", cache_dir=tmp_path, endpoint=stub.endpoint, token=False)
    downloads = [r for r in stub.requests if r[0] == "GET" and "/resolve/" in r[1]]
    stub.fail_next["/"] = 10_000  # the Hub now answers 503 to everything
    again = resolve_hub_source("hf://datasets/alice/traces/pi", cache_dir=tmp_path, endpoint=stub.endpoint, token=False)
    assert again.commit_sha == first.commit_sha and again.local_path == first.local_path
    assert [r for r in stub.requests if r[0] == "GET" and "/resolve/" in r[1]] == downloads


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("hf://datasets/org/gated", "gated dataset"),
        ("hf://datasets/alice/missing", "was not found"),
        ("hf://datasets/alice/traces@nope", "has no revision 'nope'"),
        ("hf://datasets/alice/traces/empty-dir", "holds no session files"),
    ],
)
def test_errors_name_the_repo_and_what_to_do(stub, tmp_path, uri, message):
    with pytest.raises(TracetuneError, match=message) as info:
        resolve_hub_source(uri, cache_dir=tmp_path, endpoint=stub.endpoint, token=False)
    assert info.value.hint


def test_no_network_and_nothing_cached(tmp_path):
    with pytest.raises(TracetuneError, match="cannot reach the Hub") as info:
        resolve_hub_source("hf://datasets/alice/traces", cache_dir=tmp_path, endpoint="http://127.0.0.1:9", token=False)
    assert "alice/traces" in info.value.message
