"""Tests of the model zoo: the classifier contract, parameter counts, options, save/load, training."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.errors import UserError
from shared.zoo import MODELS, build_model, count_weight_layers, model_info, model_options
from shared.zoo.classifier import HEAD_LAYER_NAMES

# Keras' own saving code calls np.array(variable), which NumPy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

# Small but complete configurations of every registered model, for fast tests.
TINY = {
    "small_cnn": ((8, 8, 1), {}),
    "resnet": ((16, 16, 3), {"depth": 18, "width": 8}),
    "resnet18": ((8, 8, 3), {}),
    "resnet50": ((16, 16, 3), {"dropout": 0.1}),
}


def raw_images(n: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, size=(n, *shape)).astype("float32")


# === Contract ===


def test_every_registered_model_has_a_tiny_config() -> None:
    # The other families' tiny configs are in test_zoo_families.py.
    assert {"small_cnn", "resnet", "resnet18", "resnet34", "resnet50"} <= set(MODELS.names())
    assert set(TINY) <= set(MODELS.names())


@pytest.mark.parametrize("name", ["small_cnn", "resnet", "resnet18"])
def test_classifier_contract(name: str) -> None:
    shape, options = TINY[name]
    model = build_model(name, input_shape=shape, num_classes=5, **options)
    # layers[0] is the InputLayer Keras always lists first; the rest is the contract.
    assert isinstance(model.layers[0], keras.layers.InputLayer)
    assert tuple(layer.name for layer in model.layers[1:]) == HEAD_LAYER_NAMES
    assert model.input.dtype == "float32" and tuple(model.input.shape) == (None, *shape)

    preprocess = model.get_layer("preprocess")
    assert isinstance(preprocess, keras.layers.Rescaling) and preprocess.scale == pytest.approx(
        1 / 255
    )
    backbone = model.get_layer("backbone")
    assert isinstance(backbone, keras.Model) and len(backbone.output.shape) == 4
    assert min(backbone.output.shape[1:3]) >= 1
    assert isinstance(backbone.layers[-1], keras.layers.Layer)
    assert isinstance(model.get_layer("pool"), keras.layers.GlobalAveragePooling2D)
    assert isinstance(model.get_layer("dropout"), keras.layers.Dropout)
    predictions = model.get_layer("predictions")
    assert isinstance(predictions, keras.layers.Dense) and predictions.units == 5
    assert predictions.dtype_policy.compute_dtype == "float32"

    probs = keras.ops.convert_to_numpy(model(raw_images(3, shape), training=False))
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_head_rerun_by_name_matches_model() -> None:
    """Grad-CAM re-runs the head from the backbone's feature map; it must equal the model."""
    model = build_model("resnet", input_shape=(16, 16, 3), num_classes=4, width=8)
    img = raw_images(2, (16, 16, 3))
    x = model.get_layer("preprocess")(img)
    fmap = model.get_layer("backbone")(x)
    pred = model.get_layer("predictions")(model.get_layer("dropout")(model.get_layer("pool")(fmap)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pred), model(img), rtol=1e-5, atol=1e-6)


def test_default_dropout_rates() -> None:
    small = build_model("small_cnn", input_shape=(8, 8, 1), num_classes=10)
    res = build_model("resnet", input_shape=(8, 8, 1), num_classes=10, width=4)
    assert small.get_layer("dropout").rate == 0.25
    assert res.get_layer("dropout").rate == 0.0
    assert model_options("small_cnn") == {"filters": (32, 64), "dropout": 0.25, "kernel_size": 3}


