"""Each attack does to an update what its name promises, and attackers are chosen from the seed."""
from __future__ import annotations

import numpy as np
import pytest

from flower_sim.attacks import AttackParams, attack_fires, flip_labels, malicious_trainers, poison_weights

GLOBAL = [np.zeros((50, 40), dtype=np.float32), np.ones(40, dtype=np.float32)]
LOCAL = [np.full((50, 40), 0.1, dtype=np.float32), np.full(40, 1.2, dtype=np.float32)]


def update(weights):
    return [w - g for w, g in zip(weights, GLOBAL)]


def test_gaussian_adds_noise_of_the_configured_sigma_to_the_update():
    sent = poison_weights(AttackParams("gaussian", sigma=2.0), GLOBAL, LOCAL, np.random.default_rng(0))
    noise = np.concatenate([(s - lw).ravel() for s, lw in zip(sent, LOCAL)])
    assert noise.std() == pytest.approx(2.0, rel=0.05)
    assert abs(noise.mean()) < 0.1
    assert all(s.dtype == g.dtype for s, g in zip(sent, GLOBAL))


def test_gaussian_fires_with_the_configured_probability_and_the_others_always():
    rng = np.random.default_rng(1)
    rate = np.mean([attack_fires(AttackParams("gaussian", prob=0.05), rng) for _ in range(20_000)])
    assert rate == pytest.approx(0.05, abs=0.01)
    assert attack_fires(AttackParams("gaussian", prob=1.0), rng)
    assert all(attack_fires(AttackParams(kind), rng) for kind in ("signflip", "scaled", "labelflip"))
    assert not attack_fires(AttackParams("none"), rng)


def test_signflip_sends_the_global_model_minus_k_times_the_update():
    sent = poison_weights(AttackParams("signflip", signflip_k=3.0), GLOBAL, LOCAL, np.random.default_rng(0))
    for s, g, u in zip(sent, GLOBAL, update(LOCAL)):
        assert s == pytest.approx(g - 3.0 * u)


def test_scaled_sends_the_global_model_plus_boost_times_the_update():
    sent = poison_weights(AttackParams("scaled", boost=10.0), GLOBAL, LOCAL, np.random.default_rng(0))
    for s, g, u in zip(sent, GLOBAL, update(LOCAL)):
        assert s == pytest.approx(g + 10.0 * u)


def test_honest_and_labelflip_trainers_send_their_local_weights_unchanged():
    for kind in ("none", "labelflip"):
        assert poison_weights(AttackParams(kind), GLOBAL, LOCAL, np.random.default_rng(0)) is LOCAL


def test_labelflip_relabels_exactly_the_fraction_and_never_to_the_true_class():
    y = np.repeat(np.arange(10), 20)
    flipped = flip_labels(y, 0.5, np.random.default_rng(2))
    changed = flipped != y
    assert changed.sum() == 100
    assert set(np.unique(flipped)) <= set(range(10))
    # one consistent class permutation: every relabelled sample of a class gets the same new class
    for c in range(10):
        assert len(set(flipped[(y == c) & changed])) <= 1


def test_malicious_trainers_are_a_deterministic_fraction_chosen_from_the_seed():
    chosen = malicious_trainers(20, 0.15, seed=7)
    assert len(chosen) == 3 and chosen <= set(range(20))
    assert chosen == malicious_trainers(20, 0.15, seed=7)
    assert any(malicious_trainers(20, 0.15, seed=s) != chosen for s in range(8, 12))
    assert malicious_trainers(4, 0.25, seed=0) and len(malicious_trainers(4, 0.25, seed=0)) == 1
