"""`fedrollup demo`: its options, turned into `fedrollup.demo.DemoConfig`."""
from __future__ import annotations

import argparse
from collections import Counter

from common.errors import ConfigError
from fedrollup import demo
from fedrollup.cli.args import OPEN_ROUNDS_HELP, blocks_option, open_rounds_option
from fedrollup.cli.simulate import add_simulation_options, output_folder, simulation_config
from flower_sim.cheating import KINDS, CheatingValidator
from flower_sim.rollup_schedule import ELECTED, SilentValidator


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the paper's scenario end to end: chain, node, FL rounds recorded on the rollup, audit",
        description=demo.__doc__.split("\n\n")[1], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_simulation_options(p)
    chain = p.add_argument_group("rollup")
    chain.add_argument("--block-time", type=float, default=1.0, help="seconds per L1 block on the dev chain")
    chain.add_argument("--epoch-length", type=int, default=10, help="L1 blocks per rollup epoch (claims)")
    chain.add_argument("--l1-port", type=int, default=0, help="anvil's port; 0 picks a free one")
    chain.add_argument("--node-port", type=int, default=0, help="the node's /rpc and /inspect port; 0 picks a free one")
    chain.add_argument("--reward", type=float, default=0.001, help="ETH paid per Positive contribution")
    chain.add_argument("--validator-reward", type=float, default=0.005,
                       help="ETH per round to the validator closest to the global model")
    chain.add_argument("--keep-chain", action="store_true",
                       help="leave anvil and the node running afterwards, for the console")
    chain.add_argument("--consensus", choices=("quorum", "authority"), default="quorum",
                       help="who settles each epoch: a Quorum of the manager and the validators, each with its own "
                            "node and claim key (a majority needed), or one Authority key")
    chain.add_argument("--tasks", type=int, default=1,
                       help="publishers, each running this federation as a task of its own, all at once on one rollup "
                            "whose broker takes --broker-fee-bps of every task's budget (a market, issue 15)")
    chain.add_argument("--broker-fee-bps", type=int, default=200,
                       help="with --tasks 2 or more: the broker's fee in basis points, paid by voucher")
    unset = argparse.SUPPRESS  # defaults said in the help text: a missing option stays missing from args
    chain.add_argument("--report-blocks", type=int, default=unset,
                       help="L1 blocks after a round's start within which its reports are accepted (default: the "
                            f"protocol's, or {demo.SILENT_REPORT_BLOCKS} with --silent-validator)")
    chain.add_argument("--close-blocks", type=int, default=unset,
                       help="L1 blocks of each producer's turn to close a round (default: the protocol's, or "
                            f"{demo.SILENT_CLOSE_BLOCKS} with --silent-validator)")
    chain.add_argument("--contest-blocks", type=int, default=unset,
                       help="L1 blocks after a round's last report for reveals, contests and challenges (and as "
                            "many again for disputed updates); each round's close waits for them (default: what "
                            "carries a contest from every trainer of a round at L1's gas limit, at least 2; "
                            f"{demo.CHEAT_CONTEST_BLOCKS} with --cheating-validator)")
    chain.add_argument("--open-rounds", type=int, default=unset, metavar="K", help=OPEN_ROUNDS_HELP)
    late = p.add_argument_group("a validator that goes silent mid-task")
    late.add_argument("--silent-validator", metavar="G", default=unset,
                      help=f"validator G (0-based) withholds its rollup inputs, its reports and, when elected, its "
                           f"closes (its Flower server keeps training); '{ELECTED}': the validator the rollup "
                           f"elects to close the first silent round, which always shows a producer failover")
    late.add_argument("--silent-from-round", type=int, metavar="R", default=unset,
                      help="the first round it is silent in (default 2)")
    cheat = p.add_argument_group("a validator that lies in its reports (the contest path)")
    cheat.add_argument("--cheating-validator", metavar="G:HOW", default=unset,
                       help=f"validator G lies about one trainer of its group in its rollup reports, HOW one of "
                            f"{', '.join(KINDS)}: drop leaves an honest trainer out (it contests with its receipt), "
                            f"misjudge reports it at 0%% (it contests), friend reports a sybil's noise update at "
                            f"100%% (the publisher challenges it); the rollup settles each dispute on its public "
                            f"test set")
    cheat.add_argument("--cheat-from-round", type=int, metavar="R", default=unset,
                       help="the first round it lies in (default 2)")
    p.set_defaults(func=run)


