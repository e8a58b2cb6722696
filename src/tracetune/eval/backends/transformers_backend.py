"""Generation with transformers ``generate``: batched, left-padded, CPU or GPU.

Loads a base model, optionally with a PEFT LoRA adapter merged into it (as fast as the base;
``merge_adapter=False`` keeps the LoRA layers). The prompt is
the request's messages and tools rendered by the tokenizer's chat template
with the generation prompt appended; the output is decoded with special
tokens kept up to the first end-of-sequence token, then parsed by
``tracetune.eval.parsing``. Greedy unless a request asks for a temperature;
seeded either way. A sample caught repeating one span is stopped there
(``tracetune.eval.backends.loops``) and counts as unfinished, like one at the cap.

Prompts are rarely new from the first token: every sample of an eval shares
the system prompt and tool definitions, and each turn of a live episode
repeats the whole previous turn. So the backend keeps the KV cache of the
last prefix it computed and reuses its longest common token prefix: a batch's
shared prefix is computed once (batch rows are padded *after* it, not before),
and a single request (a live-loop turn) keeps its whole context for the next
turn. The outputs are those of plain left-padded generation (tested).
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any, Sequence

from tracetune.engines.loading import load_kwargs
from tracetune.errors import TracetuneError
from tracetune.eval.backends.base import Generation, GenerationRequest
from tracetune.eval.parsing import parse_output

#: Padded prompt tokens generated together: memory grows with it (activations and KV cache), so a
#: batch of long prompts is split rather than fed whole (8 prompts of 2k tokens, or 2 of 8k).
BATCH_TOKENS = 16384
#: ... and on a GPU, where a small model's generation is bound by the cost per step, not by memory.
GPU_BATCH_TOKENS = 262144
#: A kept KV cache is reused when it shares at least this many leading tokens with the next prompt(s).
MIN_REUSE_TOKENS = 16


def load_tokenizer(path: str | Path, chat_template: str | None = None) -> Any:
    """The student's tokenizer, through tracetune's safe loader (``tracetune.engines.tokenizer.load_tokenizer``)."""
    from tracetune.engines.tokenizer import load_tokenizer as student_loader

    return student_loader(str(path), chat_template=chat_template)


def resolve_device(device: str) -> str:
    """``device`` itself, or for ``auto`` ``cuda`` when a GPU is available, else ``cpu``."""
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


def _load(model_path: str | Path, adapter_path: str | Path | None, dtype: Any, device: str, merge: bool) -> Any:
    """The base model, with the adapter merged into its weights (``merge``) or kept as LoRA layers.

    Merged, the tuned model generates as fast as the base (on CPU the unmerged LoRA layers of a
    135M model halve the tokens per second). On CPU the merge happens in float32, as the publish
    stage merges, and the merged weights are then cast to ``dtype``.
    """
    import torch
    from transformers import AutoModelForCausalLM

    merging = adapter_path is not None and merge
    load_dtype = torch.float32 if merging and device == "cpu" else dtype
    model = AutoModelForCausalLM.from_pretrained(str(model_path), dtype=load_dtype, **load_kwargs())
    if adapter_path is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_path))
        if merging:
            model = model.merge_and_unload()
    return model.to(device=device, dtype=dtype)


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
        batch_tokens: int | None = None,
        reuse_cache: bool = True,
        merge_adapter: bool = True,
        stop_loops: bool = True,
    ):
        self.name = name or ("tuned" if adapter_path else "base")
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.batch_tokens = batch_tokens or (GPU_BATCH_TOKENS if self.device.startswith("cuda") else BATCH_TOKENS)
        self.tokenizer = load_tokenizer(tokenizer_path or adapter_path_tokenizer(adapter_path) or model_path, chat_template)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise TracetuneError(
                f"the tokenizer of {tokenizer_path or model_path} has no chat template",
                hint="evaluate with the tokenizer prepare used (it carries the student's template)",
            )
        self.model = _load(model_path, adapter_path, _dtype(dtype, self.device), self.device, merge_adapter).eval()
        self._eos_ids = self._end_ids()
        self.reuse_cache = reuse_cache
        self.stop_loops = stop_loops
        self._kept: tuple[list[int], Any] | None = None  # (token ids, KV cache holding exactly them), batch of one
        self._cache_kwarg = _cache_kwarg(self.model)

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
        """How many tokens the rendered prompt of ``request`` takes."""
        return len(self.tokenizer(self.render(request), add_special_tokens=False)["input_ids"])

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Requests sharing settings are batched, shortest prompts together; results keep input order."""
        prompts = [self.render(r) for r in requests]
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_new_tokens, r.temperature, r.seed), []).append(i)
        ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        lengths = [len(x) for x in ids]
        results: dict[int, Generation] = {}
        for members in groups.values():
            members.sort(key=lambda i: lengths[i])
            for batch in token_batches(members, lengths, self.batch_size, self.batch_tokens):
                results.update(self._generate_batch(batch, requests, prompts, ids))
        return [results[i] for i in range(len(requests))]

    def _generate_batch(self, idx: list[int], requests: Sequence[GenerationRequest], prompts: list[str],
                        ids: list[list[int]]) -> dict[int, Generation]:
        import torch

        first = requests[idx[0]]
        rows = [ids[i] for i in idx]
        shared = min(_common_prefix(rows), min(len(r) for r in rows) - 1) if self.reuse_cache else 0
        cache = self._prefix_cache(rows[0][:shared]) if shared >= MIN_REUSE_TOKENS else None
        if cache is None:
            shared = 0
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        # the shared prefix, then padding, then each row's own tokens: positions follow the attention mask
        input_ids = torch.tensor([r[:shared] + [pad] * (width - len(r)) + r[shared:] for r in rows], device=self.device)
        mask = torch.tensor([[1] * shared + [0] * (width - len(r)) + [1] * (len(r) - shared) for r in rows], device=self.device)
        extra: dict[str, Any] = {}
        if cache is not None:
            if len(rows) > 1:
                cache = copy.deepcopy(cache)
                cache.batch_repeat_interleave(len(rows))
            extra[self._cache_kwarg] = cache
        torch.manual_seed(first.seed)
        sampling: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0:
            sampling = {"do_sample": True, "temperature": first.temperature, "top_p": 1.0, "top_k": 0}
        loops = None
        if self.stop_loops:
            from transformers import StoppingCriteriaList

            from tracetune.eval.backends.loops import LoopStop

            loops = LoopStop(width, self._eos_ids)
            extra["stopping_criteria"] = StoppingCriteriaList([loops])
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=first.max_new_tokens,
                pad_token_id=pad,
                **sampling,
                **extra,
            )
        stopped = loops.stopped if loops is not None else {}
        if cache is not None and len(rows) == 1:  # a live turn: keep its whole context for the next one
            self._kept = (out[0].tolist()[: cache.get_seq_length()], cache)
        results = {}
        for row, i in enumerate(idx):
            new = out[row, width:].tolist()
            if row in stopped:  # looping: cut where it was stopped, unfinished like a sample at the cap
                new = new[: stopped[row]]
            results[i] = self._finish(new, prompts[i], requests[i], len(rows[row]), looping=row in stopped)
        return results

    def _prefix_cache(self, prefix: list[int]) -> Any | None:
        """A KV cache (batch of one) holding exactly ``prefix``: the kept one cut to what it shares, then extended.

        The returned cache is also the one kept: copy it where generation must not grow it.
        """
        import torch
        from transformers import DynamicCache

        reused = 0
        if self._kept is not None:
            kept_ids, kept_cache = self._kept
            reused = min(_common_prefix([kept_ids, prefix]), kept_cache.get_seq_length())
        if reused >= MIN_REUSE_TOKENS:
            cache = self._kept[1]
            if cache.get_seq_length() > reused:  # negative: tokens to drop from the end (every 5.x reads it so)
                cache.crop(reused - cache.get_seq_length())
        else:
            reused = 0
            cache = DynamicCache(config=self.model.config)
        self._kept = None
        if reused < len(prefix):
            with torch.inference_mode():
                self.model(input_ids=torch.tensor([prefix[reused:]], device=self.device), use_cache=True,
                           **{self._cache_kwarg: cache})
        self._kept = (list(prefix), cache)
        return cache

    def _finish(self, new_ids: list[int], prompt: str, request: GenerationRequest, prompt_tokens: int,
                *, looping: bool = False) -> Generation:
        cut = None if looping else next((k for k, t in enumerate(new_ids) if t in self._eos_ids), None)
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
            looping=looping,
        )

    def close(self) -> None:
        """Drop the model and free the GPU memory it held."""
        self.model = None
        self._kept = None
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


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every row shares."""
    if not rows:
        return 0
    n = min(len(r) for r in rows)
    first = rows[0]
    for k in range(n):
        if any(r[k] != first[k] for r in rows[1:]):
            return k
    return n


def _cache_kwarg(model: Any) -> str:
    """What this transformers version calls the KV cache argument of ``forward`` and ``generate``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def adapter_path_tokenizer(adapter_path: str | Path | None) -> Path | None:
    """The adapter folder when training saved the tokenizer (and its chat template) there."""
    if adapter_path is None:
        return None
    path = Path(adapter_path)
    return path if (path / "tokenizer_config.json").is_file() else None
