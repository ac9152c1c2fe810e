"""Distillation: the loss mixes the hard-label loss and the temperature-scaled KL term by
alpha, a few steps train, and a teacher of another class count is an error."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.compression.distillation import attach, class_logits, soft_loss
from shared.errors import UserError


def classifier(classes: int, width: int, seed: int, softmax: bool = True) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(width, activation="relu")(inputs)
    activation = "softmax" if softmax else None
    model = keras.Model(inputs, keras.layers.Dense(classes, activation=activation)(x))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax),
    )
    return model


def data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_loss_combines_hard_and_soft_terms(alpha):
    x, y = data(16)
    teacher = classifier(3, 32, seed=1, softmax=False)  # logits
    student = classifier(3, 4, seed=2)  # softmax probabilities
    y_pred = student(x)
    hard = float(student.compute_loss(x, y, y_pred, None, training=True))
    attach(student, teacher, alpha=alpha, temperature=3.0)
    soft = float(soft_loss(teacher(x), class_logits(y_pred, "softmax"), 3.0))
    assert soft > 0
    got = float(student.compute_loss(x, y, y_pred, None, training=True))
    assert got == pytest.approx(alpha * hard + (1 - alpha) * soft, rel=1e-5)
    # validation reports the hard loss only
    assert float(student.compute_loss(x, y, y_pred, None, training=False)) == pytest.approx(hard)


def test_a_few_steps_move_the_student_towards_the_teacher():
    x, y = data()
    teacher = classifier(3, 32, seed=1)
    teacher.fit(x, y, epochs=20, verbose=0)
    student = attach(classifier(3, 4, seed=2), teacher, alpha=0.0, temperature=2.0)

    def gap():
        return float(
            soft_loss(class_logits(teacher(x), "softmax"), class_logits(student(x), "softmax"), 2.0)
        )

    before = gap()
    student.fit(x, y, epochs=10, batch_size=16, verbose=0)
    assert gap() < before


def test_binary_logit_outputs_become_two_class_logits():
    z = np.array([[2.0], [-1.0]], dtype="float32")
    logits = keras.ops.convert_to_numpy(class_logits(z, "logits"))
    np.testing.assert_allclose(logits, [[0, 2], [0, -1]])


def test_mismatched_class_counts_are_an_error():
    with pytest.raises(UserError, match=r"teacher's outputs \(5 classes\) do not match"):
        attach(classifier(3, 4, seed=2), classifier(5, 8, seed=1))
