"""Tests of RecurrentStack: shapes, masking, attention pooling, serialization, a training step."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.blocks import RecurrentStack

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def sequences(n: int = 4, time: int = 6, features: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, time, features)).astype("float32")


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "attention", "none"])
def test_output_shapes(cell: str, bidirectional: bool, pooling: str) -> None:
    layer = RecurrentStack(cell, 5, num_layers=2, bidirectional=bidirectional, pooling=pooling)
    out = keras.ops.convert_to_numpy(layer(sequences()))
    width = 10 if bidirectional else 5
    assert out.shape == ((4, 6, width) if pooling == "none" else (4, width))
    assert layer.compute_output_shape((None, 6, 3)) == out.shape[:0] + (
        (None, 6, width) if pooling == "none" else (None, width)
    )


def test_gru_parameter_count() -> None:
    # Keras' GRU (reset_after=True): 3 * (in*u + u*u + 2u); bidirectional doubles it.
    layer = RecurrentStack("gru", 4, num_layers=2, bidirectional=True)
    layer(sequences(features=3))
    first = 2 * 3 * (3 * 4 + 4 * 4 + 2 * 4)
    second = 2 * 3 * (8 * 4 + 4 * 4 + 2 * 4)
    assert layer.count_params() == first + second


@pytest.mark.parametrize("pooling", ["last", "mean", "attention"])
def test_padding_after_a_mask_changes_nothing(pooling: str) -> None:
    """Masked steps (Masking on zeros) must not move the pooled vector."""
    keras.utils.set_random_seed(1)
    layer = RecurrentStack("lstm", 6, bidirectional=True, pooling=pooling)
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, layer(keras.layers.Masking(0.0)(inputs)))
    x = sequences(n=2, time=4)
    padded = np.concatenate([x, np.zeros((2, 3, 3), "float32")], axis=1)
    np.testing.assert_allclose(model(padded), model(x), rtol=1e-5, atol=1e-6)


def test_attention_weights_sum_to_one_and_mean_matches_numpy() -> None:
    layer = RecurrentStack("simple", 3, pooling="mean")
    x = sequences(n=2, time=5)
    seq = RecurrentStack("simple", 3, pooling="none")
    seq(x)
    layer(x)
    layer.set_weights(seq.get_weights())
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    expected = [
        keras.ops.convert_to_numpy(seq(x, mask=mask))[i][mask[i]].mean(axis=0) for i in range(2)
    ]
    got = keras.ops.convert_to_numpy(layer(x, mask=mask))
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-5, atol=1e-6)


def test_sequence_output_keeps_the_mask() -> None:
    layer = RecurrentStack("gru", 4, pooling="none")
    mask = np.array([[1, 1, 0]], bool)
    assert np.array_equal(keras.ops.convert_to_numpy(layer.compute_mask(None, mask)), mask)
    assert RecurrentStack("gru", 4).compute_mask(None, mask) is None


def test_serialization_round_trip_and_training_step(tmp_path) -> None:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 3))
    x = RecurrentStack("gru", 8, num_layers=2, bidirectional=True, pooling="attention")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", run_eagerly=True)
    data = sequences(n=16, seed=3)
    labels = (data[:, :, 0].sum(axis=1) > 0).astype("int32")
    losses = [float(model.train_on_batch(data, labels)) for _ in range(4)]
    assert losses[-1] < losses[0]
    path = tmp_path / "rnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(data), model(data), rtol=1e-5, atol=1e-6)
    config = loaded.layers[1].get_config()
    assert {k: config[k] for k in ("cell", "units", "num_layers", "pooling")} == {
        "cell": "gru",
        "units": 8,
        "num_layers": 2,
        "pooling": "attention",
    }


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cell must be one of"):
        RecurrentStack("transformer")
    with pytest.raises(ValueError, match="pooling must be one of"):
        RecurrentStack(pooling="max")
