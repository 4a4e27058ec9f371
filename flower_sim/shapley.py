"""Shapley values of a validator group's accepted updates, on the validator's own data (issue 15, FedCoin).

Reference: Y. Liu et al., "FedCoin: A Peer-to-Peer Payment System for Federated Learning" (2020), Algorithm 1
(permutation sampling of marginal contributions); L. S. Shapley (1953) for the value itself.

The game: the players are the group's accepted updates; the utility of a coalition S is the accuracy, in exact
integer basis points (`models.score`), on the validator's data of the sample-weighted FedAvg of S's models, and
v(∅) is the global model's (what the validator would keep with nobody's update). A value is in bps of accuracy.
`GroupUtility(averaging="group")` is the variant where S's model is the group's FedAvg had only S sent updates
(a free-rider is then a null player); the benchmark measures both.

Estimators:
  * `exact`: every one of the 2^n coalitions, each utility evaluated once (cached), the value as
    Σ |S|!(n-|S|-1)! (v(S ∪ i) - v(S)) / n!, in integers (so shares are exact); used up to `EXACT_LIMIT`
    (n = 10: 1,024 coalitions).
  * `monte_carlo`: TMC-Shapley (Ghorbani & Zou, ICML 2019): mean marginal along random permutations, a
    permutation cut short once its prefix is within `truncation_bps` of v(N) (the rest count 0), with GTG-Shapley's
    guided sampling (Liu et al., IEEE INFOCOM 2022): permutation k puts member k mod n first, so every member is
    measured against the global model equally often (the first marginal is the large one in FL: global model to
    one trained update). With a multiple of n permutations that is still a uniform draw of permutations. Chosen
    over GTG's gradient reconstruction because our updates are whole models already: a coalition's model is its
    FedAvg, exactly, so no reconstruction error is added. Stated error: each member's empirical standard error,
    and Hoeffding's half-width at 95 % for all members at once (union bound) on the observed range of marginals.
    Measured (`benchmarks.shapley`): on groups of 10, 200 permutations already score 70 % of the 1,024 coalitions and
    still miss a share by 75-100 bps on average, hence exact up to 10; truncating at one sample (40 bps) saved 40 %
    of the coalitions and doubled the error, hence off by default.

Shares (`shares_bps`): max(value, 0) / Σ max(values, 0) × 10,000, floored: integers summing to at most 10,000,
what a validator would report and the rollup check. Leave-one-out values v(N) - v(N \\ i) come along for comparison.
Everything is deterministic: the same updates and seed give the same numbers.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from dapp.mad import BPS, accuracy_bps
from flower_sim import models

EXACT_LIMIT = 10  # exact Shapley up to this many members (2^10 = 1,024 coalitions)
DEFAULT_PERMUTATIONS = 50
CONFIDENCE = 0.95

UtilityFn = Callable[[int], int]  # a coalition, as a bit mask over the members' positions -> its utility in bps


class CachedUtility:
    """A utility evaluated at most once per coalition; `evaluations` counts the distinct ones (the cost)."""

    def __init__(self, utility: UtilityFn) -> None:
        self.utility = utility
        self.cache: dict[int, int] = {}

    def __call__(self, mask: int) -> int:
        if mask not in self.cache:
            self.cache[mask] = int(self.utility(mask))
        return self.cache[mask]

    @property
    def evaluations(self) -> int:
        return len(self.cache)


@dataclass(frozen=True)
class Estimate:
    """Each member's Shapley value (bps of accuracy), share (bps of the budget) and leave-one-out value.

    `method` is "exact" or "monte-carlo"; `permutations` is 0 for exact; `stderr` the per-member empirical standard
    error and `bound_bps` the Hoeffding half-width at `CONFIDENCE` for all members (both 0 when exact).
    `evaluations` counts the distinct coalitions scored; `full_bps`/`empty_bps` are v(N) and v(∅)."""

    values: tuple[float, ...]
    shares_bps: tuple[int, ...]
    leave_one_out: tuple[int, ...]
    method: str
    permutations: int
    evaluations: int
    stderr: tuple[float, ...]
    bound_bps: float
    full_bps: int
    empty_bps: int


def shares_bps(values: Sequence[float | int]) -> tuple[int, ...]:
    """max(v, 0) / Σ max(v, 0) × 10,000, floored, computed exactly (a float is converted exactly): integers summing
    to at most 10,000; all 0 when no value is positive. Values may share any common positive scale."""
    positive = [max(Fraction(v), Fraction(0)) for v in values]
    total = sum(positive, Fraction(0))
    if total == 0:
        return tuple(0 for _ in values)
    return tuple(math.floor(p * BPS / total) for p in positive)


def _leave_one_out(n: int, v: CachedUtility) -> tuple[int, ...]:
    full = (1 << n) - 1
    return tuple(v(full) - v(full & ~(1 << i)) for i in range(n))


def exact(n: int, utility: UtilityFn) -> Estimate:
    """Exact Shapley values over all 2^n coalitions (each utility evaluated once)."""
    v = utility if isinstance(utility, CachedUtility) else CachedUtility(utility)
    factorial = [math.factorial(k) for k in range(n + 1)]
    numerators = [0] * n  # value_i × n!, exactly
    for mask in range(1 << n):
        size = mask.bit_count()
        if size == n:
            continue
        base, weight = v(mask), factorial[size] * factorial[n - size - 1]
        for i in range(n):
            if not mask >> i & 1:
                numerators[i] += weight * (v(mask | 1 << i) - base)
    return Estimate(values=tuple(num / factorial[n] for num in numerators), shares_bps=shares_bps(numerators),
                    leave_one_out=_leave_one_out(n, v), method="exact", permutations=0, evaluations=v.evaluations,
                    stderr=tuple(0.0 for _ in range(n)), bound_bps=0.0, full_bps=v((1 << n) - 1), empty_bps=v(0))


def monte_carlo(n: int, utility: UtilityFn, permutations: int, seed: int,
                truncation_bps: int | None = None) -> Estimate:
    """TMC-Shapley with guided first positions (see the module docstring): `permutations` permutations drawn from
    `seed`; a permutation stops once |v(N) - v(prefix)| <= `truncation_bps` (None: never)."""
    if permutations < 1:
        raise ValueError(f"Monte-Carlo Shapley needs at least one permutation, got {permutations}")
    v = utility if isinstance(utility, CachedUtility) else CachedUtility(utility)
    rng = np.random.default_rng(seed)
    full_mask = (1 << n) - 1
    full = v(full_mask)
    marginals = np.zeros((permutations, n), dtype=np.int64)
    for k in range(permutations):
        first = k % n
        rest = [int(i) for i in rng.permutation([i for i in range(n) if i != first])]
        mask, previous = 0, v(0)
        for i in [first, *rest]:
            if truncation_bps is not None and mask and abs(full - previous) <= truncation_bps:
                break  # truncated: every later member's marginal counts 0
            mask |= 1 << i
            current = v(mask)
            marginals[k, i] = current - previous
            previous = current
    sums = marginals.sum(axis=0)
    stderr = marginals.std(axis=0, ddof=1) / math.sqrt(permutations) if permutations > 1 else np.zeros(n)
    spread = float(marginals.max() - marginals.min())
    bound = spread * math.sqrt(math.log(2 * n / (1 - CONFIDENCE)) / (2 * permutations))
    return Estimate(values=tuple(float(s) / permutations for s in sums), shares_bps=shares_bps([int(s) for s in sums]),
                    leave_one_out=_leave_one_out(n, v), method="monte-carlo", permutations=permutations,
                    evaluations=v.evaluations, stderr=tuple(float(s) for s in stderr), bound_bps=bound,
                    full_bps=full, empty_bps=v(0))


def estimate(n: int, utility: UtilityFn, *, seed: int, exact_limit: int = EXACT_LIMIT,
             permutations: int = DEFAULT_PERMUTATIONS, truncation_bps: int | None = None) -> Estimate:
    """Exact for n <= `exact_limit`, else Monte-Carlo with `permutations` permutations."""
    if n <= exact_limit:
        return exact(n, utility)
    return monte_carlo(n, utility, permutations, seed, truncation_bps)


AVERAGING = ("coalition", "group")


class GroupUtility:
    """v(S) for a validator group: the accuracy (bps) on (x, y) of S's model, and for the empty coalition the global
    model's. S's model, by `averaging`:
      * "coalition" (the default): the sample-weighted FedAvg of S's models, n_i / Σ_S n_j each;
      * "group": the group's FedAvg had only S sent updates (everyone else the global model back): global +
        Σ_S n_i / Σ_N n_j × (w_i - global). An update equal to the global model is then a null player (value 0);
        under "coalition" it shrinks every coalition's step, which is worth accuracy when the steps overshoot.
    The members' weights and the global model's are stacked once per layer, so a coalition's model is one tensordot
    per layer (coefficient 0 for non-members: the same float sums whatever the order coalitions are asked in)."""

    def __init__(self, model, global_weights: Sequence[np.ndarray], updates: Sequence[Sequence[np.ndarray]],
                 samples: Sequence[int], x: np.ndarray, y: np.ndarray, averaging: str = "coalition") -> None:
        if averaging not in AVERAGING:
            raise ValueError(f"averaging is one of {', '.join(AVERAGING)}, got {averaging!r}")
        self.model = model
        self.global_weights = list(global_weights)
        self.stacked = [np.stack([*(u[layer] for u in updates), global_weights[layer]])
                        for layer in range(len(global_weights))]
        self.samples = np.asarray(samples, dtype=np.float64)
        self.averaging = averaging
        self.x, self.y = x, y

    def coefficients(self, mask: int) -> np.ndarray:
        """Each member's weight in the coalition's model (0 outside it), then the global model's."""
        chosen = np.array([mask >> i & 1 for i in range(len(self.samples))], dtype=np.float64) * self.samples
        if not chosen.any():
            members = np.zeros_like(chosen)
        else:
            members = chosen / (chosen.sum() if self.averaging == "coalition" else self.samples.sum())
        return np.append(members, 1.0 - members.sum()).astype(np.float32)

    def weights(self, mask: int) -> list[np.ndarray]:
        """The coalition's model (the global model for the empty coalition)."""
        if mask == 0:
            return self.global_weights
        coefficients = self.coefficients(mask)
        return [np.tensordot(coefficients, layer, axes=1) for layer in self.stacked]

    def __call__(self, mask: int) -> int:
        return models.score(self.model, self.weights(mask), self.x, self.y).bps


