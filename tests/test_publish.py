"""Publish: local export loadable with from_pretrained; Hub push through the real client to a local stub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracetune.errors import TracetuneError
from tracetune.publish.export import export_local
from tracetune.publish.hub import push_to_hub, token_from_env

from hubstub import HubStub


class ModelHubStub(HubStub):
    """The shared Hub stub, answering model repos the way it answers dataset repos."""

    def __init__(self):
        super().__init__()
        self.validated_cards: list[str] = []

    def _dispatch(self, h, method):
        if h.path.startswith("/api/validate-yaml"):
            self.validated_cards.append(json.loads(self._body(h))["content"])
            return self._send(h, 200, {"errors": [], "warnings": []})
        h.path = h.path.replace("/api/models/", "/api/datasets/", 1)
        return super()._dispatch(h, method)


@pytest.fixture(scope="module")
def adapter(tiny_student, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny student with non-zero weights (so merging changes the model)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft.save_pretrained(out)
    return out


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits


def test_export_writes_loadable_adapter_and_merged_model(tiny_student, adapter, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    card = tmp_path / "README.md"
    card.write_text("---\nlibrary_name: peft\n---\n# card\n")
    result = export_local(tiny_student, adapter, tmp_path / "export", merge=True, card=card)
    assert (result.adapter / "adapter_model.safetensors").is_file()
    assert list(result.merged.glob("*.safetensors")) and not list(result.merged.glob("*.bin"))
    assert (result.adapter / "README.md").read_text() == card.read_text()

    ids = torch.tensor([[5, 17, 42, 99, 7]])
    base = AutoModelForCausalLM.from_pretrained(tiny_student)
    tuned = PeftModel.from_pretrained(base, str(result.adapter))
    merged = AutoModelForCausalLM.from_pretrained(result.merged)
    assert torch.allclose(_logits(tuned, ids), _logits(merged, ids), atol=1e-4)
    assert not torch.allclose(_logits(AutoModelForCausalLM.from_pretrained(tiny_student), ids), _logits(merged, ids))
    from tracetune.engines.tokenizer import load_tokenizer

    assert load_tokenizer(result.merged).chat_template


def test_export_refuses_an_incomplete_adapter_and_keeps_the_old_export(tiny_student, adapter, tmp_path):
    export_local(tiny_student, adapter, tmp_path / "export", merge=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")
    with pytest.raises(TracetuneError, match="missing adapter_model.safetensors"):
        export_local(tiny_student, broken, tmp_path / "export")
    assert (tmp_path / "export" / "adapter" / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "export"]


def test_push_uploads_adapter_card_and_merged_model_privately(tiny_student, adapter, tmp_path):
    card = tmp_path / "README.md"
    card.write_text("---\nlibrary_name: peft\n---\n# card\n")
    result = export_local(tiny_student, adapter, tmp_path / "export", merge=True, card=card)
    with ModelHubStub() as hub:
        pushed = push_to_hub("alice/student", result.adapter, token=hub.token, merged_dir=result.merged,
                             endpoint=hub.endpoint)
        repo, merged = hub.repos["alice/student"], hub.repos["alice/student-merged"]
    assert repo.private and pushed.private and merged.private
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors"} <= set(repo.files)
    assert repo.files["adapter_model.safetensors"] == (result.adapter / "adapter_model.safetensors").read_bytes()
    assert not any(f.startswith("merged/") for f in repo.files)  # the merged model has a repo of its own
    assert "config.json" in merged.files and any(f.endswith(".safetensors") for f in merged.files)
    assert pushed.uploaded == ["alice/student", "alice/student-merged"]
    assert hub.validated_cards and "library_name: peft" in hub.validated_cards[0]
    assert "library_name: transformers" in merged.files["README.md"].decode()


def test_push_without_merged_model_and_public_when_asked(adapter, tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    for f in adapter.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "README.md").write_text("# card")
    with ModelHubStub() as hub:
        push_to_hub("alice/pub", folder, token=hub.token, private=False, endpoint=hub.endpoint)
        repo = hub.repos["alice/pub"]
    assert not repo.private and not any(f.startswith("merged/") for f in repo.files)


def test_push_with_a_bad_token_is_a_user_error(adapter, tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "README.md").write_text("# card")
    with ModelHubStub() as hub, pytest.raises(TracetuneError, match="pushing to the Hub repo alice/x failed"):
        push_to_hub("alice/x", folder, token="hf_wrong", endpoint=hub.endpoint)


def test_token_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("MY_HUB_TOKEN", "hf_abc")
    monkeypatch.delenv("UNSET_TOKEN_VAR", raising=False)
    assert token_from_env("MY_HUB_TOKEN") == "hf_abc"
    assert token_from_env("UNSET_TOKEN_VAR") is None


def test_a_head_trained_with_modules_to_save_survives_the_merge(tiny_student, tmp_path):
    """The tiny student ties its head to the embeddings; a head trained apart must not be re-tied on reload."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tracetune.engines.merge import load_adapted, merge_adapter

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    assert model.config.tie_word_embeddings
    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["lm_head", "model.norm"]))
    with torch.no_grad():
        peft.base_model.model.lm_head.modules_to_save["default"].weight.mul_(3.0)
    peft.save_pretrained(tmp_path / "adapter")
    merged = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base=str(tiny_student))
    ids = torch.tensor([[5, 17, 99, 3]])
    reloaded = AutoModelForCausalLM.from_pretrained(merged)
    expected = _logits(load_adapted(tmp_path / "adapter", str(tiny_student)), ids)
    assert torch.allclose(_logits(reloaded, ids), expected, atol=1e-4)
    assert not torch.allclose(_logits(AutoModelForCausalLM.from_pretrained(tiny_student), ids), expected, atol=1e-2)
