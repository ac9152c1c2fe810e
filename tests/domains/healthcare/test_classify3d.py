"""Healthcare 3D classify: resnet3d on a MedMNIST-3D-format archive (phantom volumes, 16^3),
the same metrics and calibration as 2D, predict on NIfTI files, the export taking raw
volumes with their spacing, the 3D phantom builtin (liver-centred crops), and bad input
refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import errors_before_tensorflow

REPO = Path(__file__).resolve().parents[3]
TINY = ["train.epochs=2", "model.depth=10", "model.width=4", "train.batch_size=8"]
METRIC_KEYS = ("roc_auc", "accuracy", "sensitivity", "specificity", "threshold", "ece", "brier")


def phantom_npz(path: Path, n: int = 48, side: int = 16) -> Path:
    """A MedMNIST 3D archive (uint8 (N, D, H, W), labels (N, 1)) of phantom volumes."""
    from domains.healthcare import phantom
    from domains.healthcare.data import window_to_uint8

    hu, labels = phantom.phantom_classification(n, seed=5, dims=3, shape=(side,) * 3)
    volumes, labels = window_to_uint8(hu, "abdomen"), labels[:, None].astype(np.uint8)
    cut = {"train": (0, 32), "val": (32, 40), "test": (40, n)}
    arrays = {}
    for name, (a, b) in cut.items():
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = volumes[a:b], labels[a:b]
    np.savez(path, **arrays)
    return path


def write_nifti(path: Path, array: np.ndarray, spacing=(9.6, 9.6, 10.0)) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.asarray(array, np.float32), np.diag([*spacing, 1.0])), path)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return phantom_npz(tmp_path_factory.mktemp("medmnist3d") / "organmnist3d_like.npz")


@pytest.fixture(scope="module")
def run(archive, tmp_path_factory):
    import pipelines

    return pipelines.healthcare.train(
        config="classify3d",
        data=f"npz:{archive}",
        overrides=TINY,
        run_dir=tmp_path_factory.mktemp("classify3d") / "run",
    )


@pytest.fixture(scope="module")
def ct_volume() -> tuple[np.ndarray, tuple]:
    """One phantom CT volume in HU, of another size than the run's 16^3."""
    from domains.healthcare import phantom

    hu, _, spacing = phantom.phantom_volume(11, shape=(24, 20, 18), num_lesions=2)
    return hu, spacing


# === Training: the run directory of a 2D run, with volumes ===
def test_run_has_the_files_and_metrics_of_a_2d_classify_run(run, archive):
    for name in ("metrics.json", "calibration.json", "inputs.json", "model.keras", "MODEL_CARD.md"):
        assert (run.path / name).is_file(), name
    for plot in ("roc.png", "reliability.png", "confusion_matrix.png", "gradcam.png"):
        assert (run.path / "plots" / plot).stat().st_size > 1000, plot
    m = run.metrics
    for key in METRIC_KEYS:
        assert 0.0 <= m[key] <= 1.0, key
    assert m["num_examples"] == 8 and m["task"] == "classify" and m["split"] == "test"
    contract = json.loads((run.path / "inputs.json").read_text())
    assert contract["inputs"][0]["name"] == "volume" and contract["classes"] == ["0", "1"]
    details = contract["details"]
    assert details["model_input"] == [16, 16, 16, 1] and details["intensity"] == "minmax"
    splits = json.loads((run.path / "data_splits.json").read_text())["splits"]
    assert [splits[s]["size"] for s in ("train", "validation", "test")] == [32, 8, 8]
    assert len((run.path / "history.csv").read_text().strip().splitlines()) == 3
    again = run.evaluate(data=f"npz:{archive}", split="validation")
    assert again["num_examples"] == 8 and set(METRIC_KEYS) <= set(again)


# === Predict and export ===
def test_predict_reads_nifti_files_and_prints_one_json_line_each(run, ct_volume, tmp_path, cli):
    hu, spacing = ct_volume
    first = write_nifti(tmp_path / "a.nii.gz", hu, spacing)
    second = write_nifti(tmp_path / "b.nii", hu[::-1], spacing)
    code, out, err = cli("healthcare", "predict", "--run", str(run.path), str(first), str(second))
    assert code == 0, err
    results = [json.loads(line) for line in out.strip().splitlines()]
    assert [Path(r["input"]).name for r in results] == ["a.nii.gz", "b.nii"]
    threshold = json.loads((run.path / "calibration.json").read_text())["threshold"]
    for r in results:
        assert r["shape"] == [24, 20, 18]
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["probability"] == r["probabilities"]["1"]
        assert r["positive"] == (r["probability"] >= threshold)


def test_export_takes_raw_volumes_with_spacing_and_matches_predict(run, ct_volume, tmp_path):
    import tensorflow as tf

    hu, spacing = ct_volume
    result = run.export(to=tmp_path / "serving")
    assert result.verification["checked"] and result.verification["max_abs_diff"] < 1e-4
    served = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    out = served(
        volume=tf.constant(hu[None], tf.float32), spacing=tf.constant([spacing], tf.float32)
    )
    expected = run.predict([str(write_nifti(tmp_path / "c.nii.gz", hu, spacing))])[0]
    assert out["probability"].numpy()[0] == pytest.approx(expected["probability"], abs=1e-5)
    assert out["label"].numpy()[0].decode() == expected["label"]
    assert bool(out["positive"].numpy()[0]) == expected["positive"]
    np.testing.assert_allclose(out["field_of_view_mm"].numpy()[0], np.array(hu.shape) * spacing)
    bad = hu.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        served(volume=tf.constant(bad[None]), spacing=tf.constant([spacing], tf.float32))


