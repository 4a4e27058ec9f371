"""What every party of a run holds (the task-agnostic data types) and what determines the split.

Shared by the MNIST task (`flower_sim.data`) and the QoS task (`flower_sim.qos_data`), so neither imports the
other's module for its types.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TASKS = ("mnist", "qos")
PUBLIC_TEST_SIZE = 500  # rows of the manager's test set that form the task's public test set (the rollup's)
# The QoS task's SLA (a window violates it when any bound is crossed); defaults make violations a rare class
SLA_MBPS = 2.0       # minimum throughput, Mbit/s
SLA_RTT_MS = 200.0   # maximum round-trip time, ms
SLA_LOSS_PCT = 2.0   # maximum packet loss, %


@dataclass(frozen=True)
class Dataset:
    """Inputs as float32 in [0, 1] (MNIST images (n, 28, 28, 1); QoS features (n, 12)), labels as int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Splits:
    """Every party's data; `*_index` are positions in the pool, kept so disjointness can be checked.
    `test_groups`: the cell (validator group, 0-based) of every test row of the QoS task; None for MNIST."""

    test: Dataset
    validators: tuple[Dataset, ...]
    trainers: tuple[Dataset, ...]
    validator_index: tuple[np.ndarray, ...]
    trainer_index: tuple[np.ndarray, ...]
    source: str
    test_groups: np.ndarray | None = None


@dataclass(frozen=True)
class SplitSpec:
    """What determines the split: hashable, so every trainer process derives the same partitions."""

    trainers: int
    validators: int
    seed: int
    partition: str = "iid"
    alpha: float = 0.5
    classes_per_trainer: int = 2
    data_path: str = ""
    task: str = "mnist"
    sla_mbps: float = SLA_MBPS
    sla_rtt_ms: float = SLA_RTT_MS
    sla_loss_pct: float = SLA_LOSS_PCT
