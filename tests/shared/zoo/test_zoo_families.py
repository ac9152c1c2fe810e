"""Tests of the zoo's architecture families: every model builds from a tiny config, round-trips
through `.keras` in safe mode and trains a step; paper presets match published sizes; bad
shapes and options fail with clear errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.errors import UserError
from shared.zoo import GAN, MODELS, build_model, model_spec, training_loss
from shared.zoo.classifier import HEAD_LAYER_NAMES, has_conv_backbone
from shared.zoo.dbn import greedy_pretrain
from shared.zoo.multi_task import trunk_with_heads

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

# name -> (input_shape, num_classes, options): small but complete configurations.
TINY_CONFIGS: dict[str, tuple[tuple[int, ...], int | None, dict]] = {
    "small_cnn": ((8, 8, 1), 3, {"filters": [4]}),
    "resnet": ((8, 8, 3), 3, {"width": 4}),
    "resnet18": ((8, 8, 3), 3, {}),
    "resnet34": ((8, 8, 1), 3, {}),
    "resnet50": ((8, 8, 1), 3, {}),
    "lenet5": ((32, 32, 1), 3, {}),
    "ngram_classifier": ((50,), 3, {"hidden": [8]}),
    "alexnet": ((67, 67, 3), 3, {"width": 0.05, "fc_units": 16}),
    "vgg": ((32, 32, 1), 3, {"depth": 11, "width": 0.0625, "fc_units": 8}),
    "vgg16": ((32, 32, 1), 3, {}),
    "rnn": ((8, 8, 1), 3, {"units": 6, "bidirectional": True, "pooling": "attention"}),
    "simple_rnn": ((10,), 3, {"units": 4, "vocab_size": 20, "embedding_dim": 4}),
    "lstm": ((8, 8, 1), 3, {"units": 4, "num_layers": 2}),
    "gru": ((6, 3), 3, {"units": 4, "pooling": "mean"}),
    "rnn_seq2seq": ((6,), None, {"units": 8, "source_vocab": 12, "target_vocab": 9}),
    "transformer_seq2seq": (
        (6,),
        None,
        {
            "num_layers": 1,
            "hidden": 8,
            "num_heads": 2,
            "ff_dim": 16,
            "source_vocab": 12,
            "target_vocab": 9,
            "target_length": 5,
        },
    ),
    "bert": (
        (12,),
        None,
        {"num_layers": 1, "hidden": 8, "num_heads": 2, "ff_dim": 16, "vocab_size": 30},
    ),
    "bert_tiny": ((8, 8, 1), 3, {}),
    "bert_small": ((6,), 3, {"vocab_size": 50}),
    "bert_base": ((4,), 2, {"vocab_size": 40}),
    "gpt": ((10,), None, {"num_layers": 2, "hidden": 8, "num_heads": 2, "vocab_size": 25}),
    "gpt_tiny": ((16,), None, {"vocab_size": 40}),
    "gpt_small": ((4,), None, {"vocab_size": 16}),
    "gpt_medium": ((2,), None, {"vocab_size": 8}),
    "dense_autoencoder": ((8, 8, 1), None, {"hidden": [16], "code_size": 4}),
    "conv_autoencoder": ((10, 10, 3), None, {"filters": [4, 8], "code_size": 4}),
    "vae": ((8, 8, 1), None, {"hidden": [16], "latent_dim": 2}),
    "dcgan": ((8, 8, 1), None, {"latent_dim": 8, "width": 4}),
    "stylegan": ((8, 8, 1), None, {"latent_dim": 8, "width": 4, "mapping_layers": 2}),
    "capsnet": (
        (20, 20, 1),
        3,
        {"conv_filters": 8, "primary_capsules": 2, "capsule_dim": 4, "decoder_units": [8, 8]},
    ),
    "dbn": ((8, 8, 1), 3, {"hidden": [12, 6], "pretrain_epochs": 1}),
    "unet": ((8, 8, 1), 2, {"depth": 2, "width": 2}),
    "unet3d": ((4, 4, 4, 1), 2, {"depth": 1, "width": 2}),
    "resnet3d": ((8, 8, 8, 1), 3, {"depth": 10, "width": 2}),
}
# Presets fix the paper's width and depth, so even at a tiny input they are big: their
# family's tiny configuration (same code) round-trips and trains a step instead, and
# the presets are built at full size once, for their parameter counts.
PAPER_SIZED = {
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg16",
    "bert_small",
    "bert_base",
    "gpt_small",
    "gpt_medium",
}


def tiny(name: str) -> keras.Model:
    shape, classes, options = TINY_CONFIGS[name]
    return build_model(name, input_shape=shape, num_classes=classes, **options)


def example_inputs(model: keras.Model, n: int = 4, seed: int = 0):
    """Inputs of the model's input structure: raw pixels, vectors or token ids."""
    rng = np.random.default_rng(seed)
    if isinstance(model, GAN):
        return rng.uniform(0, 255, size=(n, *model.discriminator.input.shape[1:])).astype("float32")

    def one(tensor, key: str = ""):
        shape = (n, *tensor.shape[1:])
        if key == "segment_ids":
            return rng.integers(0, 2, size=shape).astype("int32")
        if "int" in str(tensor.dtype):
            return rng.integers(1, 8, size=shape).astype("int32")
        return rng.uniform(0, 255, size=shape).astype("float32")

    structure = model._inputs_struct
    if isinstance(structure, dict):
        return {key: one(tensor, key) for key, tensor in structure.items()}
    return [one(t) for t in structure] if isinstance(structure, list) else one(structure)


