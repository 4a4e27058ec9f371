"""Shapley values of a group's updates (issue 15): the estimators on games whose values are known, the shares a
validator would report, and, in a small real federation, the fairness actors as the tap and observer see them."""
from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from flower_sim import shapley
from flower_sim.actors import Actor, ActorsApp, shrunk
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.records import Observers
from flower_sim.shapley import DenseUtility, GroupUtility, exact, monte_carlo, shares_bps
from flower_sim.shapley_run import ShapleyObserver, UpdateTap, per_member, players
from flower_sim.simulation import simulate
from flower_sim.splits import Dataset


def additive(weights: list[int], empty: int = 5_000):
    """v(S) = v(∅) + Σ w_i: every member's value is its own weight, whatever the others."""
    return lambda mask: empty + sum(w for i, w in enumerate(weights) if mask >> i & 1)


def gloves(mask: int) -> int:
    """Glove game: member 0 holds a left glove, 1 and 2 a right one; a pair is worth 600."""
    return 600 if mask & 1 and mask & 0b110 else 0


def random_game(n: int, seed: int):
    """A seeded table of utilities over all coalitions (no structure at all)."""
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 10_000, size=1 << n)
    return lambda mask: int(table[mask])


def brute_force(n: int, v) -> list[float]:
    """The definition: mean marginal over all n! orders."""
    totals = [0] * n
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        mask = 0
        for i in order:
            totals[i] += v(mask | 1 << i) - v(mask)
            mask |= 1 << i
    return [t / len(orders) for t in totals]


def test_exact_values_of_an_additive_game_are_the_weights_and_a_null_player_gets_zero():
    weights = [300, 0, -120, 45]
    result = exact(4, additive(weights))
    assert result.values == tuple(float(w) for w in weights)
    assert result.leave_one_out == tuple(weights)
    assert result.values[1] == 0.0
    assert result.evaluations == 16 and result.method == "exact"


def test_exact_values_of_the_glove_game_are_symmetric_and_known():
    result = exact(3, gloves)
    assert result.values == (400.0, 100.0, 100.0)
    assert result.shares_bps == (6666, 1666, 1666)
    assert result.leave_one_out == (600, 0, 0)  # leave-one-out pays the right gloves nothing; Shapley does not


def test_exact_values_sum_to_the_grand_coalitions_gain_and_match_the_definition():
    v = random_game(5, seed=3)
    result = exact(5, v)
    assert sum(result.values) == pytest.approx(v(0b11111) - v(0))
    assert result.values == pytest.approx(brute_force(5, v))
    assert (result.full_bps, result.empty_bps) == (v(0b11111), v(0))


def test_shares_are_floored_integers_of_the_positive_values_summing_to_at_most_10000():
    assert shares_bps([1, 1, 2]) == (2500, 2500, 5000)
    assert shares_bps([1.0, 1.0, 1.0]) == (3333, 3333, 3333)
    assert shares_bps([-50, 0, 30, 10]) == (0, 0, 7500, 2500)
    assert shares_bps([-5, 0]) == (0, 0)
    rng = random.Random(7)
    for _ in range(200):
        values = [rng.uniform(-100, 100) for _ in range(rng.randint(1, 12))]
        shares = shares_bps(values)
        assert all(isinstance(s, int) and s >= 0 for s in shares)
        assert sum(shares) <= 10_000
        assert all(s == 0 for s, v in zip(shares, values) if v <= 0)


def test_monte_carlo_is_exact_on_an_additive_game_whatever_the_permutations():
    result = monte_carlo(4, additive([300, 0, -120, 45]), permutations=3, seed=1)
    assert result.values == (300.0, 0.0, -120.0, 45.0)
    assert result.stderr == (0.0, 0.0, 0.0, 0.0)


def test_monte_carlo_converges_to_exact_shapley_and_states_an_error_bound_that_holds():
    v = random_game(6, seed=11)
    truth = np.array(exact(6, v).values)
    errors = {}
    for permutations in (12, 1_200):
        result = monte_carlo(6, v, permutations=permutations, seed=5)
        error = np.abs(np.array(result.values) - truth)
        errors[permutations] = error.max()
        assert np.all(error <= result.bound_bps)
        assert result.permutations == permutations and result.method == "monte-carlo"
    assert errors[1_200] < errors[12] / 3
    assert errors[1_200] < 150  # utilities span 10,000 bps


def test_monte_carlo_is_deterministic_from_its_seed():
    v = random_game(7, seed=2)
    assert monte_carlo(7, v, 20, seed=9) == monte_carlo(7, v, 20, seed=9)
    assert monte_carlo(7, v, 20, seed=9).values != monte_carlo(7, v, 20, seed=10).values


