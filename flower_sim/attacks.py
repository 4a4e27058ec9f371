"""Byzantine trainer behaviours: what a malicious trainer does to its data or to the update it sends.

An update is `local weights - global weights`. The attacks (parameters come from the run config):
  * gaussian  (the seed paper, §5): with probability P per round, add N(0, sigma^2) noise to the update;
  * signflip: send global - k * update (the update reversed, scaled by k = `signflip_k`, 1 by default);
  * scaled:   send global + boost * update (a boosted, model-replacement style update);
  * labelflip: train on labels shuffled by a random permutation for a fraction of its own samples (QoS: 0 <-> 1).
Which trainers are malicious is drawn once from the run seed (`malicious_trainers`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ATTACKS = ("none", "gaussian", "signflip", "labelflip", "scaled")


@dataclass(frozen=True)
class AttackParams:
    """The knobs of every attack; each attack reads only its own."""

    kind: str = "none"
    prob: float = 0.05
    sigma: float = 1.0
    flip_fraction: float = 0.5
    boost: float = 10.0
    signflip_k: float = 1.0


def malicious_trainers(trainers: int, fraction: float, seed: int) -> frozenset[int]:
    """Trainer ids that misbehave: round(fraction x trainers) of them, chosen from the seed."""
    count = int(round(fraction * trainers))
    rng = np.random.default_rng([seed, 0xBAD])
    return frozenset(int(i) for i in rng.choice(trainers, size=count, replace=False))


def attack_fires(params: AttackParams, rng: np.random.Generator) -> bool:
    """Whether the attack acts this round: gaussian draws with probability P, the others always act."""
    if params.kind == "none":
        return False
    if params.kind == "gaussian":
        return bool(rng.random() < params.prob)
    return True


def flip_labels(y: np.ndarray, fraction: float, rng: np.random.Generator, classes: int = 10) -> np.ndarray:
    """Labels with `fraction` of the samples relabelled by a derangement of the classes (c -> perm[c] != c); with
    two classes (the QoS task) that swaps violation and compliance."""
    perm = (np.arange(classes) + rng.integers(1, classes)) % classes  # a shift: no class maps to itself
    flipped = y.copy()
    chosen = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    flipped[chosen] = perm[y[chosen]]
    return flipped


def poison_weights(params: AttackParams, global_weights: list[np.ndarray], local_weights: list[np.ndarray],
                   rng: np.random.Generator) -> list[np.ndarray]:
    """The weights a malicious trainer sends instead of `local_weights` (model-poisoning attacks)."""
    updates = [lw - gw for lw, gw in zip(local_weights, global_weights)]
    if params.kind == "gaussian":
        poisoned = [u + rng.normal(0.0, params.sigma, size=u.shape) for u in updates]
    elif params.kind == "signflip":
        poisoned = [-params.signflip_k * u for u in updates]
    elif params.kind == "scaled":
        poisoned = [params.boost * u for u in updates]
    else:
        return local_weights
    return [(gw + p).astype(gw.dtype) for gw, p in zip(global_weights, poisoned)]