def test_every_registered_model_has_a_tiny_config() -> None:
    # mlp and nature_dqn belong to the RL domain and are tested with it, fcos (a detector
    # trained on its own targets and losses) with the driving domain
    # (tests/domains/driving/test_driving_model.py); the table models are tested in
    # test_zoo_tabular.py.
    tabular = {"tabular_mlp", "tabular_autoencoder", "tabular_sequence"}
    domain_tested = {"mlp", "nature_dqn", "fcos"}
    assert set(MODELS.names()) == set(TINY_CONFIGS) | domain_tested | tabular


@pytest.mark.parametrize("name", sorted(set(TINY_CONFIGS) - PAPER_SIZED))
def test_builds_and_round_trips_in_safe_mode(name: str, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    model = tiny(name)
    x = example_inputs(model)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert loaded.count_params() == model.count_params()
    if isinstance(model, GAN):
        z = np.random.default_rng(1).normal(size=(3, model.latent_dim)).astype("float32")
        if name == "dcgan":  # the StyleGAN generator draws fresh noise per call
            np.testing.assert_allclose(loaded(z), model(z), rtol=1e-5, atol=1e-5)
        assert model.generate(3).shape == (3, *TINY_CONFIGS[name][0])
        return
    expected = model(x, training=False)
    got = loaded(x, training=False)
    for a, b in zip(keras.tree.flatten(got), keras.tree.flatten(expected), strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), b, rtol=1e-4, atol=1e-5)


def _targets(model: keras.Model, name: str, n: int):
    kind = model_spec(name).kind
    out = model.outputs[0] if not isinstance(model.output, dict) else None
    if kind in ("autoencoder", "generative"):
        return None
    if kind in ("language_model", "seq2seq"):
        return np.random.default_rng(2).integers(0, out.shape[-1], size=(n, *out.shape[1:-1]))
    if kind == "segmentation":
        return np.random.default_rng(2).integers(0, 2, size=(n, *out.shape[1:-1]))
    if out is None:
        return None
    return np.arange(n) % out.shape[-1]


