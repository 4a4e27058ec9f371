"""Fairness actors for contribution-based payouts (issue 15): trainers that add little or nothing, by role.

  * freeride:  sends the global model back unchanged and claims its whole partition's samples;
  * duplicate: copies another trainer's update of the same round (it trains exactly as that trainer does: the same
    partition, the same seed, so the same weights) and claims the same samples, signed with its own key;
  * lowdata:   an honest trainer that holds only `fraction` (10 %) of its partition, a seeded subset.
`ActorsApp` wraps the trainers' ClientApp for the in-process grid (`grid.InProcessGrid` calls it as it calls a
ClientApp): the actors' training messages get the role's reply, every other message the trainer's own.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import Context, Message, MessageType

from flower_sim import trainer
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.splits import Dataset

ROLES = ("freeride", "duplicate", "lowdata")
LOW_DATA_FRACTION = 0.1

AppFn = Callable[..., Message]  # called as app(message=..., context=...), like a ClientApp


@dataclass(frozen=True)
class Actor:
    """One trainer's role; `original` is whom a duplicate copies, `fraction` the share a low-data trainer holds."""

    role: str
    original: int = -1
    fraction: float = LOW_DATA_FRACTION

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown actor role {self.role!r}: one of {', '.join(ROLES)}")
        if self.role == "duplicate" and self.original < 0:
            raise ValueError("a duplicate needs the trainer it copies (original)")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"a low-data trainer's fraction is in (0, 1], got {self.fraction}")


def shrunk(data: Dataset, fraction: float, seed: int, trainer_id: int) -> Dataset:
    """A seeded `fraction` of `data` (at least one sample), in its original order."""
    rng = np.random.default_rng([seed, trainer_id, 0x10])
    keep = np.sort(rng.choice(len(data), size=max(1, round(fraction * len(data))), replace=False))
    return Dataset(data.x[keep], data.y[keep])


class ActorsApp:
    """The trainers' ClientApp with some trainers playing a role (trainer id -> `Actor`)."""

    def __init__(self, actors: Mapping[int, Actor], app: AppFn = trainer.app) -> None:
        self.actors = dict(actors)
        self.app = app

    def __call__(self, message: Message, context: Context) -> Message:
        trainer_id = int(context.node_config["partition-id"])
        actor = self.actors.get(trainer_id)
        if actor is None or message.metadata.message_type != MessageType.TRAIN:
            return self.app(message=message, context=context)
        cfg = SimulationConfig.from_run_config(dict(context.run_config))
        partitions = make_splits(cfg.split_spec()).trainers
        own = partitions[trainer_id]
        if actor.role == "lowdata":
            return trainer.train_on(message, cfg, trainer_id, shrunk(own, actor.fraction, cfg.seed, trainer_id))
        if actor.role == "freeride":
            weights = message.content["arrays"].to_numpy_ndarrays()
            return trainer.update_reply(message, cfg, trainer_id, weights, len(own), 0.0, True)
        copied = trainer.train_on(message, cfg, actor.original, partitions[actor.original])
        metrics = copied.content["metrics"]
        return trainer.update_reply(message, cfg, trainer_id, copied.content["arrays"].to_numpy_ndarrays(),
                                    int(metrics["num-examples"]), float(metrics["train-loss"]), True)
