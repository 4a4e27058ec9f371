"""The privacy budget a task's publisher promises its trainers (CreateTask's dp_* fields, issue 17), in integers.

The noise happens on each trainer's device (`flower_sim.privacy`); the rollup cannot see it, only record the
promise and refuse one that is inconsistent in itself: an unknown mechanism, ε given without a mechanism or a
mechanism without ε, a Gaussian δ outside (0, 1), a Laplace δ other than 0, no clipping norm, or a total ε below one
round's. Whether the total is the accounted composition of the rounds needs floating point and dp-accounting,
which the machine does not run: the auditors' console re-computes it (`frontend-console/audit.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

from dapp.schema import (DP_CLIP_SCALE, DP_DELTA_SCALE, DP_EPSILON_SCALE, DP_GAUSSIAN, DP_LAPLACE, DP_NAMES,
                         DP_NONE)


@dataclass(frozen=True)
class DpBudget:
    """ε per round and in total (thousandths), δ (10^-18), clipping norm C (millionths), by mechanism."""

    mechanism: int = DP_NONE
    epsilon_milli: int = 0
    delta_atto: int = 0
    clip_micro: int = 0
    total_epsilon_milli: int = 0

    @classmethod
    def of(cls, message) -> "DpBudget":
        """The budget carried by a CreateTask or a TaskCreated."""
        return cls(message.dp_mechanism, message.dp_epsilon_milli, message.dp_delta_atto, message.dp_clip_micro,
                   message.dp_total_epsilon_milli)

    def problem(self) -> str | None:
        """Why the rollup refuses this budget, or None when it is consistent."""
        if self.mechanism not in DP_NAMES:
            return f"privacy mechanism {self.mechanism} is unknown (known: " + ", ".join(
                f"{k} {v}" for k, v in DP_NAMES.items()) + ")"
        if self.mechanism == DP_NONE:
            if any((self.epsilon_milli, self.delta_atto, self.clip_micro, self.total_epsilon_milli)):
                return "a task without differential privacy must leave ε, δ, the clip and the total ε at 0"
            return None
        if self.epsilon_milli == 0:
            return f"{DP_NAMES[self.mechanism]} noise needs a per-round ε above 0"
        if self.clip_micro == 0:
            return f"{DP_NAMES[self.mechanism]} noise needs a clipping norm above 0 (its sensitivity)"
        if self.mechanism == DP_GAUSSIAN and not 0 < self.delta_atto < DP_DELTA_SCALE:
            return f"Gaussian noise needs δ in (0, 1), got {self.delta_atto} × 10^-18"
        if self.mechanism == DP_LAPLACE and self.delta_atto != 0:
            return f"Laplace noise is pure ε-DP: δ must be 0, got {self.delta_atto} × 10^-18"
        if self.total_epsilon_milli < self.epsilon_milli:
            return (f"the task's total ε {self.total_epsilon_milli / DP_EPSILON_SCALE:g} is below one round's "
                    f"{self.epsilon_milli / DP_EPSILON_SCALE:g}")
        return None

    def words(self) -> str:
        """The budget as an auditor reads it."""
        if self.mechanism == DP_NONE:
            return "no differential privacy promised"
        name = DP_NAMES.get(self.mechanism, f"mechanism {self.mechanism}")
        delta = f"δ = {self.delta_atto / DP_DELTA_SCALE:g}" if self.delta_atto else "δ = 0"
        return (f"{name}: ε = {self.epsilon_milli / DP_EPSILON_SCALE:g} per round, "
                f"ε = {self.total_epsilon_milli / DP_EPSILON_SCALE:g} in total, {delta}, "
                f"clip C = {self.clip_micro / DP_CLIP_SCALE:g}")
