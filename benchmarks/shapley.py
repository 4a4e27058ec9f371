"""Shapley-value contributions (issue 15): the estimator's error and cost, and fairness over a federated run.

(a) Error: honest runs (one per seed), every group's received updates (10 per group at 20 trainers, 2 groups) valued
    exactly (all 1,024 coalitions, timed) and by Monte-Carlo (TMC-Shapley with guided first positions, at several
    permutation counts, without and with truncation, 3 sampling seeds each), against exact: shares' mean and max
    absolute error (bps of the budget), Spearman rank correlation of the values, distinct coalitions evaluated and
    their cost at the measured seconds per coalition, the stated errors (standard error, Hoeffding bound).
(b) Fairness: one run with, in group 0, a free-rider (sends the global model back), a duplicate (copies trainer 3's
    update) and a low-data trainer (10 % of its partition); every group's accepted updates valued exactly each round,
    in three valuations ([C] the brief's game, [G] group averaging, [G+M] [G] with copies merged: `shapley_run`).
    Per actor: rounds accepted, its mean share of the group's round budget under `per-positive` (every accepted
    update the same) and under each valuation, its mean Shapley and leave-one-out values; Shapley's cost per round.
    Then the same run without the duplicate: what trainer 3 earns alone against what the pair earns.
(c) Correlation over that run of each accepted update's Shapley value with its leave-one-out value (Pearson,
    Spearman), and of each trainer's total Shapley payout with its total leave-one-out.
(d) Payout (`--payout`, alone): the same actors in a `--payout shapley` run, where each validator values its accepted
    updates itself ([G], copies merged) and reports their shares; what the rollup pays each, by its rule
    (`dapp.rewards.share_of`: groupBudget x share // 10,000 per Positive), beside what `per-positive` pays (the
    reward per Positive), at the demo's terms (`TaskTerms`: 1 mETH per Positive, a budget that pays every trainer).

Model `mlp`: scoring a coalition is one forward pass over the validator's 250 samples, 1.7 ms for the MLP against
5.9 ms for the CNN (measured, 2 shared cores); exact Shapley on 10 updates is 1,024 of them.

    .venv/bin/python -m benchmarks.shapley [--rounds 20] [--seeds 1,2,3] [--error-rounds 3] [--quick]
                                           [--payout] [--out runs/bench-shapley]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# after the environment above: Flower and TensorFlow read it when they load
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from scipy.stats import pearsonr, spearmanr  # noqa: E402

from dapp.rewards import share_of  # noqa: E402
from flower_sim import models  # noqa: E402
from flower_sim.actors import Actor, ActorsApp  # noqa: E402
from flower_sim.config import SimulationConfig  # noqa: E402
from flower_sim.data import make_splits  # noqa: E402
from flower_sim.records import Observers, RoundRecord, ValidatorReport  # noqa: E402
from flower_sim.rollup_roles import TaskTerms  # noqa: E402
from flower_sim.shapley import CachedUtility, GroupUtility, exact, group_utility, monte_carlo  # noqa: E402
from flower_sim.shapley_run import GroupValues, ShapleyObserver, UpdateTap, round_seed  # noqa: E402
from flower_sim.simulation import simulate  # noqa: E402

PERMUTATIONS = (10, 20, 50, 100, 200)
TRUNCATIONS = (None, 40)  # 40 bps: one sample of the validator's 250
SAMPLING_SEEDS = 3
GAMES = ("coalition", "group")  # shapley.GroupUtility's `averaging`: [C] and [G]
# (b)'s valuations: the two games, and [G] with copies of one update merged into one player (shapley_run)
VALUATIONS = {"C": dict(averaging="coalition"), "G": dict(averaging="group"),
              "G+M": dict(averaging="group", merge_copies=True)}
FREERIDER, DUPLICATE, ORIGINAL, LOWDATA = 1, 2, 3, 4
ACTORS = {FREERIDER: Actor("freeride"), DUPLICATE: Actor("duplicate", original=ORIGINAL), LOWDATA: Actor("lowdata")}


def run_config(trainers: int, rounds: int, seed: int) -> SimulationConfig:
    return SimulationConfig(rounds=rounds, trainers=trainers, validators=2, model="mlp", attack="none",
                            malicious=0.0, seed=seed).validate()


@dataclass
class ErrorProbe:
    """Values every group's received updates exactly, then by Monte-Carlo on the same (cached) utilities."""

    tap: UpdateTap
    cfg: SimulationConfig
    rows: list[dict] = field(default_factory=list)
    exact_s: list[float] = field(default_factory=list)
    evaluation_s: list[float] = field(default_factory=list)
    keras: dict = field(default_factory=dict)

    def on_validator_report(self, report: ValidatorReport) -> None:
        members = sorted(report.contributions, key=lambda c: c.trainer_id)
        data = make_splits(self.cfg.split_spec()).validators[report.validator_id]
        game = (models.shared_model(self.cfg.model, self.cfg.lr, "evaluator"), self.tap.global_weights[report.round],
                [self.tap.updates[report.round][c.trainer_id] for c in members], [c.num_examples for c in members],
                data.x, data.y)
        for averaging in GAMES:
            self.compare(report, len(members), CachedUtility(group_utility(self.cfg.model, *game, averaging)),
                         averaging)
        if not self.keras:  # once per run: the same game through Keras's forward pass, its cost and agreement
            dense = CachedUtility(group_utility(self.cfg.model, *game))
            start = time.perf_counter()
            truth = exact(len(members), dense)
            dense_s = time.perf_counter() - start
            keras = CachedUtility(GroupUtility(*game))
            start = time.perf_counter()
            through_keras = exact(len(members), keras)
            seconds = time.perf_counter() - start
            differences = [abs(keras.cache[m] - dense.cache[m]) for m in keras.cache]
            self.keras = dict(seconds=seconds, dense_seconds=dense_s, coalitions=len(differences),
                              identical=sum(d == 0 for d in differences), max_difference_bps=max(differences),
                              share_max_difference_bps=int(np.max(np.abs(np.array(through_keras.shares_bps)
                                                                          - np.array(truth.shares_bps)))))

    def compare(self, report: ValidatorReport, n: int, cached: CachedUtility, averaging: str) -> None:
        """Exact values of one game (timed), then Monte-Carlo's at every setting on the same utilities."""
        start = time.perf_counter()
        truth = exact(n, cached)
        self.exact_s.append(time.perf_counter() - start)
        self.evaluation_s.append(self.exact_s[-1] / truth.evaluations)
        for permutations in PERMUTATIONS:
            for truncation in TRUNCATIONS:
                for sampling in range(SAMPLING_SEEDS):
                    seed = round_seed(self.cfg.seed + 1_000 * sampling, report.round, report.validator_id)
                    guess = monte_carlo(n, CachedUtility(cached.cache.__getitem__), permutations, seed,
                                        truncation)
                    error = np.abs(np.array(guess.shares_bps) - np.array(truth.shares_bps))
                    value_error = np.abs(np.array(guess.values) - np.array(truth.values))
                    self.rows.append(dict(
                        game=averaging, seed=self.cfg.seed, round=report.round, validator=report.validator_id,
                        permutations=permutations, truncation_bps=truncation, sampling=sampling,
                        share_mae=float(error.mean()), share_max=int(error.max()),
                        spearman=rank_correlation(guess.values, truth.values), evaluations=guess.evaluations,
                        value_max_error=float(value_error.max()), stderr_max=max(guess.stderr),
                        bound_bps=guess.bound_bps, within_bound=bool(np.all(value_error <= guess.bound_bps))))

    def on_round_closed(self, record: RoundRecord) -> None:
        self.tap.forget(record.round)


