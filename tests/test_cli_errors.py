"""Command-line mistakes end in one short message, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv, says", [
    (["train", "x", "--data", "y"], "No such option: --data"),
    (["evall"], "No such command 'evall'"),
])
def test_a_mistyped_option_or_command_prints_a_usage_error(argv, says):
    done = subprocess.run([sys.executable, "-m", "tracetune.cli.main", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
