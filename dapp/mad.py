"""The Maximum Acceptable Deviation rule (seed paper, Algorithm 1), in integer basis points.

One definition for both planes: validators apply it to decide what they aggregate, and the rollup
recomputes it from the accuracies that validators report, so the two always agree bit for bit.
No floats: accuracies are basis points (0..10_000) of correct predictions.
"""
from __future__ import annotations

BPS = 10_000
DEFAULT_MAD_BPS = 2_500  # the paper's 25%


def accuracy_bps(correct: int, total: int) -> int:
    """Accuracy in basis points, rounded down: 9_876 means 98.76%."""
    if total <= 0:
        raise ValueError("accuracy of an empty evaluation set")
    if not 0 <= correct <= total:
        raise ValueError(f"correct={correct} outside 0..{total}")
    return correct * BPS // total


def is_positive(contribution_bps: int, validator_bps: int, mad_bps: int = DEFAULT_MAD_BPS) -> bool:
    """Positive when the contribution's accuracy is at least (1 - MAD) x the validator's own accuracy.

    Exactly at the boundary counts as Positive: with MAD 25% and a validator at 80.00%, an update
    at 60.00% is Positive and one at 59.99% is Negative.
    """
    if not 0 < mad_bps < BPS:
        raise ValueError(f"MAD must be in (0, {BPS}) basis points, got {mad_bps}")
    return contribution_bps * BPS >= (BPS - mad_bps) * validator_bps
