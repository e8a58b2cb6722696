"""Hostile files next to good ones: each bad one is reported in one line, the good ones are still read.

The corpus is built in ``tmp_path``: deep JSON nesting, a UTF-8 byte-order
mark, a latin-1 byte, a FIFO, a socket, a symlink loop, a broken symlink, a
binary file, a huge single line, and deep tool-call arguments inside a JSON
string. ``read_paths`` and ``tracetune inspect`` (in-process and as a
subprocess with a timeout, so a FIFO that blocked would fail rather than
hang) must finish, keep the inputs byte-identical, and print no traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracetune.cli.main import app
from tracetune.readers import base, read_paths
from tracetune.readers.discover import discover_files

DEPTH = 600


def _pi(sid: str, *texts: str) -> list[str]:
    lines = [json.dumps({"type": "session", "version": 3, "id": sid, "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"})]
    parent = None
    for i, text in enumerate(texts):
        for j, message in enumerate((
            {"role": "user", "content": [{"type": "text", "text": text}]},
            {"role": "assistant", "content": [{"type": "text", "text": f"ok {i}"}], "provider": "anthropic",
             "model": "m", "stopReason": "stop"},
        )):
            eid = f"{sid}-{i}-{j}"
            lines.append(json.dumps({"type": "message", "id": eid, "parentId": parent,
                                     "timestamp": "2026-01-01T00:00:01Z", "message": message}, ensure_ascii=False))
            parent = eid
    return lines


def _write(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path


def _nested(depth: int) -> str:
    """JSON text ``depth`` levels deep (built as text: ``json.dumps`` itself overflows on deep values)."""
    return '{"a":[' * (depth // 2) + '"bottom"' + "]}" * (depth // 2)


@pytest.fixture
def corpus(tmp_path):
    """A folder with good and hostile session files; returns (folder, {name: path})."""
    d = tmp_path / "sessions"
    d.mkdir()
    files = {}
    files["good"] = _write(d / "good.jsonl", _pi("good", "hello", "again"))
    deep = _pi("deep", "first", "second")
    deep.insert(2, '{"type": "custom", "id": "x", "parentId": null, "data": ' + _nested(DEPTH) + "}")
    deep.insert(3, "[" * 100_000 + "]" * 100_000)  # past the parser's own recursion limit
    files["deep"] = _write(d / "deep.jsonl", deep)
    files["bom"] = d / "bom.jsonl"
    files["bom"].write_bytes(b"\xef\xbb\xbf" + ("\n".join(_pi("bom", "with a BOM")) + "\n").encode())
    latin = _pi("latin", "caf\u00e9 ok", "fine")
    raw = ("\n".join(latin) + "\n").encode().replace("caf\u00e9".encode(), b"caf\xe9")  # one latin-1 byte
    files["latin"] = d / "latin.jsonl"
    files["latin"].write_bytes(raw)
    files["binary"] = d / "binary.jsonl"
    files["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    huge = _pi("huge", "small")
    huge.insert(1, json.dumps({"type": "custom", "id": "h", "parentId": None, "data": "x" * 400_000}))
    files["huge"] = _write(d / "huge.jsonl", huge)
    os.mkfifo(d / "fifo.jsonl")
    os.symlink(d / "loop-b.jsonl", d / "loop-a.jsonl")
    os.symlink(d / "loop-a.jsonl", d / "loop-b.jsonl")
    os.symlink(d / "gone.jsonl", d / "dangling.jsonl")
    os.symlink(d, d / "self")  # a directory loop
    codex = [
        json.dumps({"timestamp": "t", "type": "session_meta", "payload": {"id": "codex-deep", "cwd": "/w"}}),
        json.dumps({"timestamp": "t", "type": "response_item", "payload": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}}),
        json.dumps({"timestamp": "t", "type": "response_item", "payload": {
            "type": "function_call", "name": "f", "call_id": "c1", "arguments": _nested(300)}}),
        json.dumps({"timestamp": "t", "type": "response_item", "payload": {
            "type": "function_call_output", "call_id": "c1", "output": "done"}}),
    ]
    files["codex_deep"] = _write(d / "codex-deep.jsonl", codex)
    return d, files


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir() if p.is_file() and not p.is_symlink()}


def test_reading_the_folder_keeps_the_good_and_reports_the_bad(corpus, monkeypatch):
    d, files = corpus
    monkeypatch.setattr(base, "MAX_LINE_CHARS", 300_000)  # the 400,000-character line counts as huge
    before = _digests(d)
    result = read_paths([d])
    assert _digests(d) == before  # inputs untouched
    ids = {s.id for s in result.sessions}
    assert {"good", "deep", "bom", "latin", "huge", "codex-deep"} <= ids
    errors = {Path(e.path).name: e.message for e in result.errors}
    assert set(errors) == {"binary.jsonl", "fifo.jsonl", "loop-a.jsonl", "loop-b.jsonl", "dangling.jsonl"}
    assert "binary" in errors["binary.jsonl"] and "FIFO" in errors["fifo.jsonl"]
    assert "symlink loop" in errors["loop-a.jsonl"]
    assert all("\n" not in m for m in errors.values())
    by_id = {s.id: s for s in result.sessions}
    deep = [w for w in by_id["deep"].warnings if w.kind == "invalid_json"]
    assert [w.line for w in deep] == [3, 4] and all("nested deeper" in w.message for w in deep)
    assert by_id["deep"].assistant_turns == 2
    assert by_id["bom"].id == "bom" and not by_id["bom"].warnings  # the header was read
    latin = by_id["latin"]
    assert [w.kind for w in latin.warnings] == ["bad_encoding"] and latin.warnings[0].line == 2
    assert latin.episodes[0].messages[0].content == "caf\ufffd ok"
    assert [w.kind for w in by_id["huge"].warnings] == ["invalid_json"]
    assert "MB a line may hold" in by_id["huge"].warnings[0].message
    codex = by_id["codex-deep"]
    assert any(w.kind == "bad_arguments" and "deeper" in w.message for w in codex.warnings)
    call = next(c for e in codex.episodes for m in e.messages for c in m.tool_calls)
    assert call.arguments == {}


def test_special_files_given_as_paths_are_never_opened(corpus, tmp_path, monkeypatch):
    d, _ = corpus
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    sock_path = tmp_path / "s.jsonl"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(sock_path))
        files, skipped = discover_files([d / "fifo.jsonl", d / "loop-a.jsonl", sock_path])
        assert files == [] and len(skipped) == 3
        assert "socket" in skipped[2].message
        result = read_paths([d / "fifo.jsonl", sock_path, d / "good.jsonl"])
    finally:
        sock.close()
    assert [s.id for s in result.sessions] == ["good"] and len(result.errors) == 2
    assert not any(p.endswith(("fifo.jsonl", "s.jsonl")) for p in opened)


def test_open_text_refuses_what_it_cannot_take(corpus, monkeypatch):
    d, files = corpus
    for name, word in (("fifo.jsonl", "FIFO"), ("loop-a.jsonl", "symlink loop"), ("binary.jsonl", "binary")):
        with pytest.raises(base.UnreadableFileError, match=word):
            base.open_text(d / name)
    monkeypatch.setattr(base, "MAX_FILE_BYTES", 100)
    with pytest.raises(base.UnreadableFileError, match="too big"):
        base.open_text(files["good"])


def test_inspect_in_process_reports_each_bad_file_in_one_line(corpus):
    d, _ = corpus
    out = CliRunner().invoke(app, ["inspect", "--json", str(d)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["total"]["sessions"] >= 6
    assert {Path(u["path"]).name for u in data["unreadable"]} >= {"binary.jsonl", "fifo.jsonl", "loop-a.jsonl"}
    assert "Traceback" not in out.output
    assert data["total"]["warnings"].get("bad_encoding") == 1


def test_inspect_command_finishes_on_a_fifo(corpus):
    """A subprocess with a timeout: a FIFO that were opened would block it for ever."""
    d, _ = corpus
    exe = Path(sys.executable).with_name("tracetune")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tracetune.cli.main"]
    for target in (d, d / "fifo.jsonl"):
        proc = subprocess.run([*cmd, "inspect", str(target)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})
        text = proc.stdout + proc.stderr
        assert "Traceback" not in text, text
        assert "fifo.jsonl" in text and "FIFO" in text, text
    assert proc.returncode in (0, 1)


def test_a_file_in_another_encoding_is_refused_a_stray_byte_is_not(tmp_path):
    latin = tmp_path / "latin1.jsonl"
    text = "\n".join(_pi("l1", "caf\u00e9", "d\u00e9j\u00e0 vu")).replace("ok ", "d\u00e9j\u00e0 ").replace('"/w"', '"/\u00e9t\u00e9"')
    latin.write_bytes(text.encode("latin-1") + b"\n")  # every line holds a byte that is not UTF-8
    result = read_paths([latin])
    assert result.sessions == [] and "not UTF-8" in result.errors[0].message
    assert "\n" not in result.errors[0].message


def test_huge_lines_and_deep_lines_alone_leave_an_empty_session_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_LINE_CHARS", 1000)
    only_huge = tmp_path / "one-line.jsonl"
    only_huge.write_text('{"type": "session", "id": "h", "x": "' + "y" * 5000 + '"}')  # no newline at the end
    result = read_paths([only_huge])
    assert len(result.errors) == 1 and "no JSON object lines" in result.errors[0].message
    sink = base.WarningSink("x")
    assert list(base.iter_json_lines("[" * 5000 + "]" * 5000 + "\n" + "{}" + "\n", sink)) == [base.Line(2, {})]
    assert [w.kind for w in sink.items] == ["invalid_json"]


def test_format_detection_reads_the_head_of_a_file_and_all_of_it_only_when_it_must(tmp_path, monkeypatch):
    objects = [{"type": "session", "id": "s"}] + [{"type": "message", "n": i} for i in range(6)]
    plain = tmp_path / "plain.jsonl"
    plain.write_text("\ufeff" + "\n\n".join(json.dumps(o) for o in objects) + "\n", encoding="utf-8")
    long_first = tmp_path / "long.jsonl"  # the first line alone is longer than the head
    long_first.write_text(json.dumps({"pad": "x" * (base.HEAD_BYTES + 10)}) + "\n" + json.dumps(objects[0]), encoding="utf-8")
    short = tmp_path / "short.jsonl"  # fewer objects than asked for, the last without its newline
    short.write_text(json.dumps(objects[0]) + "\n" + json.dumps(objects[1]), encoding="utf-8")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(("\n".join(json.dumps(o) for o in objects) + "\n").encode() + b'{"t": "caf\xe9"}\n')
    zipped = tmp_path / "zipped.jsonl.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))

    expected = {p: base._objects(base.open_text(p).split("\n"), 5) for p in (plain, long_first, short, latin, zipped)}
    assert [o["type"] for o in expected[plain]] == ["session"] + ["message"] * 4
    assert len(expected[long_first]) == 2 and len(expected[short]) == 2
    whole = []
    monkeypatch.setattr(base, "open_text", lambda p: whole.append(p) or expected_text(p))

    def expected_text(p):
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        return raw.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")

    for path, found in expected.items():
        assert base.first_objects(path) == found
    assert whole == [long_first, short, latin]  # the plain file (BOM, blank lines) and its .gz from the head; not UTF-8: all
    assert base.first_objects(plain, limit=1) == [objects[0]]