MAX_MARKET_TASKS = 4  # each trains in a process of its own, on a machine of a few cores


def _wei(eth: float, what: str) -> int:
    if eth < 0:
        raise ConfigError(f"{what} must be >= 0 ETH, got {eth}")
    return round(eth * 10**18)


def silent_validator(args: argparse.Namespace, validators: int, rounds: int) -> SilentValidator | None:
    """--silent-validator G|elected [--silent-from-round R], checked against the run."""
    given, from_round = getattr(args, "silent_validator", None), getattr(args, "silent_from_round", None)
    if given is None:
        if from_round is not None:
            raise ConfigError("--silent-from-round needs --silent-validator")
        return None
    text = given.strip().lower()
    if text != ELECTED and not text.isdecimal():
        raise ConfigError(f"--silent-validator must be a validator id in 0..{validators - 1} or '{ELECTED}', "
                          f"got {given!r}")
    silent = SilentValidator(None if text == ELECTED else int(text), 2 if from_round is None else from_round)
    return silent.validate(validators, rounds)


def cheating_validator(args: argparse.Namespace, cfg) -> CheatingValidator | None:
    """--cheating-validator G:drop|misjudge|friend [--cheat-from-round R], checked against the run."""
    given, from_round = getattr(args, "cheating_validator", None), getattr(args, "cheat_from_round", None)
    if given is None:
        if from_round is not None:
            raise ConfigError("--cheat-from-round needs --cheating-validator")
        return None
    if getattr(args, "silent_validator", None) is not None:
        raise ConfigError("--cheating-validator and --silent-validator stage one misbehaviour each: use one per run")
    sizes = Counter(cfg.group_of(t) for t in range(cfg.trainers))
    return CheatingValidator.parse(given, from_round).validate(cfg.validators, cfg.rounds, sizes)


def demo_config(args: argparse.Namespace) -> demo.DemoConfig:
    cfg = simulation_config(args)
    if args.block_time <= 0 or args.epoch_length <= 0:
        raise ConfigError("--block-time and --epoch-length must be positive")
    silent = silent_validator(args, cfg.validators, cfg.rounds)
    report_blocks = blocks_option(getattr(args, "report_blocks", None), demo.SILENT_REPORT_BLOCKS if silent else None,
                                  "--report-blocks")
    close_blocks = blocks_option(getattr(args, "close_blocks", None), demo.SILENT_CLOSE_BLOCKS if silent else None,
                                 "--close-blocks")
    cheating = cheating_validator(args, cfg)
    contest_blocks = blocks_option(getattr(args, "contest_blocks", None),
                                   demo.CHEAT_CONTEST_BLOCKS if cheating else None, "--contest-blocks")
    if not 1 <= args.tasks <= MAX_MARKET_TASKS:
        raise ConfigError(f"--tasks must be in 1..{MAX_MARKET_TASKS} (each task trains in a process of its own), "
                          f"got {args.tasks}")
    if not 0 <= args.broker_fee_bps <= 10_000:
        raise ConfigError(f"--broker-fee-bps must be in 0..10000, got {args.broker_fee_bps}")
    if args.tasks > 1 and (silent or cheating):
        raise ConfigError("--silent-validator and --cheating-validator stage one task's misbehaviour: run them "
                          "with --tasks 1")
    out = output_folder(args, cfg, kind="demo")
    return demo.DemoConfig(simulation=cfg, out=out, block_time=args.block_time, epoch_length=args.epoch_length,
                           l1_port=args.l1_port, node_port=args.node_port,
                           reward_wei=_wei(args.reward, "--reward"),
                           validator_reward_wei=_wei(args.validator_reward, "--validator-reward"),
                           keep_chain=args.keep_chain, silent=silent, report_blocks=report_blocks,
                           close_blocks=close_blocks, contest_blocks=contest_blocks, cheating=cheating,
                           open_rounds=open_rounds_option(getattr(args, "open_rounds", None)),
                           consensus=args.consensus, tasks=args.tasks, broker_fee_bps=args.broker_fee_bps)


def run(args: argparse.Namespace) -> int:
    return demo.run_demo(demo_config(args))
