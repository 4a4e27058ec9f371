"""Issue 16: each validator sends its own rollup inputs from a key only its process holds (`flower_sim.validator_agent`,
`fedrollup validator --key-file`, `fedrollup manager --validator-address`)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from common.errors import ConfigError
from dapp.schema import ProducerElected
from fedrollup.cli import manager as manager_cli
from flower_sim.config import SimulationConfig
from flower_sim.key_file import read_key_file, write_key_file
from flower_sim.rollup_watch import RollupRejected
from flower_sim.validator_role import ValidatorOptions

KEY = "0x" + "11" * 32


def test_keygen_writes_a_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    path = tmp_path / "validator.key"
    address = write_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_key_file(path).startswith("0x") and address.startswith("0x") and len(address) == 42
    before = path.read_text()
    with pytest.raises(ConfigError, match="exists"):
        write_key_file(path)
    assert path.read_text() == before
    assert write_key_file(tmp_path / "other.key") != address  # a fresh key each time


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_can_read_is_refused_in_one_line(tmp_path, mode):
    path = tmp_path / "validator.key"
    path.write_text(KEY + "\n")
    path.chmod(mode)
    with pytest.raises(ConfigError, match="chmod 600") as err:
        read_key_file(path)
    assert "\n" not in str(err.value) and KEY not in str(err.value)


@pytest.mark.parametrize("text", ["", "0x1234", KEY + " " + KEY, "11" * 32])
def test_a_key_file_without_exactly_one_key_is_refused(tmp_path, text):
    path = tmp_path / "validator.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not one 0x-hex private key"):
        read_key_file(path)


def test_the_validator_gives_its_serverapp_the_key_s_path_never_the_key(tmp_path):
    key, deployment = tmp_path / "k", tmp_path / "deployment.json"
    write_key_file(key, KEY)
    deployment.write_text("{}")
    options = ValidatorOptions(id=0, manager="http://m:1", insecure=True, key_file=key, deployment=deployment,
                               node="http://n:2")
    config = options.own_key()
    assert config["key-file"] == str(key.resolve()) and KEY not in repr(config)
    assert ValidatorOptions(id=0, manager="http://m:1", insecure=True).own_key() == {}
    with pytest.raises(ConfigError, match="--key-file needs --deployment"):
        ValidatorOptions(id=0, manager="http://m:1", insecure=True, key_file=key).own_key()
    with pytest.raises(ConfigError, match="go with --key-file"):
        ValidatorOptions(id=0, manager="http://m:1", insecure=True, node="http://n:2").own_key()


def test_a_readable_key_file_stops_fedrollup_validator_in_one_line_before_anything_starts(tmp_path):
    key, deployment = tmp_path / "validator.key", tmp_path / "deployment.json"
    key.write_text(KEY + "\n")
    key.chmod(0o644)
    deployment.write_text("{}")
    done = subprocess.run([str(Path(sys.executable).parent / "fedrollup"), "validator", "--id", "0", "--manager",
                           "http://127.0.0.1:1", "--insecure", "--key-file", str(key), "--deployment", str(deployment),
                           "--node", "http://127.0.0.1:2", "--workdir", str(tmp_path / "v")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "chmod 600" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert KEY not in done.stdout + done.stderr and not (tmp_path / "v").exists()


def test_the_recorder_refuses_to_stage_a_validator_it_holds_no_key_of():
    from flower_sim.rollup_roles import RollupRecorder
    from flower_sim.rollup_schedule import SilentValidator

    cfg = SimulationConfig(trainers=4, validators=2, rounds=2, model="logreg")
    with pytest.raises(ConfigError, match="cannot be combined with --validator-address"):
        RollupRecorder(cfg, SimpleNamespace(rpc_url="unused"), None, silent=SilentValidator(0),
                       remote_validators=("0x" + "aa" * 20, "0x" + "bb" * 20))


def manager_args(tmp_path: Path, *addresses: str, deployment: bool = True, extra: tuple[str, ...] = ()
                 ) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    manager_cli.add_parser(parser.add_subparsers())
    (tmp_path / "d.json").write_text("{}")
    chain = ["--deployment", str(tmp_path / "d.json"), "--node", "http://n:1"] if deployment else []
    return parser.parse_args(["manager", "--validators", "2", "--trainers", "4", "--out", str(tmp_path), *chain,
                              *[x for a in addresses for x in ("--validator-address", a)], *extra])


def test_the_manager_takes_one_address_per_validator_in_group_order(tmp_path):
    a, b = "0x" + "aa" * 20, "0x" + "Bb" * 20
    options = manager_cli.manager_options(manager_args(tmp_path, a, b))
    assert options.validator_addresses == (a, b.lower())
    for bad, said in [((a,), "one per validator"), ((a, a), "its own address"), ((a, "0x12"), "not an address")]:
        with pytest.raises(ConfigError, match=said):
            manager_cli.manager_options(manager_args(tmp_path, *bad))
    with pytest.raises(ConfigError, match="goes with --deployment"):
        manager_cli.manager_options(manager_args(tmp_path, a, b, deployment=False))


def test_the_manager_takes_the_tasks_open_rounds_and_contest_window_or_sizes_them(tmp_path):
    sized = manager_cli.manager_options(manager_args(tmp_path))
    assert (sized.open_rounds, sized.contest_blocks) == (None, None)  # the recorder sizes them from L1
    given = manager_cli.manager_options(manager_args(tmp_path, extra=("--open-rounds", "24", "--contest-blocks", "10")))
    assert (given.open_rounds, given.contest_blocks) == (24, 10)
    with pytest.raises(ConfigError, match="--contest-blocks must be a number of L1 blocks"):
        manager_cli.manager_options(manager_args(tmp_path, extra=("--contest-blocks", "0")))


KEYS = ["0x" + f"{g + 7:064x}" for g in range(2)]  # two validators' own keys, in no mnemonic of the run


def inputs_by_sender(rollup) -> Counter:
    """(sender, message type) of every input the fake rollup accepted."""
    return Counter((sender, rollup.kinds[i][0]) for i, sender in rollup.senders.items()
                   if rollup.statuses.get(i) == "ACCEPTED")


@pytest.mark.parametrize("open_rounds", [1, 2])  # K < rounds: a close elects a later round's producer
def test_validator_agents_follow_the_rollup_and_the_recorder_waits_for_them(tmp_path, monkeypatch, open_rounds):
    """Against the rollup's own rules (a fake L1 + node): each validator registers, reports, reveals and closes in
    its turn from its own key only; the recorder sends none of those, still checks every round's global model; a
    validator started again after the run sends nothing twice."""
    from console_fixtures import record_history  # the recorded-history driver (its own fixtures)
    from rollup_fakes import CFG, TERMS, FakeRollup, recorder_on
    from flower_sim.validator_agent import ValidatorAgent
    from rollups_client.l1 import L1

    rollup = FakeRollup()
    addresses = tuple(L1.address(k) for k in KEYS)
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=replace(TERMS, open_rounds=open_rounds),
                                 remote_validators=addresses)
    agents: list[ValidatorAgent] = []

    # the agents read the fake's clock without moving it (only the recorder's looks mine a block, as the fake's
    # schedules are sized for): their many looks would otherwise run the publisher's turn out
    l1 = SimpleNamespace(send_input=rollup.send_input, input_index=rollup.input_index,
                         block_number=lambda: rollup.chain.block - 1)

    def agents_for(task_id: int) -> list[ValidatorAgent]:
        for g, key in enumerate(KEYS):
            agents.append(ValidatorAgent(key, g, l1, rollup, task_id, say=said.append))
            agents[-1].POLL_S = 0.001
        return agents

    record_history(recorder, CFG, tmp_path, agents_for)
    sent = inputs_by_sender(rollup)
    for address in addresses:
        assert (sent[address, "Register"], sent[address, "ValidatorReport"]) == (1, CFG.rounds)
        assert sent[address, "ModelChunk"] == CFG.rounds
    closes = {r: sender for i, sender in rollup.senders.items() if rollup.kinds[i][0] == "RoundClose"
              and rollup.statuses[i] == "ACCEPTED" for r in [rollup.kinds[i][1]]}
    elected = {n.round: n.producer.lower() for n in rollup.all(ProducerElected)}
    assert sorted(closes) == list(range(1, CFG.rounds + 1)) and closes[1] == L1.address(recorder.manager_key)
    assert [r for r in closes if closes[r] in addresses and closes[r] == elected.get(r)], \
        "a validator closed a round it was elected to close, from its own key"
    assert not set(addresses) & set(recorder.key_of)
    assert sorted(recorder.figures) == list(range(1, CFG.rounds + 1))
    assert all(recorder.figures[r]["global_digest"] for r in recorder.figures)
    before = len(rollup.senders)
    again = ValidatorAgent(KEYS[0], 0, l1, rollup, recorder.task_id, say=said.append)
    again.finish(timeout_s=30)
    assert again.sent == [] and len(rollup.senders) == before
    stranger = ValidatorAgent("0x" + "99" * 32, 1, l1, rollup, recorder.task_id, say=said.append)
    with pytest.raises(RollupRejected, match="--validator-address 0x"):
        stranger.finish(timeout_s=30)  # a key the task does not name: said at once, nothing sent
    assert stranger.sent == [] and len(rollup.senders) == before


@pytest.mark.slow
def test_validators_send_their_own_inputs_and_the_recorder_holds_none_of_their_keys(tmp_path):
    """On anvil + node: each validator's agent (its own thread, holding the only copy of its key) registers, reports,
    reveals and closes in its turn; the recorder, given only their addresses, waits for them, still checks the
    rollup's global model against its own, and the audit passes."""
    from console_fixtures import HISTORY_CFG, record_history  # the recorded-history helpers (their own fixtures)
    from node_fixtures import DAPP_BACKEND, fresh_deployment, node_process, running_anvil
    from dapp.schema import decode_input
    from flower_sim.rollup_roles import RollupRecorder, TaskTerms
    from flower_sim.rollup_watch import inspect_json
    from flower_sim.validator_agent import ValidatorAgent
    from frontend_console.audit import audit
    from rollups_client.l1 import L1
    from rollups_client.node import NodeClient

    cfg = HISTORY_CFG
    keys = [tmp_path / f"validator-{g}.key" for g in range(cfg.validators)]
    addresses = [write_key_file(k) for k in keys]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    said: list[str] = []
    with running_anvil() as rpc_url:
        deployment = fresh_deployment(rpc_url, epoch_length=4)
        with node_process(deployment, tmp_path, backend=DAPP_BACKEND) as (url, _process):
            node = NodeClient.at(url, deployment.application)
            # the agents poll their node: a reveal follows the last report by a poll and the node's lag, more than the
            # runs' 2-block window at this test chain's 0.2-s blocks (the emulated network's are 1 s)
            # K = 1: round 1's close elects round 2's producer (with K rounds open it elects round 1 + K's; the fast
            # test above runs the agents with 2 rounds open)
            recorder = RollupRecorder(cfg, deployment, node, terms=TaskTerms(contest_blocks=10, open_rounds=1),
                                      remote_validators=addresses, say=said.append)
            assert not set(addresses) & set(recorder.key_of)
            agents: list[ValidatorAgent] = []

            last_report: list = []

            class Recording(ValidatorAgent):
                def submit(self, report, trainers, starting) -> None:
                    if self.group == 0:
                        last_report[:] = [report]
                    super().submit(report, trainers, starting)

            def agents_for(task_id: int) -> list[ValidatorAgent]:
                agents.extend(Recording(read_key_file(k), g, L1(rpc_url, deployment), node, task_id,
                                        say=said.append) for g, k in enumerate(keys))
                return agents

            record_history(recorder, cfg, run_dir, agents_for)
            l1 = L1(rpc_url, deployment)
            inputs = [(i.sender.lower(), decode_input(i.payload)) for i in l1.inputs()
                      if i.sender.lower() != deployment.ether_portal.lower()]  # a deposit is no role's message
            sent = Counter((sender, type(m).__name__) for sender, m in inputs if sender in addresses)
            audit(node, l1, run_dir=run_dir)  # raises AuditFailure naming the first discrepancy
            closer = {sender for sender, m in inputs if type(m).__name__ == "RoundClose" and m.round == 2}
            elected = recorder.who(inspect_json(node, "rounds/1?from=1&to=1")["rounds"][0]["next_producer"])
            # a validator killed after the run and started again asks the rollup first: it sends nothing twice
            again = ValidatorAgent(read_key_file(keys[0]), 0, l1, node, recorder.task_id, say=said.append)
            again.submit(last_report[0], recorder.trainer_addresses, b"")
            again.finish(timeout_s=60)
    for address in addresses:
        assert sent[address, "Register"] == 1
        assert sent[address, "ValidatorReport"] == cfg.rounds
        assert sent[address, "ModelChunk"] >= cfg.rounds
    closes = sum(sent[a, "RoundClose"] for a in addresses)
    assert closes == sum(len([t for t in a.sent if "RoundClose" in t]) for a in agents)
    assert [recorder.who(a) for a in closer] == [elected]  # round 2 closed by whom round 1 elected, from its key
    assert again.sent == []
    assert set(recorder.figures) == set(range(1, cfg.rounds + 1))
    assert all(recorder.figures[r]["global_digest"] for r in recorder.figures)  # checked against the manager's
