"""Tests of the zoo's blocks: output shapes, parameter counts, behaviour that defines each
block, a `.keras` round trip in safe mode and a training step."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.blocks import (
    AuxiliaryLoss,
    BernoulliRBM,
    CapsuleRouting,
    LearnedConstant,
    ModulatedConv2D,
    MultiHeadSelfAttention,
    NoiseInjection,
    PositionEmbedding,
    PrimaryCapsules,
    ReversibleEmbedding,
    SinusoidalPositionEmbedding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    UNetDecoderBlock,
    UNetEncoderBlock,
    VAESampling,
    VGGBlock,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def to_numpy(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


# Each case: a functional model around the block (inputs -> one float output), its input.
def _vgg():
    x = keras.Input((8, 8, 3))
    return keras.Model(x, VGGBlock(4, 2, batch_norm=True)(x)), normal(4, 8, 8, 3)


def _encoder():
    x = keras.Input((6, 8))
    y = TransformerEncoderBlock(2, 16, norm="pre")(SinusoidalPositionEmbedding(10)(x))
    return keras.Model(x, y), normal(4, 6, 8)


def _decoder():
    x, context = keras.Input((5, 8)), keras.Input((3, 8))
    y = TransformerDecoderBlock(2, 16, cross_attention=True, norm="post")(
        PositionEmbedding(5)(x), context=context
    )
    return keras.Model([x, context], y), [normal(4, 5, 8), normal(4, 3, 8, seed=1)]


def _tied_lm():
    tokens = keras.Input((6,), dtype="int32")
    embedding = ReversibleEmbedding(11, 8, reverse_bias=True)
    h = MultiHeadSelfAttention(2, causal=True)(embedding(tokens))
    return keras.Model(tokens, embedding(h, reverse=True)), np.arange(24).reshape(4, 6) % 11


def _capsules():
    x = keras.Input((12, 12, 2))
    caps = CapsuleRouting(3, 4, routings=2)(PrimaryCapsules(2, 4, kernel_size=5, strides=2)(x))
    return keras.Model(x, caps), normal(4, 12, 12, 2)


def _rbm():
    x = keras.Input((6,))
    return keras.Model(x, BernoulliRBM(4)(x)), np.random.default_rng(0).uniform(size=(4, 6))


def _vae():
    x = keras.Input((5,))
    mean, log_var = keras.layers.Dense(3)(x), keras.layers.Dense(3)(x)
    return keras.Model(x, VAESampling()([mean, log_var])), normal(4, 5)


def _unet():
    x = keras.Input((8, 8, 2))
    skip, down = UNetEncoderBlock(4)(x)
    bottom = UNetEncoderBlock(8, pool=False)(down)
    return keras.Model(x, UNetDecoderBlock(4)(bottom, skip)), normal(4, 8, 8, 2)


def _unet3d():
    x = keras.Input((4, 4, 4, 1))
    skip, down = UNetEncoderBlock(2, rank=3, batch_norm=False)(x)
    return keras.Model(x, UNetDecoderBlock(2, rank=3)(down, skip)), normal(2, 4, 4, 4, 1)


def _style():
    z = keras.Input((5,))
    x = LearnedConstant((4, 4, 3))(z)
    x = NoiseInjection()(ModulatedConv2D(6, 3)(x, z))
    return keras.Model(z, ModulatedConv2D(2, 1, demodulate=False)(x, z)), normal(4, 5)


def _aux():
    x = keras.Input((3,))
    h = keras.layers.Dense(2)(x)
    return keras.Model(x, AuxiliaryLoss(0.5)([h, keras.ops.sum(h * h, axis=-1)])), normal(4, 3)


CASES = {
    "vgg": (_vgg, (4, 4, 4, 4)),
    "encoder": (_encoder, (4, 6, 8)),
    "decoder": (_decoder, (4, 5, 8)),
    "tied_lm": (_tied_lm, (4, 6, 11)),
    "capsules": (_capsules, (4, 3, 4)),
    "rbm": (_rbm, (4, 4)),
    "vae": (_vae, (4, 3)),
    "unet": (_unet, (4, 8, 8, 4)),
    "unet3d": (_unet3d, (2, 4, 4, 4, 2)),
    "style": (_style, (4, 4, 4, 2)),
    "aux": (_aux, (4, 2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_shape_round_trip_and_training_step(case: str, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    make, shape = CASES[case]
    model, x = make()
    out = to_numpy(model(x, training=False))
    assert out.shape == shape and np.isfinite(out).all()

    path = tmp_path / f"{case}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    if case != "style":  # NoiseInjection draws fresh noise per call, by design
        np.testing.assert_allclose(to_numpy(loaded(x, training=False)), out, rtol=1e-5, atol=1e-5)
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]

    before = [to_numpy(w).copy() for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(0.05), "mse", run_eagerly=True)
    # A random target: zeros would give no gradient through a final LayerNorm, whose
    # output has a constant norm.
    target = normal(*shape, seed=5)
    model.train_on_batch(x, target)
    moved = [
        not np.allclose(b, to_numpy(w))
        for b, w in zip(before, model.trainable_weights, strict=True)
    ]
    assert sum(moved) >= max(1, len(moved) // 2), f"{case}: too few weights moved ({moved})"


# === Behaviour ===


def test_vgg_block_matches_keras_applications_layer_counts() -> None:
    block = VGGBlock(64, 2)
    keras.Model(i := keras.Input((32, 32, 3)), block(i))
    assert block.count_params() == (3 * 3 * 3 * 64 + 64) + (3 * 3 * 64 * 64 + 64)
    assert block.compute_output_shape((None, 32, 32, 3)) == (None, 16, 16, 64)


def test_self_attention_is_causal_and_counts_like_four_projections() -> None:
    layer = MultiHeadSelfAttention(2, causal=True)
    x = normal(2, 5, 8)
    y = to_numpy(layer(x))
    assert layer.count_params() == 4 * (8 * 8 + 8)
    changed = x.copy()
    changed[:, 3:] += 1.0
    np.testing.assert_allclose(to_numpy(layer(changed))[:, :3], y[:, :3], atol=1e-6)
    assert not np.allclose(to_numpy(layer(changed))[:, 3:], y[:, 3:])


def test_attention_with_zero_dropout_equals_no_dropout_under_a_mask() -> None:
    fused = MultiHeadSelfAttention(2)
    explicit = MultiHeadSelfAttention(2, dropout=0.5)
    x, mask = normal(2, 4, 8), np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    fused(x)
    explicit(x)
    explicit.set_weights(fused.get_weights())
    explicit.attention_dropout.rate = 0.0
    np.testing.assert_allclose(
        to_numpy(explicit(x, mask=mask, training=True)), to_numpy(fused(x, mask=mask)), atol=1e-5
    )


def test_padding_mask_hides_padded_keys() -> None:
    layer = MultiHeadSelfAttention(2)
    x = normal(1, 4, 8)
    mask = np.array([[1, 1, 0, 0]], bool)
    changed = x.copy()
    changed[:, 2:] = 5.0
    np.testing.assert_allclose(
        to_numpy(layer(x, mask=mask))[:, :2], to_numpy(layer(changed, mask=mask))[:, :2], atol=1e-5
    )


def test_encoder_block_post_norm_normalises_and_counts() -> None:
    block = TransformerEncoderBlock(4, 32, norm="post")
    y = to_numpy(block(normal(2, 3, 16)))
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-5)
    # attention 4(d^2 + d) + FFN (d*ff + ff + ff*d + d) + two LayerNorms 2 * 2d
    assert block.count_params() == 4 * (16 * 16 + 16) + (16 * 32 + 32 + 32 * 16 + 16) + 4 * 16


def test_sinusoidal_table_and_length_check() -> None:
    layer = SinusoidalPositionEmbedding(50)
    out = to_numpy(layer(np.zeros((1, 4, 6), "float32")))
    assert out[0, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    np.testing.assert_allclose(out[0, 3, 0], np.sin(3.0), rtol=1e-6)
    with pytest.raises(ValueError, match="exceeds the position table"):
        SinusoidalPositionEmbedding(3)(np.zeros((1, 4, 6), "float32"))
    with pytest.raises(ValueError, match="exceeds the position table"):
        PositionEmbedding(3)(np.zeros((1, 4, 6), "float32"))


def test_reversible_embedding_ties_weights() -> None:
    layer = ReversibleEmbedding(7, 4)
    layer(np.zeros((1, 2), "int32"))
    hidden = normal(1, 2, 4)
    np.testing.assert_allclose(
        to_numpy(layer(hidden, reverse=True)), hidden @ to_numpy(layer.embeddings).T, rtol=1e-5
    )
    assert layer.count_params() == 7 * 4


def test_squash_and_routing_lengths_below_one() -> None:
    caps = to_numpy(PrimaryCapsules(4, 3, kernel_size=3, strides=1)(normal(2, 5, 5, 2)))
    assert caps.shape == (2, 3 * 3 * 4, 3)
    lengths = np.linalg.norm(caps, axis=-1)
    assert (lengths < 1).all() and (lengths > 0).all()
    routing = CapsuleRouting(5, 6, routings=3)
    out = to_numpy(routing(caps))
    assert routing.count_params() == 36 * 5 * 3 * 6  # no biases, as in the paper
    assert (np.linalg.norm(out, axis=-1) < 1).all()


def test_rbm_contrastive_divergence_lowers_reconstruction_error() -> None:
    keras.utils.set_random_seed(0)
    patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], "float32")
    data = patterns[np.arange(64) % 2]
    rbm = BernoulliRBM(4, cd_k=1)
    rbm(data)
    assert rbm.count_params() == 6 * 4 + 4 + 6 and len(rbm.trainable_weights) == 2
    errors = []
    for _ in range(80):
        grads, error = rbm.contrastive_divergence(data)
        for weight, grad in zip(
            [rbm.kernel, rbm.hidden_bias, rbm.visible_bias], grads, strict=True
        ):
            weight.assign_sub(0.5 * grad)
        errors.append(float(error))
    assert errors[-1] < 0.5 * errors[0]
    relu = BernoulliRBM(3, hidden="relu")
    assert (to_numpy(relu(data)) >= 0).all()


def test_vae_sampling_adds_kl_and_is_deterministic_in_inference() -> None:
    layer = VAESampling(beta=2.0)
    mean, log_var = normal(8, 3), normal(8, 3, seed=1) * 0.1
    np.testing.assert_array_equal(to_numpy(layer([mean, log_var], training=False)), mean)
    expected = -0.5 * np.sum(1 + log_var - mean**2 - np.exp(log_var), axis=1).mean() * 2.0
    assert float(to_numpy(layer.losses[-1])) == pytest.approx(expected, rel=1e-5)
    drawn = to_numpy(layer([mean, log_var], training=True))
    assert not np.allclose(drawn, mean)


def test_modulated_conv_demodulates_to_unit_scale() -> None:
    keras.utils.set_random_seed(1)
    layer = ModulatedConv2D(8, 3)
    x, style = normal(2, 16, 16, 4), normal(2, 5) * 3
    y = to_numpy(layer(x, style))
    # Demodulation makes the output's standard deviation about that of the input.
    assert 0.4 < y[:, 2:-2, 2:-2].std() / x.std() < 2.5
    assert layer.count_params() == 3 * 3 * 4 * 8 + 8 + (5 * 4 + 4)


def test_noise_strength_starts_at_zero() -> None:
    layer = NoiseInjection()
    x = normal(2, 4, 4, 3)
    np.testing.assert_array_equal(to_numpy(layer(x)), x)
    layer.strength.assign(np.ones(3, "float32"))
    assert not np.allclose(to_numpy(layer(x)), x)


def test_bad_block_arguments() -> None:
    with pytest.raises(ValueError, match="not a multiple of num_heads"):
        MultiHeadSelfAttention(3)(normal(1, 2, 8))
    with pytest.raises(ValueError, match="norm must be one of"):
        TransformerEncoderBlock(2, 8, norm="middle")
    with pytest.raises(ValueError, match="needs a context"):
        TransformerDecoderBlock(2, 8, cross_attention=True)(normal(1, 2, 8))
    with pytest.raises(ValueError, match="hidden must be one of"):
        BernoulliRBM(3, hidden="tanh")
    with pytest.raises(ValueError, match="rank must be 2 or 3"):
        UNetEncoderBlock(4, rank=1)
    with pytest.raises(ValueError, match="smaller than the 9x9"):
        PrimaryCapsules()(normal(1, 8, 8, 1))
    with pytest.raises(ValueError, match="does not match the skip"):
        UNetDecoderBlock(2)(normal(1, 3, 3, 2), normal(1, 7, 7, 2))
