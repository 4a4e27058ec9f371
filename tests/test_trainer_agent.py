"""Issue 16: each trainer sends its own rollup inputs from a key only its device holds (`flower_sim.trainer_agent`,
`fedrollup trainer --rollup-key-file`, `fedrollup manager --trainer-addresses`). The rollup is tests/rollup_fakes.py
(its own rules); the run on anvil and the node is the slow test at the end."""
from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from flwr.common.config import parse_config_args

from common import accounts
from common.errors import ConfigError
from dapp.qmodel import digest as qmodel_digest
from contracts_config.deployment import save
from dapp.schema import DISPUTE_DROPPED, DISPUTE_MISJUDGED, Contested, ContestResolved, decode_input
from fedrollup.cli import manager as manager_cli
from flower_sim.cheating import CheatingValidator
from flower_sim.deployment import supernode_argv
from flower_sim.key_file import write_key_file
from flower_sim.manager import global_model
from flower_sim.quantize import save_frq1, to_frq1
from flower_sim.records import Contribution, RoundRecord, ValidatorReport
from flower_sim.rollup_roles import RollupRecorder
from flower_sim.rollup_watch import RollupRejected
from flower_sim.signatures import sign
from flower_sim.trainer_agent import Kept, OwnRollup, TrainerAgent
from flower_sim.trainer_role import TrainerOptions
from frontend_console.audit import audit
from rollup_fakes import CFG, FakeRollup, recorder_on
from rollups_client.l1 import L1
from rollups_client.node import NodeClient
from test_fl_disputes import DISPUTE_TERMS, centroid_weights

KEY = "0x" + "22" * 32
TRAINER_KEYS = ["0x" + f"{t + 41:064x}" for t in range(CFG.trainers)]  # in no mnemonic of the run
ADDRESSES = [L1.address(k) for k in TRAINER_KEYS]


# ------------------------------------------------------------------------------------------- options
def test_the_trainer_gives_its_clientapps_the_key_s_path_never_the_key(tmp_path):
    key, deployment = tmp_path / "k", tmp_path / "deployment.json"
    write_key_file(key, KEY)
    deployment.write_text("{}")
    options = TrainerOptions(superlink="v:1", insecure=True, partition_id=0, num_partitions=2, rollup_key_file=key,
                             deployment=deployment, node="http://n:2", workdir=tmp_path / "state")
    own = options.own_rollup()
    argv = supernode_argv("v:1", (0, 2), None, node_config=own.node_config())
    config = parse_config_args([argv[argv.index("--node-config") + 1]])  # as the SuperNode reads it
    assert OwnRollup.from_node_config(config) == own and config["partition-id"] == 0
    assert KEY not in " ".join(argv) and own.key_file == key.resolve()
    assert TrainerOptions(superlink="v:1", insecure=True).own_rollup() is None
    with pytest.raises(ConfigError, match="--rollup-key-file needs --deployment"):
        TrainerOptions(superlink="v:1", insecure=True, rollup_key_file=key).own_rollup()
    with pytest.raises(ConfigError, match="go with --rollup-key-file"):
        TrainerOptions(superlink="v:1", insecure=True, node="http://n:2").own_rollup()
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="--rollup-key-file .* lets others read the trainer's key; `chmod 600"):
        options.own_rollup()


def manager_args(tmp_path: Path, roster: str | None, deployment: bool = True) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    manager_cli.add_parser(parser.add_subparsers())
    (tmp_path / "d.json").write_text("{}")
    chain = ["--deployment", str(tmp_path / "d.json"), "--node", "http://n:1"] if deployment else []
    if roster is not None:
        (tmp_path / "roster").write_text(roster)
        chain += ["--trainer-addresses", str(tmp_path / "roster")]
    return parser.parse_args(["manager", "--validators", "2", "--trainers", "4", "--out", str(tmp_path), *chain])


