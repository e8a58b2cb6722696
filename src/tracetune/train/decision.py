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

from typing import Any

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
