"""A Flower app that only moves a model-sized ArrayRecord: the network's own round, with no learning in it.

The ServerApp (on a validator's SuperLink) waits for `nodes` SuperNodes, then for each of `rounds` rounds
sends every node an ArrayRecord of `payload-bytes` and waits for each node to send back the same arrays
plus 1 + its partition id (a stand-in for an update of the model's size), checking every reply's digest; it
writes per-round seconds and bytes to the JSON file `out`. It measures what the emulated links, TLS and
Flower's Deployment Engine cost per round before any training is added. Run by `topology.echo_round`.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MessageType, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from flower_sim.validator_app import wait_for_nodes

serverapp = ServerApp()
clientapp = ClientApp()


def _digest(arrays: ArrayRecord) -> str:
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays.to_numpy_ndarrays())).hexdigest()


def _updated(arrays: ArrayRecord, partition: int) -> ArrayRecord:
    """What a trainer sends back: the same shapes with values of its own. (A record the SuperLink already
    holds would not travel: Flower uploads only objects it does not have, so each node's must differ.)"""
    return ArrayRecord([a + np.float32(1 + partition) for a in arrays.to_numpy_ndarrays()])


@clientapp.train()
def echo(msg: Message, context: Context) -> Message:
    partition = int(context.node_config.get("partition-id", 0))
    arrays = _updated(msg.content["arrays"], partition)
    metrics = MetricRecord({"num-examples": 1, "partition-id": partition})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@serverapp.main()
def rounds(grid: Grid, context: Context) -> None:
    config = context.run_config
    wanted, size, count = int(config["nodes"]), int(config["payload-bytes"]), int(config["rounds"])
    wait_for_nodes(grid, wanted, float(config.get("wait-nodes-s", 120)))
    node_ids = sorted(grid.get_node_ids())
    arrays = ArrayRecord([np.random.default_rng(0).random(size // 4, dtype=np.float32)])
    expected: dict[int, str] = {}
    results = []
    for number in range(1, count + 1):
        messages = [Message(RecordDict({"arrays": arrays, "config": ConfigRecord({"round": number})}),
                            dst_node_id=node, message_type=MessageType.TRAIN) for node in node_ids]
        started = time.monotonic()
        replies = list(grid.send_and_receive(messages, timeout=600))
        seconds = time.monotonic() - started
        intact = 0
        for reply in replies:
            if reply.has_error():
                continue
            partition = int(reply.content["metrics"]["partition-id"])
            if partition not in expected:
                expected[partition] = _digest(_updated(arrays, partition))
            intact += _digest(reply.content["arrays"]) == expected[partition]
        results.append({"round": number, "seconds": seconds, "nodes": len(node_ids), "replies": len(replies),
                        "intact": intact, "payload_bytes": size // 4 * 4})
    with open(config["out"], "w") as out:
        json.dump({"rounds": results}, out, indent=2)