@pytest.mark.parametrize("name", sorted(set(TINY_CONFIGS) - PAPER_SIZED))
def test_trains_a_step(name: str) -> None:
    keras.utils.set_random_seed(1)
    model = tiny(name)
    x = example_inputs(model, n=8)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    if isinstance(model, GAN):
        model.compile(keras.optimizers.Adam(1e-3), run_eagerly=True)
        logs = model.fit(x, epochs=1, batch_size=4, verbose=0).history
        assert np.isfinite(logs["d_loss"][0]) and np.isfinite(logs["g_loss"][0])
    else:
        kind = model_spec(name).kind
        y = _targets(model, name, 8)
        if kind in ("autoencoder", "generative"):
            loss, y = "binary_crossentropy", x / 255.0
        elif kind in ("language_model",):
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        elif y is None:  # bert with head "none": a regression on the pooled output
            loss = {"sequence": None, "pooled": "mse"}
            y = {"sequence": None, "pooled": np.zeros((8, model.output["pooled"].shape[-1]))}
        else:
            loss = (
                training_loss(name)
                if kind.endswith("classifier")
                else "sparse_categorical_crossentropy"
            )
        model.compile(keras.optimizers.Adam(1e-2), loss, run_eagerly=True)
        value = model.train_on_batch(x, y)
        assert np.isfinite(np.asarray(value)).all()
    moved = sum(
        not np.allclose(b, keras.ops.convert_to_numpy(w))
        for b, w in zip(before, model.trainable_weights, strict=True)
    )
    assert moved >= len(before) // 2


# === Published sizes ===


@pytest.fixture(scope="module")
def keras_vgg16_count() -> int:
    return keras.applications.VGG16(weights=None).count_params()


@pytest.mark.parametrize(
    ("name", "shape", "classes", "options", "count"),
    [
        ("lenet5", (32, 32, 1), 10, {}, 61_706),
        ("alexnet", (227, 227, 3), 1000, {}, 62_378_344),
        ("vgg16", (224, 224, 3), 1000, {}, 138_357_544),
        ("bert_base", (512,), None, {"head": "none"}, 109_482_240),
        ("gpt_small", (1024,), None, {}, 124_439_808),
        ("capsnet", (28, 28, 1), 10, {}, 8_215_568),
    ],
)
def test_paper_presets_match_published_counts(name, shape, classes, options, count) -> None:
    model = build_model(name, input_shape=shape, num_classes=classes, **options)
    assert model.count_params() == count
    keras.backend.clear_session()


def test_resnet3d_matches_torchvision_r3d_18_and_keeps_the_classifier_layout() -> None:
    """At Hara et al.'s Kinetics set-up (16x112x112x3, 400 classes) the 3D ResNet-18 has
    torchvision r3d_18's 33,371,472 trainable parameters, less its (3, 7, 7) stem kernel
    plus this one's 7x7x7."""
    model = build_model(
        "resnet3d", input_shape=(16, 112, 112, 3), num_classes=400, width=64, stem="imagenet"
    )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 33_371_472 - 3 * 7 * 7 * 3 * 64 + 7 * 7 * 7 * 3 * 64
    keras.backend.clear_session()
    small = build_model("resnet3d", input_shape=(28, 28, 28, 1), num_classes=11, width=4)
    assert tuple(layer.name for layer in small.layers[1:]) == HEAD_LAYER_NAMES
    assert small.get_layer("backbone").output.shape[1:] == (4, 4, 4, 32)
    x = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 28, 1)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(small(x, training=False))
    assert probabilities.shape == (2, 11)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(UserError, match="option 'depth' must be one of 10, 18, 34"):
        build_model("resnet3d", input_shape=(8, 8, 8, 1), num_classes=2, depth=50)
    with pytest.raises(UserError, match="takes input_shape \\(D, H, W, C\\)"):
        build_model("resnet3d", input_shape=(8, 8, 1), num_classes=2)


def test_vgg16_equals_keras_applications(keras_vgg16_count: int) -> None:
    assert keras_vgg16_count == 138_357_544


def test_bert_heads_add_what_they_should() -> None:
    small = {"input_shape": (16,), "vocab_size": 100}
    none = build_model("bert_tiny", head="none", **small).count_params()
    # masked-LM head: transform dense + LayerNorm + one bias per token (decoder tied);
    # the pooler (hidden^2 + hidden) is not on the masked-LM path.
    mlm = build_model("bert_tiny", head="mlm", **small).count_params()
    assert mlm - none == (128 * 128 + 128) + 2 * 128 + 100 - (128 * 128 + 128)
    classify = build_model("bert_tiny", num_classes=5, **small).count_params()
    assert classify - none == 128 * 5 + 5


