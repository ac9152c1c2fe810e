"""Keras 3 quantization: a quantized model saves, loads in safe mode and predicts close to
the float one; the report names the layers changed and the weight layers left in float."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.compression.quantization import quantization_mode, quantize


def model(conv: bool = False) -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1) if conv else (12,))
    x = inputs
    if conv:
        x = keras.layers.Conv2D(4, 3, name="conv")(x)
        x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="out")(x))


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_dense_saves_loads_and_predicts_close(mode, tmp_path):
    float_model = model()
    x = np.random.default_rng(0).normal(size=(32, 12)).astype("float32")
    expected = float_model.predict(x, verbose=0)
    quantized = model()
    report = quantize(quantized, mode)
    assert report == {"changed": ["hidden", "out"], "float": []}
    path = tmp_path / "q.keras"
    quantized.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert quantization_mode(loaded.get_layer("hidden")) == mode
    got = loaded.predict(x, verbose=0)
    np.testing.assert_allclose(got, quantized.predict(x, verbose=0), atol=1e-6)
    assert np.abs(got - expected).max() < (0.02 if mode == "int8" else 0.1)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_convolutions_are_reported_as_left_in_float():
    cnn = model(conv=True)
    report = quantize(cnn, "int8")
    assert report == {"changed": ["hidden", "out"], "float": ["conv"]}
    assert quantization_mode(cnn.get_layer("conv")) is None
