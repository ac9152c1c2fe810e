"""Healthcare classify: clinical metrics, calibration, the operating point, predict on
PNG and DICOM files, the calibrated export, and bad input refused before TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from domains.healthcare import clinical
from tests.conftest import errors_before_tensorflow

DATA = Path(__file__).resolve().parent / "data"
CT_SLICE = DATA / "ct" / "ct-3slice-01.dcm"


# === Metrics and the operating point (numpy) ===
def test_roc_auc_is_medmnists_binary_and_mean_one_vs_rest():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[labels]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ovr = np.mean([roc_auc_score(labels == c, p[:, c]) for c in range(3)])
    assert clinical.roc_auc(labels, p) == pytest.approx(ovr)
    binary = (labels > 0).astype(int)
    two = np.stack([1 - p[:, 0], p[:, 0]], 1)
    assert clinical.roc_auc(binary, two) == pytest.approx(roc_auc_score(binary, two[:, 1]))
    assert np.isnan(clinical.roc_auc(np.zeros(5, int), two[:5]))


def test_youden_and_target_sensitivity_thresholds():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    youden = clinical.choose_threshold(labels, scores, "youden", 0.9, 0.5)
    assert youden == pytest.approx(0.7)  # sensitivity 0.75, specificity 1.0: J = 0.75
    assert clinical.sensitivity_specificity(labels, scores, youden) == (0.75, 1.0)
    sensitive = clinical.choose_threshold(labels, scores, "sensitivity", 1.0, 0.5)
    assert sensitive == pytest.approx(0.4)
    assert clinical.sensitivity_specificity(labels, scores, sensitive) == (1.0, 0.75)
    assert clinical.choose_threshold(labels, scores, "fixed", 0.9, 0.33) == 0.33


def test_report_keeps_auc_and_accuracy_of_the_model_and_calibrates_the_rest():
    from shared import calibration

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 2000)
    margin = rng.normal(1.0, 1.0, 2000) * np.where(labels == 1, 1, -1)
    sharp = 1 / (1 + np.exp(-4 * margin))  # overconfident: 4x the true log-odds
    raw = np.stack([1 - sharp, sharp], 1)
    t = calibration.fit_temperature(raw, labels)
    assert 1.7 < t < 2.3  # the true log-odds are 2x the margin; these are 4x
    calibrated = calibration.apply_temperature(raw, t)
    metrics = clinical.report(labels, raw, calibrated, positive=1, threshold=0.5, bins=10)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, sharp))
    assert metrics["ece"] < 0.5 * metrics["ece_uncalibrated"]
    assert metrics["loss"] < metrics["loss_uncalibrated"]
    assert 0.7 < metrics["sensitivity"] < 0.95 and 0.7 < metrics["specificity"] < 0.95
    three = np.full((4, 3), 1 / 3)
    multi = clinical.report(
        np.array([0, 1, 2, 0]), three, three, positive=1, threshold=None, bins=10
    )
    assert "sensitivity" not in multi and multi["accuracy"] == 0.5


# === A trained run (the harness's tiny BreastMNIST run, shared per session) ===
@pytest.fixture(scope="module")
def run(domain_run):
    return domain_run("healthcare")


def first_test_images(run, limit: int) -> np.ndarray:
    """The first test images of the run's data (uint8, N x 28 x 28 x 1)."""
    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.data import load

    config = HealthcareConfig.model_validate(run.config)
    images, _ = load(config.data, config.runtime.seed).splits["test"].arrays(limit=limit)
    return images


