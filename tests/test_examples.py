"""The shipped example configs load, and the GPU example scores the CPU example's held-out turns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracetune.pipeline.config import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_loads(path):
    config = load_config(path)
    assert config.name == path.stem


def test_the_gpu_example_prepares_and_samples_as_the_cpu_example_does():
    cpu, gpu = load_config(EXAMPLES / "smollm2-pi-cpu.toml"), load_config(EXAMPLES / "smollm2-pi-gpu.toml")
    assert gpu.prepare == cpu.prepare
    assert (gpu.eval.max_samples, gpu.eval.max_new_tokens, gpu.eval.seed) == (
        cpu.eval.max_samples, cpu.eval.max_new_tokens, cpu.eval.seed)