# === Data and preprocessing ===
def test_phantom_builtin_in_3d_is_balanced_windowed_liver_crops():
    from domains.healthcare.classify3d_data import PHANTOM_VOLUME_SHAPE, PHANTOM_VOLUMES, load
    from domains.healthcare.config import HealthcareDataConfig

    data = load(HealthcareDataConfig(source="builtin:phantom"), seed=2)
    assert data.class_names == ["no_lesion", "lesion"]
    volumes, labels = data.splits["train"].arrays()
    assert PHANTOM_VOLUME_SHAPE == (28, 28, 28)  # MedMNIST 3D's size
    assert volumes.shape[1:] == (*PHANTOM_VOLUME_SHAPE, 1) and volumes.dtype == np.uint8
    assert 0.4 < labels.mean() < 0.6 and volumes.max() == 255 and volumes.min() == 0
    assert sum(len(s) for s in data.splits.values()) == PHANTOM_VOLUMES


def test_phantom_crops_hold_the_liver_and_only_the_lesions_they_are_labelled_with():
    from domains.healthcare import phantom

    image, mask, spacing = phantom.phantom_crop(3, num_lesions=0)
    assert image.shape == mask.shape == phantom.CROP_SHAPE
    assert spacing == phantom.CROP_SPACING_MM == (4.0, 4.0, 4.0)
    np.testing.assert_array_equal(phantom.phantom_crop(3, num_lesions=0)[0], image)
    assert not (mask == phantom.LESION).any()
    for seed in range(6):  # centred on the liver's right lobe: mostly liver
        _, mask, _ = phantom.phantom_crop(seed, num_lesions=3)
        lesion = mask == phantom.LESION
        assert ((mask == phantom.LIVER) | lesion).mean() > 0.45
        # 1-3 lesions of 5-12 mm radius at 4 mm voxels: 3..3 x 4/3 pi 3^3 voxels in all
        assert 3 <= lesion.sum() <= 3 * 4 / 3 * np.pi * 3**3 + 30
    _, labels = phantom.phantom_classification(
        12, seed=4, dims=3, shape=(16, 16, 16), crop=True, spacing=(6.0, 6.0, 6.0)
    )
    assert labels.sum() == 6
    with pytest.raises(ValueError, match="3D"):
        phantom.phantom_classification(4, seed=0, dims=2, shape=(16, 16), crop=True)


def test_resize_is_trilinear_and_the_identity_at_the_same_size():
    from domains.healthcare.classify3d_data import prepare_volumes, resize_volumes

    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 255, (2, 6, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(resize_volumes(volume, (6, 5, 4)).numpy(), volume, atol=1e-4)
    ramp = np.broadcast_to(np.arange(8, dtype=np.float32)[None, None, None, :], (1, 8, 8, 8))
    up = resize_volumes(ramp, (8, 8, 16)).numpy()[0, 4, 4]
    assert np.all(np.diff(up) >= 0) and up[0] == pytest.approx(0) and up[-1] == pytest.approx(7)
    window = {"intensity": "window", "window": [-160.0, 240.0], "model_input": [4, 4, 4, 1]}
    hu = np.full((1, 8, 8, 8), 40.0, np.float32)  # the abdomen window's level: mid-grey
    np.testing.assert_allclose(prepare_volumes(hu, window).numpy(), 128.0, rtol=1e-5)


def test_bad_3d_input_is_refused_before_tensorflow(tmp_path, archive):
    multilabel = tmp_path / "multi.npz"
    np.savez(
        multilabel,
        train_images=np.zeros((4, 8, 8, 8), np.uint8),
        train_labels=np.zeros((4, 3), np.uint8),
    )
    flat = tmp_path / "flat.npz"
    np.savez(flat, train_images=np.zeros((4, 8, 8), np.uint8), train_labels=np.arange(4) % 2)
    volume_model = ["model.name=resnet3d"]
    calls = [
        f"pipelines.healthcare.train(data='npz:{multilabel}', overrides={volume_model}, "
        f"run_dir='{tmp_path}/a')",
        f"pipelines.healthcare.train(data='npz:{flat}', overrides={volume_model}, "
        f"run_dir='{tmp_path}/b')",
        f"pipelines.healthcare.train(data='npz:{archive}', run_dir='{tmp_path}/c')",
        f"pipelines.healthcare.train(config='classify3d', data='builtin:breastmnist', "
        f"run_dir='{tmp_path}/d')",
        f"pipelines.healthcare.train(overrides=['model.name=unet3d'], run_dir='{tmp_path}/e')",
    ]
    errors = errors_before_tensorflow(calls, REPO)
    assert "multi-label" in errors[0] and "(4, 3)" in errors[0]
    assert "are 2D; a volume model" in errors[1]
    assert "are 3D volumes (MedMNIST 3D)" in errors[2] and "classify3d" in errors[2]
    assert "builtin:phantom and npz:" in errors[3]
    assert "unet3d" in errors[4] and "cannot be trained by healthcare" in errors[4]
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_nan_volume_and_unknown_augmentation_are_user_errors(run, ct_volume, tmp_path, cli):
    hu, spacing = ct_volume
    bad = hu.copy()
    bad[0, 0, 0] = np.nan
    path = write_nifti(tmp_path / "nan.nii.gz", bad, spacing)
    code, out, err = cli("healthcare", "predict", "--run", str(run.path), str(path))
    assert code == 2 and out == ""
    assert "error:" in err and "NaN" in err and "Traceback" not in err
    code, _, err = cli("healthcare", "predict", "--run", str(run.path), str(REPO / "README.md"))
    assert code == 2 and "NIfTI" in err

    from domains.healthcare.classify3d_data import augmenter
    from shared.errors import UserError

    with pytest.raises(UserError, match="flip, contrast, brightness"):
        augmenter({"rotate": 0.1})
