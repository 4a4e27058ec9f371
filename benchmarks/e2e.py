"""Benchmark: what recording every round on the rollup costs a federated run (issue 5's target: < 10%; issue 16's:
< 2% of a round at 1 s blocks and < 10% at 12 s blocks).

In one run, on identical seeds and splits: the federated rounds alone (the baseline), then the same rounds
recorded on the local rollup stack (anvil + the official contracts + the host-mode node + the backend) for
each block time and each number of rounds open on chain at once (`--open-rounds`, the task's openRounds K) asked
for (`auto`, the default: what the runs choose from L1's block time). A round's wall time is measured from one
round's close to the next (round 1, which also loads TensorFlow and the data, is left out of the medians); the
chain's share is the time the round loop spent blocked on the rollup
(`timings.per_round_s`: sending the round's reports and reveals, and the wait for round r-K's close before round
r's first report: with K = 1 the previous round's). The **tail** is what the run waits after its last round for the
closes still on chain (`timings.final_s`): with K > 1 the chain's work moves there, so it is reported beside.

Each recorded run is settled by the consensus asked for (`--consensus`: `authority`, one node whose key
settles; `quorum`, a node per member, the manager and each validator, 2 of 3 votes): the table also gives
the gas of one claim vote and how many blocks after an epoch's end it settled (medians over the run's epochs).

Run: .venv/bin/python -m benchmarks.e2e [--rounds 4] [--trainers 20] [--block-times 1,12]
                                        [--open-rounds auto,1,8] [--consensus authority,quorum] [--say]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fedrollup.stack import local_stack
from flower_sim.config import SimulationConfig
from flower_sim.records import Observers, RoundRecord, ValidatorReport
from flower_sim.rollup_roles import RUN_OPEN_ROUNDS, RollupRecorder, TaskTerms
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
    start = time.perf_counter()
    result = simulate(cfg, out, observer=clock)
    return {"round_s": clock.round_seconds(), "chain_s": [0.0] * (cfg.rounds - 1),
            "accuracy": result.records[-1].global_accuracy, "run_s": time.perf_counter() - start}


def run_recorded(cfg: SimulationConfig, out: Path, block_time: float, consensus: str = "authority",
                 open_rounds: int | None = None, say: Callable[[str], None] = lambda _: None) -> dict:
    """A run recorded on a local stack; `open_rounds` None: the runs' default (sized from the block time)."""
    with local_stack(out / "chain", block_time=block_time, consensus=consensus,
                     members=1 + cfg.validators) as stack:
        recorder = RollupRecorder(cfg, stack.deployment, stack.node, terms=TaskTerms(open_rounds=open_rounds),
                                  say=say)
        recorder.open_task(cfg.rounds)
        clock = RoundClock()
        start = time.perf_counter()
        result = simulate(cfg, out, observer=Observers(recorder, clock), rollup=recorder)
        return {"round_s": clock.round_seconds(), "chain_s": recorder.timings.per_round_s[1:],
                "accuracy": result.records[-1].global_accuracy, "setup_s": recorder.timings.setup_s,
                "tail_s": recorder.timings.final_s, "run_s": time.perf_counter() - start,
                "open_rounds": recorder.terms.open_rounds,
                **settlement(stack.deployment)}


def timed(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


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
    parser.add_argument("--block-times", default="1,12", help="comma-separated anvil block times (s)")
    parser.add_argument("--open-rounds", default="auto",
                        help="comma-separated: rounds open on chain at once (the task's openRounds; 1: one at a time; "
                             f"auto: the runs' default, at least {RUN_OPEN_ROUNDS}, more at slow blocks)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--say", action="store_true",
                        help="print the recorder's messages, timed (when each close goes out and is recorded)")
    parser.add_argument("--consensus", default="authority",
                        help="comma-separated: authority (one node settles), quorum (a node per member)")
    args = parser.parse_args(argv)
    kinds = args.consensus.split(",")
    if any(kind not in ("authority", "quorum") for kind in kinds):
        parser.error("--consensus takes authority and/or quorum")
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (round 1 is warm-up)")
    try:
        opens = [None if k == "auto" else int(k) for k in args.open_rounds.split(",")]
    except ValueError:
        parser.error(f"--open-rounds takes comma-separated integers or auto, got {args.open_rounds!r}")
    if any(k is not None and not 1 <= k <= 64 for k in opens):
        parser.error("--open-rounds takes numbers in 1..64")
    cfg = replace(SimulationConfig(), rounds=args.rounds, trainers=args.trainers, seed=args.seed).validate()
    block_times = [float(b) for b in args.block_times.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fedrollup-e2e-") as tmp:
        print(f"baseline: {cfg.rounds} rounds of {cfg.trainers} trainers without the chain", flush=True)
        base = run_plain(cfg, Path(tmp) / "plain")
        rows.append(("no chain (baseline)", base))
        for bt in block_times:
            for k in opens:
                for kind in kinds:
                    print(f"recorded on the rollup, block time {bt:g} s, {k or 'auto'} round(s) open, {kind}",
                          flush=True)
                    run = run_recorded(cfg, Path(tmp) / f"chain-{bt:g}-{k}-{kind}", bt, kind, k,
                                       timed if args.say else lambda _: None)
                    rows.append((f"{kind}, {bt:g} s blocks, K={k or 'auto ' + str(run['open_rounds'])}", run))
    base_round = statistics.median(base["round_s"])
    print()
    print(f"{'run':<34} {'round s (median)':>17} {'chain s (median)':>17} {'chain share':>12} {'mean share':>11} "
          f"{'vs baseline':>12} {'tail s':>7} {'run s':>7} {'chain of run':>13} {'task setup s':>13} "
          f"{'final acc':>10} {'gas/vote':>9} {'settled after':>14}")
    for name, r in rows:
        round_s, chain_s = statistics.median(r["round_s"]), statistics.median(r["chain_s"])
        mean_share = sum(r["chain_s"]) / sum(r["round_s"])
        settle = f"{r['settle_blocks']:g} blocks" if "settle_blocks" in r else "—"
        tail = f"{r['tail_s']:.1f}" if "tail_s" in r else "—"
        run = f"{r['run_s']:.1f}" if "run_s" in r else "—"
        # the chain's share of the whole run: every wait of the round loop on the rollup, and the tail
        of_run = f"{100 * (sum(r['chain_s']) + r['tail_s']) / r['run_s']:.1f}%" if "tail_s" in r else "—"
        print(f"{name:<34} {round_s:>17.2f} {chain_s:>17.2f} {100 * chain_s / round_s:>11.1f}% "
              f"{100 * mean_share:>10.1f}% {100 * (round_s / base_round - 1):>+11.1f}% {tail:>7} {run:>7} "
              f"{of_run:>13} {r.get('setup_s', 0.0):>13.1f} {100 * r['accuracy']:>9.1f}% "
              f"{r.get('vote_gas', 0):>9,.0f} {settle:>14}")
    for name, r in rows[1:]:
        print(f"{name}: the round loop's wait on the rollup, rounds 2..{cfg.rounds} (s): "
              + " ".join(f"{c:.1f}" for c in r["chain_s"]))
    print(f"\nmedians over rounds 2..{cfg.rounds}; mean share: the waits over the rounds' time, rounds "
          f"2..{cfg.rounds}; chain of run: the waits and the tail over the run; tail: the wait after the last round "
          f"for the closes still on chain; run: the federated rounds and the tail (not the task's setup); "
          f"{cfg.trainers} trainers, {cfg.validators} validators, model {cfg.model}, strategy {cfg.strategy}, "
          f"attack {cfg.attack}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