def test_the_manager_takes_one_address_per_trainer_in_trainer_order(tmp_path):
    lines = "# trainer id order\n" + "".join(f"{a.upper().replace('0X', '0x')}\n" for a in ADDRESSES) + "\n"
    assert manager_cli.manager_options(manager_args(tmp_path, lines)).trainer_addresses == tuple(ADDRESSES)
    assert manager_cli.manager_options(manager_args(tmp_path, None)).trainer_addresses == ()
    for roster, said in [("\n".join(ADDRESSES[:3]), "one address per trainer"),
                         ("\n".join(ADDRESSES[:3] + ADDRESSES[:1]), "its own address"),
                         ("\n".join(ADDRESSES[:3] + ["0x12"]), "not an address")]:
        with pytest.raises(ConfigError, match=said) as err:
            manager_cli.manager_options(manager_args(tmp_path, roster))
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="goes with --deployment"):
        manager_cli.manager_options(manager_args(tmp_path, "\n".join(ADDRESSES), deployment=False))


def test_the_recorder_refuses_a_friend_whose_key_is_on_its_device(monkeypatch):
    with pytest.raises(ConfigError, match="use drop or misjudge"):
        recorder_on(FakeRollup(), monkeypatch, None, cheating=CheatingValidator(0, "friend", 2),
                    remote_trainers=tuple(ADDRESSES))


# ------------------------------------------------------------------------------------------- on the rollup's rules
def senders(rollup) -> Counter:
    return Counter((sender, rollup.kinds[i][0]) for i, sender in rollup.senders.items()
                   if rollup.statuses.get(i) == "ACCEPTED")


def play_rounds(recorder, agents: list[TrainerAgent], kind: str, run_dir: Path,
                settle: Callable[[TrainerAgent, Kept], None]) -> None:
    """Two rounds in which every trainer's update is a centroid model its agent keeps on its disk (with its
    validator's receipt for a ``drop`` run); validator 0 lies about trainer 1 in round 2 (the recorder's
    `CheatingValidator`); after each round's reports, ``settle`` has every agent look at how its update was judged."""
    task = recorder.signing_task()
    for rnd in (1, 2):
        models = []
        for v in range(CFG.validators):
            vkey = accounts.private_key(accounts.validator_index(v))
            updates, contributions = {}, []
            for t in (t for t in range(CFG.trainers) if CFG.group_of(t) == v):
                updates[t] = to_frq1(centroid_weights(1e-3 * (rnd * 10 + t + 1)))
                digest = qmodel_digest(updates[t])
                receipt = sign(vkey, task.domain, task.receipt(rnd, ADDRESSES[t], digest, 100 + t))
                agents[t].keep(Kept(task.task_id, rnd, v, "0x" + digest.hex(), 100 + t,
                                    "0x" + receipt.hex() if kind == "drop" else ""), updates[t], CFG.to_run_config())
                contributions.append(Contribution(
                    trainer_id=t, validator_id=v, accuracy=0.9, accuracy_bps=9000 + t, num_examples=100 + t,
                    accepted=True, malicious=False, attacked=False, update_digest=digest,
                    signature=sign(TRAINER_KEYS[t], task.domain, task.update(rnd, v, digest, 100 + t)),
                    receipt=receipt))
            models.append(to_frq1(centroid_weights(-1e-3 * (rnd * 10 + v + 1))))
            name = f"round-{rnd:03d}-validator-{v}.frq"
            recorder.on_validator_report(ValidatorReport(
                round=rnd, validator_id=v, strategy="mad", own_accuracy=0.91, own_accuracy_bps=9100,
                contributions=tuple(contributions), model_file=name,
                model_digest=save_frq1(run_dir / name, models[-1]), training_s=0.0, validation_s=0.0,
                aggregation_s=0.0, model=models[-1], updates=updates))
        for agent in agents:  # each trainer's agent looks at how its update was judged, in the contest window
            for kept in agent.held():
                if kept.round == rnd:
                    settle(agent, kept)
        glob = global_model(models)
        name = f"round-{rnd:03d}.frq"
        recorder.on_round_closed(RoundRecord(
            round=rnd, global_accuracy=0.8, global_accuracy_bps=8000, global_loss=0.3, global_model_file=name,
            global_digest=save_frq1(run_dir / name, glob), best_validator=0, validators=(), contributions=(),
            global_model=glob))
    recorder.finish()


