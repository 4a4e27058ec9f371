"""Calibration and accounting of the trainers' differential-privacy noise (issue 17), shared by the trainers
(`flower_sim.privacy`, which adds the noise) and the auditors (`frontend-console/audit.py`, which re-computes a
task's recorded privacy budget): one module, so both sides compute the same numbers.

Neighbouring relation: two data sets of one trainer that differ arbitrarily (a trainer's whole data set replaced),
so each round is *local* DP for the trainer: its clipped update (norm at most C) can move by at most Δ = 2C
(`SENSITIVITY_FACTOR` × C) in the clipping norm (L2 for Gaussian, L1 for Laplace).

Gaussian: σ = m·Δ with the noise multiplier m of the analytic Gaussian mechanism (Balle & Wang, ICML 2018,
Theorem 8), the smallest m for which one release is (ε, δ)-DP; valid for every ε > 0 (the classic
√(2 ln(1.25/δ))·Δ/ε holds only for ε ≤ 1). Rounds compose with dp-accounting's PLD accountant (a Gaussian event
of multiplier m per round) at the same δ.
Laplace (seed 001, Zhao et al.): scale b = Δ₁/ε, pure ε-DP per round (δ = 0); rounds compose to r·ε at δ = 0
(basic composition, exact for pure DP); `laplace_epsilon_at` gives the tighter PLD figure at some δ > 0.
"""
from __future__ import annotations

import math

MECHANISMS = ("none", "gaussian", "laplace")
SENSITIVITY_FACTOR = 2.0  # replace-one neighbours: a clipped update (norm ≤ C) moves by at most 2C
MAX_EPSILON = 1000.0  # per round: far past any meaningful privacy, kept for the accuracy curve's flat end


def pld_interval(epsilon: float) -> float:
    """The PLD accountant's value grid for a per-round ε: 10⁻³ (10 rounds in 0.05 s, within 10⁻⁵ of a 10⁻⁴ grid),
    coarser for large ε (ε = 1000 took 40 s on the fine grid); the PLD is pessimistic, so a coarse grid only
    overstates the total (by 0.02 % at ε = 1000 against the exact composition)."""
    return max(1e-3, epsilon * 1e-4)


def gaussian_delta(epsilon: float, multiplier: float) -> float:
    """δ of one Gaussian release with noise σ = multiplier × Δ at ε (Balle & Wang 2018, Theorem 8)."""
    from scipy.special import log_ndtr, ndtr  # 0.8 s to load: not for `fedrollup --help`, which imports this module

    a, b = 1 / (2 * multiplier), epsilon * multiplier
    return float(ndtr(a - b) - math.exp(epsilon + log_ndtr(-a - b)))


def gaussian_multiplier(epsilon: float, delta: float) -> float:
    """The smallest noise multiplier m = σ/Δ making one Gaussian release (ε, δ)-DP (bisection on δ(ε, m),
    which decreases in m), rounded up to within 1e-9 relative."""
    if not (0 < epsilon and 0 < delta < 1):
        raise ValueError(f"the Gaussian mechanism needs ε > 0 and δ in (0, 1), got ε={epsilon}, δ={delta}")
    low, high = 1e-6, 1.0
    while gaussian_delta(epsilon, high) > delta:
        low, high = high, 2 * high
    while (high - low) > 1e-9 * high:
        mid = (low + high) / 2
        low, high = (low, mid) if gaussian_delta(epsilon, mid) <= delta else (mid, high)
    return high


def epsilon_spent(mechanism: str, epsilon: float, delta: float, rounds: int) -> list[float]:
    """ε spent after each of rounds 1..`rounds` by a trainer that adds `mechanism` noise calibrated to (ε, δ)
    per round: Gaussian at δ by the PLD accountant, Laplace at δ = 0 (r·ε)."""
    if mechanism == "none":
        return [math.inf] * rounds
    if mechanism == "laplace":
        return [r * epsilon for r in range(1, rounds + 1)]
    import dp_accounting  # heavy (0.5 s) and host-only: only when a budget is accounted
    from dp_accounting.pld.pld_privacy_accountant import PLDAccountant  # with dp_accounting, same reason

    event = dp_accounting.GaussianDpEvent(gaussian_multiplier(epsilon, delta))
    accountant, spent = PLDAccountant(value_discretization_interval=pld_interval(epsilon)), []
    for _ in range(rounds):
        accountant.compose(event, 1)
        spent.append(float(accountant.get_epsilon(delta)))
    return spent


def total_epsilon(mechanism: str, epsilon: float, delta: float, rounds: int) -> float:
    """ε of the whole task (`rounds` rounds) at δ (0 for Laplace)."""
    return epsilon_spent(mechanism, epsilon, delta, rounds)[-1]


def laplace_epsilon_at(epsilon: float, delta: float, rounds: int) -> float:
    """The Laplace rounds' total ε at some δ > 0 by the PLD accountant (tighter than r·ε for many rounds)."""
    import dp_accounting  # heavy and host-only: only when a budget is accounted
    from dp_accounting.pld.pld_privacy_accountant import PLDAccountant  # with dp_accounting, same reason

    accountant = PLDAccountant(value_discretization_interval=pld_interval(epsilon))
    accountant.compose(dp_accounting.LaplaceDpEvent(1 / epsilon), rounds)
    return float(accountant.get_epsilon(delta))


# The rollup's fixed points for ε and δ (dapp.schema's DP_EPSILON_SCALE, DP_DELTA_SCALE; a test checks they agree).
EPSILON_SCALE = 1_000
DELTA_SCALE = 10**18


def scaled_up(value: float, scale: int) -> int:
    """`value` × `scale` rounded up (a promise never understates ε or δ), ignoring float dust below 10^-6."""
    return math.ceil(round(value * scale, 6))


def total_epsilon_milli(mechanism: str, epsilon_milli: int, delta_atto: int, rounds: int) -> int:
    """The total ε, in thousandths rounded up, of `rounds` rounds at the on-chain per-round ε and δ: what a publisher
    records in CreateTask and what an auditor re-computes from the recorded per-round values."""
    total = total_epsilon(mechanism, epsilon_milli / EPSILON_SCALE, delta_atto / DELTA_SCALE, rounds)
    return scaled_up(total, EPSILON_SCALE)
