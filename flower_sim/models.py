"""The Keras models (small CNN, the paper's SGD logistic regression, a small MLP, a 10x CNN; the QoS task's MLP) and
how we score them.

Models are built once per process and role and then reused with `set_weights` (rebuilding or recompiling
a Keras model re-traces its training function, which costs more than training 175 samples). All models
train with plain SGD, which has no optimizer state, so one model object can serve many trainers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dapp.mad import accuracy_bps
from dapp.qmodel import QOS_INPUTS

MODELS = ("cnn", "mlp", "logreg", "cnn10", "qos")
TASK_MODELS = {"mnist": ("cnn", "mlp", "logreg", "cnn10"), "qos": ("qos",)}  # which models fit which task
EVAL_BATCH = 1_000


def configure_tensorflow(seed: int) -> None:
    """Deterministic kernels and seeded initialisers (as far as TensorFlow allows on CPU)."""
    import keras  # heavy: TensorFlow (3 s), loaded when a run starts, not when the CLI parses
    import tensorflow as tf  # heavy: TensorFlow (3 s), as above

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except RuntimeError:  # already configured in this process
        pass


def build_model(kind: str, lr: float):
    """A compiled Keras model for 28x28 grey digits, or for `qos` the QoS task's MLP (`dapp.qmodel` arch 5: the
    QOS_INPUTS features as u8 / 255, two classes); weights are seeded by the caller's global seed."""
    import keras  # heavy: TensorFlow (3 s), loaded when a model is built
    from keras import layers  # heavy: TensorFlow, as above

    shape, classes = (28, 28, 1), 10
    if kind == "qos":
        shape, classes = (QOS_INPUTS,), 2
        body = [layers.Dense(32, activation="relu"), layers.Dense(16, activation="relu")]
    elif kind == "cnn":
        body = [layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
                layers.Flatten(), layers.Dense(64, activation="relu")]
    elif kind == "cnn10":  # the cnn with 10x its parameters (585,898), for the rollup's cost figures
        body = [layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
                layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
                layers.Flatten(), layers.Dense(352, activation="relu")]
    elif kind == "mlp":
        body = [layers.Flatten(), layers.Dense(128, activation="relu")]
    elif kind == "logreg":
        body = [layers.Flatten()]
    else:
        raise ValueError(f"unknown model {kind!r}")
    model = keras.Sequential([keras.Input(shape), *body, layers.Dense(classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@lru_cache(maxsize=None)
def shared_model(kind: str, lr: float, role: str):
    """One reusable model per (architecture, learning rate, role) in this process."""
    return build_model(kind, lr)


def initial_weights(kind: str, seed: int) -> list[np.ndarray]:
    """The manager's initial global model: freshly initialised from the run seed."""
    import keras  # heavy: TensorFlow (3 s), loaded when a model is built

    keras.utils.set_random_seed(seed)
    return [w.copy() for w in build_model(kind, 0.01).get_weights()]


@dataclass(frozen=True)
class Score:
    """A model's result on one evaluation set: exact counts, so accuracy in bps is reproducible. The class-1 counts
    are the QoS task's violations (the rare class): caught, predicted and actual."""

    correct: int
    total: int
    loss: float
    true_positive: int = 0
    predicted_positive: int = 0
    actual_positive: int = 0

    @property
    def bps(self) -> int:
        return accuracy_bps(self.correct, self.total)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total

    @property
    def precision(self) -> float:
        """Class 1's precision: the share of predicted violations that are real (0 when none is predicted)."""
        return self.true_positive / self.predicted_positive if self.predicted_positive else 0.0

    @property
    def recall(self) -> float:
        """Class 1's recall: the share of real violations predicted (0 when there is none)."""
        return self.true_positive / self.actual_positive if self.actual_positive else 0.0


def score(model, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> Score:
    """Accuracy (exact counts) and mean cross-entropy of `weights` on (x, y)."""
    model.set_weights(weights)
    probs = np.concatenate([np.asarray(model.predict_on_batch(x[i:i + EVAL_BATCH]))
                            for i in range(0, len(x), EVAL_BATCH)])
    predicted = np.argmax(probs, axis=1)
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))
    return Score(correct=int(np.sum(predicted == y)), total=len(y), loss=loss,
                 true_positive=int(np.sum((predicted == 1) & (y == 1))), predicted_positive=int(np.sum(predicted == 1)),
                 actual_positive=int(np.sum(y == 1)))


def _train_step(model):
    """The model's compiled SGD step (traced once per model object, then reused)."""
    step = getattr(model, "_fedrollup_train_step", None)
    if step is None:
        import keras  # heavy: TensorFlow (3 s), loaded when a model trains
        import tensorflow as tf  # heavy: TensorFlow, as above

        loss_fn = keras.losses.SparseCategoricalCrossentropy()

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        model._fedrollup_train_step = step
    return step


def train(model, weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, *, epochs: int,
          batch_size: int, seed: int) -> tuple[list[np.ndarray], float]:
    """Weights after `epochs` of minibatch SGD on (x, y) starting from `weights`, and the last epoch's loss.

    A plain loop over a compiled step: `model.fit` costs about 4x more for a 175-sample partition
    (measured: 0.54 s against 0.14 s for 3 epochs), most of it per-call setup. The shuffling order comes
    from `seed`, so the same seed gives the same weights.
    """
    step = _train_step(model)
    model.set_weights(weights)
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    for _ in range(epochs):
        order = rng.permutation(len(y))
        losses = [float(step(x[order[i:i + batch_size]], y[order[i:i + batch_size]]))
                  for i in range(0, len(order), batch_size)]
    return model.get_weights(), float(np.mean(losses)) if losses else float("nan")
