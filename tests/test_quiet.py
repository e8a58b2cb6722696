"""`tracetune run` hides the libraries' bars and known warnings unless --verbose."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from tracetune.cli.main import app


def test_bars_and_library_warnings_are_hidden_ours_are_not():
    code = textwrap.dedent("""
        import warnings
        from tracetune.util.quiet import quiet_libraries
        quiet_libraries()
        from transformers.utils import logging
        assert not logging.is_progress_bar_enabled()
        with warnings.catch_warnings(record=True) as seen:
            warnings.warn_explicit("x is deprecated", FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
            warnings.warn_explicit("tied", UserWarning, "tuners_utils.py", 1, module="peft.tuners.tuners_utils")
            warnings.warn("`a` is deprecated and will be removed in v6. Use `b`", FutureWarning)  # names the caller
            warnings.warn_explicit("ours", UserWarning, "stage.py", 1, module="tracetune.pipeline.stages")
        assert [str(w.message) for w in seen] == ["ours"], [str(w.message) for w in seen]
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_run_is_quiet_unless_verbose(monkeypatch, tmp_path):
    from tracetune.util import quiet

    calls = []
    monkeypatch.setattr(quiet, "quiet_libraries", lambda: calls.append(1))
    missing = str(tmp_path / "missing.toml")
    CliRunner().invoke(app, ["run", missing])
    assert calls == [1]
    CliRunner().invoke(app, ["run", missing, "--verbose"])
    assert calls == [1]
