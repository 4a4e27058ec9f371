"""A trainer's own rollup inputs, sent from a key only its device holds (issue 16: `fedrollup trainer
--rollup-key-file`).

The key's path, the deployment file, the rollups node and the trainer's state folder reach the ClientApp in its
SuperNode's node config (`OwnRollup`: the path, never the key). In each round's ClientApp (`flower_sim.trainer`) the
trainer, before it replies, registers its account for the task its validator's instruction names (`register`: once,
the rollup asked first, the task and its group checked), signs its update with its own key and keeps the update on
its disk (`keep`: the last `KEEP_ROUNDS` rounds, so that a restarted agent still has them). Registering before the
reply is what lets its validator name it in the round's report (the rollup rejects a report naming an unregistered
trainer), so the manager needs to wait for no trainer.

Beside its SuperNode, `fedrollup trainer` starts this module's agent process (`python -m flower_sim.trainer_agent`,
ending with the SuperNode), which follows the rollup for every update kept (`settle`): once its group's report of
that round is in, it reads its `ContributionClassified` notice; reported Negative (misjudged), or left out while it
holds its validator's receipt (dropped), it contests from its own key when the task's rule upholds it on the public
numbers (`disputes.grievance`, `disputes.upholds`), sending the Contest and its update's chunks
(`disputes.contest_inputs`). Before each input it asks the rollup whether it already has it (registered, disputed),
so an agent started again sends nothing twice. Its own device is the only place where its update is, so the
manager's process, which holds no trainer key, files no contest for it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from dapp import qnn
from dapp.qmodel import arch_named, digest
from dapp.schema import (BLOB_VALIDATOR_MODEL, DISPUTE_DROPPED, ROLE_TRAINER, ContributionClassified, ModelScored,
                         Register)
from flower_sim.config import SimulationConfig
from flower_sim.disputes import Held, contest_inputs, grievance, public_accuracy, upholds
from flower_sim.key_file import read_key_file
from flower_sim.rollup_watch import NoticeScan, RollupRejected, inspect_json, processed
from rollups_client.l1 import L1
from rollups_client.node import NodeClient

Say = Callable[[str], None]
KEEP_ROUNDS = 4  # updates kept on disk: a round's contest window closes a few blocks after its last report
NODE_CONFIG = ("rollup-key-file", "rollup-deployment", "rollup-node", "rollup-rpc", "rollup-state")


@dataclass(frozen=True)
class OwnRollup:
    """Where a trainer holding its own key finds it and the rollup (its SuperNode's node config carries this)."""

    key_file: Path
    deployment: Path
    node_url: str
    state: Path              # its folder: the updates it signed, the run's configuration
    rpc_url: str = ""        # "": the deployment file's

    def node_config(self) -> dict[str, str]:
        return dict(zip(NODE_CONFIG, (str(self.key_file), str(self.deployment), self.node_url, self.rpc_url,
                                      str(self.state))))

    @classmethod
    def from_node_config(cls, config: dict[str, Any]) -> OwnRollup | None:
        """None when the trainer signs with the run mnemonic's account (no "rollup-key-file")."""
        if not config.get("rollup-key-file"):
            return None
        return cls(Path(str(config["rollup-key-file"])), Path(str(config["rollup-deployment"])),
                   str(config["rollup-node"]), Path(str(config["rollup-state"])), str(config.get("rollup-rpc", "")))

    def agent(self, trainer_id: int, say: Say = print) -> TrainerAgent:
        from contracts_config.deployment import load  # the deployment file's loader: only once the key is read

        key = read_key_file(self.key_file, "--rollup-key-file", "the trainer's")
        deployment = load(self.deployment)
        return TrainerAgent(key, trainer_id, L1(self.rpc_url or deployment.rpc_url, deployment),
                            NodeClient.at(self.node_url, deployment.application), self.state, say)


@dataclass(frozen=True)
class Kept:
    """An update the trainer signed, on its disk: which task, round and group, its digest and samples."""

    task_id: int
    round: int
    group: int
    update_digest: str  # 0x-hex
    samples: int
    receipt: str = ""   # its validator's receipt, 0x-hex, when it has one (a dropped trainer contests with it)

    def name(self) -> str:
        return f"task-{self.task_id}-round-{self.round:04d}"


class TrainerAgent:
    """Trainer ``trainer_id``'s rollup inputs from its own ``key``: `register`, `keep` each signed update, `settle`
    each kept update once its round's report is in (contesting when it was left out or misjudged)."""

    POLL_S = 0.5  # seconds between two looks: within a 2-block contest window at 1-s blocks, and light on the radio
    FULL_LOOK_S = 5.0  # at least this often it asks the rollup even when no input came (its deadlines pass by blocks)

    def __init__(self, key: str, trainer_id: int, l1: L1, node: NodeClient, state: Path, say: Say = print) -> None:
        self.key, self.trainer_id, self.l1, self.node, self.state = key, trainer_id, l1, node, state
        self.address, self.say = L1.address(key), say
        self.sent: list[str] = []
        self.scan = NoticeScan(node)
        self._test_sets: dict[str, Any] = {}

    # ------------------------------------------------------------------ the rollup
    def _send(self, what: str, payload: bytes) -> int:
        index = processed(self.node, self.l1.input_index(self.l1.send_input(self.key, payload)), what)
        self.sent.append(what)
        self.say(f"trainer {self.trainer_id} sent {what} from its own key ({self.address[:10]}…, input {index})")
        return index

    def registered_group(self, task_id: int) -> int | None:
        """The group its address is registered in for the task (None: not registered)."""
        first: int | None = 0
        while first is not None:
            page = inspect_json(self.node, f"stakes/{task_id}?from={first}")
            for p in page["participants"]:
                if p["address"].lower() == self.address:
                    return int(p["group"]) if p["role"] == "trainer" else -1
            first = page["next"]
        return None

    def register(self, task_id: int, group: int) -> None:
        """Register as a trainer of ``group`` in the task (the rollup asked first; RollupRejected in one line when the
        task cannot take it). Once the rollup accepted it, a file in its folder says so: a registration lasts the
        task, so the next rounds' ClientApps ask nothing (two inspects across the network each, ~2 s a round)."""
        done = self.state / f"task-{task_id}-registered-group-{group}"
        if done.exists():
            return
        self._register(task_id, group)
        self.state.mkdir(parents=True, exist_ok=True)
        done.touch()

    def _register(self, task_id: int, group: int) -> None:
        task = inspect_json(self.node, f"task/{task_id}")
        if task["finished"] or task["cancelled"]:
            raise RollupRejected(f"task {task_id} is over: trainer {self.trainer_id} does not register")
        if not 0 <= group < task["groups"]:
            raise RollupRejected(f"task {task_id} has no group {group} (groups 0..{task['groups'] - 1})")
        found = self.registered_group(task_id)
        if found == group:
            return
        if found is not None:
            raise RollupRejected(f"trainer {self.trainer_id}'s address {self.address} is registered in task {task_id}"
                                 f" as {'a validator' if found < 0 else f'a trainer of group {found}'}, not as a "
                                 f"trainer of group {group}")
        self._send(f"its Register for task {task_id} (group {group})",
                   Register(task_id, ROLE_TRAINER, group).encode())

    # ------------------------------------------------------------------ its updates, on its disk
    def keep(self, kept: Kept, update: bytes, run_config: dict[str, Any] | None = None) -> Path:
        """Write the update it signed (its FRQ1 bytes) and what it was signed for; keep the last KEEP_ROUNDS."""
        self.state.mkdir(parents=True, exist_ok=True)
        if run_config is not None:
            (self.state / "run.json").write_text(json.dumps(run_config, sort_keys=True))
        (self.state / f"{kept.name()}.frq").write_bytes(update)
        path = self.state / f"{kept.name()}.json"
        path.write_text(json.dumps(asdict(kept)))
        for old in self.held()[:-KEEP_ROUNDS]:
            for suffix in (".json", ".frq", ".settled"):
                (self.state / f"{old.name()}{suffix}").unlink(missing_ok=True)
        return path

    def keep_update(self, rollup: tuple[Any, int], server_round: int, update: bytes, samples: int,
                    run_config: dict[str, Any]) -> Path:
        """The ClientApp's part once it signed: ``update`` (FRQ1) for (task, group) ``rollup`` on the trainer's disk."""
        task, group = rollup
        return self.keep(Kept(task.task_id, server_round, group, "0x" + digest(update).hex(), samples), update,
                         run_config)

    def held(self) -> list[Kept]:
        """The updates kept on its disk, oldest first."""
        found = [Kept(**json.loads(p.read_text())) for p in self.state.glob("task-*-round-*.json")]
        return sorted(found, key=lambda k: (k.task_id, k.round))

    def _held(self, kept: Kept) -> Held:
        update = (self.state / f"{kept.name()}.frq").read_bytes()
        return Held(self.trainer_id, self.address, kept.group, update, bytes.fromhex(kept.update_digest[2:]),
                    kept.samples, bytes.fromhex(kept.receipt[2:]) if kept.receipt else b"")

    # ------------------------------------------------------------------ how it was judged
    def settle(self, kept: Kept) -> bool:
        """One look at how the rollup judged the kept update; True once nothing is left to do for it (reported
        Positive, contested, or too late), False while its group's report of that round is not in yet."""
        task = inspect_json(self.node, f"task/{kept.task_id}")
        me = f"trainer {self.trainer_id}"
        if task["finished"] or task["rounds_closed"] >= kept.round:
            return True  # closed: whatever it found to contest was sent before
        if kept.round not in (task["current_round"], *(a["round"] for a in task["ahead"])):
            return False  # not open on the rollup yet
        block = self.l1.block_number()
        # the current round's schedule is in the task's answer; a later open round's needs L1's block (one more ask)
        view = task if kept.round == task["current_round"] else \
            inspect_json(self.node, f"producer/{kept.task_id}?round={kept.round}&block={block}")
        if kept.group not in view["reports_in"]:
            late = view["report_deadline"] is not None and block > view["report_deadline"]
            if late:
                self.say(f"validator {kept.group} did not report round {kept.round}: {me} has nothing to contest")
            return late
        if kept.round == task["current_round"] and any(d["trainer"].lower() == self.address for d in task["disputes"]):
            return True  # already disputed (its contest, or the publisher's challenge)
        classified = [n for _, n in self._notices(ContributionClassified, kept)]
        held = self._held(kept)
        kind = grievance(held, classified)
        if kind is None:
            return True
        if kind == DISPUTE_DROPPED and not held.receipt:
            self.say(f"{me} was left out of validator {kept.group}'s report of round {kept.round}, but holds no "
                     f"receipt of its update: it cannot contest")
            return True
        model_bps = self._model_bps(kept, view)
        if model_bps is False:
            return False  # its validator's model is not revealed yet and the window is still open: look again
        update_bps = public_accuracy(held.update, self._test_set(bytes.fromhex(task["test_set_digest"][2:])))
        why = "left out" if kind == DISPUTE_DROPPED else "reported Negative"
        if not upholds(update_bps, model_bps, task["mad_bps"]):
            self.say(f"{me} was {why} in round {kept.round}; its update scores {_pct(update_bps)} on the public test "
                     f"set against its validator model's {_pct(model_bps)}: the rule would not uphold a contest")
            return True
        self.say(f"{me} was {why} in round {kept.round}: it contests and posts its update (it scores "
                 f"{_pct(update_bps)} on the public test set against its validator model's {_pct(model_bps)})")
        for m in contest_inputs(kept.task_id, kept.round, held, kind):
            name = type(m).__name__
            self._send(f"its {name} of round {kept.round}" + (f" (chunk {m.index})" if name == "ModelChunk" else ""),
                       m.encode())
        return True

    def _notices(self, kind: type, kept: Kept) -> list:
        self.scan.read()
        return [(i, n) for i, n in self.scan.seen if isinstance(n, kind) and n.task_id == kept.task_id
                and n.round == kept.round and n.group == kept.group]

    def _model_bps(self, kept: Kept, view: dict[str, Any]) -> int | None | bool:
        """The public accuracy of its validator's model (None: not revealed by the end of the contest window, which
        ``view``, the round's schedule, gives; False: not revealed yet, look again)."""
        scored = [(i, n) for i, n in self._notices(ModelScored, kept) if n.kind == BLOB_VALIDATOR_MODEL]
        if scored:
            return scored[0][1].accuracy_bps
        deadline = view["contest_deadline"]
        if deadline is not None and self.l1.block_number() >= deadline - 1:
            return None
        return False

    def _test_set(self, task_digest: bytes):
        """The task's public test set, rebuilt from the run's configuration (what the publisher posted), checked
        against the digest the task commits to: a set rebuilt otherwise (another data source, another version)
        would predict the rollup's verdict wrongly (RollupRejected, said in one line)."""
        if "set" not in self._test_sets:
            from flower_sim.data import make_splits, rollup_test_set  # heavy (the data sets): only for a grievance

            cfg = SimulationConfig.from_run_config(json.loads((self.state / "run.json").read_text()))
            rebuilt = rollup_test_set(make_splits(cfg.split_spec()))
            if digest(rebuilt) != task_digest:
                raise RollupRejected(f"the public test set rebuilt from the run's configuration (digest "
                                     f"{digest(rebuilt).hex()[:16]}…) is not the task's "
                                     f"({task_digest.hex()[:16]}…): trainer {self.trainer_id} cannot tell whether a "
                                     f"contest would be upheld")
            self._test_sets["set"] = qnn.parse_test_set(rebuilt, arch_named(cfg.model))
        return self._test_sets["set"]

    def follow(self, alive: Callable[[], bool]) -> None:
        """Settle every kept update as the rollup gets to it, while ``alive()`` (its SuperNode runs). The rollup's
        answers change only when its node processes an input, so it asks the inspect routes only then (and every
        `FULL_LOOK_S`, for the deadlines): every look is work for a node that a Quorum member also runs."""
        seen, looked = -1, 0.0
        while alive():
            try:
                count = self.node.processed_input_count()
            except (OSError, ValueError) as err:  # its node unreachable for a moment: look again
                self.say(f"trainer {self.trainer_id} could not reach its node ({err}): it looks again")
                count = seen + 1
            if count == seen and time.monotonic() - looked < self.FULL_LOOK_S:
                time.sleep(self.POLL_S)
                continue
            seen, looked = count, time.monotonic()
            for kept in self.held():
                marker = self.state / f"{kept.name()}.settled"
                if marker.exists():
                    continue
                try:
                    if self.settle(kept):
                        marker.touch()
                except RollupRejected as err:  # a refused contest (late, or the rollup said no) is said, not fatal
                    self.say(f"trainer {self.trainer_id}: {err}")
                    marker.touch()
                except (OSError, ValueError) as err:  # its node or L1 unreachable for a moment: look again
                    self.say(f"trainer {self.trainer_id} could not read the rollup ({err}): it looks again")
            time.sleep(self.POLL_S)


def _pct(bps: int | None) -> str:
    return "none (not revealed)" if bps is None else f"{bps / 100:.2f}%"


def _alive(pid: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return check


def main(argv: list[str] | None = None) -> int:
    """The agent process beside a trainer's SuperNode (`fedrollup trainer` starts it)."""
    p = argparse.ArgumentParser(prog="python -m flower_sim.trainer_agent")
    p.add_argument("--trainer-id", type=int, required=True)
    p.add_argument("--parent-pid", type=int, required=True, help="its SuperNode's process: it ends with it")
    p.add_argument("--node-config", required=True, help="the SuperNode's rollup node config, as JSON")
    args = p.parse_args(argv)
    own = OwnRollup.from_node_config(json.loads(args.node_config))
    if own is None:
        raise ConfigError("the trainer agent needs rollup-key-file in its node config")
    agent = own.agent(args.trainer_id, say=lambda text: print(f"[own key] {text}", flush=True))
    print(f"trainer {args.trainer_id}'s agent follows the rollup from its own key ({agent.address})", flush=True)
    agent.follow(_alive(args.parent_pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