def test_mixed_precision_keeps_predictions_float32() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("small_cnn", input_shape=(8, 8, 1), num_classes=3)
        assert model.get_layer("backbone").output.dtype == "float16"
        assert keras.backend.standardize_dtype(model(raw_images(2, (8, 8, 1))).dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


# === Shapes ===


@pytest.mark.parametrize(
    ("shape", "filters", "fmap"),
    [
        ((8, 8, 1), (32, 64), (4, 4, 64)),  # scikit-learn digits
        ((64, 64, 3), (32, 64), (32, 32, 64)),
        ((8, 8, 1), (8, 8, 8, 8, 8), (1, 1, 8)),  # pooling stops at 1x1
        ((28, 28, 1), (16,), (28, 28, 16)),  # one stage, no pooling
    ],
)
def test_small_cnn_feature_map(shape, filters, fmap) -> None:
    model = build_model("small_cnn", input_shape=shape, num_classes=10, filters=list(filters))
    assert tuple(model.get_layer("backbone").output.shape) == (None, *fmap)


@pytest.mark.parametrize(
    ("shape", "options", "fmap"),
    [
        ((32, 32, 3), {"depth": 18, "width": 8}, (4, 4, 64)),  # auto -> small stem
        ((64, 64, 3), {"depth": 18, "width": 8}, (2, 2, 64)),  # auto -> imagenet stem
        ((8, 8, 1), {"depth": 50, "width": 4}, (1, 1, 128)),  # bottleneck: 4 * 8 * width
        ((8, 8, 1), {"depth": 18, "width": 4, "stem": "imagenet"}, (1, 1, 32)),
        ((1, 1, 1), {"depth": 34, "width": 4}, (1, 1, 32)),  # every stride skipped
        ((12, 5, 3), {"depth": 18, "width": 4}, (2, 1, 32)),  # non-square, rounds up
    ],
)
def test_resnet_feature_map_never_below_one(shape, options, fmap) -> None:
    model = build_model("resnet", input_shape=shape, num_classes=3, **options)
    assert tuple(model.get_layer("backbone").output.shape) == (None, *fmap)
    assert tuple(model(raw_images(1, shape), training=False).shape) == (1, 3)


def test_resnet_stem_choice() -> None:
    small = build_model("resnet", input_shape=(63, 63, 3), num_classes=2, width=4)
    large = build_model("resnet", input_shape=(64, 64, 3), num_classes=2, width=4)
    assert "stem_pool" not in [layer.name for layer in small.get_layer("backbone").layers]
    assert large.get_layer("backbone").get_layer("stem_pool") is not None
    assert large.get_layer("backbone").get_layer("stem_conv").kernel_size == 7


# === Parameter counts ===


def basic_resnet_params(blocks, width, in_channels, num_classes, stem_kernel) -> tuple[int, int]:
    """(trainable, total) parameters of a basic-block ResNet without conv biases, by hand."""
    trainable = total = 0

    def conv_bn(k: int, c_in: int, c_out: int) -> None:
        nonlocal trainable, total
        trainable += k * k * c_in * c_out + 2 * c_out  # kernel, gamma, beta
        total += k * k * c_in * c_out + 4 * c_out  # + moving mean, moving variance

    conv_bn(stem_kernel, in_channels, width)
    c_in = width
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        for index in range(count):
            conv_bn(3, c_in if index == 0 else filters, filters)
            conv_bn(3, filters, filters)
            if index == 0 and (stage > 0 or c_in != filters):
                conv_bn(1, c_in, filters)
        c_in = filters
    dense = c_in * num_classes + num_classes
    return trainable + dense, total + dense


def trainable_count(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_resnet50_matches_keras_applications() -> None:
    model = build_model("resnet50", input_shape=(224, 224, 3), num_classes=1000)
    assert model.count_params() == 25_636_712
    assert tuple(layer.name for layer in model.layers[1:]) == HEAD_LAYER_NAMES
    assert tuple(model.get_layer("backbone").output.shape) == (None, 7, 7, 2048)
    assert count_weight_layers(model) == 54  # 49 convs + 4 projections + 1 dense
    reference = keras.applications.ResNet50(weights=None)
    assert model.count_params() == reference.count_params()
    assert trainable_count(model) == trainable_count(reference)


def test_resnet18_and_34_match_hand_counts_and_torchvision() -> None:
    r18 = build_model("resnet18", input_shape=(224, 224, 3), num_classes=1000)
    assert (trainable_count(r18), r18.count_params()) == basic_resnet_params(
        (2, 2, 2, 2), 64, 3, 1000, stem_kernel=7
    )
    assert trainable_count(r18) == 11_689_512  # torchvision.models.resnet18
    assert count_weight_layers(r18) == 21  # 17 convs + 3 projections + 1 dense
    r34 = build_model("resnet34", input_shape=(224, 224, 3), num_classes=1000)
    assert trainable_count(r34) == 21_797_672  # torchvision.models.resnet34


def test_small_stem_and_width_change_counts_as_computed() -> None:
    model = build_model("resnet", input_shape=(32, 32, 3), num_classes=10, width=16)
    assert (trainable_count(model), model.count_params()) == basic_resnet_params(
        (2, 2, 2, 2), 16, 3, 10, stem_kernel=3
    )


def test_v1_and_v1_5_bottleneck_have_equal_counts() -> None:
    kwargs = {"input_shape": (16, 16, 3), "num_classes": 4, "depth": 50, "width": 4}
    v1 = build_model("resnet", stride_on="1x1", use_bias=True, **kwargs)
    v15 = build_model("resnet", stride_on="3x3", use_bias=True, **kwargs)
    assert v1.count_params() == v15.count_params()
    no_bias = build_model("resnet", **kwargs)
    assert v1.count_params() - no_bias.count_params() == sum(
        layer.filters
        for layer in no_bias._flatten_layers()
        if isinstance(layer, keras.layers.Conv2D)
    )


def test_count_weight_layers_small_cnn() -> None:
    model = build_model("small_cnn", input_shape=(8, 8, 1), num_classes=10, filters=[8, 8, 8])
    assert count_weight_layers(model) == 7  # 3 stages x 2 convs + 1 dense


# === Save / load and training ===


def perturb_weights(model: keras.Model, seed: int = 0) -> None:
    """Move every weight, BN statistics included, off its initial value.

    Cheaper than a fit step: tracing a training graph of a ResNet-50 takes about a
    minute on 2 CPU cores, and the round trip only needs non-trivial state.
    """
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = keras.ops.convert_to_numpy(weight)
        if "moving_variance" in weight.path:
            value = rng.uniform(0.5, 2.0, size=value.shape)
        else:
            value = value * rng.uniform(0.5, 1.5, size=value.shape)
            value = value + rng.normal(0.0, 0.01, size=value.shape)
        weight.assign(value.astype("float32"))


# resnet50's bottleneck blocks (bias, stride on the 1x1) round-trip in the blocks tests; a
# whole ResNet-50 here would take a quarter of the suite's time budget to load.
@pytest.mark.parametrize("name", ["small_cnn", "resnet"])
def test_keras_round_trip_safe_mode(name: str, tmp_path) -> None:
    keras.utils.set_random_seed(0)
    shape, options = TINY[name]
    model = build_model(name, input_shape=shape, num_classes=3, **options)
    perturb_weights(model)
    x = raw_images(6, shape)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert expected.std() > 1e-3  # not a degenerate constant output
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x, training=False)), expected)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.count_params() == model.count_params()


