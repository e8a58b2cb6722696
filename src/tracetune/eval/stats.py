"""Means with 95% confidence intervals and the number of samples behind them.

Rates (values that are all 0/1) get a Wilson score interval, which stays
inside [0, 1] and behaves at 0 or n successes. Other values (similarities in
[0, 1]) get a seeded percentile bootstrap of the mean. ``None`` values are
"does not apply" and are left out of both the mean and the count.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Iterable

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    mean: float | None
    low: float | None
    high: float | None
    n: int
    method: str  # "wilson", "bootstrap" or "none"

    def to_dict(self) -> dict:
        """This estimate as a dict."""
        return asdict(self)

    def fmt(self, digits: int = 2) -> str:
        """``mean [low, high] (n=N)`` with ``digits`` decimals, or ``- (n=N)`` when there is no mean."""
        if self.mean is None:
            return f"- (n={self.n})"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``n``; (0, 1) when ``n`` is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def rate(values: Iterable[bool | None]) -> Estimate:
    """The share of true values with its Wilson interval; None values are left out."""
    kept = [bool(v) for v in values if v is not None]
    if not kept:
        return Estimate(None, None, None, 0, "none")
    hits = sum(kept)
    low, high = wilson(hits, len(kept))
    return Estimate(hits / len(kept), low, high, len(kept), "wilson")


def bootstrap_mean(values: Iterable[float | None], seed: int = 0, resamples: int = 1000) -> Estimate:
    """The mean of the values with a seeded percentile bootstrap interval; None values are left out."""
    kept = [float(v) for v in values if v is not None]
    n = len(kept)
    if n == 0:
        return Estimate(None, None, None, 0, "none")
    mean = sum(kept) / n
    if n == 1:
        return Estimate(mean, mean, mean, 1, "bootstrap")
    low, high = _percentile_interval(kept, seed, resamples)
    return Estimate(mean, low, high, n, "bootstrap")


def _percentile_interval(values: list[float], seed: int, resamples: int) -> tuple[float, float]:
    n = len(values)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return means[int(0.025 * (resamples - 1))], means[int(math.ceil(0.975 * (resamples - 1)))]


def estimate(values: Iterable[bool | float | None], seed: int = 0) -> Estimate:
    """Wilson for booleans, bootstrap for anything else."""
    items = list(values)
    present = [v for v in items if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return rate(items)
    return bootstrap_mean(items, seed=seed)


def paired_difference(first: Iterable[bool | float | None], second: Iterable[bool | float | None],
                      seed: int = 0, resamples: int = 1000) -> Estimate:
    """Mean of ``second - first`` over samples where both apply, with a paired bootstrap interval."""
    pairs = [(float(a), float(b)) for a, b in zip(first, second) if a is not None and b is not None]
    n = len(pairs)
    if n == 0:
        return Estimate(None, None, None, 0, "none")
    diffs = [b - a for a, b in pairs]
    mean = sum(diffs) / n
    if n == 1:
        return Estimate(mean, mean, mean, 1, "paired-bootstrap")
    low, high = _percentile_interval(diffs, seed, resamples)
    return Estimate(mean, low, high, n, "paired-bootstrap")
