"""Training the tiny student with LoRA on a dataset prepared from a real pi trace."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from train_data import PI_TRACE, shared_pi_dataset  # noqa: E402

from tracetune.errors import TracetuneError  # noqa: E402
from tracetune.train.config import TrainConfig, parse_train_config, resolve_precision  # noqa: E402
from tracetune.train.data import fit_split, sample_within  # noqa: E402

needs_pi = pytest.mark.skipif(not PI_TRACE.exists(), reason="shared pi trace absent")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pi_data(tiny_student, tmp_path_factory):
    if not PI_TRACE.exists():
        pytest.skip("shared pi trace absent")
    return shared_pi_dataset(tiny_student, tmp_path_factory)


def quick(student, **overrides) -> TrainConfig:
    base = dict(model=str(student), lr=5e-3, max_steps=30, per_device_batch_size=2, grad_accumulation=1,
                max_length=512, logging_steps=5, save_steps=10, lora_r=8, report_to="none", warmup_ratio=0.0)
    return TrainConfig(**(base | overrides))


class ProbeLogits:
    """Callback keeping the trained model's logits on a fixed input, at the end of training."""

    def __new__(cls, ids):
        from transformers import TrainerCallback

        class _Probe(TrainerCallback):
            logits = None

            def on_train_end(self, args, state, control, model=None, **kwargs):
                model.eval()
                with torch.no_grad():
                    device = next(model.parameters()).device
                    self.logits = model(input_ids=ids.to(device)).logits.float().cpu()

        return _Probe()


@pytest.fixture(scope="module")
def trained(tiny_student, pi_data, tmp_path_factory):
    from datasets import load_from_disk

    out = tmp_path_factory.mktemp("run") / "out"
    ids = torch.tensor([load_from_disk(str(pi_data / "dataset"))["eval"][0]["input_ids"][:64]])
    probe = ProbeLogits(ids)
    from tracetune.train.trainer import train
    from tracetune.util import memory

    trims: list[int] = []
    real_trim = memory.trim_heap
    memory.trim_heap = lambda: trims.append(1) or real_trim()
    try:
        result = train(quick(tiny_student), pi_data, out, callbacks=[probe])
    finally:
        memory.trim_heap = real_trim
    probe.trims = len(trims)
    return result, probe, ids


@needs_pi
@pytest.mark.slow
def test_heldout_assistant_loss_falls_clearly(trained):
    result, _, _ = trained
    m = result.metrics
    assert result.global_step == 30
    assert m["eval_loss"] < m["eval_loss_before"] - 0.5, m
    assert m["eval_mean_token_accuracy"] > m["eval_mean_token_accuracy_before"]
    assert m["train_tokens_per_second"] > 0
    assert any("tokens_per_second" in h for h in result.history)
    assert trained[1].trims >= result.global_step  # the heap is trimmed after every step (util/memory.py)


@needs_pi
@pytest.mark.slow
def test_run_folder_records_config_metrics_and_counts(trained):
    result, _, _ = trained
    out = result.out_dir
    record = json.loads((out / "metrics.json").read_text())
    assert record["global_step"] == 30
    assert record["data"]["train"]["kept"] + record["data"]["train"]["no_supervised"] == record["data"]["train"]["examples"]
    assert record["lora_targets"]["count"] == len(result.targets) > 0
    saved = json.loads((out / "train_config.json").read_text())["config"]
    assert TrainConfig(**saved) == quick(TrainConfig(**saved).model)
    assert (out / "checkpoints" / "checkpoint-30").is_dir()