@pytest.mark.parametrize("name", ["small_cnn", "resnet"])
def test_training_steps_reduce_loss(name: str) -> None:
    keras.utils.set_random_seed(3)
    model = build_model(name, input_shape=(16, 16, 3), num_classes=4, **TINY[name][1])
    # Eager steps: tracing a training graph costs more than these few steps on CPU.
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", run_eagerly=True)
    x, y = raw_images(16, (16, 16, 3), seed=4), np.arange(16) % 4
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert losses[-1] < 0.8 * losses[0]


# === Errors and info ===


def test_unknown_model_name() -> None:
    with pytest.raises(UserError, match=r"unknown model 'resnet51'.*did you mean.*resnet50"):
        build_model("resnet51", input_shape=(8, 8, 1), num_classes=2)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(UserError) as info:
        build_model("small_cnn", input_shape=(8, 8, 1), num_classes=2, fliters=[8], lr=0.1)
    message = str(info.value)
    assert "'fliters' (did you mean 'filters'?)" in message and "'lr'" in message
    assert message.endswith("valid options: filters, dropout, kernel_size")
    with pytest.raises(UserError, match="valid options: stem, dropout$"):
        build_model("resnet50", input_shape=(32, 32, 3), num_classes=2, depth=101)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("resnet", {"depth": 20}, "'depth' must be one of 18, 34, 50, 101, 152"),
        ("resnet", {"width": 0}, "'width' must be >= 1"),
        ("resnet", {"stem": "huge"}, "'stem' must be one of auto, imagenet, small"),
        ("resnet", {"stride_on": "2x2"}, "'stride_on' must be one of 3x3, 1x1"),
        ("resnet", {"use_bias": "yes"}, "'use_bias' must be true or false"),
        ("resnet18", {"dropout": 1.0}, r"'dropout' must be a number in \[0, 1\)"),
        ("small_cnn", {"filters": []}, "'filters' must be a non-empty list"),
        ("small_cnn", {"filters": 32}, "'filters' must be a non-empty list"),
        ("small_cnn", {"filters": [32, "64"]}, "'filters' must be an integer"),
        ("small_cnn", {"kernel_size": 2.5}, "'kernel_size' must be an integer"),
    ],
)
def test_bad_option_values(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        build_model(name, input_shape=(8, 8, 1), num_classes=2, **kwargs)


def test_numpy_integers_are_accepted() -> None:
    shape = np.zeros((5, 8, 8, 1)).shape[1:]
    model = build_model("small_cnn", input_shape=np.array(shape), num_classes=np.int64(3))
    assert tuple(model.input.shape) == (None, 8, 8, 1) and model.output.shape == (None, 3)


@pytest.mark.parametrize(
    ("input_shape", "num_classes", "match"),
    [
        ((8, 8), 2, "input_shape must be"),
        ((8, 0, 1), 2, "must be positive"),
        ((8, 8, 1), 1, "num_classes must be an integer >= 2"),
        ((8, 8, 1), True, "num_classes must be an integer >= 2"),
        ((8.0, 8, 1), 2, "input_shape must be"),
    ],
)
def test_bad_shapes_and_class_counts(input_shape, num_classes, match) -> None:
    with pytest.raises(UserError, match=match):
        build_model("small_cnn", input_shape=input_shape, num_classes=num_classes)


def test_model_info_describes_options() -> None:
    info = model_info("resnet")
    assert info.startswith("resnet: ResNet of depth 18/34")
    assert "options: depth=18, width=64, stem='auto', dropout=0.0" in info
    assert model_info("small_cnn").endswith(
        "options: filters=[32, 64], dropout=0.25, kernel_size=3"
    )
    assert "25,636,712" in model_info("resnet50")
    with pytest.raises(UserError):
        model_info("vgg17")
