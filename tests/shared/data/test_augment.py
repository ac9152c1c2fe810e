"""build_augmentation: Keras preprocessing layers from names and magnitudes."""

import keras
import numpy as np
import pytest

from shared.data import build_augmentation
from shared.errors import UserError


def _types(model: keras.Sequential) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_default_has_no_flip() -> None:
    model = build_augmentation()
    assert _types(model) == ["RandomTranslation", "RandomRotation", "RandomZoom"]


def test_list_of_names_uses_default_magnitudes() -> None:
    model = build_augmentation(["Rotation", "flip", "contrast"])
    assert _types(model) == ["RandomRotation", "RandomFlip", "RandomContrast"]
    assert model.layers[1].mode == "horizontal"
    assert model.layers[2].value_range == (0, 255)  # pipeline pixels are 0..255


def test_dict_magnitudes_kwargs_and_disabled_entries() -> None:
    model = build_augmentation(
        {
            "rotate": {"factor": 0.2, "fill_mode": "reflect"},
            "zoom": 0,
            "flip": False,
            "translate": 0.3,
        }
    )
    assert _types(model) == ["RandomRotation", "RandomTranslation"]
    assert model.layers[0].fill_mode == "reflect"
    assert model.layers[1].height_factor == 0.3
    assert build_augmentation({}) is None and build_augmentation([]) is None


def test_augmentation_changes_pixels_keeps_shape_and_range() -> None:
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    model = build_augmentation(["translate", "rotate", "zoom", "contrast"], seed=1)
    out = np.asarray(model(images, training=True))
    assert out.shape == images.shape and out.dtype == np.float32
    assert not np.allclose(out, images)
    assert out.min() >= 0.0 and out.max() <= 255.0 + 1e-3
    assert np.allclose(np.asarray(model(images, training=False)), images)


def test_flip_mode_names() -> None:
    assert build_augmentation({"flip": "vertical"}).layers[0].mode == "vertical"
    assert build_augmentation({"flip": True}).layers[0].mode == "horizontal"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"blur": 0.1}, "unknown augmentation 'blur'; known: translate, rotate, zoom, flip"),
        ({"rotate": -0.1}, "needs a non-negative number"),
        ({"rotate": "lots"}, "needs a non-negative number"),
        ({"flip": "diagonal"}, "'flip' must be one of horizontal, vertical"),
        ({"zoom": 2.0}, "bad augmentation 'zoom'"),
    ],
)
def test_bad_configs_are_user_errors(config: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build_augmentation(config)