class DenseUtility(GroupUtility):
    """`GroupUtility` for the dense models (`mlp`, `logreg`: Flatten, then Dense layers, ReLU between them), without
    Keras: the first layer's product x·W is linear in W, so each member's (and the global model's) is computed once
    and a coalition's is their weighted sum (the costly 250 x 784 product leaves the per-coalition work). Same game;
    the float sums differ from Keras's in the last bits, so an accuracy could differ by a near-tied sample (the
    benchmark counts how often: never in 3,072 coalitions)."""

    def __init__(self, model, global_weights: Sequence[np.ndarray], updates: Sequence[Sequence[np.ndarray]],
                 samples: Sequence[int], x: np.ndarray, y: np.ndarray, averaging: str = "coalition") -> None:
        super().__init__(model, global_weights, updates, samples, x, y, averaging)
        flat = x.reshape(len(x), -1)
        self.first = np.stack([flat @ kernel for kernel in self.stacked[0]])  # (members + global, samples, units)

    def __call__(self, mask: int) -> int:
        coefficients = self.coefficients(mask)
        hidden = np.tensordot(coefficients, self.first, axes=1) + np.tensordot(coefficients, self.stacked[1], axes=1)
        rest = [np.tensordot(coefficients, layer, axes=1) for layer in self.stacked[2:]]
        for kernel, bias in zip(rest[::2], rest[1::2]):
            hidden = np.maximum(hidden, 0.0) @ kernel + bias
        return accuracy_bps(int(np.sum(np.argmax(hidden, axis=1) == self.y)), len(self.y))


DENSE_MODELS = ("mlp", "logreg")


def group_utility(kind: str, model, global_weights: Sequence[np.ndarray], updates: Sequence[Sequence[np.ndarray]],
                  samples: Sequence[int], x: np.ndarray, y: np.ndarray, averaging: str = "coalition") -> GroupUtility:
    """The group's utility for architecture `kind`: `DenseUtility` for the dense models, else Keras's forward pass."""
    cls = DenseUtility if kind in DENSE_MODELS else GroupUtility
    return cls(model, global_weights, updates, samples, x, y, averaging)