def test_bert_mean_pooling_ignores_padding() -> None:
    """pooling="mean" feeds the pooler the mean of the real tokens (padding left out);
    "cls" feeds it the first token; the weights and the sequence output are the same."""

    model = build_model(
        "bert", input_shape=(8,), num_classes=None, num_layers=1, hidden=16, num_heads=2,
        ff_dim=32, vocab_size=30, dropout=0.0, head="none", pooling="mean",
    )  # fmt: skip
    cls = build_model(
        "bert", input_shape=(8,), num_classes=None, num_layers=1, hidden=16, num_heads=2,
        ff_dim=32, vocab_size=30, dropout=0.0, head="none",
    )  # fmt: skip
    assert model.count_params() == cls.count_params()  # pooling adds no weights
    cls.set_weights(model.get_weights())
    short = np.array([[2, 5, 7, 3, 0, 0, 0, 0]])
    segments = np.zeros_like(short)
    mean = model.predict({"token_ids": short, "segment_ids": segments}, verbose=0)
    first = cls.predict({"token_ids": short, "segment_ids": segments}, verbose=0)
    # The same sequence output; only what the pooler reads differs.
    np.testing.assert_allclose(mean["sequence"], first["sequence"], atol=1e-5)
    tokens = mean["sequence"][0, :4].mean(axis=0)
    pooler = model.get_layer("pooler")
    expected = np.tanh(tokens @ pooler.kernel.numpy() + pooler.bias.numpy())
    np.testing.assert_allclose(mean["pooled"][0], expected, atol=1e-5)
    assert not np.allclose(mean["pooled"], first["pooled"], atol=1e-3)
    with pytest.raises(UserError, match="pooling"):
        build_model("bert_tiny", input_shape=(8,), pooling="max")


def test_gpt_ties_embeddings_and_medium_count() -> None:
    tied = build_model("gpt", input_shape=(8,), num_layers=1, hidden=16, num_heads=2, vocab_size=50)
    untied = build_model(
        "gpt",
        input_shape=(8,),
        num_layers=1,
        hidden=16,
        num_heads=2,
        vocab_size=50,
        tie_embeddings=False,
    )
    assert untied.count_params() - tied.count_params() == 50 * 16
    logits = tied(np.arange(8)[None] % 50)
    assert tuple(logits.shape) == (1, 8, 50)


def test_gpt_is_causal() -> None:
    model = tiny("gpt")
    a = np.array([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]])
    b = a.copy()
    b[0, 6:] = 3
    np.testing.assert_allclose(model(a)[0, :6], model(b)[0, :6], rtol=1e-5, atol=1e-5)


# === Layout and behaviour ===


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "vgg"])
def test_cnns_keep_the_classifier_layout(name: str) -> None:
    model = tiny(name)
    assert tuple(layer.name for layer in model.layers[1:]) == HEAD_LAYER_NAMES
    assert has_conv_backbone(model)


@pytest.mark.parametrize("name", ["lstm", "bert_tiny", "capsnet", "dbn"])
def test_models_without_conv_backbone_are_recognised(name: str) -> None:
    assert not has_conv_backbone(tiny(name))


def test_capsnet_outputs_lengths_and_margin_loss() -> None:
    model = tiny("capsnet")
    lengths = keras.ops.convert_to_numpy(model(example_inputs(model)))
    assert ((lengths > 0) & (lengths < 1)).all()
    assert len(model.losses) == 1  # the reconstruction term
    loss = training_loss("capsnet")
    perfect = loss(np.array([0]), np.array([[0.95, 0.05, 0.05]]))
    wrong = loss(np.array([0]), np.array([[0.05, 0.95, 0.05]]))
    assert float(perfect) == pytest.approx(0.0) and float(wrong) == pytest.approx(
        0.85**2 + 0.5 * 0.85**2
    )
    deeper = build_model(
        "capsnet",
        input_shape=(20, 20, 1),
        num_classes=4,
        conv_filters=8,
        primary_capsules=2,
        capsule_layers=2,
        hidden_capsules=5,
        decoder_units=[8, 8],
    )
    assert deeper.get_layer("capsules_1").num_capsules == 5
    assert deeper.output.shape == (None, 4)


