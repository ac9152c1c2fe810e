"""Tests of the shared conv/residual blocks: shapes, parameter counts, serialization, training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.blocks import ConvNormAct, ResidualBasicBlock, ResidualBottleneckBlock

# Keras' own saving code calls np.array(variable), which NumPy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def conv_params(k: int, c_in: int, c_out: int, bias: bool = False) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn_params(c: int) -> int:
    # gamma, beta (trainable) + moving mean, moving variance (non-trainable)
    return 4 * c


def build_on(layer: keras.Layer, shape: tuple[int, ...]) -> keras.Model:
    """A one-layer functional model, which is how the zoo uses the blocks."""
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


# === ConvNormAct ===


@pytest.mark.parametrize(
    ("strides", "in_hw", "out_hw"), [(1, 9, 9), (2, 9, 5), (2, 1, 1), (2, 8, 4)]
)
def test_conv_norm_act_same_padding_shapes(strides: int, in_hw: int, out_hw: int) -> None:
    model = build_on(ConvNormAct(6, 3, strides=strides), (in_hw, in_hw, 2))
    assert model.output.shape == (None, out_hw, out_hw, 6)


@pytest.mark.parametrize("use_bias", [False, True])
def test_conv_norm_act_param_count(use_bias: bool) -> None:
    layer = ConvNormAct(8, 3, use_bias=use_bias)
    build_on(layer, (5, 5, 4))
    assert layer.count_params() == conv_params(3, 4, 8, use_bias) + bn_params(8)
    assert len(layer.trainable_weights) == (4 if use_bias else 3)  # kernel, [bias,] gamma, beta


def test_conv_norm_act_activation_none_keeps_negatives() -> None:
    x = np.random.default_rng(0).normal(size=(4, 5, 5, 3)).astype("float32")
    with_relu = ConvNormAct(4, activation="relu")
    linear = ConvNormAct(4, activation=None)
    assert float(np.min(keras.ops.convert_to_numpy(with_relu(x, training=True)))) >= 0.0
    assert float(np.min(keras.ops.convert_to_numpy(linear(x, training=True)))) < 0.0


def test_conv_norm_act_zero_init_gamma_outputs_zero() -> None:
    layer = ConvNormAct(4, activation=None, zero_init_gamma=True)
    out = layer(np.ones((2, 3, 3, 2), "float32"), training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), 0.0)


# === Residual blocks ===


def test_basic_block_identity_and_projection_param_counts() -> None:
    identity = ResidualBasicBlock(16)
    build_on(identity, (8, 8, 16))
    assert identity.shortcut is None
    assert identity.count_params() == 2 * (conv_params(3, 16, 16) + bn_params(16))

    projection = ResidualBasicBlock(32, strides=2, projection_shortcut=True)
    model = build_on(projection, (8, 8, 16))
    assert model.output.shape == (None, 4, 4, 32)
    expected = (
        conv_params(3, 16, 32) + conv_params(3, 32, 32) + conv_params(1, 16, 32) + 3 * bn_params(32)
    )
    assert projection.count_params() == expected


def test_bottleneck_block_param_count_and_expansion() -> None:
    block = ResidualBottleneckBlock(8, strides=2, projection_shortcut=True, use_bias=True)
    model = build_on(block, (8, 8, 16))
    assert model.output.shape == (None, 4, 4, 32)
    expected = (
        conv_params(1, 16, 8, True)
        + conv_params(3, 8, 8, True)
        + conv_params(1, 8, 32, True)
        + conv_params(1, 16, 32, True)
        + 2 * bn_params(8)
        + 2 * bn_params(32)
    )
    assert block.count_params() == expected


@pytest.mark.parametrize(
    ("stride_on", "strides_1x1", "strides_3x3"), [("3x3", 1, 2), ("1x1", 2, 1)]
)
def test_bottleneck_stride_position(stride_on: str, strides_1x1: int, strides_3x3: int) -> None:
    block = ResidualBottleneckBlock(4, strides=2, projection_shortcut=True, stride_on=stride_on)
    model = build_on(block, (6, 6, 8))
    assert model.output.shape == (None, 3, 3, 16)
    assert block.conv1.conv.strides == (strides_1x1, strides_1x1)
    assert block.conv2.conv.strides == (strides_3x3, strides_3x3)


def test_blocks_reject_missing_projection() -> None:
    with pytest.raises(ValueError, match="projection_shortcut=True"):
        ResidualBasicBlock(8, strides=2)
    with pytest.raises(ValueError, match="projection_shortcut=True"):
        build_on(ResidualBasicBlock(8), (4, 4, 3))  # 3 channels in, 8 out
    with pytest.raises(ValueError, match="projection_shortcut=True"):
        build_on(ResidualBottleneckBlock(8), (4, 4, 8))  # 8 channels in, 32 out
    with pytest.raises(ValueError, match="stride_on"):
        ResidualBottleneckBlock(8, stride_on="7x7")


def test_zero_init_residual_block_starts_as_identity() -> None:
    # relu(x + 0) == x for non-negative x: the residual branch contributes nothing.
    block = ResidualBasicBlock(4, zero_init_residual=True)
    x = np.abs(np.random.default_rng(1).normal(size=(2, 5, 5, 4))).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x, training=True)), x, atol=1e-6)


# === Serialization ===


def tiny_block_model() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = ConvNormAct(8, 3, use_bias=True, kernel_regularizer=keras.regularizers.L2(1e-4))(inputs)
    x = ResidualBasicBlock(8)(x)
    x = ResidualBasicBlock(16, strides=2, projection_shortcut=True, zero_init_residual=True)(x)
    x = ResidualBottleneckBlock(
        4, strides=2, projection_shortcut=True, stride_on="1x1", use_bias=True
    )(x)
    x = ResidualBottleneckBlock(4, expansion=4)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "layer",
    [
        ConvNormAct(5, 1, strides=2, activation="gelu", use_bias=True, norm_momentum=0.8),
        ResidualBasicBlock(6, strides=2, projection_shortcut=True, zero_init_residual=True),
        ResidualBottleneckBlock(3, expansion=2, stride_on="1x1", norm_epsilon=1e-3),
    ],
    ids=["conv_norm_act", "basic", "bottleneck"],
)
def test_get_config_round_trip(layer: keras.Layer) -> None:
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config


def test_keras_file_round_trip_safe_mode(tmp_path) -> None:
    keras.utils.set_random_seed(0)
    model = tiny_block_model()
    x = np.random.default_rng(0).uniform(size=(6, 8, 8, 3)).astype("float32")
    y = np.arange(6) % 3
    # One eager step moves the BN statistics off their initial values (tracing a graph
    # would cost more than the whole test).
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    model.train_on_batch(x, y)
    path = tmp_path / "blocks.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
    )
    assert [type(layer).__name__ for layer in loaded.layers[1:6]] == [
        "ConvNormAct",
        "ResidualBasicBlock",
        "ResidualBasicBlock",
        "ResidualBottleneckBlock",
        "ResidualBottleneckBlock",
    ]


# === Training / precision ===


def test_training_steps_reduce_loss() -> None:
    keras.utils.set_random_seed(1)
    model = tiny_block_model()
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", run_eagerly=True)
    x = np.random.default_rng(2).uniform(size=(16, 8, 8, 3)).astype("float32")
    y = np.arange(16) % 3
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert losses[-1] < losses[0]


def test_blocks_follow_mixed_precision_policy() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        block = ResidualBottleneckBlock(4, projection_shortcut=True)
        out = block(np.ones((1, 4, 4, 3), "float32"))
        assert block.conv1.conv.compute_dtype == "float16"
        assert block.conv1.conv.kernel.dtype == "float32"  # variables stay float32
        assert keras.backend.standardize_dtype(out.dtype) == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
