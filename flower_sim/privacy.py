"""Differential privacy of a trainer's update (issue 17): clip the update, add seeded noise, account the budget.

The trainer calls `privatize` on its weights right after local training, before anything leaves it and before it
signs its update digest: the update u = local − global is clipped to norm C (L2 for Gaussian, L1 for Laplace) and
noise is added to every coordinate, drawn from the trainer's per-round seed (`trainer.trainer_seed`), so the same
run gives the same noisy update (and the same digest). What is protected, the sensitivity (Δ = 2C: a trainer's whole
data set replaced, local DP per round) and the calibration (analytic Gaussian; Laplace b = Δ₁/ε) are
`common.dp_accountant`'s, shared with the auditors.

Why not Flower's `LocalDpMod` (flwr 1.41, `flwr.client.mod.localdp_mod`): it is a mod that acts on the reply after
the ClientApp returns, i.e. after our trainer has signed its update digest (the validator would then find a digest
that does not match the update it receives); it converts through the legacy FitIns/FitRes records; it draws its
noise from NumPy's global generator (not our per-trainer seed); its σ = Δ·√(2 ln(1.25/δ))/ε is the classic
calibration, valid only for ε ≤ 1; and it has no Laplace mechanism. Its helpers (`flwr.supercore.
differential_privacy`; 1.41 has no `flwr.common.differential_privacy`) clip in L2 only and divide by the update's
norm with no guard for a zero update (ZeroDivisionError), so the few lines below do both steps.

Attackers: a malicious trainer whose attack fires this round sends its poisoned update as is (no clipping, no noise:
it does not keep the protocol); when its attack does not fire it behaves honestly and adds the noise like everyone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common import dp_accountant
from dapp.schema import DP_CLIP_SCALE, DP_NAMES


@dataclass(frozen=True)
class DpParams:
    """A run's mechanism and its per-round budget (ε, δ) at clipping norm C."""

    mechanism: str = "none"
    epsilon: float = math.inf
    delta: float = 0.0
    clip: float = 1.0

    @property
    def active(self) -> bool:
        return self.mechanism != "none"

    @property
    def sensitivity(self) -> float:
        return dp_accountant.SENSITIVITY_FACTOR * self.clip

    def onchain(self, rounds: int) -> dict[str, int]:
        """CreateTask's dp_* fields for a task of `rounds` rounds: ε and δ rounded up, the total accounted from them
        (`dp_accountant.total_epsilon_milli`, as the auditors re-compute it)."""
        if not self.active:
            return {}
        mechanism = next(k for k, v in DP_NAMES.items() if v == self.mechanism)
        epsilon_milli = dp_accountant.scaled_up(self.epsilon, dp_accountant.EPSILON_SCALE)
        delta_atto = dp_accountant.scaled_up(self.delta, dp_accountant.DELTA_SCALE)
        return {"dp_mechanism": mechanism, "dp_epsilon_milli": epsilon_milli, "dp_delta_atto": delta_atto,
                "dp_clip_micro": round(self.clip * DP_CLIP_SCALE),
                "dp_total_epsilon_milli": dp_accountant.total_epsilon_milli(self.mechanism, epsilon_milli,
                                                                            delta_atto, rounds)}

    @property
    def noise_scale(self) -> float:
        """σ of the Gaussian noise, or b of the Laplace noise, per coordinate (0 without DP)."""
        if self.mechanism == "gaussian":
            return dp_accountant.gaussian_multiplier(self.epsilon, self.delta) * self.sensitivity
        if self.mechanism == "laplace":
            return self.sensitivity / self.epsilon
        return 0.0


def norm(arrays: list[np.ndarray], order: int) -> float:
    """The L1 or L2 norm of arrays taken as one flat vector."""
    if order == 1:
        return float(sum(np.abs(a).sum(dtype=np.float64) for a in arrays))
    return math.sqrt(sum(float(np.square(a, dtype=np.float64).sum()) for a in arrays))


