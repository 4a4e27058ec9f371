"""Benchmark: what recording every round on the rollup costs a federated run (issue 5's target: < 10%).

In one run, on identical seeds and splits: the federated rounds alone (the baseline), then the same rounds
recorded on the local rollup stack (anvil + the official contracts + the host-mode node + the backend) for
each block time asked for. A round's wall time is measured from one round's close to the next (round 1, which
also loads TensorFlow and the data, is left out of the medians); the chain's share is the time the round loop
spent blocked on the rollup (`timings.per_round_s`: the reports and reveals sent and, since the recorder closes
round r beside round r+1's training, the wait for round r's close before round r+1's first report).

Each recorded run is settled by the consensus asked for (`--consensus`: `authority`, one node whose key
settles; `quorum`, a node per member, the manager and each validator, 2 of 3 votes): the table also gives
the gas of one claim vote and how many blocks after an epoch's end it settled (medians over the run's epochs).

Run: .venv/bin/python -m benchmarks.e2e [--rounds 4] [--trainers 20] [--block-times 1,0.25]
                                        [--consensus authority,quorum]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from fedrollup.stack import local_stack
from flower_sim.config import SimulationConfig
from flower_sim.records import Observers, RoundRecord, ValidatorReport
from flower_sim.rollup_roles import RollupRecorder
from flower_sim.simulation import simulate


class RoundClock:
    """An observer that notes when each round closes (put it after the recorder to include chain time)."""

    def __init__(self) -> None:
        self.closed_at: list[float] = []

    def on_validator_report(self, report: ValidatorReport) -> None:
        pass

    def on_round_closed(self, record: RoundRecord) -> None:
        self.closed_at.append(time.perf_counter())

    def round_seconds(self) -> list[float]:
        """Wall seconds of rounds 2..N."""
        return [b - a for a, b in zip(self.closed_at, self.closed_at[1:])]


def run_plain(cfg: SimulationConfig, out: Path) -> dict:
    clock = RoundClock()
    result = simulate(cfg, out, observer=clock)
    return {"round_s": clock.round_seconds(), "chain_s": [0.0] * (cfg.rounds - 1),
            "accuracy": result.records[-1].global_accuracy}


def run_recorded(cfg: SimulationConfig, out: Path, block_time: float, consensus: str = "authority") -> dict:
    with local_stack(out / "chain", block_time=block_time, consensus=consensus,
                     members=1 + cfg.validators) as stack:
        recorder = RollupRecorder(cfg, stack.deployment, stack.node)
        recorder.open_task(cfg.rounds)
        clock = RoundClock()
        result = simulate(cfg, out, observer=Observers(recorder, clock), rollup=recorder)
        return {"round_s": clock.round_seconds(), "chain_s": recorder.timings.per_round_s[1:],
                "accuracy": result.records[-1].global_accuracy, "setup_s": recorder.timings.setup_s,
                **settlement(stack.deployment)}


def settlement(deployment) -> dict:
    """Median gas of one claim vote, and blocks from an epoch's last block to its `ClaimAccepted`."""
    from contracts_config.transactions import connect  # heavy: web3

    w3 = connect(deployment.rpc_url)
    consensus = w3.eth.contract(address=deployment.consensus, abi=deployment.abi(deployment.consensus_abi_name))
    app = {"appContract": deployment.application}
    votes = consensus.events.ClaimSubmitted().get_logs(argument_filters=app, from_block=0)
    accepted = consensus.events.ClaimAccepted().get_logs(argument_filters=app, from_block=0)
    gas = [w3.eth.get_transaction_receipt(v["transactionHash"])["gasUsed"] for v in votes]
    lag = [a["blockNumber"] - a["args"]["lastProcessedBlockNumber"] for a in accepted]
    return {"vote_gas": statistics.median(gas) if gas else 0, "settle_blocks": statistics.median(lag) if lag else 0,
            "votes": len(votes), "epochs": len(accepted)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--trainers", type=int, default=20)
    parser.add_argument("--block-times", default="1,0.25", help="comma-separated anvil block times (s)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--consensus", default="authority",
                        help="comma-separated: authority (one node settles), quorum (a node per member)")
    args = parser.parse_args(argv)
    kinds = args.consensus.split(",")
    if any(kind not in ("authority", "quorum") for kind in kinds):
        parser.error("--consensus takes authority and/or quorum")
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (round 1 is warm-up)")
    cfg = replace(SimulationConfig(), rounds=args.rounds, trainers=args.trainers, seed=args.seed).validate()
    block_times = [float(b) for b in args.block_times.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fedrollup-e2e-") as tmp:
        print(f"baseline: {cfg.rounds} rounds of {cfg.trainers} trainers without the chain", flush=True)
        base = run_plain(cfg, Path(tmp) / "plain")
        rows.append(("no chain (baseline)", base))
        for bt in block_times:
            for kind in kinds:
                print(f"recorded on the rollup, block time {bt:g} s, {kind}", flush=True)
                rows.append((f"{kind}, {bt:g} s blocks", run_recorded(cfg, Path(tmp) / f"chain-{bt:g}-{kind}", bt,
                                                                       kind)))
    base_round = statistics.median(base["round_s"])
    print()
    print(f"{'run':<24} {'round s (median)':>17} {'chain s (median)':>17} {'chain share':>12} "
          f"{'vs baseline':>12} {'task setup s':>13} {'final acc':>10} {'gas/vote':>9} {'settled after':>14}")
    for name, r in rows:
        round_s, chain_s = statistics.median(r["round_s"]), statistics.median(r["chain_s"])
        settle = f"{r['settle_blocks']:g} blocks" if "settle_blocks" in r else "—"
        print(f"{name:<24} {round_s:>17.2f} {chain_s:>17.2f} {100 * chain_s / round_s:>11.1f}% "
              f"{100 * (round_s / base_round - 1):>+11.1f}% {r.get('setup_s', 0.0):>13.1f} "
              f"{100 * r['accuracy']:>9.1f}% {r.get('vote_gas', 0):>9,.0f} {settle:>14}")
    print(f"\nmedians over rounds 2..{cfg.rounds}; {cfg.trainers} trainers, {cfg.validators} validators, "
          f"model {cfg.model}, strategy {cfg.strategy}, attack {cfg.attack}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
