"""Precision and XLA flags reach the model, and leave the global policy as it was."""

import keras
import pytest

from tests.domains.vision.conftest import FAST_OVERRIDES


@pytest.mark.parametrize(("precision", "jit"), [("mixed_bfloat16", False), ("float32", True)])
def test_precision_and_jit_train_and_restore_policy(precision, jit, tmp_path):
    from pipelines import vision

    run = vision.train(
        config="digits",
        overrides=[*FAST_OVERRIDES, "train.epochs=1"],
        run_dir=tmp_path / precision,
        precision=precision,
        jit=jit,
    )
    assert keras.mixed_precision.global_policy().name == "float32"
    assert run.config["train"]["precision"] == precision and run.config["train"]["jit"] is jit
    model = run.load_model()
    convs = [layer for layer in model.get_layer("backbone").layers if "conv" in layer.name]
    assert convs and all(layer.dtype_policy.name == precision for layer in convs)
    assert model.get_layer("predictions").dtype_policy.name == "float32"
    assert run.metrics["accuracy"] > 0.2
