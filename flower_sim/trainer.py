"""The trainer: a Flower ClientApp that trains the global model on its private partition.

It reads its partition from `context.node_config["partition-id"]` (its stable trainer id), the training
knobs from the instruction's ConfigRecord ("local-epochs", "batch-size", "lr", with the run config as
fallback), and the attack knobs from the run config. Whether it is malicious is drawn from the run seed
(`SimulationConfig.malicious_trainers`), exactly as the simulation's ground truth records it.

Reply: ArrayRecord "arrays" (its local weights, possibly poisoned) and MetricRecord "metrics" with
"num-examples", "train-loss", "trainer-id" and "attacked". With --dp the update (local − global) is clipped and
noised (`privacy.privatize`, seeded by `trainer_seed`) before it is signed and sent. "attacked" is simulation
ground truth for the metrics only; no validator strategy reads it. When the run records on a rollup (the
instruction carries "task-id", "chain-id", "application" and "group", `signatures.RollupTask`), the reply also
carries ConfigRecord "evidence": "update-digest" (keccak256 of its update's FRQ1 bytes) and "signature", its
EIP-712 `Update` signature from its own key, which its validator puts in its report: with "rollup-key-file" in its
node config (`fedrollup trainer --rollup-key-file`) the key only its device holds (`flower_sim.trainer_agent`, which
also registers it for the task and keeps the update to contest it), else its account of the run's mnemonic.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from common import accounts
from dapp.qmodel import digest
from flower_sim import attacks, models, privacy
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.quantize import to_frq1
from flower_sim.signatures import RollupTask, sign
from flower_sim.splits import Dataset

if TYPE_CHECKING:  # web3 behind it: imported only by a trainer holding its own key (`train`)
    from flower_sim.trainer_agent import OwnRollup, TrainerAgent

app = ClientApp()


def trainer_seed(seed: int, server_round: int, trainer_id: int) -> int:
    """A per-trainer, per-round seed derived from the run seed (for shuffling and attack draws)."""
    return int(np.random.SeedSequence([seed, server_round, trainer_id, 1]).generate_state(1)[0])


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Local training from the received global model, then the trainer's behaviour (honest or attack)."""
    cfg = SimulationConfig.from_run_config(dict(context.run_config))
    trainer_id = int(context.node_config["partition-id"])
    own = None
    if context.node_config.get("rollup-key-file"):
        from flower_sim.trainer_agent import OwnRollup  # web3: only a trainer holding its own rollup key needs it

        own = OwnRollup.from_node_config(dict(context.node_config))
    return train_on(msg, cfg, trainer_id, make_splits(cfg.split_spec()).trainers[trainer_id], own)


def train_on(msg: Message, cfg: SimulationConfig, trainer_id: int, data: Dataset,
             own: OwnRollup | None = None) -> Message:
    """`train` on the given data: the trainer's partition, or less of it for a low-data actor (`flower_sim.actors`).
    ``own`` (`trainer_agent.OwnRollup`): the trainer holds its own rollup key; it registers for the instruction's
    task while it trains (its validator names it in the round's report only once it is registered)."""
    instruction = msg.content["config"]
    agent, registering = None, None
    rollup = RollupTask.from_train_config(instruction)
    if own is not None and rollup is not None:
        agent = own.agent(trainer_id, say=lambda text: print(f"[own key] {text}", flush=True))
        registering = ThreadPoolExecutor(max_workers=1).submit(agent.register, rollup[0].task_id, rollup[1])
    server_round = int(instruction["server-round"])
    epochs = int(instruction.get("local-epochs", cfg.local_epochs))
    batch_size = int(instruction.get("batch-size", cfg.batch_size))
    lr = float(instruction.get("lr", cfg.lr))

    seed = trainer_seed(cfg.seed, server_round, trainer_id)
    rng = np.random.default_rng(seed)
    malicious = trainer_id in cfg.malicious_trainers
    behaviour = cfg.attack_params() if malicious else attacks.AttackParams()
    fires = attacks.attack_fires(behaviour, rng)
    labels = data.y
    if fires and behaviour.kind == "labelflip":
        labels = attacks.flip_labels(data.y, behaviour.flip_fraction, rng, cfg.classes)

    global_weights = msg.content["arrays"].to_numpy_ndarrays()
    model = models.shared_model(cfg.model, lr, "trainer")
    weights, loss = models.train(model, global_weights, data.x, labels, epochs=epochs,
                                 batch_size=batch_size, seed=seed)
    if fires:
        weights = attacks.poison_weights(behaviour, global_weights, weights, rng)
    else:  # an attack that fires is sent as is; everyone else keeps the DP promise (flower_sim.privacy)
        weights = privacy.privatize(cfg.dp_params(), global_weights, weights, seed)
    if registering is not None:
        registering.result()  # registered (or already): raises the rollup's reason, and the trainer does not reply
    return update_reply(msg, cfg, trainer_id, weights, len(data), loss, fires, agent)


