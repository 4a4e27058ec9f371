"""Differential privacy of the trainers' updates (issue 17): the mechanisms, the accounting, the options, the budget
the rollup records in the task, and the audit's re-accounting of it."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict

from common import dp_accountant
from common.errors import ConfigError
from dapp import schema
from dapp.dp_budget import DpBudget
from dapp.eip712 import Domain
from dapp.qmodel import digest
from dapp.inspect_routes import task_info
from dapp.schema import DP_GAUSSIAN, DP_LAPLACE, DP_NONE, TaskCreated, decode_input, decode_notice
from dapp_fixtures import PUBLISHER, Chain, task_message
from fedrollup.cli import main
from flower_sim import models, trainer
from flower_sim.config import SimulationConfig
from flower_sim.grid import NODE_ID_OFFSET, InProcessGrid
from flower_sim.outputs import RunMetrics
from flower_sim.privacy import Budget, DpParams, clip, norm, privatize
from flower_sim.quantize import to_frq1
from flower_sim.signatures import RollupTask
from frontend_console.audit import AuditFailure, check_privacy
from frontend_console.views import tasks_table
from rich.console import Console
from rollups_client.outputs import decode_output
from rollups_node.outputs import encode_notice

SHAPES = [(300, 200), (200,), (1000,)]


def arrays(seed: int, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(shape)).astype(np.float32) for shape in SHAPES]


# ------------------------------------------------------------------------------------------- mechanisms


@pytest.mark.parametrize("order", [1, 2])
def test_clipping_bounds_the_updates_norm_and_leaves_a_small_or_zero_update_alone(order):
    big = arrays(1, scale=5.0)
    clipped = clip(big, 1.5, order)
    assert norm(clipped, order) == pytest.approx(1.5, rel=1e-9)
    direction = clipped[0].ravel() / np.linalg.norm(clipped[0])
    assert np.allclose(direction, big[0].ravel() / np.linalg.norm(big[0]))  # scaled, not distorted
    small = [a / norm(big, order) for a in big]  # norm 1, under the bound
    assert all(np.allclose(s, c) for s, c in zip(small, clip(small, 1.5, order)))
    zero = [np.zeros(s) for s in SHAPES]
    assert norm(clip(zero, 1.5, order), order) == 0.0


@pytest.mark.parametrize("mechanism,delta", [("gaussian", 1e-5), ("laplace", 0.0)])
def test_the_same_seed_gives_the_same_noisy_weights_and_another_seed_other_ones(mechanism, delta):
    params = DpParams(mechanism, 4.0, delta, 1.0)
    global_weights, local = arrays(2), arrays(3)
    first = privatize(params, global_weights, local, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, privatize(params, global_weights, local, seed=7)))
    assert not np.array_equal(first[0], privatize(params, global_weights, local, seed=8)[0])
    assert [a.dtype for a in first] == [np.float32] * len(SHAPES)
    assert not np.array_equal(first[0], local[0])


def test_without_dp_the_local_weights_go_out_untouched():
    local = arrays(3)
    assert privatize(DpParams(), arrays(2), local, seed=1) is local


def test_gaussian_noise_has_the_analytic_sigma_and_laplace_noise_the_scale_2c_over_epsilon():
    """On a million coordinates with a zero update, the noise is all that moves the weights."""
    zero = [np.zeros(1_000_000, dtype=np.float64)]
    gaussian = DpParams("gaussian", 2.0, 1e-5, 0.5)
    noise = privatize(gaussian, zero, zero, seed=3)[0]
    sigma = dp_accountant.gaussian_multiplier(2.0, 1e-5) * 2 * 0.5
    assert gaussian.noise_scale == pytest.approx(sigma)
    assert noise.std() == pytest.approx(sigma, rel=0.01) and abs(noise.mean()) < 0.01 * sigma
    laplace = DpParams("laplace", 2.0, 0.0, 0.5)
    noise = privatize(laplace, zero, zero, seed=3)[0]
    assert laplace.noise_scale == pytest.approx(2 * 0.5 / 2.0)
    assert np.abs(noise).mean() == pytest.approx(0.5, rel=0.01)  # E|Laplace(0, b)| = b


def test_the_laplace_update_is_clipped_in_l1_before_its_noise():
    """With ε huge the noise is negligible: what arrives is global + the update scaled to L1 norm C."""
    global_weights, local = [np.ones(10)], [np.ones(10) + np.arange(10)]  # an update of L1 norm 45
    sent = privatize(DpParams("laplace", 1000.0, 0.0, 2.0), global_weights, local, seed=1)
    assert np.allclose(sent[0] - 1, np.arange(10) * 2 / 45, atol=0.03)  # b = 0.004


# ------------------------------------------------------------------------------------------- accounting


def test_the_analytic_gaussian_calibration_matches_dp_accountings_own_epsilon_for_one_round():
    import dp_accounting  # the reference: its PLD accountant on one Gaussian release of multiplier 1.3

    accountant = dp_accounting.pld.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_accounting.GaussianDpEvent(1.3))
    epsilon = accountant.get_epsilon(1e-5)
    assert dp_accountant.gaussian_multiplier(epsilon, 1e-5) == pytest.approx(1.3, rel=1e-3)
    classic = math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5  # valid for ε ≤ 1, and looser than the analytic one
    assert dp_accountant.gaussian_multiplier(0.5, 1e-5) < classic


def test_gaussian_rounds_compose_like_one_gaussian_with_the_multiplier_over_root_rounds():
    """Closed form: r Gaussian releases of multiplier m are exactly one of multiplier m/√r (μ-GDP)."""
    multiplier = dp_accountant.gaussian_multiplier(2.0, 1e-5)
    total = dp_accountant.total_epsilon("gaussian", 2.0, 1e-5, 9)
    assert dp_accountant.gaussian_delta(total, multiplier / 3) == pytest.approx(1e-5, rel=0.01)


@pytest.mark.parametrize("mechanism,delta", [("gaussian", 1e-5), ("laplace", 0.0)])
def test_the_epsilon_spent_starts_at_one_rounds_and_grows_with_every_round(mechanism, delta):
    spent = dp_accountant.epsilon_spent(mechanism, 1.5, delta, 6)
    assert spent[0] == pytest.approx(1.5, rel=1e-3)
    assert all(b > a for a, b in zip(spent, spent[1:]))
    assert spent[-1] <= 6 * 1.5 + 1e-9  # never worse than basic composition
    if mechanism == "laplace":
        assert spent == pytest.approx([1.5 * r for r in range(1, 7)])
        assert dp_accountant.laplace_epsilon_at(1.5, 1e-5, 6) < spent[-1]


def test_the_on_chain_fixed_points_are_the_accountants():
    assert (dp_accountant.EPSILON_SCALE, dp_accountant.DELTA_SCALE) == (schema.DP_EPSILON_SCALE,
                                                                        schema.DP_DELTA_SCALE)
    assert dp_accountant.scaled_up(0.1, 1000) == 100 and dp_accountant.scaled_up(0.1234, 1000) == 124


def test_the_run_log_and_metrics_json_carry_the_budget_per_round_and_in_total():
    cfg = SimulationConfig(dp="gaussian", dp_epsilon=2.0, rounds=4).validate()
    budget = Budget.account(cfg.dp_params(), cfg.rounds, cfg.dp_delta)
    line = budget.describe()
    assert line.startswith("privacy: ε = 2 per round, ε = ") and "after 4 rounds at δ = 1e-05 (Gaussian" in line
    privacy = RunMetrics.start(cfg, "test").document["privacy"]
    assert privacy["epsilon_after_round"] == list(budget.epsilon_after_round)
    assert privacy["total_epsilon"] == budget.total > 2.0 and privacy["noise_scale"] == pytest.approx(
        cfg.dp_params().noise_scale)
    assert "privacy" not in RunMetrics.start(SimulationConfig(), "test").document


# ------------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("argv,words", [
    (["--dp", "gaussian", "--dp-epsilon", "0"], "--dp-epsilon"),
    (["--dp", "laplace", "--dp-epsilon", "5000"], "--dp-epsilon"),
    (["--dp", "gaussian", "--dp-delta", "1"], "--dp-delta"),
    (["--dp", "gaussian", "--dp-clip", "0"], "--dp-clip"),
])
@pytest.mark.parametrize("command", ["simulate", "demo"])
def test_impossible_privacy_options_are_one_line_errors(command, argv, words, capsys, tmp_path):
    assert main([command, "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_laplace_ignores_delta_and_no_dp_has_no_mechanism():
    assert SimulationConfig(dp="laplace", dp_delta=1e-3).validate().dp_params().delta == 0.0
    assert not SimulationConfig().dp_params().active
    with pytest.raises(ConfigError, match="--dp must be one of"):
        SimulationConfig(dp="rappor").validate()


# --------------------------------------------------------------------------------------------- on chain


def promise(mechanism: str = "gaussian", epsilon: float = 2.0, delta: float = 1e-5, rounds: int = 3) -> dict:
    return DpParams(mechanism, epsilon, delta, 1.0).onchain(rounds)


def test_create_task_carries_the_promise_round_trip_and_old_python_callers_promise_nothing():
    message = task_message(**promise())
    assert decode_input(message.encode()) == message
    assert (message.dp_mechanism, message.dp_epsilon_milli, message.dp_delta_atto) == (DP_GAUSSIAN, 2000, 10**13)
    assert DpBudget.of(task_message()) == DpBudget()  # the defaults: no DP, all zero


def test_the_rollup_records_the_budget_in_task_created_and_the_task_view():
    chain = Chain()
    terms = promise("laplace", 0.5, 0.0, rounds=4)
    chain.send(PUBLISHER, task_message(rounds=4, **terms))
    notice = chain.of_type(TaskCreated)[0]
    assert decode_notice(notice.encode()) == notice
    assert DpBudget.of(notice) == DpBudget(DP_LAPLACE, 500, 0, 1_000_000, 2000)
    info = task_info(chain.state, "1", {})["privacy"]
    assert info["mechanism"] == "laplace" and info["total_epsilon_milli"] == 2000
    assert info["words"] == "laplace: ε = 0.5 per round, ε = 2 in total, δ = 0, clip C = 1"


GOOD = dict(dp_mechanism=DP_GAUSSIAN, dp_epsilon_milli=2000, dp_delta_atto=10**13, dp_clip_micro=10**6,
            dp_total_epsilon_milli=5000)


@pytest.mark.parametrize("change,reason", [
    (dict(dp_mechanism=3), "privacy mechanism 3 is unknown"),
    (dict(dp_mechanism=DP_NONE), "without differential privacy must leave"),
    (dict(dp_epsilon_milli=0), "needs a per-round ε above 0"),
    (dict(dp_clip_micro=0), "needs a clipping norm above 0"),
    (dict(dp_delta_atto=0), "Gaussian noise needs δ in (0, 1)"),
    (dict(dp_delta_atto=10**18), "Gaussian noise needs δ in (0, 1)"),
    (dict(dp_mechanism=DP_LAPLACE), "Laplace noise is pure ε-DP: δ must be 0"),
    (dict(dp_total_epsilon_milli=1999), "total ε 1.999 is below one round's 2"),
])
def test_the_rollup_rejects_a_budget_inconsistent_in_itself_saying_why(change, reason):
    chain = Chain()
    assert reason in chain.reject(PUBLISHER, task_message(**{**GOOD, **change}))
    chain.send(PUBLISHER, task_message(**GOOD))  # the same task with the consistent budget is accepted


def test_console_tasks_says_the_promise_in_words():
    chain = Chain()
    chain.send(PUBLISHER, task_message(**promise()))
    output = decode_output(encode_notice(chain.of_type(TaskCreated)[0].encode()))
    console = Console(width=300, record=True)
    console.print(tasks_table([output], None))
    assert "gaussian: ε = 2 per round, ε = " in console.export_text()


# ------------------------------------------------------------------------------------------------ audit


def test_the_audit_fails_a_recorded_total_below_the_accounted_one_and_passes_the_publishers_own():
    honest = promise(rounds=3)
    chain = Chain()
    chain.send(PUBLISHER, task_message(rounds=3, **honest))
    assert check_privacy(chain.state) == 1
    understated = {**honest, "dp_total_epsilon_milli": honest["dp_total_epsilon_milli"] - 1}
    chain.send(PUBLISHER, task_message(rounds=3, **understated))
    with pytest.raises(AuditFailure, match="task 2 records a total ε of .* accounts to"):
        check_privacy(chain.state)


# --------------------------------------------------------------------------------- the trainer, end to end


def trainer_reply(cfg: SimulationConfig, trainer_id: int) -> Message:
    """One round-1 train instruction to `trainer_id` through the in-process grid, as a validator sends it on a
    rollup run (the reply carries the trainer's signed evidence)."""
    grid = InProcessGrid(trainer.app, cfg.trainers, cfg.to_run_config())
    task = RollupTask(1, Domain(31337, "0x" + "ab" * 20))
    instruction = ConfigRecord({"server-round": 1, "local-epochs": 1, **task.train_config(0)})
    arrays = ArrayRecord(models.initial_weights(cfg.model, cfg.seed))
    message = grid.create_message(RecordDict({"arrays": arrays, "config": instruction}), MessageType.TRAIN,
                                  NODE_ID_OFFSET + trainer_id, "1")
    (reply,) = grid.send_and_receive([message])
    return reply


@pytest.mark.slow
def test_an_honest_trainer_signs_its_noised_update_and_a_firing_attacker_sends_its_poison_unnoised():
    base = SimulationConfig(trainers=4, validators=2, rounds=1, model="logreg", attack="scaled", malicious=0.25)
    attacker = next(iter(base.malicious_trainers))
    honest = next(t for t in range(base.trainers) if t not in base.malicious_trainers)
    noised = replace(base, dp="gaussian", dp_epsilon=1.0)
    global_weights = models.initial_weights(base.model, base.seed)
    clean, private = trainer_reply(base, honest), trainer_reply(noised, honest)
    sent = private.content["arrays"].to_numpy_ndarrays()
    assert private.content["evidence"]["update-digest"] == digest(to_frq1(sent))  # signed after the noise
    update = [s - g for s, g in zip(sent, global_weights)]
    clean_update = [c - g for c, g in zip(clean.content["arrays"].to_numpy_ndarrays(), global_weights)]
    assert norm(update, 2) > 10 * norm(clean_update, 2)  # σ ≈ 7 per weight: the noise dominates
    poisoned = [a.numpy() for a in trainer_reply(base, attacker).content["arrays"].values()]
    assert all(np.array_equal(p, a.numpy()) for p, a in
               zip(poisoned, trainer_reply(noised, attacker).content["arrays"].values()))
