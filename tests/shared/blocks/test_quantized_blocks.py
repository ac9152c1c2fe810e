"""Transformer blocks quantized with `model.quantize("int8")` save, reload and save again
with the same outputs (their Dense sublayers are built inside the blocks, so the blocks'
configs carry the sublayers' quantized policies: shared/blocks/quantized_dtype.py)."""

from __future__ import annotations

import keras
import numpy as np

from shared.blocks import TransformerDecoderBlock, TransformerEncoderBlock


def _model() -> keras.Model:
    tokens = keras.Input((6, 16))
    x = TransformerEncoderBlock(num_heads=2, ff_dim=32, name="encoder")(tokens)
    x = TransformerDecoderBlock(num_heads=2, ff_dim=32, name="decoder")(x)
    pooled = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(3, name="head")(pooled))


def test_int8_blocks_reload_quantized_and_save_again(tmp_path):
    model = _model()
    model.quantize("int8", filters=lambda layer: isinstance(layer, keras.layers.Dense))
    inputs = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    expected = np.asarray(model(inputs, training=False))
    quantized = {layer.path for layer in model._flatten_layers() if layer.quantization_mode}
    assert {"encoder/attention/qkv", "encoder/ff_hidden", "decoder/ff_output"} <= quantized

    model.save(tmp_path / "once.keras")
    reloaded = keras.saving.load_model(tmp_path / "once.keras", safe_mode=True)
    again = {layer.path for layer in reloaded._flatten_layers() if layer.quantization_mode}
    assert again == quantized
    assert reloaded.get_layer("encoder").ff_hidden.kernel_scale is not None
    np.testing.assert_array_equal(np.asarray(reloaded(inputs, training=False)), expected)

    reloaded.save(tmp_path / "twice.keras")  # a reloaded quantized model saves again
    twice = keras.saving.load_model(tmp_path / "twice.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(twice(inputs, training=False)), expected)


def test_float_blocks_keep_a_plain_dtype_in_their_config():
    config = _model().get_layer("encoder").get_config()
    assert config["dtype"]["class_name"] == "DTypePolicy"
