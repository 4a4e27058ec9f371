"""The trainer ClientApp of a deployment, timed: `flower_sim.trainer` unchanged, plus how long the
station spent training ("train-s") and how long its ClientApp process had been up when training began
("startup-s": a process per message; with Flower's default isolation a fresh one that imports TensorFlow,
with the topology's warm executor a fork of a process that already has) in the reply's metrics, so a round's
wall time can be split into training, runtime start and network transfer.
Component: `clientapp = "flower_sim.station_app:app"`.
"""
from __future__ import annotations

import os
import time

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from flower_sim import trainer

app = ClientApp()


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; 0.0 elsewhere)."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as boot:
            btime = next(int(line.split()[1]) for line in boot if line.startswith("btime"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0.0
    return max(0.0, time.time() - (btime + start_ticks / os.sysconf("SC_CLK_TCK")))


@app.train()
def train(msg: Message, context: Context) -> Message:
    import keras  # noqa: F401  (a fresh process's TensorFlow import is start-up, not training; a warm fork has it)

    startup_s = process_age_s()
    started = time.perf_counter()
    reply = trainer.train(msg, context)
    reply.content["metrics"]["train-s"] = time.perf_counter() - started
    reply.content["metrics"]["startup-s"] = startup_s
    return reply


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return trainer.evaluate(msg, context)


@app.query()
def identify(msg: Message, context: Context) -> Message:
    return trainer.identify(msg, context)