def test_run_is_calibrated_with_a_threshold_and_its_plots(run):
    fitted = json.loads((run.path / "calibration.json").read_text())
    assert fitted["method"] == "temperature" and fitted["temperature"] > 0
    assert 0 < fitted["threshold"] <= 1 and fitted["threshold_rule"] == "youden"
    contract = json.loads((run.path / "inputs.json").read_text())
    assert contract["classes"] == ["malignant", "normal_or_benign"]
    assert contract["details"]["positive_class"] == "malignant" and fitted["positive"] == 0
    m = run.metrics
    for key in ("roc_auc", "accuracy", "sensitivity", "specificity", "brier", "ece"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["num_examples"] == 156  # MedMNIST's own test split, as shipped
    for plot in ("roc.png", "reliability.png", "confusion_matrix.png", "gradcam.png"):
        assert (run.path / "plots" / plot).stat().st_size > 1000, plot


def test_predict_reads_png_and_ct_dicom_and_applies_the_threshold(run, tmp_path):
    from PIL import Image

    images = first_test_images(run, 1)
    png = tmp_path / "scan.png"
    Image.fromarray(images[0][..., 0]).save(png)
    results = run.predict([str(png), str(CT_SLICE)])
    assert [Path(r["input"]).name for r in results] == ["scan.png", CT_SLICE.name]
    threshold = json.loads((run.path / "calibration.json").read_text())["threshold"]
    for r in results:
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["probability"] == r["probabilities"]["malignant"]
        assert r["positive"] == (r["probability"] >= threshold)
        assert r["label"] in ("malignant", "normal_or_benign")


def test_export_serves_the_calibrated_probability_predict_gives(run, exported_run, tmp_path):
    import tensorflow as tf
    from PIL import Image

    result, _ = exported_run("healthcare")
    served = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    images = first_test_images(run, 3)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image[..., 0]).save(paths[-1])
    out = served(image_bytes=tf.constant([p.read_bytes() for p in paths]))
    expected = run.predict([str(p) for p in paths])
    np.testing.assert_allclose(
        out["probability"].numpy(), [r["probability"] for r in expected], atol=1e-5
    )
    assert out["positive"].numpy().tolist() == [r["positive"] for r in expected]
    assert [v.decode() for v in out["label"].numpy()] == [r["label"] for r in expected]


# === Data ===
def test_phantom_builtin_is_a_balanced_lesion_classification_set():
    from domains.healthcare.config import HealthcareDataConfig
    from domains.healthcare.data import load

    data = load(HealthcareDataConfig(source="builtin:phantom"), seed=3)
    assert data.class_names == ["no_lesion", "lesion"]
    images, labels = data.splits["train"].arrays()
    assert images.shape[1:] == (64, 64, 1) and images.dtype == np.uint8
    assert 0.3 < labels.mean() < 0.7
    assert sum(len(s) for s in data.splits.values()) == 1200


def test_bad_classify_input_is_refused_before_tensorflow(tmp_path):
    multilabel = tmp_path / "chest.npz"
    np.savez(
        multilabel,
        train_images=np.zeros((4, 28, 28), np.uint8),
        train_labels=np.zeros((4, 14), np.uint8),
    )
    calls = [
        f"pipelines.healthcare.train(data='npz:{multilabel}', run_dir='{tmp_path}/a')",
        f"pipelines.healthcare.train(data='builtin:brain', run_dir='{tmp_path}/b')",
        f"pipelines.healthcare.train(data='csv:{multilabel}', run_dir='{tmp_path}/c')",
        f"pipelines.healthcare.train(overrides=['model.name=unet'], run_dir='{tmp_path}/d')",
        f"pipelines.healthcare.train(overrides=['data.window=lungs'], run_dir='{tmp_path}/e')",
        f"pipelines.healthcare.train(data='npz:{tmp_path}/none.npz', run_dir='{tmp_path}/f')",
    ]
    errors = errors_before_tensorflow(calls, Path(__file__).resolve().parents[3])
    assert "multi-label" in errors[0] and "(4, 14)" in errors[0]
    assert "breastmnist, phantom" in errors[1]
    assert "csv manifest" in errors[2] and "binary file" in errors[2]
    assert "unet" in errors[3]
    assert "unknown data.window 'lungs'" in errors[4] and "lung" in errors[4]
    assert "does not exist" in errors[5]
    assert not any((tmp_path / name).exists() for name in "abcdef")


def test_positive_class_and_class_names_are_checked(tmp_path):
    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.data import load, positive_index
    from shared.errors import UserError

    config = HealthcareConfig.model_validate({"threshold": {"positive_class": "benign"}})
    with pytest.raises(UserError, match="positive_class 'benign' is not a class"):
        positive_index(config, ["malignant", "normal_or_benign"])
    assert positive_index(HealthcareConfig(), ["malignant", "normal_or_benign"]) == 0
    npz = tmp_path / "x.npz"
    np.savez(npz, train_images=np.zeros((20, 8, 8), np.uint8), train_labels=np.arange(20) % 2)
    plain = HealthcareConfig.model_validate({"data": {"source": f"npz:{npz}"}})
    assert positive_index(plain, ["0", "1"]) == 1
    with pytest.raises(UserError, match="lists 3 names"):
        load(plain.data.model_copy(update={"class_names": ["a", "b", "c"]}), seed=0)


