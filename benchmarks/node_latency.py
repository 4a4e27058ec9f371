"""Benchmark: the local rollup stack end to end (anvil + host-mode node + `python -m dapp`).

Measured in one run, against baselines from the same run:
  1. latency: from `addInput` mined (receipt seen) to its notice listed over the node's `/rpc`;
     baseline: the L1 block interval (target: median < block interval + 200 ms);
  2. a burst of N inputs sent at once: inputs/s end to end (first send -> last input processed) and the
     node's own processing rate; baselines: the time L1 alone takes to mine the burst, and the backend
     alone taking the same inputs through the rollup HTTP API (no L1, no database);
  3. L1 gas of `addInput` per input type (dapp.schema encoders; a ValidatorReport of 10 trainers, each signed).
Run: .venv/bin/python -m benchmarks.node_latency [--block-time 1] [--samples 30] [--burst 200]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from contracts_config.anvil import free_port, start_anvil
from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.transactions import call_function, connect
from rollups_node.machine import HostMachine
from rollups_node.node import DEFAULT_BACKEND
from dapp.advance_request import encode_advance
from dapp.state import Advance
from dapp.schema import ROLE_TRAINER, CreateTask, Register, RoundClose, Withdraw, encode_deposit_data

from benchmarks.dapp_throughput import validator_report

SENDER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil dev account 1


def rpc(url: str, method: str, **params) -> dict:
    return requests.post(url + "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                         timeout=10).json()["result"]


def processed(url: str) -> int:
    return int(rpc(url, "cartesi_getProcessedInputCount", application="fedrollup")["data"], 16)


def create_task() -> bytes:
    """A CreateTask (each one a new task: the rollup assigns its id)."""
    return CreateTask(mad_bps=2500, rounds=1, groups=1, round_trainer_budget=0, reward_per_positive=0,
                      validator_reward=0, validators=("0x" + "77" * 20,), test_set_digest=b"\x7e" * 32,
                      test_set_size=1, model_arch=1).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_node(deployment_path: Path, folder: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "fedrollup", "node", "--deployment", str(deployment_path), "--db",
               str(folder / "node.sqlite"), "--port", str(port), "--key", ANVIL_KEY_0, "--log-level", "WARNING",
               "--backend-log", str(folder / "backend.log")]
    process = subprocess.Popen(command, stdout=open(folder / "node.log", "ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return process
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the node exited: see {folder / 'node.log'}")
        time.sleep(0.1)
    raise SystemExit("the node did not become healthy")


def measure_latency(w3, box, deployment, url: str, samples: int) -> list[float]:
    latencies = []
    for k in range(samples):
        fn = box.functions.addInput(deployment.application, create_task())
        tx = fn.build_transaction({"from": w3.eth.account.from_key(SENDER_KEY).address,
                                   "nonce": w3.eth.get_transaction_count(w3.eth.account.from_key(SENDER_KEY).address),
                                   "gas": 200_000})
        signed = w3.eth.account.sign_transaction(tx, SENDER_KEY)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005)
        mined = time.monotonic()
        index = hex(int(receipt["logs"][0]["topics"][2].hex(), 16))
        while not rpc(url, "cartesi_listOutputs", application="fedrollup", input_index=index)["data"]:
            time.sleep(0.005)
        latencies.append(time.monotonic() - mined)
    return latencies


def measure_burst(w3, box, deployment, url: str, count: int) -> tuple[float, float, float]:
    """Returns (end-to-end seconds, L1-only seconds, node processing seconds)."""
    sender = w3.eth.account.from_key(SENDER_KEY).address
    nonce = w3.eth.get_transaction_count(sender)
    before = processed(url)
    raw = []
    for k in range(count):
        tx = box.functions.addInput(deployment.application, create_task()).build_transaction(
            {"from": sender, "nonce": nonce + k, "gas": 200_000, "maxFeePerGas": 10**11,
             "maxPriorityFeePerGas": 10**9})
        raw.append(w3.eth.account.sign_transaction(tx, SENDER_KEY).raw_transaction)
    start = time.monotonic()
    hashes = [w3.eth.send_raw_transaction(r) for r in raw]
    w3.eth.wait_for_transaction_receipt(hashes[-1], poll_latency=0.005)
    mined = time.monotonic()
    first_seen = None
    while processed(url) < before + count:
        if first_seen is None and processed(url) > before:
            first_seen = time.monotonic()
        time.sleep(0.01)
    done = time.monotonic()
    return done - start, mined - start, done - (first_seen or mined)


def measure_backend_alone(count: int) -> float:
    """Seconds the backend alone takes for `count` CreateTask inputs over the rollup HTTP API."""
    machine = HostMachine(list(DEFAULT_BACKEND))
    machine.start()
    try:
        start = time.monotonic()
        for k in range(count):
            advance = Advance(msg_sender="0x" + "cd" * 20, payload=create_task(), input_index=k,
                              block_number=1, block_timestamp=1, chain_id=31337, app_contract="0x" + "ab" * 20)
            machine.advance(encode_advance(advance), k)
        return time.monotonic() - start
    finally:
        machine.stop()


def measure_gas(w3, deployment) -> list[tuple[str, int, int]]:
    box = w3.eth.contract(address=deployment.input_box, abi=deployment.abi("InputBox"))
    portal = w3.eth.contract(address=deployment.ether_portal, abi=deployment.abi("EtherPortal"))
    payloads = [("CreateTask", create_task()),
                ("Register", Register(task_id=1, role=ROLE_TRAINER, group=0).encode()),
                ("ValidatorReport (10 trainers)", validator_report(1, 0).encode()),
                ("RoundClose", RoundClose(task_id=1, round=1).encode()), ("Withdraw", Withdraw().encode())]
    rows = []
    for name, payload in payloads:
        receipt = call_function(w3, SENDER_KEY, box.functions.addInput(deployment.application, payload))
        rows.append((name, len(payload), receipt["gasUsed"]))
    receipt = call_function(w3, SENDER_KEY, portal.functions.depositEther(deployment.application,
                                                                          encode_deposit_data(1)), value=10**15)
    rows.append(("Ether deposit (EtherPortal)", 52 + 32, receipt["gasUsed"]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-time", type=float, default=1.0, help="anvil seconds per block (default 1)")
    parser.add_argument("--samples", type=int, default=30, help="inputs for the latency measurement")
    parser.add_argument("--burst", type=int, default=200, help="inputs sent at once for the throughput measurement")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="node-latency-"))
    anvil = start_anvil(free_port(), block_time=args.block_time)
    node = None
    try:
        rpc_url = f"http://127.0.0.1:{anvil.args[anvil.args.index('--port') + 1]}"
        deployment = deploy(rpc_url, ANVIL_KEY_0, epoch_length=10)
        path = folder / "deployment.json"
        path.write_text(deployment.to_json())
        port = free_port()
        node = start_node(path, folder, port)
        url = f"http://127.0.0.1:{port}"
        w3 = connect(rpc_url)
        box = w3.eth.contract(address=deployment.input_box, abi=deployment.abi("InputBox"))

        print(f"anvil block time {args.block_time:g} s; node + `python -m dapp`; logs in {folder}\n")
        latencies = measure_latency(w3, box, deployment, url, args.samples)
        median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        target = args.block_time + 0.2
        print(f"1. addInput mined -> notice listed over /rpc ({args.samples} CreateTask inputs)")
        print(f"   {'median':<8}{median * 1000:8.0f} ms   ({median / args.block_time:.2f} x block interval)")
        print(f"   {'p95':<8}{p95 * 1000:8.0f} ms")
        print(f"   {'max':<8}{max(latencies) * 1000:8.0f} ms")
        print(f"   target: median < block interval + 200 ms = {target * 1000:.0f} ms: "
              f"{'met' if median < target else 'NOT met'}\n")

        total, l1_only, processing = measure_burst(w3, box, deployment, url, args.burst)
        backend = measure_backend_alone(args.samples + args.burst)
        print(f"2. burst of {args.burst} CreateTask inputs sent at once")
        print(f"   {'L1 alone: all mined after':<38}{l1_only:7.2f} s   (baseline)")
        print(f"   {'backend alone, same inputs, no L1':<38}{backend:7.2f} s   (baseline: "
              f"{(args.samples + args.burst) / backend:.1f} inputs/s for {args.samples + args.burst} inputs)")
        rate, alone = args.burst / max(processing, 1e-9), (args.samples + args.burst) / backend
        print(f"   {'end to end: all processed after':<38}{total:7.2f} s   "
              f"({total / l1_only:.2f} x L1 alone) = {args.burst / total:.1f} inputs/s")
        print(f"   {'node processing, first to last':<38}{processing:7.2f} s   = {rate:.1f} inputs/s "
              f"({rate / alone:.2f} x the backend alone)\n")

        print("3. L1 gas per input (InputBox.addInput unless said)")
        print(f"   {'input':<32}{'payload B':>10}{'gas':>10}")
        for name, size, gas in measure_gas(w3, deployment):
            print(f"   {name:<32}{size:>10}{gas:>10,}")
    finally:
        if node:
            node.terminate()
            node.wait(timeout=30)
        anvil.kill()
        anvil.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
