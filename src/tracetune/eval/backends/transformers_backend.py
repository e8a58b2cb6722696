"""Generation with transformers ``generate``: batched, left-padded, CPU or GPU.

Loads a base model, optionally with a PEFT LoRA adapter on top. The prompt is
the request's messages and tools rendered by the tokenizer's chat template
with the generation prompt appended; the output is decoded with special
tokens kept up to the first end-of-sequence token, then parsed by
``tracetune.eval.parsing``. Greedy unless a request asks for a temperature;
seeded either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Generation, GenerationRequest
from tracetune.eval.parsing import parse_output

#: Padded prompt tokens generated together: memory grows with it (activations and KV cache), so a
#: batch of long prompts is split rather than fed whole (8 prompts of 2k tokens, or 2 of 8k).
BATCH_TOKENS = 16384


def load_tokenizer(path: str | Path, chat_template: str | None = None) -> Any:
    """The student's tokenizer, through tracetune's safe loader (``tracetune.engines.tokenizer.load_tokenizer``)."""
    from tracetune.engines.tokenizer import load_tokenizer as student_loader

    return student_loader(str(path), chat_template=chat_template)


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    try:
        return getattr(torch, name)
    except AttributeError:
        raise TracetuneError(f"unknown dtype {name!r}", hint="use auto, float32, bfloat16 or float16") from None


class TransformersBackend:
    """A local model (base, or base + adapter) answering with ``model.generate``."""

    def __init__(
        self,
        model_path: str | Path,
        adapter_path: str | Path | None = None,
        *,
        tokenizer_path: str | Path | None = None,
        chat_template: str | None = None,
        name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
    ):
        from transformers import AutoModelForCausalLM

        self.name = name or ("tuned" if adapter_path else "base")
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.tokenizer = load_tokenizer(tokenizer_path or adapter_path_tokenizer(adapter_path) or model_path, chat_template)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise TracetuneError(
                f"the tokenizer of {tokenizer_path or model_path} has no chat template",
                hint="evaluate with the tokenizer prepare used (it carries the student's template)",
            )
        model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=_dtype(dtype, self.device))
        if adapter_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_path))
        self.model = model.to(self.device).eval()
        self._eos_ids = self._end_ids()

    def _end_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def render(self, request: GenerationRequest) -> str:
        """The exact prompt text the model continues."""
        return self.tokenizer.apply_chat_template(
            request.messages, tools=request.tools or None, add_generation_prompt=True, tokenize=False
        )

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        return len(self.tokenizer(self.render(request), add_special_tokens=False)["input_ids"])

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Requests sharing settings are batched, shortest prompts together; results keep input order."""
        prompts = [self.render(r) for r in requests]
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_new_tokens, r.temperature, r.seed), []).append(i)
        lengths = [len(ids) for ids in self.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        results: dict[int, Generation] = {}
        for members in groups.values():
            members.sort(key=lambda i: lengths[i])
            for batch in token_batches(members, lengths, self.batch_size, BATCH_TOKENS):
                results.update(self._generate_batch(batch, requests, prompts))
        return [results[i] for i in range(len(requests))]

    def _generate_batch(self, idx: list[int], requests: Sequence[GenerationRequest], prompts: list[str]) -> dict[int, Generation]:
        import torch

        first = requests[idx[0]]
        enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        torch.manual_seed(first.seed)
        sampling: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0:
            sampling = {"do_sample": True, "temperature": first.temperature, "top_p": 1.0, "top_k": 0}
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=first.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                **sampling,
            )
        width = enc["input_ids"].shape[1]
        results = {}
        for row, i in enumerate(idx):
            new = out[row, width:].tolist()
            results[i] = self._finish(new, prompts[i], requests[i], int(enc["attention_mask"][row].sum()))
        return results

    def _finish(self, new_ids: list[int], prompt: str, request: GenerationRequest, prompt_tokens: int) -> Generation:
        cut = next((k for k, t in enumerate(new_ids) if t in self._eos_ids), None)
        finished = cut is not None
        kept = new_ids[: cut + 1] if finished else new_ids
        raw = self.tokenizer.decode(kept, skip_special_tokens=False)
        parsed = parse_output(raw, self.tokenizer, prefix=prompt, tools=request.tools)
        return Generation(
            raw=raw,
            message=parsed.message,
            parse_error=parsed.error,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(kept),
            finished=finished,
        )

    def close(self) -> None:
        self.model = None
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


def token_batches(members: list[int], lengths: list[int], size: int, budget: int) -> list[list[int]]:
    """Consecutive batches of at most ``size`` requests whose padded prompts hold at most ``budget`` tokens.

    ``members`` are sorted by length, so a batch pads to its last member; a single
    prompt longer than the budget still goes alone.
    """
    batches: list[list[int]] = []
    for i in members:
        batch = batches[-1] if batches else None
        if batch is not None and len(batch) < size and (len(batch) + 1) * max(lengths[i], lengths[batch[-1]]) <= budget:
            batch.append(i)
        else:
            batches.append([i])
    return batches


def adapter_path_tokenizer(adapter_path: str | Path | None) -> Path | None:
    """The adapter folder when training saved the tokenizer (and its chat template) there."""
    if adapter_path is None:
        return None
    path = Path(adapter_path)
    return path if (path / "tokenizer_config.json").is_file() else None