def rank_correlation(a, b) -> float:
    """Spearman's rho; 1.0 when either side is constant (nothing to rank) and both are equal."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(spearmanr(a, b).statistic)


def error_study(trainers: int, rounds: int, seeds: list[int], out: Path, console: Console) -> dict:
    """(a): estimator error against exact on every group of honest runs, one per seed."""
    probes = []
    for seed in seeds:
        cfg = run_config(trainers, rounds, seed)
        tap = UpdateTap(ActorsApp({}))
        probe = ErrorProbe(tap, cfg)
        t0 = time.perf_counter()
        simulate(cfg, out / f"error-seed-{seed}", observer=probe, client_app=tap)
        console.print(f"(a) seed {seed}: {rounds} rounds, {len(probe.exact_s) // len(GAMES)} groups valued in both "
                      f"games ({time.perf_counter() - t0:.0f} s)")
        probes.append(probe)
    rows = [r for p in probes for r in p.rows]
    evaluation_s = float(np.mean([s for p in probes for s in p.evaluation_s]))
    exact_s = float(np.mean([s for p in probes for s in p.exact_s]))
    group = trainers // 2
    summary = []
    for game, permutations, truncation in itertools.product(GAMES, PERMUTATIONS, TRUNCATIONS):
        chosen = [r for r in rows if (r["game"], r["permutations"], r["truncation_bps"]) == (game, permutations,
                                                                                             truncation)]
        if chosen:
            evaluations = float(np.mean([r["evaluations"] for r in chosen]))
            summary.append(dict(
                game=game, permutations=permutations, truncation_bps=truncation, cases=len(chosen),
                share_mae=float(np.mean([r["share_mae"] for r in chosen])),
                share_max=max(r["share_max"] for r in chosen),
                spearman=float(np.mean([r["spearman"] for r in chosen])), evaluations=evaluations,
                value_max_error=float(np.mean([r["value_max_error"] for r in chosen])),
                seconds=evaluations * evaluation_s, stderr_max=float(np.mean([r["stderr_max"] for r in chosen])),
                bound_bps=float(np.mean([r["bound_bps"] for r in chosen])),
                within_bound=float(np.mean([r["within_bound"] for r in chosen]))))
    table = Table(title=f"(a) Monte-Carlo against exact Shapley, groups of {group} received updates, "
                        f"{len(probes[0].exact_s) // len(GAMES) * len(seeds)} group-rounds (seeds "
                        f"{','.join(map(str, seeds))}), {SAMPLING_SEEDS} sampling seeds each, games [C] and [G] (see "
                        f"(b)). Exact: {2 ** group} coalitions, {exact_s:.2f} s per group-round "
                        f"({1000 * evaluation_s:.2f} ms per coalition). Errors of shares in bps of the budget, of "
                        f"values in bps of accuracy (mean over cases of the largest member's)", title_justify="left")
    for col in ("game", "permutations", "truncation", "share error mean", "share error max", "value error",
                "rank corr.", "coalitions", "seconds (est.)", "std. error", "Hoeffding 95 %", "within bound"):
        table.add_column(col, justify="right")
    for s in summary:
        table.add_row(f"[{s['game'][0].upper()}]", str(s["permutations"]),
                      "none" if s["truncation_bps"] is None else f"{s['truncation_bps']} bps",
                      f"{s['share_mae']:.0f}", str(s["share_max"]), f"{s['value_max_error']:.0f}",
                      f"{s['spearman']:.3f}", f"{s['evaluations']:.0f}", f"{s['seconds']:.2f}",
                      f"{s['stderr_max']:.0f}", f"{s['bound_bps']:.0f}", f"{100 * s['within_bound']:.0f} %")
    console.print(table)
    keras = [p.keras for p in probes]
    keras_s, dense_s = np.mean([k["seconds"] for k in keras]), np.mean([k["dense_seconds"] for k in keras])
    console.print(f"(a) the same exact game through Keras's forward pass (`models.score`), one group per seed: "
                  f"{keras_s:.2f} s against {dense_s:.2f} s; the same accuracy in "
                  f"{sum(k['identical'] for k in keras)} of {sum(k['coalitions'] for k in keras)} coalitions "
                  f"(largest difference {max(k['max_difference_bps'] for k in keras)} bps), shares differing by at "
                  f"most {max(k['share_max_difference_bps'] for k in keras)} bps")
    return dict(exact_seconds=exact_s, seconds_per_coalition=evaluation_s, keras=keras, summary=summary, rows=rows)


def actor_figures(records: list[RoundRecord], groups: list[GroupValues], roles: dict[str, list[int]]) -> dict:
    """Per role: share of rounds accepted, mean payout per round (bps of the group's budget; 0 when not accepted)
    under per-positive and under Shapley, mean Shapley and leave-one-out values of its accepted updates."""
    per = {(g.round, t): dict(value=g.values[k], share=g.shares_bps[k], loo=g.leave_one_out[k],
                              per_positive=10_000 // len(g.trainer_ids))
           for g in groups for k, t in enumerate(g.trainer_ids)}
    result = {}
    for role, members in roles.items():
        figures = [per.get((r.round, t)) for r in records for t in members]
        accepted = [f for f in figures if f is not None]
        mean = lambda key: float(np.mean([f[key] if f else 0 for f in figures]))  # noqa: E731
        result[role] = dict(trainers=members, accepted=len(accepted) / len(figures),
                            per_positive_bps=mean("per_positive"), shapley_bps=mean("share"),
                            value_bps=float(np.mean([f["value"] for f in accepted])) if accepted else None,
                            loo_bps=float(np.mean([f["loo"] for f in accepted])) if accepted else None)
    return result


def correlations(groups: list[GroupValues], trainers: int) -> dict:
    """Shapley against leave-one-out: per accepted update (values), and per trainer (total payout, total LOO)."""
    pairs = [(g.values[k], g.leave_one_out[k], g.shares_bps[k], t)
             for g in groups for k, t in enumerate(g.trainer_ids)]
    values, loo = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)
    paid = np.array([sum(p[2] for p in pairs if p[3] == t) for t in range(trainers)], dtype=float)
    left = np.array([sum(p[1] for p in pairs if p[3] == t) for t in range(trainers)], dtype=float)
    return dict(updates=len(pairs), pearson=float(pearsonr(values, loo).statistic),
                spearman=rank_correlation(values, loo), trainers_pearson=float(pearsonr(paid, left).statistic),
                trainers_spearman=rank_correlation(paid, left))


def valued_run(cfg: SimulationConfig, actors: dict[int, Actor], out: Path,
               console: Console) -> tuple[list[RoundRecord], dict[str, ShapleyObserver]]:
    """One run with `actors`, every group's accepted updates valued exactly by every valuation of `VALUATIONS`."""
    tap = UpdateTap(ActorsApp(actors))
    validator_data = make_splits(cfg.split_spec()).validators
    observers = {name: ShapleyObserver(tap, validator_data, cfg.model, cfg.lr, cfg.seed, **options)
                 for name, options in VALUATIONS.items()}
    t0 = time.perf_counter()
    records = simulate(cfg, out, observer=Observers(*observers.values()), client_app=tap).records
    console.print(f"(b) run with {', '.join(f'{a.role} {t}' for t, a in actors.items())}: {cfg.rounds} rounds, "
                  f"{cfg.trainers} trainers ({time.perf_counter() - t0:.0f} s)")
    return records, observers


def copy_effect(cfg: SimulationConfig, with_copy: dict, out: Path, console: Console) -> dict:
    """The same run without the duplicate (trainer 2 honest): trainer 3's payout alone against the pair's with it."""
    actors = {t: a for t, a in ACTORS.items() if a.role != "duplicate"}
    records, observers = valued_run(cfg, actors, out, console)
    roles = {"its original": [ORIGINAL], "duplicate": [DUPLICATE]}
    alone = {name: actor_figures(records, o.groups, roles) for name, o in observers.items()}
    table = Table(title="(b) What the copy earns: trainer 3's mean payout per round (bps of the group's budget) in "
                        "the same run without the duplicate (trainer 2 honest), against trainer 3's and the pair's "
                        "with it", title_justify="left")
    for col in ("payout", "per-positive", *(f"shapley [{name}]" for name in VALUATIONS)):
        table.add_column(col, justify="right")
    key = lambda name: "per_positive_bps" if name == "per-positive" else "shapley_bps"  # noqa: E731
    source = lambda name: "C" if name == "per-positive" else name  # noqa: E731
    names = ("per-positive", *VALUATIONS)
    table.add_row("trainer 3 alone", *(f"{alone[source(n)]['its original'][key(n)]:.0f}" for n in names))
    table.add_row("trainer 3 with its copy", *(f"{with_copy[source(n)]['its original'][key(n)]:.0f}" for n in names))
    table.add_row("the pair (trainers 2 + 3) with the copy",
                  *(f"{with_copy[source(n)]['its original'][key(n)] + with_copy[source(n)]['duplicate'][key(n)]:.0f}"
                    for n in names))
    console.print(table)
    return alone


def fairness_run(trainers: int, rounds: int, seed: int, out: Path, console: Console) -> dict:
    """(b) and (c): one run with the actors in group 0, every group's accepted updates valued exactly, by every
    valuation of `VALUATIONS`."""
    cfg = run_config(trainers, rounds, seed)
    records, observers = valued_run(cfg, ACTORS, out / "fairness", console)
    group_size = trainers // cfg.validators
    honest = [t for t in range(group_size) if t not in ACTORS and t != ORIGINAL]
    others = [t for t in range(group_size, trainers) if t not in ACTORS]
    roles = {"free-rider": [FREERIDER], "duplicate": [DUPLICATE], "its original": [ORIGINAL],
             "low-data (10 %)": [LOWDATA], "honest, group 0": honest, "honest, group 1 (no actors)": others}
    fairness = {name: actor_figures(records, o.groups, roles) for name, o in observers.items()}
    legend = ("[C] a coalition's model is the FedAvg of its members; [G] it is the group's FedAvg had only its "
              "members sent updates; [G+M] as [G], updates with the same digest one player, its value split")
    table = Table(title=f"(b) Fairness over {rounds} rounds (MNIST, mlp, {trainers} trainers, 2 groups of "
                        f"{group_size}, seed {seed}): mean payout per round in bps of the group's round budget (not "
                        f"accepted: 0), and in brackets ÷ group 0's honest mean. {legend}", title_justify="left")
    for col in ("trainer", "accepted", "per-positive", *(f"shapley [{name}]" for name in VALUATIONS)):
        table.add_column(col, justify="right")
    for role in roles:
        row = []
        for name in ("C", *VALUATIONS):
            f, base = fairness[name][role], fairness[name]["honest, group 0"]
            key = "per_positive_bps" if not row else "shapley_bps"
            row.append(f"{f[key]:.0f} ({f[key] / base[key]:.2f})" if base[key] else f"{f[key]:.0f}")
        table.add_row(role, f"{100 * fairness['C'][role]['accepted']:.0f} %", *row)
    console.print(table)
    table = Table(title="(b) Mean Shapley and leave-one-out values of the accepted updates, bps of accuracy on the "
                        "validator's data", title_justify="left")
    for col in ("trainer", *(f"value [{name}]" for name in VALUATIONS), *(f"LOO [{name}]" for name in VALUATIONS)):
        table.add_column(col, justify="right")
    one = lambda x: "—" if x is None else f"{x:.1f}"  # noqa: E731
    for role in roles:
        table.add_row(role, *(one(fairness[name][role]["value_bps"]) for name in VALUATIONS),
                      *(one(fairness[name][role]["loo_bps"]) for name in VALUATIONS))
    console.print(table)
    without_copy = copy_effect(cfg, fairness, out / "fairness-without-copy", console)

    round_s = [sum(r.timings.values()) for r in records]
    validation_s = [r.timings["validation_s"] for r in records]
    cost = {}
    for name, o in observers.items():
        shapley_s = [sum(g.seconds for g in o.groups if g.round == r.round) for r in records]
        cost[name] = k = dict(shapley_s_per_group=float(np.mean([g.seconds for g in o.groups])),
                              shapley_s_per_round=float(np.mean(shapley_s)), round_s=float(np.mean(round_s)),
                              validation_s_per_round=float(np.mean(validation_s)),
                              share_of_round=float(np.sum(shapley_s) / np.sum(round_s)),
                              mean_players=float(np.mean([len(g.estimate.values) for g in o.groups])))
        console.print(f"(b) cost [{name}]: {k['shapley_s_per_group']:.2f} s per group-round (exact, "
                      f"{k['mean_players']:.1f} players on average), {k['shapley_s_per_round']:.2f} s per round "
                      f"against the round's {k['round_s']:.2f} s (training, MAD validation "
                      f"{k['validation_s_per_round']:.2f} s, aggregation; in process, trainers in turn): "
                      f"+{100 * k['share_of_round']:.0f} %")

    correlation = {name: correlations(o.groups, trainers) for name, o in observers.items()}
    table = Table(title="(c) Shapley against leave-one-out over the run (Pearson / Spearman)", title_justify="left")
    for col in ("over", "n", *(f"[{name}]" for name in VALUATIONS)):
        table.add_column(col, justify="right")
    table.add_row("each accepted update: Shapley value vs leave-one-out", str(correlation["C"]["updates"]),
                  *(f"{c['pearson']:.2f} / {c['spearman']:.2f}" for c in correlation.values()))
    table.add_row("each trainer: total Shapley payout vs total leave-one-out", str(trainers),
                  *(f"{c['trainers_pearson']:.2f} / {c['trainers_spearman']:.2f}" for c in correlation.values()))
    console.print(table)
    final = records[-1].global_accuracy
    console.print(f"final global accuracy {100 * final:.1f} %")
    return dict(config=cfg.as_dict(), actors={str(t): a.role for t, a in ACTORS.items()}, fairness=fairness,
                without_copy=without_copy, cost=cost, correlation=correlation, final_accuracy=final,
                groups={name: [g.as_dict() for g in o.groups] for name, o in observers.items()})


def payout_run(trainers: int, rounds: int, seed: int, out: Path, console: Console) -> dict:
    """(d): a `--payout shapley` run with the actors in group 0: every validator reports its accepted updates' shares
    itself; per role, what the rollup pays a round (mean over the rounds, 0 when rejected) and in all, by its rule,
    against what per-positive pays."""
    cfg = replace(run_config(trainers, rounds, seed), payout="shapley")
    terms = TaskTerms()
    group_budget = terms.budget(trainers) // cfg.validators
    t0 = time.perf_counter()
    records = simulate(cfg, out / "payout", client_app=ActorsApp(ACTORS)).records
    seconds = time.perf_counter() - t0
    group_size = trainers // cfg.validators
    roles = {"free-rider": [FREERIDER], "duplicate": [DUPLICATE], "its original": [ORIGINAL],
             "low-data (10 %)": [LOWDATA],
             "honest, group 0": [t for t in range(group_size) if t not in ACTORS and t != ORIGINAL],
             "honest, group 1 (no actors)": [t for t in range(group_size, trainers) if t not in ACTORS]}
    paid = {(r.round, c.trainer_id): (c.accepted, c.share_bps) for r in records for c in r.contributions}
    sums = [sum(c.share_bps for c in r.contributions if c.validator_id == v) for r in records for v in range(2)]
    rows = {}
    for role, members in roles.items():
        figures = [paid.get((r.round, t), (False, 0)) for r in records for t in members]
        per_positive = [terms.reward_per_positive if ok else 0 for ok, _ in figures]
        shapley = [share_of(group_budget, share) if ok else 0 for ok, share in figures]
        rows[role] = dict(trainers=members, accepted=float(np.mean([ok for ok, _ in figures])),
                          per_positive_wei=float(np.mean(per_positive)), shapley_wei=float(np.mean(shapley)),
                          per_positive_total_wei=sum(per_positive) / len(members),
                          shapley_total_wei=sum(shapley) / len(members))
    milli = 10**15
    table = Table(title=f"(d) What the rollup pays over a {rounds}-round `--payout shapley` run (MNIST, mlp, {trainers}"
                        f" trainers, 2 groups of {group_size}, seed {seed}; the validators' own shares, [G] with "
                        f"copies merged), per trainer of the role: mean per round and total, in mETH, against "
                        f"per-positive (1 mETH per Positive; group budget {group_budget / milli:g} mETH)",
                  title_justify="left")
    for col in ("trainer", "accepted", "per-positive / round", "shapley / round", "per-positive total",
                "shapley total"):
        table.add_column(col, justify="right")
    for role, f in rows.items():
        table.add_row(role, f"{100 * f['accepted']:.0f} %", f"{f['per_positive_wei'] / milli:.3f}",
                      f"{f['shapley_wei'] / milli:.3f}", f"{f['per_positive_total_wei'] / milli:.2f}",
                      f"{f['shapley_total_wei'] / milli:.2f}")
    console.print(table)
    console.print(f"(d) shares reported per group and round: {min(sums)}..{max(sums)} bps of 10,000 (the rest, "
                  f"rounding dust, stays in escrow); run {seconds:.0f} s; final global accuracy "
                  f"{100 * records[-1].global_accuracy:.1f} %")
    return dict(config=cfg.as_dict(), group_budget_wei=group_budget, roles=rows, share_sums=[min(sums), max(sums)],
                seconds=seconds, final_accuracy=records[-1].global_accuracy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="rounds of the fairness runs (default 20; --quick 4)")
    parser.add_argument("--error-rounds", type=int, help="rounds of each error run (default 3; --quick 1)")
    parser.add_argument("--seeds", help="seeds of the error runs (default 1,2,3; --quick 1)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the fairness runs")
    parser.add_argument("--trainers", type=int, default=20, help="trainers (2 groups)")
    parser.add_argument("--quick", action="store_true", help="1 error seed of 1 round, fairness runs of 4 rounds")
    parser.add_argument("--payout", action="store_true", help="only (d): what the rollup pays in a --payout shapley "
                                                               "run with the actors")
    parser.add_argument("--out", default="runs/bench-shapley")
    args = parser.parse_args(argv)
    if args.trainers < 12 or args.trainers % 2:
        parser.error("--trainers must be even and at least 12: the actors (trainers 1-4) and two honest trainers "
                     "sit in group 0")
    if any(n is not None and n < 1 for n in (args.rounds, args.error_rounds)):
        parser.error("--rounds and --error-rounds must be at least 1")
    rounds = args.rounds or (4 if args.quick else 20)
    error_rounds = args.error_rounds or (1 if args.quick else 3)
    seeds = [int(s) for s in (args.seeds or ("1" if args.quick else "1,2,3")).split(",")]
    console = Console(width=160)
    out = Path(args.out)
    started = time.perf_counter()
    if args.payout:
        payout = payout_run(args.trainers, rounds, args.seed, out, console)
        out.mkdir(parents=True, exist_ok=True)
        (out / "payout.json").write_text(json.dumps(payout, indent=1) + "\n")
        console.print(f"{time.perf_counter() - started:.0f} s in all; results in {out}/payout.json")
        return 0
    error = error_study(args.trainers, error_rounds, seeds, out, console)
    fairness = fairness_run(args.trainers, rounds, args.seed, out, console)
    out.mkdir(parents=True, exist_ok=True)
    (out / "shapley.json").write_text(json.dumps(dict(error=error, fairness=fairness), indent=1) + "\n")
    console.print(f"{time.perf_counter() - started:.0f} s in all; results in {out}/shapley.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
