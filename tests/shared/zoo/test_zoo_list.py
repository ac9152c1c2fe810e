"""Tests of `deepfield zoo list | show`: the listing's numbers and the CLI surface."""

from __future__ import annotations

import pytest

from pipelines.zoo import forward_flops, list_models, model_row, show_model
from shared.errors import UserError
from shared.zoo import build_model

# LeNet-5 multiply-adds at 32x32x1: C1 28*28*6*25, C3 10*10*16*150, C5 120*400, F6 120*84,
# output 84*10.
LENET5_MACS = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 120 * 400 + 120 * 84 + 84 * 10


def test_lenet5_flops_are_twice_its_multiply_adds_plus_elementwise_ops() -> None:
    flops = forward_flops(build_model("lenet5", input_shape=(32, 32, 1), num_classes=10))
    # The profiler also counts bias adds, pooling and the softmax: under 2% on top.
    assert 2 * LENET5_MACS <= flops <= 2 * LENET5_MACS * 1.02
    assert flops == 848_044


def test_recurrent_layers_are_counted_for_every_step() -> None:
    one = forward_flops(build_model("lstm", input_shape=(1, 28), num_classes=10, units=16))
    many = forward_flops(build_model("lstm", input_shape=(28, 28), num_classes=10, units=16))
    step = 2 * 4 * (28 + 16) * 16  # 4 gates, input and recurrent matmuls
    assert many - one >= 27 * step


def test_model_row_at_the_paper_preset() -> None:
    row = model_row("capsnet")
    assert row["input"] == "28x28x1" and row["classes"] == 10
    assert row["parameters"] == 8_215_568
    assert row["weight_layers"] == 6  # conv1, primary caps conv, routing, 3 decoder layers
    assert row["flops"] > 2 * 1_474_560  # at least the routing predictions


def test_list_models_table() -> None:
    table = list_models(["lenet5", "vae", "dcgan"]).splitlines()
    assert table[0].split()[:3] == ["model", "kind", "input"]
    lenet = table[2].split()
    assert lenet[:4] == ["lenet5", "image_classifier", "32x32x1", "10"]
    assert lenet[-2:] == ["61,706", "848.04K"]
    assert table[3].split()[:4] == ["vae", "generative", "28x28x1", "-"]
    assert table[4].startswith("dcgan") and "64x64x3" in table[4]


def test_show_model_applies_options_and_shows_both_gan_networks() -> None:
    text = show_model("dcgan", ["width=4", "latent_dim=8"])
    assert text.startswith("dcgan: DCGAN")
    assert 'Model: "generator"' in text and 'Model: "discriminator"' in text
    with pytest.raises(UserError, match="unknown option 'widht'.*did you mean 'width'"):
        show_model("dcgan", ["widht=4"])


def test_cli_zoo_show_bad_name(cli) -> None:
    code, _, err = cli("zoo", "show", "lenet")
    assert code == 2 and "did you mean" in err and "lenet5" in err


def test_model_catalogue_matches_the_registry() -> None:
    """model_catalog.json (read before TensorFlow) says what the live registry says (its
    preset figures are checked in tests/pipelines/test_cli_output.py)."""
    from shared.model_catalog import entries, from_registry

    kinds = {name: {k: e[k] for k in ("kind", "modalities")} for name, e in entries().items()}
    assert kinds == from_registry(), "run `python -m shared.model_catalog` to regenerate"


def test_vision_refuses_a_model_before_tensorflow(tmp_path) -> None:
    from tests.conftest import errors_before_tensorflow

    errors = errors_before_tensorflow(
        [
            "pipelines.vision.train(overrides=['model.name=gpt'])",
            "pipelines.vision.train(overrides=['model.name=resnett'])",
            f"pipelines.vision.train(data='folder:{tmp_path}')",
        ],
        tmp_path,
    )
    assert "model 'gpt' (language_model) cannot be trained by vision --task classify" in errors[0]
    assert "unknown model 'resnett' (did you mean resnet" in errors[1]
    assert "has no class sub-folders" in errors[2]
