"""Stop a generation that has fallen into a loop, instead of letting it run to the token cap.

A small student greedily decoding often repeats one span until ``max_new_tokens``
(``npm run check && npm run check && ...``). Such a sample cannot finish a
message any more, but in a batch it keeps every other row waiting for the cap.
``LoopStop`` ends a row as soon as its completion ends in one span repeated
``MIN_REPEATS`` times covering at least ``MIN_SPAN`` tokens; the row then counts
as unfinished, exactly as if it had reached the cap.

The thresholds are conservative on purpose: an edit whose new text repeats its
old text, indentation, or a table of similar rows repeat once or twice, not
three times back to back over 32 tokens.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
from transformers import StoppingCriteria

#: A loop is one span repeated back to back at least this many times ...
MIN_REPEATS = 3
#: ... covering at least this many tokens (so ``-n -n -n`` needs 16 repetitions, a sentence 3).
MIN_SPAN = 32
#: Longest span, in tokens, looked for (a repeated paragraph of the base model is ~30).
MAX_PERIOD = 64


def loop_period(tokens: Sequence[int], *, min_repeats: int = MIN_REPEATS, min_span: int = MIN_SPAN,
                max_period: int = MAX_PERIOD) -> int | None:
    """The length of the span ``tokens`` ends repeating (a loop as defined above), or None."""
    n = len(tokens)
    for period in range(1, max_period + 1):
        need = max(min_repeats * period, min_span)
        if need > n:
            break
        if all(tokens[n - 1 - k] == tokens[n - 1 - k - period] for k in range(need - period)):
            return period
    return None


class LoopStop(StoppingCriteria):
    """A transformers stopping criterion: ends each row whose completion (after ``start``) loops.

    ``stopped`` maps a row to the completion length at which it was stopped; rows that
    emitted an end token first are left to ``generate`` and never flagged. The completions
    are mirrored in host memory, a step's new tokens read in one copy: on a GPU, reading
    each row apart costs a device round trip per row and step.
    """

    def __init__(self, start: int, end_ids: Iterable[int]):
        super().__init__()
        self.start = start
        self.end_ids = set(end_ids)
        self.stopped: dict[int, int] = {}
        self._ended: set[int] = set()
        self._rows: list[list[int]] = []

    def _completions(self, input_ids: Any) -> list[list[int]]:
        width = input_ids.shape[1] - self.start
        if len(self._rows) == input_ids.shape[0] and all(len(r) == width - 1 for r in self._rows):
            for row, token in zip(self._rows, input_ids[:, -1].tolist()):
                row.append(token)
        else:  # the first step, or steps not seen one by one: read the completions whole
            self._rows = input_ids[:, self.start:].tolist()
        return self._rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        """One flag per row: True where the row loops (or was stopped before)."""
        flags = []
        for row, completion in enumerate(self._completions(input_ids)):
            if row in self.stopped:
                flags.append(True)
                continue
            if row not in self._ended and completion and completion[-1] in self.end_ids:
                self._ended.add(row)
            if row in self._ended:
                flags.append(False)
                continue
            if loop_period(completion) is not None:
                self.stopped[row] = len(completion)
                flags.append(True)
            else:
                flags.append(False)
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