def test_dbn_greedy_pretraining_lowers_reconstruction_error() -> None:
    keras.utils.set_random_seed(0)
    model = build_model("dbn", input_shape=(8, 8, 1), num_classes=2, hidden=[16], pretrain_epochs=1)
    rng = np.random.default_rng(0)
    images = (rng.uniform(size=(64, 8, 8, 1)) > 0.5).astype("float32") * 255
    first = greedy_pretrain(model, images, epochs=1)[0]
    later = greedy_pretrain(model, images, epochs=8)[0]
    assert later < first


def test_multi_task_trunk_with_heads() -> None:
    inputs = keras.Input((4,))
    trunk = keras.Model(inputs, keras.layers.Dense(8, activation="relu")(inputs))
    model = trunk_with_heads(
        trunk,
        {
            "fraud": keras.layers.Dense(1, activation="sigmoid"),
            "amount": [keras.layers.Dense(3), keras.layers.Dense(1)],
        },
    )
    model.compile("adam", {"fraud": "binary_crossentropy", "amount": "mse"})
    x = np.random.default_rng(0).normal(size=(8, 4))
    model.train_on_batch(x, {"fraud": np.ones((8, 1)), "amount": np.zeros((8, 1))})
    out = model(x)
    assert set(out) == {"fraud", "amount"} and out["amount"].shape == (8, 1)
    with pytest.raises(UserError, match="at least one head"):
        trunk_with_heads(trunk, {})


# === Bad input ===


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("alexnet", {"input_shape": (32, 32, 3), "num_classes": 2}, "at least 67x67"),
        ("lenet5", {"input_shape": (8, 8, 1), "num_classes": 2}, "data.image_size=\\[32, 32\\]"),
        ("vgg16", {"input_shape": (16, 16, 3), "num_classes": 2}, "at least 32x32"),
        ("capsnet", {"input_shape": (8, 8, 1), "num_classes": 2}, "at least 17x17"),
        ("gpt_tiny", {"input_shape": (2048,)}, "longer than the position table"),
        ("bert_tiny", {"input_shape": (513,)}, "longer than the position table"),
        ("gpt", {"input_shape": (8, 8, 1)}, "takes input_shape \\(seq_len,\\)"),
        ("unet", {"input_shape": (12, 12, 1), "num_classes": 2}, "multiple of 16"),
        ("unet3d", {"input_shape": (8, 8, 1)}, "takes input_shape \\(D, H, W, C\\)"),
        ("lstm", {"input_shape": (8, 8, 1)}, "num_classes is required"),
        ("lenet5", {"input_shape": (32, 32, 1)}, "num_classes is required"),
        ("bert", {"input_shape": (8,), "hidden": 10, "num_heads": 4}, "multiple of num_heads"),
        ("vgg", {"input_shape": (32, 32, 3), "num_classes": 2, "depth": 12}, "one of 11, 13"),
        ("dbn", {"input_shape": (8, 8, 1), "num_classes": 2, "units": "tanh"}, "'units' must be"),
        (
            "vgg16",
            {"input_shape": (224, 224, 3), "num_classes": 2, "depth": 19},
            "valid options: dropout$",
        ),
        (
            "lstm",
            {"input_shape": (4, 4, 1), "num_classes": 2, "cell": "gru"},
            "did you mean 'units'|valid options",
        ),
        ("resnet18", {"input_shape": (8,), "num_classes": 2}, "input_shape must be \\(height"),
    ],
)
def test_bad_input_is_a_clear_user_error(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        build_model(name, **kwargs)


def test_unknown_model_lists_close_matches() -> None:
    with pytest.raises(UserError, match="did you mean.*lenet5"):
        build_model("lenet", input_shape=(32, 32, 1), num_classes=2)
