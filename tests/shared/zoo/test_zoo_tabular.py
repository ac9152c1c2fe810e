"""The zoo's table models (finance's networks): build, train a step, round-trip in safe mode,
and say which input modality every model takes."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from shared.errors import UserError
from shared.zoo import MODALITIES, MODELS, build_model, model_spec, training_loss

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

# name -> (input_shape, options, output width)
TINY = {
    "tabular_mlp": ((6,), {"hidden": [8, 4], "dropout": 0.1}, 1),
    "tabular_autoencoder": ((6,), {"hidden": [4], "latent": 2}, 6),
    "tabular_sequence": ((3, 6), {"units": 4, "hidden": [4], "pooling": "attention"}, 1),
}


def _rows(shape: tuple[int, ...], n: int = 8) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(n, *shape)).astype("float32")
    if len(shape) == 2:
        x[:2, :1] = 0.0  # two histories padded with an all-zero first row
    return x


@pytest.mark.parametrize("name", sorted(TINY))
def test_table_models_train_a_step_and_round_trip_in_safe_mode(name: str, tmp_path) -> None:
    shape, options, width = TINY[name]
    keras.utils.set_random_seed(0)
    model = build_model(name, input_shape=shape, **options)
    x = _rows(shape)
    assert model(x).shape == (8, width)
    spec = model_spec(name)
    y = x if spec.kind == "autoencoder" else (np.arange(8) % 2).astype("float32")[:, None]
    model.compile(keras.optimizers.Adam(1e-2), training_loss(name))
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    moved = sum(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert moved >= len(before) // 2
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)


def test_padding_rows_do_not_change_a_sequence_score() -> None:
    keras.utils.set_random_seed(0)
    model = build_model("tabular_sequence", input_shape=(4, 5), units=4, hidden=[])
    x = _rows((4, 5), n=2)
    x[:, :2] = 0.0  # two real transactions, the last two steps
    short = build_model("tabular_sequence", input_shape=(2, 5), units=4, hidden=[])
    short.set_weights(model.get_weights())
    np.testing.assert_allclose(model(x), short(x[:, 2:]), rtol=1e-5, atol=1e-6)


def test_table_model_specs_and_bad_options() -> None:
    assert model_spec("tabular_mlp").modalities == ("table",)
    assert model_spec("tabular_sequence").modality == "sequence"
    assert (
        build_model("tabular_mlp", input_shape=(4,), num_classes=3, hidden=[]).output.shape[-1] == 3
    )
    with pytest.raises(UserError, match=r"tabular_mlp takes input_shape \(features,\)"):
        build_model("tabular_mlp", input_shape=(4, 4))
    with pytest.raises(UserError, match="option 'cell' must be one of simple, lstm, gru"):
        build_model("tabular_sequence", input_shape=(3, 4), cell="transformer")
    with pytest.raises(UserError, match="option 'l2' must be a number >= 0"):
        build_model("tabular_autoencoder", input_shape=(4,), l2=-1)


def test_every_model_says_which_modalities_it_takes() -> None:
    for name in MODELS.names():
        spec = model_spec(name)
        assert spec.modalities and set(spec.modalities) <= set(MODALITIES), name
    assert model_spec("gru").modalities == ("image", "tokens", "sequence")
    assert model_spec("unet3d").modality == "volume" and model_spec("mlp").modality == "observation"
    assert model_spec("bert").takes("image") and not model_spec("gpt").takes("image")


def test_vision_trains_only_classifiers_that_take_images() -> None:
    from domains.vision.models import check_vision_model

    check_vision_model("lstm", "classify")
    check_vision_model("vae", "generate")
    for name, task in [("tabular_mlp", "classify"), ("dense_autoencoder", "classify"),
                       ("unet", "classify"), ("lenet5", "generate")]:  # fmt: skip
        with pytest.raises(UserError, match="cannot be trained by vision") as err:
            check_vision_model(name, task)
        assert "tabular" not in str(err.value).split("models that can:")[1]
