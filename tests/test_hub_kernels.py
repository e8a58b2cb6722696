"""Every model load keeps transformers' Hub kernels off unless the train config asks for them.

transformers 5 defaults to ``use_kernels=True``; on a GPU that fetches kernel code from the Hub
while loading, and an offline run then fails before its first step (seen on an H200).
"""

from __future__ import annotations

import pytest

from tracetune.engines import serve
from tracetune.train.config import TrainConfig


class Loaded(Exception):
    """Raised by the stand-in loader once it has recorded its keyword arguments."""


@pytest.fixture
def loads(monkeypatch):
    from transformers import AutoModelForCausalLM

    seen: list[dict] = []

    def record(*args, **kwargs):
        seen.append(kwargs)
        raise Loaded

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", record)
    return seen


@pytest.mark.parametrize("hub_kernels", [False, True])
def test_training_loads_the_student_with_hub_kernels_only_when_asked(loads, hub_kernels):
    from tracetune.train.model import load_base_model

    with pytest.raises(Loaded):
        load_base_model(TrainConfig(model="some/student", hub_kernels=hub_kernels, bf16=False))
    assert loads[-1]["use_kernels"] is hub_kernels


def test_eval_and_merge_load_without_hub_kernels(loads, tmp_path):
    from tracetune.engines.merge import load_adapted
    from tracetune.eval.backends.transformers_backend import _load

    with pytest.raises(Loaded):
        _load(tmp_path, None, "float32", "cpu", merge=False)
    with pytest.raises(Loaded):
        load_adapted(tmp_path, base="some/student")
    assert [k["use_kernels"] for k in loads] == [False, False]


def test_the_served_model_loads_without_hub_kernels(monkeypatch, tmp_path):
    started: list[dict] = []

    class Proc:
        def __init__(self, *args, env=None, **kwargs):
            started.append(env)

        def poll(self):
            return 0

    monkeypatch.setattr(serve, "require_serving", lambda: None)
    monkeypatch.setattr(serve.subprocess, "Popen", Proc)
    monkeypatch.setattr(serve.TransformersServer, "wait_ready", lambda self: None)
    (tmp_path / "config.json").write_text("{}")
    server = serve.TransformersServer(tmp_path).start()
    server.cleanup()
    assert started[0]["USE_HUB_KERNELS"] == "NO"
