"""manifest.json: versioned, header readable alone, written atomically."""

from __future__ import annotations

import json

import pytest

from tracetune.errors import TracetuneError
from tracetune.pipeline.files import hash_tree, staging_dir
from tracetune.pipeline.manifest import (
    MANIFEST_VERSION,
    Manifest,
    ManifestHeader,
    library_versions,
    read_manifest,
    write_manifest,
)
from tracetune.util.files import atomic_write_text


def test_manifest_round_trips_and_header_reads_alone(tmp_path):
    m = Manifest(name="r1", config={"name": "r1"}, inputs={"traces": "abc"}, libraries=library_versions())
    m.stage("prepare").status = "done"
    m.stage("prepare").outputs = {"prepare": "f00"}
    write_manifest(tmp_path, m)
    full = read_manifest(tmp_path)
    assert isinstance(full, Manifest) and full.stages["prepare"].outputs == {"prepare": "f00"}
    header = read_manifest(tmp_path / "manifest.json", header_only=True)
    assert type(header) is ManifestHeader
    assert header.version == MANIFEST_VERSION and header.stage_status == {"prepare": "done"}
    assert "torch" in full.libraries and "pydantic" in full.libraries


def test_header_fields_come_first_in_the_file(tmp_path):
    write_manifest(tmp_path, Manifest(name="r"))
    keys = list(json.loads((tmp_path / "manifest.json").read_text()))
    assert keys[:3] == ["version", "name", "status"]


def test_newer_manifest_version_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"version": MANIFEST_VERSION + 1, "name": "x"}))
    with pytest.raises(TracetuneError, match="newer"):
        read_manifest(tmp_path)


def test_staging_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "out"
    with staging_dir(final) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (final / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError):
        with staging_dir(final) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("crash")
    assert (final / "a.txt").read_text() == "one"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_write_leaves_no_temp_and_hash_tree_sees_content(tmp_path):
    atomic_write_text(tmp_path / "d" / "x.json", "{}")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["x.json"]
    before = hash_tree(tmp_path / "d")
    (tmp_path / "d" / ".x.json.tmp-1").write_text("junk")
    assert hash_tree(tmp_path / "d") == before
    (tmp_path / "d" / "x.json").write_text("{ }")
    assert hash_tree(tmp_path / "d") != before
