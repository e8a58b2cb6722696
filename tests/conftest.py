"""Shared fixtures. The tiny student is built once per test session (about 3 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    """A folder holding the tiny student (model, tokenizer, chat template), seed 0."""
    from tracetune.train.student import build_tiny_student

    return build_tiny_student(tmp_path_factory.mktemp("students") / "tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_student):
    """The tiny student's tokenizer, loaded once."""
    from tracetune.engines.tokenizer import load_tokenizer

    return load_tokenizer(tiny_student)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a whole test module (the test machines are shared; oversubscribed threads crawl)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tool_student(tiny_student, tmp_path_factory) -> Path:
    """The tiny student fully fine-tuned (about a minute) to call ``bash ls`` on a request, then reply ``Done.``."""
    from tool_student import train_tool_student

    return train_tool_student(tiny_student, tmp_path_factory.mktemp("students") / "tool")


@pytest.fixture(scope="module")
def pi_cli():
    """``(node, cli.js)`` of the pi coding agent, or a skip saying how to install it."""
    from tracetune.errors import TracetuneError
    from tracetune.eval.harness import find_pi

    try:
        return find_pi()
    except TracetuneError as exc:
        pytest.skip(f"the pi CLI is not available ({exc.message}); run scripts/install-pi-oracle.sh")
