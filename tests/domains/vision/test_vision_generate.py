"""`deepfield vision train --task generate`: VAE, DCGAN and StyleGAN-style runs, sample grids
and the Frechet classifier distance."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from domains.vision.generate import frechet_distance

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

QUICK = [
    "train.epochs=1",
    "train.batch_size=64",
    "generate.fcd_examples=60",
    "generate.classifier_epochs=1",
    "generate.samples=16",
]


def sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from pipelines.cli import main

    path = tmp_path_factory.mktemp("gen") / "vae"
    code = main(
        ["vision", "train", "--task", "generate", "--run-dir", str(path)]
        + sets("model.name=vae", "model.hidden=[64]", "model.latent_dim=4", *QUICK)
    )
    assert code == 0
    return path


def test_vae_run_writes_samples_metrics_model_and_card(vae_run) -> None:
    metrics = json.loads((vae_run / "metrics.json").read_text())
    assert metrics["task"] == "generate" and metrics["domain"] == "vision"
    assert metrics["split"] == "test" and metrics["num_examples"] == 60
    # Samples of one epoch are far from the data; held-out real digits are close to it.
    assert metrics["frechet_classifier_distance"] > metrics["frechet_classifier_distance_real"]
    assert metrics["frechet_classifier_distance_real"] >= 0
    assert 0.5 < metrics["feature_classifier_accuracy"] <= 1.0
    assert metrics["loss"] == pytest.approx(
        metrics["reconstruction_loss"] + metrics["kl_divergence"]
    )
    assert 0 < metrics["reconstruction_loss"] < 64 * np.log(2) * 1.5  # 8x8 pixels
    assert (vae_run / "fcd_classifier.keras").is_file()  # reused by evaluate
    for plot in ("samples.png", "reconstructions.png", "training_curves.png"):
        assert (vae_run / "plots" / plot).stat().st_size > 1000
    card = (vae_run / "MODEL_CARD.md").read_text()
    assert "vae image generator" in card and "frechet_classifier_distance" in card
    model = keras.models.load_model(vae_run / "model.keras", safe_mode=True, compile=False)
    decoded = model.get_layer("decoder")(np.zeros((2, 4), "float32"))
    assert tuple(decoded.shape) == (2, 8, 8, 1)


def test_vae_run_evaluate_and_predict(vae_run, tmp_path, cli) -> None:
    out = tmp_path / "metrics.json"
    code, stdout, err = cli("vision", "evaluate", "--run", str(vae_run), "--out", str(out))
    assert code == 0, err
    assert stdout.splitlines()[2].split()[0] == "frechet_classifier_distance"  # the headline
    assert json.loads(out.read_text())["task"] == "generate"
    code, _, err = cli("vision", "predict", "--run", str(vae_run), "any.png")
    assert code == 2 and "generate run has no predict" in err
    code, _, err = cli("vision", "explain", "--run", str(vae_run))
    assert code == 2 and "Grad-CAM" in err


# StyleGAN runs the same GAN code path (and trains a step in the zoo tests); one GAN here.
@pytest.mark.parametrize("name", ["dcgan"])
def test_gan_runs_train_and_sample(name: str, tmp_path) -> None:
    from pipelines import vision

    run = vision.train(
        config="default",
        task="generate",
        overrides=[f"model.name={name}", "model.width=4", "train.steps_per_epoch=4", *QUICK],
        run_dir=tmp_path / name,
    )
    assert run.metrics["frechet_classifier_distance"] > 0
    assert (run.path / "plots" / "samples.png").is_file()
    with (run.path / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(rows[0]) == {"epoch", "d_loss", "g_loss", "val_d_loss", "val_g_loss"}
    assert all(np.isfinite(float(v)) for v in rows[0].values())
    # compress prunes a GAN (generator and discriminator) through its own training step,
    # timing the generator on a latent vector
    pruned = vision.compress(run, prune=0.5, epochs=1, run_dir=tmp_path / "pruned")
    assert pruned.metrics["sparsity"] >= 0.5 * 0.99 and pruned.metrics["latency_ms"] > 0
    assert np.isfinite(pruned.metrics["frechet_classifier_distance"])
    assert "original_frechet_classifier_distance" in pruned.metrics
    model = run.load_model()
    assert model.generate(3).shape == (3, 8, 8, 1)


def test_frechet_distance_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    shifted = rng.normal(size=(4000, 3)) + np.array([1.0, 2.0, 0.0])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, shifted) == pytest.approx(5.0, rel=0.05)
    # N(0, I) vs N(0, 4I) in 3-D: 3 * (1 + 4 - 2 * 2) = 3.
    assert frechet_distance(a, 2 * rng.normal(size=(4000, 3))) == pytest.approx(3.0, rel=0.1)


def test_models_must_fit_the_task(cli, tmp_path) -> None:
    code, _, err = cli(
        "vision",
        "train",
        "--task",
        "generate",
        "--run-dir",
        str(tmp_path / "a"),
        "--set",
        "model.name=lenet5",
    )
    assert code == 2 and "cannot be trained by vision --task generate" in err
    assert "dcgan, stylegan, vae" in err
    code, _, err = cli(
        "vision", "train", "--run-dir", str(tmp_path / "b"), "--set", "model.name=vae"
    )
    assert code == 2 and "cannot be trained by vision --task classify" in err
    code, _, err = cli("vision", "train", "--task", "draw", "--run-dir", str(tmp_path / "c"))
    assert code == 2 and "'draw' is not one of 'classify', 'generate'" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
