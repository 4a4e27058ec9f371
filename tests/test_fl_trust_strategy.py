"""The trust validator strategy: its verdicts at the rule's boundaries, the standing it keeps across rounds (ban and
come-back), the average weighted by samples x score, and keeping the global model when nothing is accepted.

The global model is the zero vector of R^2 and the validator's own update δ_v = (1, 0); trainer t replies with the
update the test scripts for it, so its cosine and size against δ_v are known exactly. Verdicts follow `dapp.trust_rule`
(tested there at its own boundaries): here, that the strategy measures, keeps standings and averages as it says."""
from __future__ import annotations

import math

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from dapp import trust_rule
from flower_sim.grid import InProcessGrid
from flower_sim.models import Score
from flower_sim.trust_strategy import TrustFedAvg

GLOBAL = np.zeros(2, dtype=np.float64)


class OwnUpdateJudge:
    """The validator's reference moves the global model by δ_v = (1, 0); every model scores 50 %."""

    def __init__(self) -> None:
        self.reference_weights: list[np.ndarray] = []

    def reference(self, global_arrays: ArrayRecord) -> Score:
        self.reference_weights = [global_arrays.to_numpy_ndarrays()[0] + np.array([1.0, 0.0])]
        return Score(correct=1, total=2, loss=0.0)

    def score(self, arrays: ArrayRecord) -> Score:
        return Score(correct=1, total=2, loss=0.0)


