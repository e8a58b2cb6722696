"""Loading the base model and turning a ``TrainConfig`` into TRL / PEFT arguments.

Nothing here moves tensors to a device: the Trainer (or ``accelerate
launch``) places the model. Hardware only decides precision (bf16 where a GPU
has it) and whether 4-bit loading is possible (CUDA + bitsandbytes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracetune.engines.loading import load_kwargs
from tracetune.errors import TracetuneError, require
from tracetune.train.config import TrainConfig, resolve_precision
from tracetune.train.lora import LoraTargets

NO_EVAL_STEPS = 10**9  # "steps" strategy that only fires at the last step


@dataclass(frozen=True)
class Hardware:
    cuda: bool
    cuda_bf16: bool
    accelerator: bool  # any device other than the CPU (CUDA, MPS, XPU)


def detect_hardware() -> Hardware:
    """What this machine offers: CUDA, bf16 on CUDA, and any accelerator at all (CUDA, MPS, XPU)."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    return Hardware(cuda, cuda and torch.cuda.is_bf16_supported(), cuda or mps or xpu)


def use_bf16(config: TrainConfig, hw: Hardware | None = None) -> bool:
    """Whether to train in bf16 with ``config`` on ``hw`` (detected when not given)."""
    hw = hw or detect_hardware()
    return resolve_precision(config, cuda=hw.cuda, cuda_bf16=hw.cuda_bf16)


def load_base_model(config: TrainConfig):
    """The student as a causal LM (multimodal wrappers included), in the training dtype."""
    import torch
    from transformers import AutoModelForCausalLM

    bf16 = use_bf16(config)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if bf16 else torch.float32, "trust_remote_code": config.trust_remote_code,
                              **load_kwargs(hub_kernels=config.hub_kernels)}
    if config.load_in_4bit:
        kwargs.update(_four_bit(bf16))
    try:
        model = AutoModelForCausalLM.from_pretrained(config.model, **kwargs)
    except OSError as exc:
        raise TracetuneError(
            f"cannot load the model {config.model}: {exc}",
            hint="pass a local model folder, or a hub id already in the local cache",
        ) from exc
    except ValueError as exc:
        raise TracetuneError(f"{config.model} is not a causal language model: {exc}") from exc
    model.config.use_cache = False
    return model


def _four_bit(bf16: bool) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        raise TracetuneError("4-bit loading (QLoRA) needs a CUDA GPU", hint="drop --load-in-4bit on this machine")
    require("bitsandbytes", "quant", "4-bit loading (QLoRA)")
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float16,
    )
    return {"quantization_config": quant, "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}}


def load_training_tokenizer(config: TrainConfig, dataset_dir: str | Path):
    """The student's tokenizer, with the chat template the dataset was rendered with.

    ``prepare`` records in ``student.json`` which tokenizer and template rendered
    the ids; a vocabulary that differs means the ids belong to another model
    (refused), and a template override (its exact text, ``chat_template_text``)
    and its ``response_template`` are carried over so the adapter is saved with
    the template it was trained on and the parser that reads it.
    """
    from tracetune.engines.tokenizer import load_tokenizer

    info_path = Path(dataset_dir) / "student.json"
    info = json.loads(info_path.read_text("utf-8")) if info_path.exists() else {}
    template = info.get("chat_template_text")
    if template is None and info.get("chat_template") not in (None, "student"):
        from tracetune.prepare.config import PrepareConfig

        template = PrepareConfig(chat_template=info["chat_template"]).resolved_chat_template()
    tokenizer = load_tokenizer(config.model, chat_template=template)
    if info.get("response_template"):  # the parser of the applied template travels with the adapter
        tokenizer.response_template = info["response_template"]
    if "vocab_size" in info and info["vocab_size"] != len(tokenizer):
        raise TracetuneError(
            f"the dataset was rendered for a tokenizer of {info['vocab_size']} tokens ({info.get('student')}), "
            f"but {config.model} has {len(tokenizer)}",
            hint="prepare the traces again with --student set to the model you train",
        )
    return tokenizer


def lora_config(config: TrainConfig, targets: LoraTargets):
    """The PEFT ``LoraConfig`` for ``config``'s rank, alpha and dropout, adapting ``targets``."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets.peft_target,
        modules_to_save=config.modules_to_save,
        bias="none",
        task_type="CAUSAL_LM",
    )


def build_sft_args(config: TrainConfig, out: Path, *, has_eval: bool, eval_on_start: bool):
    """``SFTConfig`` for a run writing checkpoints to ``out/checkpoints``."""
    from trl import SFTConfig

    hw = detect_hardware()
    tracking = config.report_to == "trackio"
    return SFTConfig(
        output_dir=str(out / "checkpoints"),
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=None if config.padding_free else config.max_length,  # rows are already cut (train.data)
        packing=config.packing,
        packing_strategy="bfd",
        padding_free=config.padding_free,
        activation_checkpointing=config.gradient_checkpointing,
        bf16=use_bf16(config, hw),
        fp16=False,
        use_cpu=not hw.accelerator,
        seed=config.seed,
        data_seed=config.seed,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps or NO_EVAL_STEPS,
        eval_on_start=has_eval and eval_on_start and config.eval_before_train,
        prediction_loss_only=True,  # the eval loop would otherwise keep every eval window's logits (GBs)
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        report_to=[config.report_to] if tracking else "none",
        project=config.trackio_project,
        run_name=config.run_name or out.name,
        trackio_space_id=config.trackio_space_id,
        trackio_static_space_id=None if config.trackio_space_id else False,
        disable_tqdm=True,
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
    )
