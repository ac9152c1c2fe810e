"""Magnitude pruning: exact per-kernel sparsity, zeros kept across optimizer steps, the
polynomial schedule, and a plain saved model that keeps its zeros."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.compression.pruning import (
    MagnitudePruning,
    PolynomialDecay,
    check_sparsity,
    magnitude_mask,
    prunable_kernels,
    sparsity_report,
)
from shared.errors import UserError


def tiny_model() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.SeparableConv2D(6, 3, name="sep")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8, 8, 1)).astype("float32"), rng.integers(0, 3, n)


class ZerosStay(keras.callbacks.Callback):
    """After every step (once masks exist), the pruned weights are still zero."""

    def __init__(self, pruning):
        super().__init__()
        self.pruning, self.checked = pruning, 0

    def on_train_batch_end(self, batch, logs=None):
        for path, variable in self.pruning.kernels.items():
            mask = keras.ops.convert_to_numpy(self.pruning.masks[path])
            assert np.all(variable.numpy()[mask == 0] == 0)
        self.checked += 1


def test_every_kernel_counts_first_and_last_included():
    assert sorted(prunable_kernels(tiny_model())) == [
        "conv/kernel",
        "hidden/kernel",
        "out/kernel",
        "sep/depthwise_kernel",
        "sep/pointwise_kernel",
    ]


def test_magnitude_mask_is_exact_and_keeps_the_largest():
    weights = np.arange(-10, 10, dtype="float32").reshape(4, 5)
    mask = magnitude_mask(weights, 0.5)
    assert int((mask == 0).sum()) == 10
    assert np.all(np.abs(weights[mask == 0]).max() <= np.abs(weights[mask == 1]).min())


def test_polynomial_schedule():
    schedule = PolynomialDecay(0.8, begin_step=0, end_step=100, frequency=10)
    assert schedule.sparsity(0) == 0.0
    assert schedule.sparsity(50) == pytest.approx(0.8 * (1 - 0.5**3))
    assert schedule.sparsity(25) == pytest.approx(0.8 * (1 - 0.75**3))
    assert schedule.sparsity(100) == pytest.approx(0.8)
    assert schedule.sparsity(500) == pytest.approx(0.8)
    assert [s for s in range(0, 120) if schedule.updates_at(s)] == list(range(0, 101, 10))


def test_fit_reaches_target_keeps_zeros_and_saves_plain(tmp_path):
    keras.utils.set_random_seed(1)
    model = tiny_model()
    x, y = data()
    schedule = PolynomialDecay(0.6, begin_step=0, end_step=12, frequency=3)
    pruning = MagnitudePruning(schedule=schedule)
    zeros = ZerosStay(pruning)
    model.fit(x, y, batch_size=8, epochs=2, callbacks=[pruning, zeros], verbose=0)
    assert zeros.checked == 16
    # Masks followed the polynomial: recomputed at 0, 3, 6, 9 and 12 at these sparsities.
    assert [s for s, _ in pruning.updates] == [0, 3, 6, 9, 12]
    for step, sparsity in pruning.updates:
        assert sparsity == pytest.approx(schedule.sparsity(step))
    report = sparsity_report(model)
    for path, (count, size) in report["counts"].items():
        assert count == round(0.6 * size), path  # exact, within rounding
    check_sparsity(report, 0.6)

    path = tmp_path / "pruned.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    # nothing of the pruning left in the model: the same layers, a plain functional model
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert sparsity_report(loaded)["counts"] == report["counts"]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_default_schedule_spreads_over_the_fit():
    keras.utils.set_random_seed(2)
    model = tiny_model()
    x, y = data(32)
    pruning = MagnitudePruning(0.5)
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[pruning], verbose=0)
    # 12 steps of which the last epoch (4 steps) is at the target
    assert (pruning.schedule.begin_step, pruning.schedule.end_step) == (0, 8)
    sparsities = [s for _, s in pruning.updates]
    assert sparsities == sorted(sparsities) and sparsities[-1] == pytest.approx(0.5)
    assert sparsity_report(model)["global"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("samples", [24, 8])  # one epoch of 3 steps; one step
def test_one_epoch_still_reaches_the_target(samples):
    keras.utils.set_random_seed(3)
    model = tiny_model()
    x, y = data(samples)
    pruning = MagnitudePruning(0.5)
    model.fit(x, y, batch_size=8, epochs=1, callbacks=[pruning], verbose=0)
    assert pruning.updates[-1][1] == pytest.approx(0.5)
    check_sparsity(sparsity_report(model), 0.5)


def test_no_prunable_layers_and_bad_targets_are_errors():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Activation("relu")(inputs))
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(UserError, match="no prunable layers"):
        model.fit(np.zeros((4, 4)), np.zeros((4, 4)), callbacks=[MagnitudePruning(0.5)], verbose=0)
    with pytest.raises(UserError, match="between 0 and 1"):
        MagnitudePruning(1.5)
