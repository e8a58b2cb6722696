"""Decision-weighted loss: more weight on the tokens where the assistant picks its next action.

Next-action agreement is decided by a handful of tokens per turn: the opening of the
answer (text or a tool call) and the tool's name. With the plain token mean they are a few
percent of the supervised tokens; the rest is arguments and prose. ``decision_weight`` in
``[train]`` multiplies the loss of the first ``decision_tokens`` targets of every assistant
span and of every tool call (from its opening marker, through the name), and the loss stays
a weighted mean, so its scale does not change. Applied in training only: ``eval_loss`` stays
the plain token mean, comparable across variants and runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracetune.errors import TracetuneError

if TYPE_CHECKING:
    from tracetune.train.config import TrainConfig

#: What the shipped tool-aware templates write before every call (``chatml_tools``, ``generic_tools``).
TOOL_CALL_OPENER = "<tool_call>"


def opener_ids(tokenizer: Any, opener: str = TOOL_CALL_OPENER) -> list[int]:
    """The token ids the tokenizer gives ``opener`` on its own (empty when it has no tokenizer)."""
    if tokenizer is None:
        return []
    return list(tokenizer.encode(opener, add_special_tokens=False))


def decision_mask(targets, supervised, opener: list[int], width: int):
    """Bool tensor, True at the first ``width`` supervised targets of each span and of each ``opener``.

    ``targets`` (batch, n) are the predicted token ids, ``supervised`` (batch, n) whether each
    is trained on; a span is a run of supervised targets.
    """
    import torch

    starts = supervised.clone()
    starts[:, 1:] &= ~supervised[:, :-1]
    if opener:
        pattern = torch.tensor(opener, device=targets.device)
        n = len(opener)
        if targets.size(1) >= n:
            windows = targets.unfold(1, n, 1)
            hits = (windows == pattern).all(dim=-1)
            starts[:, : hits.size(1)] |= hits & supervised[:, : hits.size(1)]
    marked = torch.zeros_like(supervised)
    for offset in range(width):
        if offset == 0:
            marked |= starts
        else:
            marked[:, offset:] |= starts[:, :-offset]
    return marked & supervised


def weighted_mean_loss(log_probs, supervised, marked, weight: float, num_items: Any = None):
    """``-log_probs`` averaged over supervised targets, each weighted ``weight`` where ``marked`` else 1.

    With ``num_items`` (the supervised targets of the whole accumulated batch, as the Trainer
    passes it) each micro-batch contributes in proportion to its own supervised targets.
    """
    import torch

    weights = torch.where(marked, weight, 1.0).to(log_probs.dtype) * supervised.to(log_probs.dtype)
    count = supervised.sum().clamp(min=1)
    total = weights.sum().clamp(min=1e-8)
    loss = -(log_probs * weights).sum() / total
    if num_items is not None:
        loss = loss * count / torch.as_tensor(num_items, device=loss.device).clamp(min=1)
    return loss


def decision_loss(trainer, model, inputs, num_items_in_batch, config: "TrainConfig"):
    """``trainer``'s training loss with ``config.decision_weight`` on the decision tokens.

    Reads TRL's fused LM head output (per-token log-probabilities, no full logits) and keeps
    the metrics ``SFTTrainer.compute_loss`` logs (entropy, token accuracy, tokens seen).
    """
    inputs["use_cache"] = False
    outputs = model(**inputs, fused_lm_head=True)
    if getattr(outputs, "log_probs", None) is None or getattr(outputs, "label_mask", None) is None:
        raise TracetuneError("decision_weight needs TRL's fused LM head (per-token log-probabilities)",
                             hint="install the TRL version pyproject.toml pins, or set decision_weight = 1")
    supervised = outputs.label_mask.bool()
    targets = inputs["input_ids"][:, 1:]
    if targets.shape != supervised.shape:
        raise TracetuneError(f"decision_weight: labels of shape {tuple(supervised.shape)} against targets "
                             f"{tuple(targets.shape)}", hint="set decision_weight = 1 for this model")
    if not hasattr(trainer, "_tt_opener"):
        trainer._tt_opener = opener_ids(trainer.processing_class)
    marked = decision_mask(targets, supervised, trainer._tt_opener, config.decision_tokens)
    loss = weighted_mean_loss(outputs.log_probs, supervised, marked, config.decision_weight, num_items_in_batch)
    valid = supervised.sum().clamp(min=1)
    trainer._metrics["train"]["entropy"].append((outputs.entropy.detach().sum() / valid).item())
    trainer._metrics["train"]["mean_token_accuracy"].append((outputs.is_top1.sum() / valid).item())
    trainer._total_train_tokens += int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else targets.numel()
    trainer._metrics["train"]["num_tokens"] = [trainer._total_train_tokens]
    return loss