def assert_only_the_victim_contested(sent: Counter, contested: list, verdicts: list, dispute: int) -> None:
    """Every trainer registered once from its own address; trainer 1 alone contested round 2, and was upheld."""
    assert all(sent[a, "Register"] == 1 for a in ADDRESSES)
    victim = ADDRESSES[1]  # group 0's best-scored honest Positive: the one validator 0 lies about
    assert {a for (a, k) in sent if k == "Contest"} == {victim}
    assert [(c.round, c.trainer.lower(), c.kind) for c in contested] == [(2, victim, dispute)]
    assert [(v.round, v.upheld, v.posted) for v in verdicts] == [(2, True, True)]


@pytest.mark.parametrize("kind, dispute, open_rounds", [
    ("misjudge", DISPUTE_MISJUDGED, 1), ("drop", DISPUTE_DROPPED, 1), ("misjudge", DISPUTE_MISJUDGED, 2)])
def test_trainers_register_and_contest_from_their_own_keys(tmp_path, monkeypatch, kind, dispute, open_rounds):
    """The recorder, given the trainers' addresses only, sends no trainer input; each trainer's agent registers (once,
    the rollup asked first) and, when validator 0 lies about trainer 1 in round 2, contests from its own key with the
    update kept on its disk (with 2 rounds open, round 2 is still ahead of round 1 on the rollup); the rollup upholds
    it. An agent started again sends nothing twice."""
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=replace(DISPUTE_TERMS, open_rounds=open_rounds),
                                 cheating=CheatingValidator(0, kind, from_round=2), remote_trainers=tuple(ADDRESSES))
    assert not set(ADDRESSES) & set(recorder.key_of)
    l1 = SimpleNamespace(send_input=rollup.send_input, input_index=rollup.input_index,
                         block_number=lambda: rollup.chain.block - 1)  # looks that do not mine (the recorder's do)
    agents = [TrainerAgent(k, t, l1, rollup, tmp_path / f"trainer-{t}", say=said.append)
              for t, k in enumerate(TRAINER_KEYS)]
    recorder.open_task(2)
    task = recorder.signing_task()
    assert task.trainers == tuple(ADDRESSES)  # what the validators sign receipts for and name in their reports
    for agent in agents:
        agent.register(task.task_id, CFG.group_of(agent.trainer_id))
        agent.register(task.task_id, CFG.group_of(agent.trainer_id))  # its folder says it is registered: sent once
    moved = TrainerAgent(TRAINER_KEYS[2], 2, l1, rollup, tmp_path / "a-new-folder", say=said.append)
    moved.register(task.task_id, CFG.group_of(2))  # without its folder the rollup is asked first: nothing sent
    assert moved.sent == [] and all(a.sent == [f"its Register for task 1 (group {CFG.group_of(a.trainer_id)})"]
                                    for a in agents)
    with pytest.raises(RollupRejected, match="registered in task 1 as a trainer of group 0, not .* group 1"):
        agents[0].register(task.task_id, 1)

    def settle(agent: TrainerAgent, kept: Kept) -> None:
        for _ in range(2000):  # the recorder's sender thread sends the reports when rounds are open at once
            if agent.settle(kept):
                return
            time.sleep(0.001)
        raise AssertionError(f"trainer {agent.trainer_id} never saw its round {kept.round} judged")

    play_rounds(recorder, agents, kind, tmp_path, settle)
    assert "REJECTED" not in [rollup.statuses[i] for i in rollup.senders if rollup.senders[i] in ADDRESSES]
    assert_only_the_victim_contested(senders(rollup), rollup.all(Contested), rollup.all(ContestResolved), dispute)
    assert any("trainer 1 sent its Contest of round 2 from its own key" in s for s in said), said
    before = len(rollup.senders)
    again = TrainerAgent(TRAINER_KEYS[1], 1, l1, rollup, tmp_path / "trainer-1", say=said.append)
    looks = iter([True, False])  # its SuperNode alive for one look at every kept update
    again.follow(lambda: next(looks))
    assert again.sent == [] and len(rollup.senders) == before
    assert all((tmp_path / "trainer-1" / f"{k.name()}.settled").exists() for k in again.held())