def clip(update: list[np.ndarray], bound: float, order: int) -> list[np.ndarray]:
    """`update` scaled down to norm `bound` when above it (Flower's FlatClip, with the zero update left as is)."""
    size = norm(update, order)
    factor = min(1.0, bound / size) if size > 0 else 1.0
    return [np.asarray(u, dtype=np.float64) * factor for u in update]


def privatize(params: DpParams, global_weights: list[np.ndarray], local_weights: list[np.ndarray],
              seed: int) -> list[np.ndarray]:
    """The weights the trainer sends: global + clip(local − global) + noise, in the weights' dtypes; the noise
    is drawn from `seed` (the trainer's per-round seed), so the same seed gives the same weights."""
    if not params.active:
        return local_weights
    order = 2 if params.mechanism == "gaussian" else 1
    clipped = clip([lw - gw for lw, gw in zip(local_weights, global_weights)], params.clip, order)
    rng = np.random.default_rng([seed, 0xD9])  # its own stream: the attack draws of `seed` stay as they were
    scale = params.noise_scale
    draw = rng.normal if params.mechanism == "gaussian" else rng.laplace
    return [(gw + u + draw(0.0, scale, size=u.shape)).astype(gw.dtype) for gw, u in zip(global_weights, clipped)]


@dataclass(frozen=True)
class Budget:
    """A run's accounted privacy: ε spent after each round at δ (0 for Laplace), and the total."""

    params: DpParams
    rounds: int
    noise_scale: float
    epsilon_after_round: tuple[float, ...]
    delta: float
    laplace_epsilon_at_delta: float | None = None  # Laplace only: the PLD accountant's total at `run_delta`
    run_delta: float = 0.0

    @classmethod
    def account(cls, params: DpParams, rounds: int, run_delta: float) -> "Budget":
        """Account `rounds` rounds of `params`; `run_delta` is the δ a Laplace run's PLD total is also given at."""
        spent = dp_accountant.epsilon_spent(params.mechanism, params.epsilon, params.delta, rounds)
        at_delta = (dp_accountant.laplace_epsilon_at(params.epsilon, run_delta, rounds)
                    if params.mechanism == "laplace" and run_delta > 0 else None)
        return cls(params, rounds, params.noise_scale, tuple(spent), params.delta, at_delta, run_delta)

    @property
    def total(self) -> float:
        return self.epsilon_after_round[-1]

    def describe(self) -> str:
        """One line for the run log."""
        p = self.params
        if not p.active:
            return "privacy: none (updates are sent without clipping or noise)"
        if p.mechanism == "gaussian":
            how = f"Gaussian, L2 clip C = {p.clip:g}, σ = {self.noise_scale:.4g}"
            extra = ""
        else:
            how = f"Laplace, L1 clip C = {p.clip:g}, b = {self.noise_scale:.4g}"
            extra = (f"; ε = {self.laplace_epsilon_at_delta:.3g} total at δ = {self.run_delta:g} "
                     f"by the PLD accountant" if self.laplace_epsilon_at_delta is not None else "")
        return (f"privacy: ε = {p.epsilon:g} per round, ε = {self.total:.3g} total after {self.rounds} rounds at "
                f"δ = {self.delta:g} ({how}){extra}")

    def as_dict(self) -> dict:
        """metrics.json's "privacy" section."""
        p = self.params
        return {"mechanism": p.mechanism, "epsilon_per_round": p.epsilon, "delta": self.delta, "clip": p.clip,
                "sensitivity": p.sensitivity if p.active else None, "noise_scale": self.noise_scale,
                "epsilon_after_round": list(self.epsilon_after_round) if p.active else None,
                "total_epsilon": self.total if p.active else None,
                "laplace_epsilon_at_run_delta": self.laplace_epsilon_at_delta,
                "run_delta": self.run_delta if p.mechanism == "laplace" else None}