@needs_pi
@pytest.mark.slow
def test_adapter_reloads_with_identical_logits_and_merges(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    from tracetune.engines.merge import load_adapted, merge_adapter

    result, probe, ids = trained
    reloaded = load_adapted(result.adapter_dir)
    with torch.no_grad():
        adapted = reloaded(input_ids=ids).logits
        base = reloaded.get_base_model()
        with reloaded.disable_adapter():
            untouched = base(input_ids=ids).logits
    torch.testing.assert_close(adapted, probe.logits, rtol=0, atol=1e-5)
    assert not torch.allclose(adapted, untouched, atol=1e-3), "the adapter changed nothing"

    merged_dir = merge_adapter(result.adapter_dir, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, probe.logits, rtol=0, atol=1e-4)
    assert (merged_dir / "tokenizer.json").exists()


def _segments(batch) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) of every example in a collated batch (padded rows or one packed row)."""
    out = []
    for row in range(batch["input_ids"].shape[0]):
        ids, labels = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
        if "position_ids" in batch:
            pos = batch["position_ids"][row].tolist()
            starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
            out += [(ids[a:b], labels[a:b]) for a, b in zip(starts, starts[1:])]
        else:
            n = int(batch["attention_mask"][row].sum())
            out.append((ids[:n], labels[:n]))
    return out


@needs_pi
@pytest.mark.parametrize("mode", [{}, {"packing": True}, {"padding_free": True}])
def test_labels_are_ignored_exactly_where_the_mask_is_zero(tiny_student, pi_data, tmp_path, mode):
    from datasets import load_from_disk

    from tracetune.train.trainer import build_trainer

    config = quick(tiny_student, **mode)
    source = load_from_disk(str(pi_data / "dataset"))["train"]
    masks = {}
    for ids, mask in zip(source["input_ids"], source["assistant_masks"]):
        masks.setdefault(tuple(ids), set()).add(tuple(mask))
    trainer, _, _ = build_trainer(config, pi_data, tmp_path)
    checked = 0
    for step, batch in enumerate(trainer.get_train_dataloader()):
        for ids, labels in _segments(batch):
            (mask,) = masks[tuple(ids)]
            assert [lab == -100 for lab in labels] == [m == 0 for m in mask]
            assert all(lab == tok for lab, tok, m in zip(labels, ids, mask) if m)
            checked += 1
        if step == 3:
            break
    assert checked >= 4


def test_examples_without_supervised_tokens_are_counted():
    from datasets import Dataset

    rows = [
        {"input_ids": [1, 2, 3, 4], "assistant_masks": [0, 0, 1, 1]},  # kept as is
        {"input_ids": [1, 2, 3, 4, 5, 6], "assistant_masks": [0, 1, 1, 1, 1, 1]},  # kept, cut
        {"input_ids": [1, 2, 3, 4, 5, 6], "assistant_masks": [0, 0, 0, 0, 0, 1]},  # supervision beyond the cut
        {"input_ids": [1, 2], "assistant_masks": [0, 0]},  # never supervised
    ]
    slim, summary = fit_split(Dataset.from_list(rows), max_length=4)
    assert (summary.examples, summary.kept, summary.truncated, summary.no_supervised) == (4, 2, 1, 2)
    assert slim.column_names == ["input_ids", "assistant_masks"]
    assert slim["input_ids"] == [[1, 2, 3, 4], [1, 2, 3, 4]]
    assert slim["assistant_masks"] == [[0, 0, 1, 1], [0, 1, 1, 1]]
    assert summary.supervised_tokens == 5


def test_training_time_eval_is_a_seeded_sample_within_the_token_budget():
    from datasets import Dataset

    rows = [{"input_ids": list(range(n)), "assistant_masks": [1] * n} for n in (50, 30, 40, 60, 20, 70)]
    split = Dataset.from_list(rows)
    whole, tokens = sample_within(split, None, seed=0)
    assert len(whole) == 6 and tokens == 270
    sample, used = sample_within(split, 100, seed=0)
    assert used <= 100 and used == sum(len(r) for r in sample["input_ids"]) and len(sample) >= 2
    again, _ = sample_within(split, 100, seed=0)
    assert sample["input_ids"] == again["input_ids"]
    starts = [len(r) for r in sample["input_ids"]]
    assert starts == [n for n in (50, 30, 40, 60, 20, 70) if n in starts]  # file order kept
    one, used = sample_within(split, 5, seed=0)
    assert len(one) == 1 and used > 5  # never empty: one window even over the budget


def test_train_refuses_a_dataset_with_nothing_to_learn(tiny_student, tmp_path):
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list([{"input_ids": [1, 2, 3], "assistant_masks": [0, 0, 0]}])}).save_to_disk(
        str(tmp_path / "data" / "dataset")
    )
    from tracetune.train.trainer import train

    with pytest.raises(TracetuneError, match="no training example"):
        train(quick(tiny_student), tmp_path / "data", tmp_path / "out")


@needs_pi
def test_a_dataset_rendered_for_another_tokenizer_is_refused(tiny_student, pi_data, tmp_path):
    import shutil

    from tracetune.train.trainer import train

    data = tmp_path / "data"
    shutil.copytree(pi_data, data)
    info = json.loads((data / "student.json").read_text())
    (data / "student.json").write_text(json.dumps(info | {"vocab_size": info["vocab_size"] + 1}))
    with pytest.raises(TracetuneError, match="prepare the traces again"):
        train(quick(tiny_student), data, tmp_path / "out")


def test_missing_dataset_is_a_user_error(tiny_student, tmp_path):
    from tracetune.train.trainer import train

    with pytest.raises(TracetuneError) as info:
        train(quick(tiny_student), tmp_path / "nothing", tmp_path / "out")
    assert "prepare" in info.value.hint


def test_config_lists_every_bad_key():
    with pytest.raises(TracetuneError) as info:
        parse_train_config({"model": "m", "learning_rate": -1, "lora_r": 0, "bogus": 1})
    text = str(info.value)
    assert "learning_rate" in text and "lora_r" in text and "bogus" in text


def test_bf16_auto_follows_the_hardware():
    auto = TrainConfig(model="m")
    assert resolve_precision(auto, cuda=True, cuda_bf16=True) is True
    assert resolve_precision(auto, cuda=True, cuda_bf16=False) is False
    assert resolve_precision(auto, cuda=False, cuda_bf16=False) is False
    with pytest.raises(TracetuneError):
        resolve_precision(TrainConfig(model="m", bf16=True), cuda=True, cuda_bf16=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_four_bit_needs_cuda(tiny_student):
    from tracetune.train.model import load_base_model

    with pytest.raises(TracetuneError, match="CUDA"):
        load_base_model(quick(tiny_student, load_in_4bit=True))


def test_packing_and_padding_free_are_exclusive():
    with pytest.raises(TracetuneError):
        parse_train_config({"model": "m", "packing": True, "padding_free": True})


def test_cli_reports_a_missing_dataset_without_a_traceback(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tracetune.cli.main", "train", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "--model", "m"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert "no prepared dataset" in done.stderr and "tracetune prepare" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_multimodal_wrapper_trains_only_its_language_decoder(tiny_student, tiny_tokenizer, tmp_path):
    """A tiny Gemma3ForConditionalGeneration (vision tower included) through train() and merge."""
    import transformers
    from datasets import Dataset, DatasetDict

    from tracetune.engines.merge import merge_adapter
    from tracetune.train.trainer import train

    tok = tiny_tokenizer
    text = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32, patch_size=8)
    config = transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=len(tok) - 1)
    model_dir = tmp_path / "gemma"
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": torch.randint(10, 500, (48,), generator=g).tolist(), "assistant_masks": [0] * 24 + [1] * 24} for _ in range(6)]
    DatasetDict({"train": Dataset.from_list(rows), "eval": Dataset.from_list(rows[:2])}).save_to_disk(str(tmp_path / "data" / "dataset"))

    result = train(quick(model_dir, max_steps=2), tmp_path / "data", tmp_path / "out")
    assert result.global_step == 2
    assert result.targets and all(t.startswith("model.language_model.") for t in result.targets)
    adapter = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert "language_model" in adapter["target_modules"]
    merged = transformers.AutoModelForCausalLM.from_pretrained(merge_adapter(result.adapter_dir, tmp_path / "merged"))
    assert type(merged).__name__ == "Gemma3ForConditionalGeneration"