def test_truncation_saves_evaluations_once_a_prefix_reaches_the_grand_coalition():
    saturating = lambda mask: 9_000 if mask else 1_000  # noqa: E731 - any one member gives everything
    full = monte_carlo(8, saturating, 16, seed=1)
    cut = monte_carlo(8, saturating, 16, seed=1, truncation_bps=0)
    assert cut.evaluations < full.evaluations
    assert cut.values == pytest.approx(full.values)  # the cut marginals were 0 anyway


def test_estimate_is_exact_up_to_the_limit_and_monte_carlo_above():
    assert shapley.estimate(4, gloves, seed=1, exact_limit=4).method == "exact"
    result = shapley.estimate(5, additive([1, 2, 3, 4, 5]), seed=1, exact_limit=4, permutations=10)
    assert result.method == "monte-carlo" and result.permutations == 10


def test_a_coalitions_model_is_the_sample_weighted_average_of_its_members_and_the_empty_one_the_global():
    glob = [np.zeros((2, 2), np.float32), np.zeros(3, np.float32)]
    updates = [[np.full((2, 2), float(k), np.float32), np.full(3, 10.0 * k, np.float32)] for k in (1, 2, 3)]
    utility = GroupUtility(None, glob, updates, [100, 300, 100], np.zeros((1, 1)), np.zeros(1))
    assert all(a is b for a, b in zip(utility.weights(0), glob))
    both = utility.weights(0b011)  # (1 x 100 + 2 x 300) / 400
    np.testing.assert_allclose(both[0], np.full((2, 2), 1.75), rtol=1e-6)
    np.testing.assert_allclose(both[1], np.full(3, 17.5), rtol=1e-6)
    np.testing.assert_allclose(utility.weights(0b100)[0], updates[2][0])


def test_group_averaging_moves_a_coalition_by_its_share_of_the_groups_samples_only():
    glob = [np.ones(2, np.float32)]
    updates = [[np.full(2, 3.0, np.float32)], [np.full(2, 5.0, np.float32)], [np.full(2, 9.0, np.float32)]]
    utility = GroupUtility(None, glob, updates, [100, 300, 100], np.zeros((1, 1)), np.zeros(1), averaging="group")
    np.testing.assert_allclose(utility.weights(0b011)[0], 1 + (100 * 2 + 300 * 4) / 500, rtol=1e-6)
    np.testing.assert_allclose(utility.weights(0b111)[0], (100 * 3 + 300 * 5 + 100 * 9) / 500, rtol=1e-6)
    with pytest.raises(ValueError, match="averaging"):
        GroupUtility(None, glob, updates, [1, 1, 1], np.zeros((1, 1)), np.zeros(1), averaging="median")