@pytest.mark.slow
def test_a_trainer_holding_the_only_copy_of_its_key_registers_and_contests_on_anvil(tmp_path):
    """On anvil + node: the recorder, given the trainers' addresses, funds them and sends none of their inputs; each
    trainer's agent (its key only in its 0600 file) registers, and trainer 1, which validator 0 misjudges in round 2,
    contests from its own key; the rollup upholds it and the audit passes."""
    from node_fixtures import DAPP_BACKEND, fresh_deployment, node_process, running_anvil  # anvil + node fixtures

    keys = [tmp_path / f"trainer-{t}.key" for t in range(CFG.trainers)]
    for path, key in zip(keys, TRAINER_KEYS):
        write_key_file(path, key)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with running_anvil() as rpc_url:
        deployment = fresh_deployment(rpc_url, epoch_length=4)
        deployment_file = save(deployment, tmp_path / "deployment.json")
        with node_process(deployment, tmp_path, backend=DAPP_BACKEND) as (url, _process):
            node = NodeClient.at(url, deployment.application)
            recorder = RollupRecorder(CFG, deployment, node, terms=replace(DISPUTE_TERMS, contest_blocks=10,
                                                                           open_rounds=1),
                                      cheating=CheatingValidator(0, "misjudge", from_round=2),
                                      remote_trainers=tuple(ADDRESSES))
            recorder.open_task(2)
            agents = [OwnRollup(k, deployment_file, url, tmp_path / f"state-{t}").agent(t, say=lambda _: None)
                      for t, k in enumerate(keys)]
            for agent in agents:
                agent.register(recorder.task_id, CFG.group_of(agent.trainer_id))

            def settle(agent: TrainerAgent, kept: Kept) -> None:
                deadline = time.monotonic() + 60
                while not agent.settle(kept):
                    assert time.monotonic() < deadline, f"trainer {agent.trainer_id} waited for its round's report"
                    time.sleep(0.05)

            play_rounds(recorder, agents, "misjudge", run_dir, settle)
            l1 = L1(rpc_url, deployment)
            inputs = [(i.sender.lower(), decode_input(i.payload)) for i in l1.inputs()
                      if i.sender.lower() != deployment.ether_portal.lower()]
            notices = [o.message for o in node.notices()]
            audit(node, l1, run_dir=run_dir)  # raises AuditFailure naming the first discrepancy
    sent = Counter((sender, type(m).__name__) for sender, m in inputs)
    assert not {a for a, _ in sent} & {a for a in ADDRESSES if a in recorder.key_of}
    assert_only_the_victim_contested(sent, [n for n in notices if isinstance(n, Contested)],
                                     [n for n in notices if isinstance(n, ContestResolved)], DISPUTE_MISJUDGED)


def test_an_agent_keeps_the_last_rounds_updates_on_its_disk(tmp_path):
    agent = TrainerAgent(KEY, 0, None, None, tmp_path, say=lambda _: None)
    for rnd in range(1, 7):
        agent.keep(Kept(3, rnd, 0, "0x" + "ab" * 32, 10), bytes([rnd]) * 4)
    assert [k.round for k in agent.held()] == [3, 4, 5, 6]
    assert sorted(p.name for p in tmp_path.glob("*.frq"))[0] == "task-3-round-0003.frq"
    assert TrainerAgent(KEY, 0, None, None, tmp_path)._held(agent.held()[0]).update == bytes([3]) * 4


def test_an_agent_predicts_a_contest_only_on_the_test_set_the_task_commits_to(tmp_path):
    """The agent rebuilds the public test set from the run's configuration to tell whether the rule would uphold a
    contest: a set that is not the one the task's digest commits to (another data source) is said, not used."""
    from flower_sim.data import make_splits, rollup_test_set  # the data sets (heavy): only this test needs them

    agent = TrainerAgent(TRAINER_KEYS[0], 0, SimpleNamespace(), None, tmp_path / "trainer-0", say=print)
    agent.keep(Kept(1, 1, 0, "0x" + "00" * 32, 10), b"update", CFG.to_run_config())
    with pytest.raises(RollupRejected, match=r"rebuilt from the run's configuration .* is not the task's .*: trainer "
                                             r"0 cannot tell whether a contest would be upheld"):
        agent._test_set(bytes(32))
    task_digest = qmodel_digest(rollup_test_set(make_splits(CFG.split_spec())))
    assert len(agent._test_set(task_digest).labels) == 500  # the first 500 held-out images, as the publisher posts
