"""The global model manager: initial model, the global model as the mean of the validators' models,
scoring on the held-out test set, the best validator of the round, and the per-round `.npz` files.

Best validator (the seed paper: "the contribution closest to the average of all validators"): the
validator whose aggregated model's accuracy on the manager's test set is closest to the global model's
accuracy there, i.e. argmin over v of |bps(model_v) - bps(global)|, ties to the lower validator id.
A weight-space distance to the average cannot serve: with two validators both are exactly equidistant
from their midpoint, so they would tie by construction. The rollup applies this same rule to the
accuracies the producer reports.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from flower_sim import models
from flower_sim.data import Dataset
from flower_sim.models import Score
from flower_sim.npz import save_weights


def closest_validator(validator_bps: list[int], global_bps: int) -> int:
    """Index of the validator accuracy closest to the global accuracy; ties go to the lower index."""
    if not validator_bps:
        raise ValueError("no validators")
    return min(range(len(validator_bps)), key=lambda v: (abs(validator_bps[v] - global_bps), v))


def average(weight_sets: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Plain (unweighted) mean of the validators' models, layer by layer."""
    return [np.mean(np.stack(layers), axis=0).astype(layers[0].dtype) for layers in zip(*weight_sets)]


class Manager:
    """Holds the test set and writes the global model of every round."""

    def __init__(self, model_kind: str, seed: int, test: Dataset, out_dir: Path) -> None:
        self.model_kind = model_kind
        self.seed = seed
        self.test = test
        self.out_dir = out_dir

    def initial_weights(self) -> list[np.ndarray]:
        return models.initial_weights(self.model_kind, self.seed)

    def evaluate(self, weights: list[np.ndarray]) -> Score:
        model = models.shared_model(self.model_kind, 0.01, "manager")
        return models.score(model, weights, self.test.x, self.test.y)

    def save_global(self, server_round: int, weights: list[np.ndarray]) -> tuple[str, str]:
        """Write `round-NNN.npz`; returns (file name, SHA-256)."""
        path = self.out_dir / f"round-{server_round:03d}.npz"
        return path.name, save_weights(path, weights)