def scripted_app(updates: dict[int, np.ndarray], examples: dict[int, int]) -> ClientApp:
    """Trainer t replies with the global model plus `updates[t]` and `examples[t]` samples."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        t = int(context.node_config["partition-id"])
        arrays = ArrayRecord([msg.content["arrays"].to_numpy_ndarrays()[0] + updates[t]])
        return Message(RecordDict({"arrays": arrays, "metrics": MetricRecord(
            {"num-examples": examples[t], "trainer-id": t, "attacked": 0})}), reply_to=msg)

    return app


def make(updates: dict[int, np.ndarray], examples: dict[int, int] | None = None, lag: int = 1):
    examples = examples or {t: 10 for t in updates}
    grid = InProcessGrid(scripted_app(updates, examples), num_nodes=len(updates), run_config={})
    strategy = TrustFedAvg(OwnUpdateJudge(), lag=lag, min_train_nodes=len(updates), min_available_nodes=len(updates),
                           fraction_evaluate=0.0)
    return grid, strategy


def play(grid, strategy: TrustFedAvg, server_round: int) -> np.ndarray:
    """One round from the zero global model: the aggregated weights (the strategy keeps its standings)."""
    messages = strategy.configure_train(server_round, ArrayRecord([GLOBAL.copy()]), ConfigRecord({}), grid)
    arrays, _ = strategy.aggregate_train(server_round, grid.send_and_receive(messages))
    return arrays.to_numpy_ndarrays()[0]


def verdicts(strategy: TrustFedAvg) -> dict[int, bool]:
    return {d.trainer_id: d.positive for d in strategy.decisions}


def at_angle(bps: int, size: float = 1.0) -> np.ndarray:
    """An update of length `size` whose cosine with δ_v = (1, 0) is `bps` basis points."""
    angle = math.acos(bps / trust_rule.COSINE_SCALE)
    return size * np.array([math.cos(angle), math.sin(angle)])


def test_a_newcomers_cosine_of_one_basis_point_is_accepted_and_one_of_zero_or_below_is_not():
    grid, strategy = make({0: at_angle(1), 1: at_angle(0), 2: at_angle(-1), 3: at_angle(10_000)})
    play(grid, strategy, 1)
    assert verdicts(strategy) == {0: True, 1: False, 2: False, 3: True}
    assert [d.cosine_bps for d in strategy.decisions] == [1, 0, -1, 10_000]
    assert "points away" in strategy.decisions[2].reason and strategy.decisions[0].reason == ""


def test_a_size_of_exactly_three_times_the_median_is_accepted_one_hundredth_more_is_not():
    # sizes 1, 1, 1, 3.00 and 3.01 x δ_v: the median is 1.00
    grid, strategy = make({0: at_angle(10_000), 1: at_angle(10_000), 2: at_angle(10_000),
                           3: at_angle(10_000, 3.0), 4: at_angle(10_000, 3.01)})
    play(grid, strategy, 1)
    assert [d.norm_centi for d in strategy.decisions] == [100, 100, 100, 300, 301]
    assert verdicts(strategy) == {0: True, 1: True, 2: True, 3: True, 4: False}
    assert "median" in strategy.decisions[4].reason


def test_accepted_updates_are_averaged_by_samples_times_score_and_rejected_ones_left_out():
    # round 1: trainer 2 points away (rejected); 0 and 1 both start at SCORE_START, so only samples weigh
    grid, strategy = make({0: np.array([1.0, 0.0]), 1: np.array([1.0, 1.0]), 2: np.array([-1.0, 0.0])},
                          examples={0: 10, 1: 30, 2: 1_000})
    assert play(grid, strategy, 1) == pytest.approx((10 * np.array([1.0, 0.0]) + 30 * np.array([1.0, 1.0])) / 40)
    # round 2: both accepted once more, with score SCORE_START + SCORE_GAIN each, trainer 2 at SCORE_START - SCORE_LOSS
    assert strategy.standings[2].score == trust_rule.SCORE_START - trust_rule.SCORE_LOSS
    assert strategy.weights == {0: 10 * trust_rule.SCORE_START, 1: 30 * trust_rule.SCORE_START}
    play(grid, strategy, 2)
    assert strategy.weights == {0: 10 * 6_000, 1: 30 * 6_000}


def test_a_trusted_trainer_gets_the_benefit_of_the_doubt_down_to_minus_0_2_exclusive():
    grid, strategy = make({0: at_angle(-1_999), 1: at_angle(-2_000), 2: at_angle(-1), 3: at_angle(10_000)})
    trusted = trust_rule.Standing(score=trust_rule.TRUSTED_SCORE)
    strategy.standings = {0: trusted, 1: trusted}  # 2 and 3 are newcomers
    play(grid, strategy, 1)
    assert verdicts(strategy) == {0: True, 1: False, 2: False, 3: True}
    assert "points away" in strategy.decisions[1].reason


def test_unequal_standings_weigh_unequally():
    updates = {0: np.array([1.0, 0.0]), 1: np.array([1.0, 1.0])}
    grid, strategy = make(updates)
    strategy.standings = {0: trust_rule.Standing(score=9_000), 1: trust_rule.Standing(score=1_000)}
    assert play(grid, strategy, 1) == pytest.approx((9 * updates[0] + 1 * updates[1]) / 10)


def test_when_nothing_is_accepted_the_validator_keeps_the_global_model():
    grid, strategy = make({0: np.array([-1.0, 0.0]), 1: np.array([0.0, 1.0])})
    assert play(grid, strategy, 1) == pytest.approx(GLOBAL)
    assert verdicts(strategy) == {0: False, 1: False}


def test_a_trainer_rejected_three_rounds_in_a_row_is_banned_then_comes_back():
    updates = {0: np.array([1.0, 0.0]), 1: np.array([1.0, 0.2]), 2: np.array([-1.0, 0.0])}
    grid, strategy = make(updates)
    for server_round in (1, 2, 3):
        play(grid, strategy, server_round)
        assert not verdicts(strategy)[2]
    banned = strategy.standings[2]
    assert banned.bans == 1 and banned.banned_until == 3 + trust_rule.BAN_ROUNDS
    updates[2] = np.array([1.0, 0.1])  # it now sends a sound update: still rejected while banned, standing frozen
    for server_round in range(4, banned.banned_until + 1):
        play(grid, strategy, server_round)
        assert not verdicts(strategy)[2] and "banned" in strategy.decisions[2].reason
        assert strategy.standings[2] == banned
    play(grid, strategy, banned.banned_until + 1)
    assert verdicts(strategy)[2]
    assert strategy.standings[2].score == banned.score + trust_rule.SCORE_GAIN
    assert strategy.standings[0].score == trust_rule.SCORE_MAX  # the honest ones were never touched


@pytest.mark.parametrize("lag", [1, 2])
def test_with_several_rounds_open_round_r_is_judged_by_the_standings_after_round_r_minus_the_lag(lag):
    # trainer 0: accepted in round 1 (trusted after it), reversed in round 2 (a strike: not trusted), then slightly
    # against the validator in round 3 (cos -0.1), which passes only for a trusted trainer: as the rollup judges it
    updates = {0: at_angle(10_000), 1: at_angle(10_000), 2: at_angle(10_000)}
    grid, strategy = make(updates, lag=lag)
    play(grid, strategy, 1)
    updates[0] = at_angle(-6_000)
    play(grid, strategy, 2)
    updates[0] = at_angle(-1_000)
    play(grid, strategy, 3)
    assert verdicts(strategy)[0] is (lag == 2)
    assert strategy.standings[0].strikes == (0 if lag == 2 else 2)  # its latest standing moved by every verdict
