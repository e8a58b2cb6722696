"""Run tests/test_pi_oracle.py's comparison (our pi reader vs pi's own code) on any session file, or skip."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ORACLE_TEST = Path(__file__).resolve().parent / "test_pi_oracle.py"


def oracle_mismatches(path: Path) -> list[str]:
    """Differences between tracetune's contexts and pi's for ``path``; skips the test when node or pi is absent."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the pi oracle needs it")
    if not ORACLE_TEST.exists():
        pytest.skip("tests/test_pi_oracle.py is absent")
    spec = importlib.util.spec_from_file_location("pi_oracle_helpers", ORACLE_TEST)
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    if not (oracle.PACKAGE / "dist" / "core" / "session-manager.js").exists():
        pytest.skip(f"the pi npm package is not at {oracle.PACKAGE}")
    return oracle.mismatches(Path(path))