def dense_game(averaging: str, free_rider: bool = False) -> DenseUtility:
    """An MLP-shaped group of 5 random updates (member 1 the global model back when `free_rider`) on random data."""
    rng = np.random.default_rng(4)
    shapes = [(784, 16), (16,), (16, 10), (10,)]
    glob = [rng.normal(0, 0.1, s).astype(np.float32) for s in shapes]
    updates = [[g + rng.normal(0, 0.1, g.shape).astype(np.float32) for g in glob] for _ in range(5)]
    if free_rider:
        updates[1] = [g.copy() for g in glob]
    x = rng.random((250, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 250)
    return DenseUtility(None, glob, updates, [175, 175, 18, 175, 90], x, y, averaging=averaging)


def test_the_dense_shortcut_scores_every_coalition_as_the_averaged_model_itself():
    for averaging in ("coalition", "group"):
        utility = dense_game(averaging)
        for mask in range(1 << 5):
            w = utility.weights(mask)
            logits = np.maximum(utility.x.reshape(250, -1) @ w[0] + w[1], 0) @ w[2] + w[3]
            assert utility(mask) == int(np.sum(np.argmax(logits, axis=1) == utility.y)) * 10_000 // 250


def test_under_group_averaging_a_free_rider_is_a_null_player():
    result = exact(5, dense_game("group", free_rider=True))
    assert result.values[1] == 0.0 and result.shares_bps[1] == 0 and result.leave_one_out[1] == 0


def test_copies_of_one_update_are_one_player_whose_value_they_split():
    digests = [b"a", b"b", b"a", b"c", b"a"]
    assert players(digests, merge_copies=False) == ([0, 1, 2, 3, 4], (0, 1, 2, 3, 4))
    chosen, owner = players(digests, merge_copies=True)
    assert (chosen, owner) == ([0, 1, 3], (0, 1, 0, 3, 0))
    result = exact(3, additive([300, 90, -30]))  # the three players' game
    values, loo = per_member(result, chosen, owner)
    assert values == (100.0, 90.0, 100.0, -30.0, 100.0)
    assert loo == (0, 90, 0, -30, 0)  # leaving one copy out leaves the update in
    assert sum(shares_bps(values)) <= 10_000


def test_a_low_data_trainer_keeps_a_seeded_tenth_of_its_partition():
    data = Dataset(np.arange(175, dtype=np.float32).reshape(175, 1), np.arange(175))
    kept = shrunk(data, 0.1, seed=42, trainer_id=4)
    assert len(kept) == 18 and np.array_equal(kept.x[:, 0], kept.y)  # pairs stay pairs
    assert np.array_equal(kept.y, shrunk(data, 0.1, seed=42, trainer_id=4).y)
    assert set(kept.y) <= set(data.y) and list(kept.y) == sorted(kept.y)


def test_actor_roles_are_checked():
    with pytest.raises(ValueError, match="unknown actor role"):
        Actor("sleeper")
    with pytest.raises(ValueError, match="original"):
        Actor("duplicate")
    assert math.isclose(Actor("lowdata").fraction, 0.1)


class Snapshot:
    """An observer that keeps what the tap holds when each report arrives (the tap forgets a round once closed)."""

    def __init__(self, tap) -> None:
        self.tap, self.global_weights, self.updates, self.contributions = tap, {}, {}, {}

    def on_validator_report(self, report) -> None:
        self.global_weights[report.round] = self.tap.global_weights[report.round]
        self.updates[report.round] = dict(self.tap.updates[report.round])
        self.contributions[report.round] = {c.trainer_id: c for c in report.contributions}

    def on_round_closed(self, record) -> None:
        pass


@pytest.mark.slow
def test_free_rider_duplicate_and_low_data_trainer_in_a_federation_and_their_shapley_values(tmp_path):
    cfg = SimulationConfig(rounds=2, trainers=5, validators=1, model="mlp", attack="none", malicious=0.0,
                           local_epochs=1, seed=3, payout="shapley").validate()
    tap = UpdateTap(ActorsApp({1: Actor("freeride"), 2: Actor("duplicate", original=3), 4: Actor("lowdata")}))
    splits = make_splits(cfg.split_spec())
    valued = ShapleyObserver(tap, splits.validators, cfg.model, cfg.lr, cfg.seed)
    merged = ShapleyObserver(tap, splits.validators, cfg.model, cfg.lr, cfg.seed, averaging="group",
                             merge_copies=True)
    seen = Snapshot(tap)
    simulate(cfg, tmp_path, observer=Observers(seen, valued, merged), client_app=tap)

    for rnd in (1, 2):
        for got, sent in zip(seen.updates[rnd][1], seen.global_weights[rnd]):
            np.testing.assert_array_equal(got, sent)  # the free-rider sends the global model back
        for copy, original in zip(seen.updates[rnd][2], seen.updates[rnd][3]):
            np.testing.assert_array_equal(copy, original)  # the duplicate sends its original's update
        contributions = seen.contributions[rnd]
        assert contributions[4].num_examples == round(0.1 * len(splits.trainers[4]))
        assert contributions[2].num_examples == contributions[3].num_examples == len(splits.trainers[3])
    assert [g.round for g in valued.groups] == [1, 2]
    for group in valued.groups:
        members = dict(zip(group.trainer_ids, range(len(group.trainer_ids))))
        assert group.trainer_ids == tuple(sorted(t for t, c in seen.contributions[group.round].items() if c.accepted))
        result = group.estimate
        assert result.method == "exact" and result.evaluations == 2 ** len(members)
        assert sum(result.shares_bps) <= 10_000
        assert sum(result.values) == pytest.approx(result.full_bps - result.empty_bps)
        if 2 in members and 3 in members:  # identical players get identical values
            assert result.values[members[2]] == pytest.approx(result.values[members[3]])
    assert any(1 in g.trainer_ids for g in merged.groups) and all({2, 3} <= set(g.trainer_ids) for g in merged.groups)
    for group in merged.groups:  # the free-rider is a null player; the copy and its original one player
        members = dict(zip(group.trainer_ids, range(len(group.trainer_ids))))
        if 1 in members:
            assert group.values[members[1]] == 0.0 and group.shares_bps[members[1]] == 0
        if 2 in members and 3 in members:
            assert group.player_of[members[2]] == group.player_of[members[3]] == members[2]
            assert len(group.estimate.values) == len(members) - 1
            assert group.values[members[2]] == group.values[members[3]]
    # --payout shapley: the validator reports exactly these shares itself ([G], copies merged), 0 when rejected
    for group in merged.groups:
        reported = seen.contributions[group.round]
        assert {t: reported[t].share_bps for t in group.trainer_ids} == dict(zip(group.trainer_ids, group.shares_bps))
        assert sum(c.share_bps for c in reported.values()) <= 10_000 and reported[1].share_bps == 0
        assert all(c.share_bps == 0 for c in reported.values() if not c.accepted)