def update_reply(msg: Message, cfg: SimulationConfig, trainer_id: int, weights: list[np.ndarray], samples: int,
                 loss: float, attacked: bool, agent: TrainerAgent | None = None) -> Message:
    """The reply carrying `weights` as trainer `trainer_id`'s update of `samples` samples, signed on a rollup run:
    by ``agent``'s own key (`trainer_agent.TrainerAgent`, which keeps the update on the trainer's disk to contest
    it), else by its account of the run's mnemonic."""
    metrics = MetricRecord({"num-examples": samples, "train-loss": loss, "trainer-id": trainer_id,
                            "attacked": int(attacked)})
    content = RecordDict({"arrays": ArrayRecord(weights), "metrics": metrics})
    instruction = msg.content["config"]
    rollup = RollupTask.from_train_config(instruction)
    if rollup is not None:
        server_round = int(instruction["server-round"])
        content["evidence"] = signed_update(rollup, server_round, trainer_id, cfg.validators, weights, samples,
                                            agent.key if agent is not None else None)
        if agent is not None:
            agent.keep_update(rollup, server_round, to_frq1(weights), samples, cfg.to_run_config())
    return Message(content, reply_to=msg)


def signed_update(rollup: tuple[RollupTask, int], server_round: int, trainer_id: int, validators: int,
                  weights: list[np.ndarray], samples: int, key: str | None = None) -> ConfigRecord:
    """The trainer's evidence for its update: the update's digest and its `Update` signature, from its own key
    (``key``; None: its account of the run's mnemonic)."""
    task, group = rollup
    update_digest = digest(to_frq1(weights))
    key = key or accounts.private_key(accounts.trainer_index(trainer_id, validators))
    signature = sign(key, task.domain, task.update(server_round, group, update_digest, samples))
    return ConfigRecord({"update-digest": update_digest, "signature": signature})


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Accuracy and loss of the received model on the trainer's own partition."""
    cfg = SimulationConfig.from_run_config(dict(context.run_config))
    trainer_id = int(context.node_config["partition-id"])
    data = make_splits(cfg.split_spec()).trainers[trainer_id]
    model = models.shared_model(cfg.model, cfg.lr, "evaluator")
    result = models.score(model, msg.content["arrays"].to_numpy_ndarrays(), data.x, data.y)
    metrics = MetricRecord({"num-examples": result.total, "accuracy": result.accuracy, "loss": result.loss,
                            "trainer-id": trainer_id})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


@app.query()
def identify(msg: Message, context: Context) -> Message:
    """The trainer's stable id (its partition id), so a ServerApp can map Flower node ids to trainers."""
    trainer_id = int(context.node_config["partition-id"])
    return Message(RecordDict({"metrics": MetricRecord({"trainer-id": trainer_id})}), reply_to=msg)
