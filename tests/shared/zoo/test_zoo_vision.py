"""Zoo classifiers through `deepfield vision train`: a sequence model over image rows and a deep
belief network (greedy pretraining, then fine-tuning) train on digits; models without a conv
backbone refuse Grad-CAM. (CNN classifiers go through the same code as small_cnn, which the
vision tests cover, Grad-CAM included.)"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

QUICK = ["train.epochs=1", "train.batch_size=64", "train.learning_rate=0.01"]


@pytest.mark.parametrize(
    ("name", "options", "min_accuracy"),
    [
        ("gru", ["model.units=32"], 0.3),  # rows of 8 pixels, 8 steps
        (
            "dbn",
            [
                "model.hidden=[64]",
                "model.pretrain_epochs=1",
                "train.learning_rate=0.003",
                "train.epochs=3",
            ],
            0.3,
        ),
    ],
)
def test_zoo_classifiers_train_in_the_vision_pipeline(name, options, min_accuracy, tmp_path, cli):
    from pipelines import vision

    run = vision.train(
        config="default",
        overrides=[f"model.name={name}", *QUICK, *options],
        run_dir=tmp_path / name,
    )
    assert run.metrics["accuracy"] > min_accuracy  # chance is 0.1
    plots = {p.name for p in run.plots}
    assert {"confusion_matrix.png", "training_curves.png"} <= plots
    assert "gradcam.png" not in plots
    code, _, err = cli("vision", "explain", "--run", str(run.path))
    assert code == 2 and "no convolutional backbone" in err


def test_non_vision_models_are_refused(cli, tmp_path):
    code, _, err = cli(
        "vision", "train", "--run-dir", str(tmp_path / "x"), "--set", "model.name=gpt"
    )
    assert code == 2 and "(language_model) cannot be trained by vision" in err and "lenet5" in err
