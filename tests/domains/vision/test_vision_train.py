"""Vision end to end: the run directory contract, transfer. (Resume after a kill: the
shared harness, tests/harness/test_domain_contract.py.)"""

import json

import keras
import numpy as np
import pytest
import yaml

from tests.domains.vision.conftest import FAST_OVERRIDES

REQUIRED_METRICS = {"loss", "accuracy", "f1", "split", "num_examples", "task", "domain"}


def test_run_directory_has_every_promised_file(digits_run):
    path = digits_run.path
    for name in (
        "config.yaml",
        "metrics.json",
        "history.csv",
        "model.keras",
        "MODEL_CARD.md",
        "log.txt",
        "data_splits.json",
    ):
        assert (path / name).is_file(), name
    assert list((path / "tensorboard").rglob("events.out.tfevents.*"))
    assert (path / "checkpoints" / "epoch-0002.npz").is_file()
    plots = {p.name for p in digits_run.plots}
    assert {
        "training_curves.png",
        "confusion_matrix.png",
        "misclassified.png",
        "gradcam.png",
    } <= plots
    metrics = json.loads((path / "metrics.json").read_text())
    assert REQUIRED_METRICS <= set(metrics)
    assert metrics["domain"] == "vision" and metrics["split"] == "test"
    assert metrics["num_examples"] == 359  # 20% of 1,797, stratified
    assert 0.5 < metrics["accuracy"] <= 1.0  # two quick epochs are far above chance (0.1)
    assert len(digits_run.history) == 2
    config = yaml.safe_load((path / "config.yaml").read_text())
    assert config["train"]["epochs"] == 2 and config["model"]["filters"] == [8, 16]
    splits = json.loads((path / "data_splits.json").read_text())
    assert splits["source"] == "builtin:digits" and splits["splits"]["test"]["size"] == 359
    contract = json.loads((path / "inputs.json").read_text())
    assert contract["classes"] == [str(i) for i in range(10)]
    assert contract["inputs"] == [
        {
            "name": "image",
            "dtype": "uint8",
            "shape": [8, 8, 1],
            "description": contract["inputs"][0]["description"],
        }
    ]
    assert "accuracy" in digits_run.model_card and "builtin:digits" in digits_run.model_card


def test_saved_model_loads_in_safe_mode_and_matches_metrics(digits_run):
    model = keras.models.load_model(digits_run.path / "model.keras", safe_mode=True, compile=False)
    assert model.get_layer("backbone") is not None
    metrics = digits_run.evaluate(out=str(digits_run.path / "again.json"))
    assert metrics["accuracy"] == pytest.approx(digits_run.metrics["accuracy"])


def test_rerunning_a_complete_run_does_nothing(digits_run):
    from pipelines import vision

    before = (digits_run.path / "history.csv").read_text()
    again = vision.train(
        config="digits",
        overrides=FAST_OVERRIDES,
        run_dir=digits_run.path,
    )
    assert (again.path / "history.csv").read_text() == before


def test_a_different_config_in_the_same_run_dir_is_refused(digits_run, cli):
    code, _, err = cli(
        "vision",
        "train",
        "--config",
        "digits",
        "--run-dir",
        str(digits_run.path),
        "--set",
        "train.epochs=3",
    )
    assert code == 2
    assert err.startswith("error:") and "different config" in err and "train.epochs" in err


def test_transfer_learning_freezes_then_fine_tunes(digits_run, tmp_path):
    from pipelines import vision

    source = keras.models.load_model(digits_run.path / "model.keras", compile=False)
    run = vision.train(
        config="digits",
        overrides=[*FAST_OVERRIDES, "train.epochs=1", "transfer.head_epochs=1"],
        run_dir=tmp_path / "transfer",
        init_from=digits_run.path,
    )
    epochs = [int(row["epoch"]) for row in run.history]
    assert epochs == [0, 1]  # one frozen-backbone epoch, then one fine-tuning epoch
    assert (run.path / "checkpoints" / "head" / "epoch-0001.npz").is_file()
    assert (run.path / "checkpoints" / "fine_tune" / "epoch-0002.npz").is_file()
    tuned = run.load_model()
    # Fine-tuning moved the backbone away from the source's weights it started from.
    first = source.get_layer("backbone").get_weights()[0]
    assert first.shape == tuned.get_layer("backbone").get_weights()[0].shape
    assert not np.allclose(first, tuned.get_layer("backbone").get_weights()[0])
    assert str(digits_run.path) in run.model_card


def test_load_backbone_copies_weights_and_rejects_other_architectures(digits_run):
    from domains.vision.config import VisionConfig
    from domains.vision.models import build_classifier
    from shared.data import load_image_data
    from shared.errors import UserError
    from shared.training.transfer import load_backbone_from

    data = load_image_data("builtin:digits")
    config = VisionConfig.model_validate(digits_run.config)
    model = build_classifier(config, data)
    load_backbone_from(str(digits_run.path), model)
    source = digits_run.load_model().get_layer("backbone").get_weights()
    for a, b in zip(source, model.get_layer("backbone").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    other = build_classifier(
        config.model_copy(update={"model": config.model.model_copy(update={"filters": [4, 4]})}),
        data,
    )
    with pytest.raises(UserError, match="does not match"):
        load_backbone_from(str(digits_run.path), other)