def test_init_from_copies_the_backbone_then_fine_tunes(run, tmp_path):
    """`--init-from RUN`: the head trains on the frozen backbone, then all fine-tunes; the
    card says where it started, and a segment task or another model is refused."""
    import pipelines
    from shared import model_io

    transferred = pipelines.healthcare.train(
        overrides=["train.epochs=1", "model.width=8", "transfer.head_epochs=1"],
        init_from=str(run.path),
        run_dir=tmp_path / "transfer",
    )
    history = (transferred.path / "history.csv").read_text().strip().splitlines()
    assert len(history) == 1 + 2  # header, one head epoch, one fine-tune epoch
    assert str(run.path) in (transferred.path / "MODEL_CARD.md").read_text()
    assert 0.0 <= transferred.metrics["roc_auc"] <= 1.0
    # The frozen head phase kept the source's backbone; fine-tuning then moved it.
    source = model_io.load_model(run.path / "model.keras").get_layer("backbone").get_weights()
    tuned = (
        model_io.load_model(transferred.path / "model.keras").get_layer("backbone").get_weights()
    )
    assert any(not np.allclose(a, b) for a, b in zip(source, tuned, strict=True))
    assert all(a.shape == b.shape for a, b in zip(source, tuned, strict=True))
    calls = [
        f"pipelines.healthcare.train(task='segment', init_from='{run.path}', "
        f"run_dir='{tmp_path}/a')",
        f"pipelines.healthcare.train(overrides=['model.name=small_cnn'], "
        f"init_from='{run.path}', run_dir='{tmp_path}/b')",
        f"pipelines.healthcare.train(init_from='{tmp_path}/nowhere', run_dir='{tmp_path}/c')",
    ]
    errors = errors_before_tensorflow(calls, Path(__file__).resolve().parents[3])
    assert "is for --task classify" in errors[0]
    assert "this run trains a classify small_cnn" in errors[1]
    assert "does not exist" in errors[2]
    assert not any((tmp_path / name).exists() for name in "abc")


def test_test_time_flip_averages_the_image_and_its_mirror(run):
    """`data.tta: auto` turns on with horizontal-flip training: the run's scores are the
    mean over the image and its mirror, so mirrored inputs score the same."""
    from domains.healthcare.classify import scoring_model, uses_tta
    from domains.healthcare.config import HealthcareConfig
    from shared import model_io

    assert json.loads((run.path / "calibration.json").read_text())["tta"] is True
    flips = {"augment": {"flip": "horizontal"}}
    assert uses_tta(HealthcareConfig.model_validate({"data": flips})) is True
    assert uses_tta(HealthcareConfig.model_validate({"data": {**flips, "tta": "none"}})) is False
    assert uses_tta(HealthcareConfig.model_validate({"data": {"tta": "flip"}})) is True
    assert uses_tta(HealthcareConfig()) is False  # no flips in training, none at test
    model = model_io.load_model(run.path / "model.keras")
    images = first_test_images(run, 8).astype("float32")
    mirror = images[:, :, ::-1]
    plain = model.predict(images, verbose=0)
    scored = scoring_model(model, True).predict(images, verbose=0)
    expected = (plain + model.predict(mirror, verbose=0)) / 2
    np.testing.assert_allclose(scored, expected, atol=1e-5)
    np.testing.assert_allclose(
        scoring_model(model, True).predict(mirror, verbose=0), scored, atol=1e-5
    )
    assert scoring_model(model, False) is model


def test_max_steps_cuts_epochs_on_large_sets_only():
    from domains.healthcare.config import HealthcareConfig, HealthcareTrainConfig
    from shared.errors import UserError

    train = HealthcareTrainConfig(epochs=60, max_steps=2400)
    assert train.capped(18).epochs == 60  # BreastMNIST: 1,080 steps, under the cap
    assert train.capped(148).epochs == 17  # PneumoniaMNIST: 17 x 148 = 2,516 >= 2,400
    assert train.capped(5000).epochs == 1
    assert HealthcareTrainConfig(epochs=7).capped(10**6).epochs == 7
    from pipelines.domains import get

    segment = HealthcareConfig.model_validate({"task": "segment", "train": {"max_steps": 10}})
    with pytest.raises(UserError, match="max_steps caps classify"):
        get("healthcare").check(segment)
