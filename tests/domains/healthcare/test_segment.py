"""Healthcare segment: the Dice + CE loss, class-balanced sampling, a 2D phantom run and a
3D run on the three shipped hippocampus cases (every run file, Dice keys), predict to a
NIfTI mask on the input's own grid, the served mask and volumes, and bad input refused
before TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import REPO, errors_before_tensorflow, run_cli

DATA = Path(__file__).resolve().parent / "data"
HIPPOCAMPUS = DATA / "hippocampus"
PHANTOM_TINY = (
    "train.epochs=2",
    "train.batch_size=4",
    "segment.phantom_cases=16",
    "segment.phantom_shape=[32, 32]",
    "model.depth=2",
    "model.width=4",
)
HIPPOCAMPUS_TINY = (
    "train.epochs=1",
    "train.batch_size=2",
    "segment.patch_size=[16, 16, 16]",
    "segment.patches_per_case=2",
    "model.depth=2",
    "model.width=4",
)


@pytest.fixture(scope="module")
def phantom_run(trained_run):
    return trained_run("healthcare", "segment", PHANTOM_TINY)


@pytest.fixture(scope="module")
def hippocampus_run(trained_run):
    return trained_run("healthcare", "hippocampus", HIPPOCAMPUS_TINY, data=f"nifti:{HIPPOCAMPUS}")


# === Loss, metric and sampling ===
def test_dice_ce_loss_is_near_zero_when_right_and_large_when_wrong():
    from domains.healthcare.segment import DiceCrossEntropy, ForegroundDice

    labels = np.zeros((2, 8, 8), np.int32)
    labels[:, 2:5, 2:5] = 1
    labels[1, 6:, 6:] = 2
    right = np.eye(3, dtype=np.float32)[labels] * 0.998 + 0.001 / 3
    wrong = np.eye(3, dtype=np.float32)[(labels + 1) % 3]
    loss = DiceCrossEntropy(3)
    assert float(loss(labels, right)) < 0.02
    assert float(loss(labels, wrong)) > 5.0
    metric = ForegroundDice(3)
    metric.update_state(labels, right)
    assert float(metric.result()) == pytest.approx(1.0)
    metric.reset_state()
    metric.update_state(labels, wrong)
    assert float(metric.result()) == pytest.approx(0.0)


def test_class_balanced_sampler_centres_patches_on_every_class():
    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.seg_data import SegCase
    from domains.healthcare.segment import patch_sampler, prepare

    image = np.zeros((40, 40, 40), np.float32)
    mask = np.zeros((40, 40, 40), np.uint8)
    mask[2:4, 2:4, 2:4] = 1  # a tiny structure in one corner
    mask[30:38, 30:38, 30:38] = 2
    config = HealthcareConfig.model_validate(
        {"segment": {"dims": 3, "foreground_fraction": 1.0, "patches_per_case": 200}}
    )
    cases = prepare([SegCase("a", image, mask, (1.0, 1.0, 1.0))], (8, 8, 8), "none", None, 0)
    generate, count = patch_sampler(cases, (8, 8, 8), config, seed=0)
    patches = list(generate())
    assert len(patches) == count == 200
    assert all(p.shape == (8, 8, 8, 1) and m.shape == (8, 8, 8) for p, m in patches)
    with_one = sum(bool((m == 1).any()) for _, m in patches)
    with_two = sum(bool((m == 2).any()) for _, m in patches)
    assert with_one > 60 and with_two > 60  # about half each, though class 1 is 8 voxels


def test_rotation_turns_image_and_labels_together_in_the_axial_plane():
    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.seg_data import SegCase
    from domains.healthcare.seg_training import rotate_patch
    from domains.healthcare.segment import patch_sampler, prepare

    mask = np.zeros((16, 16, 4), np.uint8)
    mask[2:6, 6:10, :] = 1  # a block off-centre along the first axis
    mask[10:14, 6:10, :] = 2
    image = mask[..., None].astype(np.float32) * 100
    turned, labels = rotate_patch(image, mask, 90.0)
    np.testing.assert_array_equal(labels, np.rot90(mask, 1, axes=(0, 1)))
    np.testing.assert_allclose(turned[..., 0], labels * 100.0, atol=1e-3)
    _, small = rotate_patch(image, mask, 17.0)
    assert set(np.unique(small)) <= {0, 1, 2}  # nearest: no label between two others

    config = HealthcareConfig.model_validate(
        {"segment": {"dims": 3, "rotate": 30, "intensity_jitter": 0}}
    )
    case = SegCase("a", image[..., 0], mask, (1.0,) * 3)
    cases = prepare([case] * 50, (16, 16, 4), "none", None, 0)  # each patch is a whole case
    plain = HealthcareConfig.model_validate(
        {"segment": {**config.segment.model_dump(), "rotate": 0}}
    )
    rotated = [m for _, m in patch_sampler(cases, (16, 16, 4), config, seed=0)[0]()]
    unrotated = [m for _, m in patch_sampler(cases, (16, 16, 4), plain, seed=0)[0]()]
    changed = sum(not np.array_equal(m, mask) for m in rotated)
    assert all(np.array_equal(m, mask) for m in unrotated)
    assert 3 <= changed <= 25  # about a fifth of 50 patches turned


def test_auto_picks_the_unet_and_patch_for_the_source():
    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.seg_checks import model_name
    from domains.healthcare.seg_data import SegCase, SegData, patch_size

    phantom = HealthcareConfig.model_validate({"task": "segment", "model": {"name": "auto"}})
    assert model_name(phantom) == "unet" and patch_size(phantom) == (64, 64)
    volumes = phantom.model_copy(
        update={"data": phantom.data.model_copy(update={"source": f"nifti:{HIPPOCAMPUS}"})}
    )
    assert model_name(volumes) == "unet3d"
    cases = [
        SegCase(str(i), np.zeros(s, np.float32), None, (1, 1, 1))
        for i, s in enumerate([(35, 51, 36), (34, 49, 33), (90, 40, 37)])
    ]
    data = SegData("x", 3, ["background", "a"], "MR", {"train": cases})
    assert patch_size(volumes, data) == (40, 56, 40)  # median, up to a multiple of 2^3


def test_labels_on_a_resampled_grid_go_back_to_the_files_grid_and_axes(tmp_path):
    from domains.healthcare import seg_inputs, seg_metrics
    from domains.healthcare.volume import Volume, resample

    array = np.zeros((20, 24, 16), np.float32)
    array[2:12, 3:15, 4:12] = 1.0  # off-centre, so a flipped axis would show
    affine = np.diag([-1.0, -1.0, 1.5, 1.0])  # stored L-P-S: canonical flips two axes
    path = tmp_path / "lps.nii.gz"
    nib.save(nib.Nifti1Image(array, affine), path)
    item = seg_inputs.read_input(str(path))
    assert item.volume.orientation == ("R", "A", "S")
    grid = seg_inputs.model_grid(item.volume, {"spacing": [2.0, 2.0, 2.0], "dims": 3})
    assert grid.spacing == pytest.approx((2.0, 2.0, 2.0), rel=0.1)
    labels = resample(Volume(item.volume.array.astype(np.uint8), item.volume.affine), 2.0, 0)
    back = seg_inputs.back_to_input(labels.array, grid, item)
    assert back.shape == array.shape
    assert seg_metrics.dice(back == 1, array == 1) > 0.85  # on the file's own axes
    assert seg_metrics.dice(back[::-1] == 1, array == 1) < 0.5
    written = seg_inputs.write_mask(back, item, tmp_path / "mask.nii.gz")
    np.testing.assert_allclose(nib.load(written).affine, affine)


# === A 2D phantom run ===
def test_phantom_2d_run_writes_every_file_and_the_dice_keys(phantom_run):
    path = phantom_run.path
    for name in ("config.yaml", "history.csv", "model.keras", "MODEL_CARD.md", "log.txt"):
        assert (path / name).stat().st_size > 0, name
    assert list((path / "checkpoints").rglob("training_metadata.json"))
    assert list((path / "tensorboard").rglob("events.out.tfevents.*"))
    for plot in ("overlays.png", "training_curves.png"):
        assert (path / "plots" / plot).stat().st_size > 1000, plot
    m = json.loads((path / "metrics.json").read_text())
    assert m["task"] == "segment" and m["domain"] == "healthcare" and m["split"] == "test"
    for name in ("liver", "kidney", "spleen", "lesion"):
        assert 0.0 <= m[f"dice_{name}"] <= 1.0 and m[f"hd95_{name}"] >= 0.0
    assert m["dice"] == pytest.approx(
        np.mean([m[f"dice_{n}"] for n in ("liver", "kidney", "spleen", "lesion")])
    )
    assert m["num_examples"] == m["num_cases"] >= 1 and m["hd95_worst_case_count"] >= 0
    assert 0.0 <= m["lesion_sensitivity"] <= 1.0 and m["lesion_true"] >= 0
    with (path / "history.csv").open() as handle:
        header = handle.readline()
    assert "val_dice" in header and "val_loss" in header
    splits = json.loads((path / "data_splits.json").read_text())
    ids = splits["case_ids"]
    assert not set(ids["train"]) & set(ids["test"])  # held-out phantom seeds
    contract = json.loads((path / "inputs.json").read_text())
    assert contract["details"]["normalize"] == "window" and contract["details"]["dims"] == 2


def test_explain_draws_the_prediction_and_its_uncertainty(phantom_run, tmp_path):
    path = phantom_run.explain(out=str(tmp_path / "explain.png"))
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Path(path).stat().st_size > 5000


def test_predict_reads_a_dicom_series_and_writes_its_mask(phantom_run):
    from domains.healthcare.dicom_io import read_dicom
    from domains.healthcare.volume import canonical

    (result,) = phantom_run.predict([str(DATA / "ct")])
    volume = canonical(read_dicom(DATA / "ct"))
    written = nib.load(result["mask"])
    assert written.shape == volume.shape
    np.testing.assert_allclose(written.affine, volume.affine, atol=1e-6)
    assert {"volume_ml_liver", "volume_ml_kidney", "volume_ml_spleen"} <= set(result)


def test_phantom_export_serves_the_mask_and_volumes_predict_gives(phantom_run, tmp_path):
    import tensorflow as tf

    from domains.healthcare import seg_data
    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.segment import run_contract, segment_volume, with_window
    from shared import model_io

    result = phantom_run.export(to=tmp_path)
    meta = json.loads((result.path / "assets.extra" / "deepfield.json").read_text())
    assert meta["verification"]["checked"] is True
    served = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    config = HealthcareConfig.model_validate(phantom_run.config)
    case = seg_data.load(config, config.runtime.seed).splits["test"][0]
    out = served(
        image=tf.constant(case.image[None]), spacing=tf.constant([case.spacing], tf.float32)
    )
    mask = out["mask"].numpy()[0]
    assert mask.dtype == np.uint8 and mask.shape == case.image.shape
    contract = with_window(run_contract(phantom_run.dir))
    model = model_io.load_model(phantom_run.dir.model_path)
    here = segment_volume(model, case.image[..., None], contract, config)[..., 0]
    np.testing.assert_array_equal(mask, here)  # a whole 32x32 slice is one patch
    voxel_ml = np.prod(case.spacing) / 1000
    want = [np.sum(mask == c) * voxel_ml for c in range(1, 5)]
    np.testing.assert_allclose(out["volumes_ml"].numpy()[0], want, rtol=1e-5)


def test_phantom_3d_run_uses_the_3d_unet_and_sliding_windows(trained_run):
    run = trained_run(
        "healthcare",
        "segment",
        (
            "segment.dims=3",
            "segment.phantom_cases=4",
            "segment.phantom_shape=[24, 24, 16]",
            "segment.patch_size=[16, 16, 16]",
            "model.depth=2",
            "model.width=4",
            "train.epochs=1",
            "train.batch_size=2",
        ),
    )
    contract = json.loads((run.path / "inputs.json").read_text())["details"]
    assert contract["model"] == "unet3d" and contract["dims"] == 3
    m = run.metrics
    assert m["num_examples"] == 1 and {"dice_liver", "hd95_lesion", "lesion_sensitivity"} <= set(m)
    # HD95 in mm: 384 x 384 x 256 mm over 24 x 24 x 16 voxels is 16 mm each; the worst
    # case is the diagonal
    assert 0.0 <= m["hd95"] <= np.sqrt((24 * 16) ** 2 * 2 + (16 * 16) ** 2)


# === A 3D run on the shipped hippocampus cases ===
def test_hippocampus_3d_run_reports_dice_and_hd95_in_mm(hippocampus_run):
    m = hippocampus_run.metrics
    assert {"dice_anterior", "dice_posterior", "hd95_anterior", "hd95_posterior"} <= set(m)
    assert m["num_examples"] == 1 and m["split"] == "test"
    assert 0.0 <= m["dice"] <= 1.0
    # HD95 in mm: never above the diagonal of a ~36x50x36 mm crop (the worst case)
    assert 0.0 <= m["hd95"] <= np.sqrt(43**2 + 59**2 + 47**2)
    details = json.loads((hippocampus_run.path / "inputs.json").read_text())["details"]
    assert details["normalize"] == "zscore" and details["modality"] == "MR"
    assert details["patch_size"] == [16, 16, 16]  # test volumes go through sliding windows


def test_evaluate_on_another_source_scores_it_whole(hippocampus_run, tmp_path):
    out = tmp_path / "all.json"
    before = (hippocampus_run.path / "metrics.json").read_bytes()
    m = hippocampus_run.evaluate(data=f"nifti:{HIPPOCAMPUS.parent / HIPPOCAMPUS.name}/", out=out)
    assert m["split"] == "all" and m["num_examples"] == 3
    assert json.loads(out.read_text())["dice_anterior"] == m["dice_anterior"]
    assert (hippocampus_run.path / "metrics.json").read_bytes() == before


def test_evaluate_scores_one_image_with_its_mask(hippocampus_run, tmp_path):
    image = HIPPOCAMPUS / "imagesTr" / "hippocampus_003.nii.gz"
    mask = HIPPOCAMPUS / "labelsTr" / "hippocampus_003.nii.gz"
    m = hippocampus_run.evaluate(data=f"nifti:{image}", out=tmp_path / "one.json", mask=mask)
    assert m["split"] == "all" and m["num_examples"] == 1
    assert {"dice_anterior", "dice_posterior", "hd95"} <= set(m)


def test_3d_export_runs_predicts_sliding_windows_in_the_graph(hippocampus_run, tmp_path):
    """A volume larger than the patch (and one shorter than it on an axis) is served with
    the Gaussian sliding windows predict uses, so the masks agree."""
    import tensorflow as tf

    from domains.healthcare.config import HealthcareConfig
    from domains.healthcare.segment import run_contract, segment_volume, with_window
    from shared import model_io

    result = hippocampus_run.export(to=tmp_path)
    meta = json.loads((result.path / "assets.extra" / "deepfield.json").read_text())
    assert meta["patch_size"] == [16, 16, 16] and "sliding windows" in meta["input"]
    served = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    config = HealthcareConfig.model_validate(hippocampus_run.config)
    contract = with_window(run_contract(hippocampus_run.dir))
    model = model_io.load_model(hippocampus_run.dir.model_path)
    volume = np.asarray(
        nib.load(HIPPOCAMPUS / "imagesTr" / "hippocampus_001.nii.gz").dataobj, np.float32
    )
    for image in (volume, volume[:, :, :12]):  # 12 < 16: padded evenly, then cropped back
        assert any(side > 16 for side in image.shape)
        out = served(image=tf.constant(image[None]), spacing=tf.constant([[1.0, 1.0, 1.0]]))
        mask = out["mask"].numpy()[0]
        here = segment_volume(model, image, contract, config)
        assert mask.shape == image.shape
        assert (mask == here).mean() > 0.999  # equal but for float ties between classes


def test_predict_writes_a_mask_on_the_inputs_grid_and_affine(hippocampus_run, tmp_path):
    image = HIPPOCAMPUS / "imagesTr" / "hippocampus_001.nii.gz"
    original = nib.load(image)
    # The same voxels stored flipped on two axes (LPS): the mask must follow the file.
    flipped_data = np.asarray(original.dataobj)[::-1, ::-1, :]
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(original.shape[:2]) - 1
    flipped = tmp_path / "flipped.nii.gz"
    nib.save(nib.Nifti1Image(flipped_data, original.affine @ flip), flipped)
    results = hippocampus_run.predict([str(image), str(flipped)])
    assert len(results) == 2
    masks = []
    for result, source in zip(results, (image, flipped), strict=True):
        written = nib.load(result["mask"])
        assert Path(result["mask"]).name.endswith("_mask.nii.gz")
        np.testing.assert_allclose(written.affine, nib.load(source).affine, atol=1e-6)
        assert written.shape == nib.load(source).shape
        masks.append(np.asarray(written.dataobj))
        assert {"volume_ml_anterior", "volume_ml_posterior"} <= set(result)
        voxels = (masks[-1] == 1).sum() * np.prod(original.header.get_zooms()[:3]) / 1000
        assert result["volume_ml_anterior"] == pytest.approx(voxels, abs=1e-3)
    np.testing.assert_array_equal(masks[1], masks[0][::-1, ::-1, :])


# === Bad input ===
def test_bad_segment_input_is_refused_before_tensorflow(tmp_path):
    no_masks = tmp_path / "scans"
    (no_masks / "imagesTr").mkdir(parents=True)
    image = nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4))
    nib.save(image, no_masks / "imagesTr" / "a.nii.gz")
    single = no_masks / "imagesTr" / "a.nii.gz"
    shifted = tmp_path / "shifted.nii.gz"
    moved = np.eye(4)
    moved[0, 3] = 5.0
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), moved), shifted)
    segment = "task='segment'"
    calls = [
        f"pipelines.healthcare.train({segment}, data='builtin:breastmnist', run_dir='{tmp_path}/a')",
        f"pipelines.healthcare.train({segment}, data='nifti:{no_masks}', run_dir='{tmp_path}/b')",
        f"pipelines.healthcare.train({segment}, data='nifti:{single}', run_dir='{tmp_path}/c')",
        f"pipelines.healthcare.train({segment}, data='nifti:{single}', "
        f"overrides=['data.mask={shifted}'], run_dir='{tmp_path}/d')",
        f"pipelines.healthcare.train({segment}, overrides=['model.name=resnet'], "
        f"run_dir='{tmp_path}/e')",
        f"pipelines.healthcare.train({segment}, overrides=['segment.patch_size=[60, 60]'], "
        f"run_dir='{tmp_path}/f')",
        f"pipelines.healthcare.train(data='nifti:{HIPPOCAMPUS}', run_dir='{tmp_path}/g')",
    ]
    errors = errors_before_tensorflow(calls, REPO)
    assert "builtin:breastmnist has no masks" in errors[0]
    assert "segment needs masks" in errors[1] and "labelsTr" in errors[1]
    assert "data.mask" in errors[2]
    assert "does not match image" in errors[3] and "affines differ" in errors[3]
    assert "model.name=unet" in errors[4]
    assert "multiple of 16" in errors[5]
    assert "--task segment" in errors[6]
    assert not any((tmp_path / name).exists() for name in "abcdefg")


def test_segment_on_a_classification_set_is_exit_2_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "healthcare",
        "train",
        "--task",
        "segment",
        "--data",
        "builtin:breastmnist",
        "--run-dir",
        str(run_dir),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "no masks" in lines[0]
    assert not run_dir.exists()


def test_compress_prunes_the_segmenter_and_refuses_distillation(phantom_run, tmp_path, cli):
    """A U-Net run prunes through its own training; distillation (the classifiers' recipe,
    measured to fail a U-Net) and Keras int8 (no Dense layer) are one error line each."""
    import pipelines

    pruned = pipelines.healthcare.compress(phantom_run, prune=0.5, run_dir=tmp_path / "p")
    assert pruned.metrics["sparsity"] >= 0.5 * 0.99
    assert "dice" in pruned.metrics and "original_dice" in pruned.metrics
    (result,) = pruned.predict([str(DATA / "ct")])
    assert {"volume_ml_liver", "volume_ml_kidney", "volume_ml_spleen"} <= set(result)
    run = str(phantom_run.path)
    for extra, message in (
        (["--distill-from", run], "--distill-from does not support healthcare segment runs"),
        (["--quantize", "int8"], "--quantize does not support healthcare segment runs"),
    ):
        code, _, err = cli(
            "healthcare", "compress", "--run", run, *extra, "--run-dir", str(tmp_path / "x")
        )
        assert code == 2 and message in err, err
    assert not (tmp_path / "x").exists()
