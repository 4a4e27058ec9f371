"""Helpers for the federated-core tests: a tiny Flower ClientApp with known replies and a scripted judge."""
from __future__ import annotations

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flower_sim.models import Score


def constant_client_app(examples: dict[int, int]) -> ClientApp:
    """A ClientApp whose trainer t replies with one array filled with t and `examples[t]` samples."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        t = int(context.node_config["partition-id"])
        metrics = MetricRecord({"num-examples": examples[t], "trainer-id": t, "attacked": 0})
        return Message(RecordDict({"arrays": ArrayRecord([np.full(3, float(t), dtype=np.float32)]),
                                   "metrics": metrics}), reply_to=msg)

    return app


class ScriptedJudge:
    """Stands in for a validator's data: the reference scores `own_bps`, trainer t's model `bps[t]`."""

    def __init__(self, own_bps: int, bps: dict[int, int]) -> None:
        self.own_bps, self.bps = own_bps, bps

    def reference(self, global_arrays: ArrayRecord) -> Score:
        return Score(correct=self.own_bps, total=10_000, loss=0.0)

    def score(self, arrays: ArrayRecord) -> Score:
        trainer = int(arrays.to_numpy_ndarrays()[0][0])
        return Score(correct=self.bps[trainer], total=10_000, loss=0.0)
