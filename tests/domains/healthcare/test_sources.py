"""Healthcare data sources built from a real project's files: `csv:` manifests (segment:
image and mask paths; classify: image paths and labels), split grouped by patient, and
`dicom:` / `nrrd:` images with a `data.mask` label map (NIfTI, NRRD or a DICOM series),
each pair through the geometry audit; bad manifests refused before TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from domains.healthcare.config import HealthcareConfig
from shared.errors import UserError
from tests.conftest import REPO, errors_before_tensorflow

DATA = Path(__file__).resolve().parent / "data"
CT = DATA / "ct"
LIVER = DATA / "liver_seg.nrrd"
HIPPOCAMPUS = DATA / "hippocampus"
CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_039")
BREAST = REPO / "domains" / "healthcare" / "data" / "breastmnist.npz"
SEGMENT_TINY = (
    "train.epochs=1",
    "train.batch_size=2",
    "segment.patch_size=[16, 16, 16]",
    "segment.patches_per_case=1",
    "model.depth=2",
    "model.width=4",
    "data.spacing=[2, 2, 2]",  # keeps the evaluation on the 512x512 CT quick
    "data.class_names=[anterior, posterior]",
)
CLASSIFY_TINY = (
    "train.epochs=1",
    "train.batch_size=16",
    "model.width=8",
    "data.validation_split=0.25",
    "data.test_split=0.25",
)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def segment_manifest(folder: Path, patients=("P1", "P1", "P2", "P3")) -> Path:
    """The three hippocampus cases (and 001 again as a fourth patient) with paths relative
    to the CSV's folder; patient P1 has two rows."""
    rows = []
    for case, patient in zip((*CASES, CASES[0]), patients, strict=False):
        image = os.path.relpath(HIPPOCAMPUS / "imagesTr" / f"{case}.nii.gz", folder)
        mask = os.path.relpath(HIPPOCAMPUS / "labelsTr" / f"{case}.nii.gz", folder)
        rows.append([image, mask, patient])
    return write_csv(folder / "segment.csv", ["image", "mask", "patient_id"], rows)


def segment_config(source: str, **data) -> HealthcareConfig:
    return HealthcareConfig.model_validate({"task": "segment", "data": {"source": source, **data}})


def ct_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in CT.glob("*.dcm"):
        shutil.copy(path, folder / path.name)
    return folder


def classify_manifest(folder: Path, images=48, patients=12) -> tuple[Path, dict[bytes, str]]:
    """BreastMNIST images as PNG files, `images // patients` per patient with both labels
    among each patient's images; (manifest, patient of each image's pixel bytes)."""
    archive = np.load(BREAST)
    x, y = archive["train_images"], archive["train_labels"]
    picked = np.concatenate([np.flatnonzero(y == 0)[: images // 2], np.flatnonzero(y == 1)])
    picked = picked[: images // 2 * 2]
    picked = np.stack([picked[: images // 2], picked[images // 2 :]], 1).ravel()  # 0,1,0,1,..
    (folder / "png").mkdir(parents=True, exist_ok=True)
    rows, owner = [], {}
    for k, index in enumerate(picked):
        name = f"png/img_{k:03d}.png"
        Image.fromarray(x[index]).save(folder / name)
        patient = f"patient_{k // (images // patients):02d}"
        label = "malignant" if y[index] == 0 else "benign"
        rows.append([name, label, patient])
        owner[x[index].tobytes()] = patient
    return write_csv(folder / "classify.csv", ["image", "label", "patient_id"], rows), owner


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("manifests")
    classify, _ = classify_manifest(root)
    return {"segment": segment_manifest(root), "classify": classify, "ct": ct_copy(root / "ct")}


# === Segment manifests ===
def test_segment_manifest_keeps_a_patients_rows_in_one_split(tmp_path):
    from domains.healthcare import seg_data

    manifest = segment_manifest(tmp_path)
    config = segment_config(f"csv:{manifest}", class_names=["anterior", "posterior"])
    for seed in range(4):
        data = seg_data.load(config, seed)
        ids = data.report["case_ids"]
        patients = data.report["patient_ids"]
        assert data.report["method"] == "grouped by patient" and data.report["groups"] == 3
        together = [name for name, part in ids.items() if set(part) & {"hippocampus_001@row1"}]
        assert "hippocampus_003" in ids[together[0]]  # P1's two rows share their split
        assert sorted(sum(patients.values(), [])) == ["P1", "P2", "P3"]  # none straddles
    assert data.label_names == ["background", "anterior", "posterior"]
    assert data.modality is None and seg_data.normalize_mode(config, data.modality) == "zscore"
    case = data.splits["train"][0]
    assert case.mask.shape == case.image.shape and case.mask.max() >= 1
    no_patients = write_csv(
        tmp_path / "rows.csv",
        ["image", "mask"],
        [[HIPPOCAMPUS / d / f"{c}.nii.gz" for d in ("imagesTr", "labelsTr")] for c in CASES],
    )
    data = seg_data.load(segment_config(f"csv:{no_patients}"), 0)
    assert data.report["method"] == "grouped by case" and data.report["groups"] == 3
    assert data.label_names == ["background", "label_1", "label_2"]


def test_dicom_series_with_an_nrrd_or_dicom_mask_passes_the_audit(tmp_path):
    from domains.healthcare import seg_data

    series = ct_copy(tmp_path / "ct")
    config = segment_config(f"dicom:{series}", mask=str(LIVER))
    (case,) = seg_data.load(config, 0, whole=True).splits["all"]
    liver = case.mask > 0
    assert case.image.shape == (512, 512, 3) and liver.sum() == 107098
    assert 20 < np.median(case.image[liver]) < 80  # soft-tissue HU under the mask: aligned
    data = seg_data.load(config, 0, whole=True)
    assert data.modality == "CT" and seg_data.normalize_mode(config, data.modality) == "window"
    # A DICOM mask series: copies of the slices whose pixel values are labels.
    masks = tmp_path / "mask_series"
    masks.mkdir()
    for path in sorted(series.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        ds.PixelData = ((hu > 0) & (hu < 100)).astype(ds.pixel_array.dtype).tobytes()
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.save_as(masks / path.name)
    manifest = write_csv(tmp_path / "m.csv", ["image", "mask"], [["ct", "mask_series"]])
    (case,) = seg_data.load(segment_config(f"csv:{manifest}"), 0, whole=True).splits["all"]
    np.testing.assert_array_equal(case.mask, ((case.image > 0) & (case.image < 100)))
    # The liver map is not on a hippocampus grid: the audit names both files.
    image = HIPPOCAMPUS / "imagesTr" / "hippocampus_001.nii.gz"
    with pytest.raises(UserError, match="does not match image") as err:
        seg_data.load(segment_config(f"nifti:{image}", mask=str(LIVER)), 0, whole=True)
    assert str(LIVER) in str(err.value) and str(image) in str(err.value)


def test_modality_is_the_configured_one_else_inferred_from_hounsfield_units():
    from domains.healthcare.seg_data import _modality
    from domains.healthcare.volume import Volume

    mr = Volume(np.full((4, 4, 4), 300.0, np.float32), np.eye(4))
    air = Volume(np.full((4, 4, 4), -1000.0, np.float32), np.eye(4))
    assert _modality(segment_config("builtin:phantom"), [mr]) is None
    assert _modality(segment_config("builtin:phantom"), [air, mr]) == "CT"
    assert _modality(segment_config("builtin:phantom", modality="mr"), [air]) == "MR"
    tagged = Volume(air.array, np.eye(4), modality="PT")
    with pytest.raises(UserError, match="several modalities"):
        _modality(segment_config("builtin:phantom"), [air, tagged])


def test_segment_manifest_trains_and_the_run_scores_a_dicom_series_with_an_nrrd_mask(
    trained_run, manifests, cli, tmp_path
):
    run = trained_run("healthcare", "hippocampus", SEGMENT_TINY, data=f"csv:{manifests['segment']}")
    m = run.metrics
    assert {"dice_anterior", "dice_posterior"} <= set(m) and m["split"] == "test"
    splits = json.loads((run.path / "data_splits.json").read_text())
    assert splits["method"] == "grouped by patient"
    out = tmp_path / "ct.json"
    code, _, err = cli(
        "healthcare",
        "evaluate",
        "--run",
        str(run.path),
        "--data",
        f"dicom:{manifests['ct']}",
        "--mask",
        str(LIVER),
        "--out",
        str(out),
    )
    assert code == 0, err
    scored = json.loads(out.read_text())
    assert scored["split"] == "all" and scored["num_examples"] == 1
    assert 0.0 <= scored["dice_anterior"] <= 1.0  # label 1 of the liver map, run's name


# === Classify manifests ===
def test_classify_manifest_splits_by_patient_and_reads_labels(tmp_path):
    from domains.healthcare.config import HealthcareDataConfig
    from domains.healthcare.data import load

    manifest, owner = classify_manifest(tmp_path)
    for seed in range(3):
        data = load(HealthcareDataConfig(source=f"csv:{manifest}"), seed)
        seen: dict[str, set] = {}
        for name, split in data.splits.items():
            images, labels = split.arrays()
            assert set(labels.tolist()) == {0, 1}  # stratified as well as grouped
            for image in images:
                seen.setdefault(owner[image[..., 0].tobytes()], set()).add(name)
        assert len(seen) == 12 and all(len(parts) == 1 for parts in seen.values())
    assert data.class_names == ["benign", "malignant"] and data.image_shape == (28, 28, 1)
    assert data.split_info["groups"] == 12
    named = load(
        HealthcareDataConfig(
            source=f"csv:{manifest}", class_names=["malignant", "benign"], image_size=(16, 16)
        ),
        0,
    )
    assert named.class_names == ["malignant", "benign"] and named.image_shape == (16, 16, 1)


def test_integer_labels_and_a_dicom_slice_windowed_as_predict_reads_it(tmp_path):
    from domains.healthcare.config import HealthcareDataConfig
    from domains.healthcare.data import window_to_uint8
    from domains.healthcare.manifest import decode_images, manifest_labels, read_manifest

    slice_path = CT / "ct-3slice-01.dcm"
    png = tmp_path / "a.png"
    Image.fromarray(np.full((512, 512, 3), 200, np.uint8)).save(png)
    manifest_path = write_csv(
        tmp_path / "m.csv", ["file", "y"], [[slice_path, 1], [png, 0], [png, 1]]
    )
    data = HealthcareDataConfig(
        source=f"csv:{manifest_path}", image_column="file", label_column="y", window="liver"
    )
    manifest = read_manifest(data.source, data, "classify")
    assert manifest.patient_column is None and list(manifest.groups()) == [
        "row 1",
        "row 2",
        "row 3",
    ]
    ids, names = manifest_labels(manifest, ["normal", "lesion"])
    assert ids.tolist() == [1, 0, 1] and names == ["normal", "lesion"]
    images = decode_images(manifest, data)
    assert images.shape == (3, 512, 512, 3)  # a colour PNG makes every image RGB
    ds = pydicom.dcmread(slice_path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(images[0, ..., 1], window_to_uint8(hu, "liver"))
    assert (images[1] == 200).all()


def test_classify_manifest_trains_a_calibrated_classifier(trained_run, manifests):
    run = trained_run("healthcare", "default", CLASSIFY_TINY, data=f"csv:{manifests['classify']}")
    m = run.metrics
    assert m["split"] == "test" and m["num_examples"] == 12 and 0.0 <= m["roc_auc"] <= 1.0
    splits = json.loads((run.path / "data_splits.json").read_text())
    assert splits["groups"] == 12 and splits["patient_column"] == "patient_id"
    assert set(splits["splits"]["test"]["class_counts"]) == {"benign", "malignant"}


# === Bad input ===
def test_bad_manifests_and_single_images_are_refused_before_tensorflow(tmp_path):
    png = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(png)
    no_label = write_csv(tmp_path / "a.csv", ["image", "diagnosis"], [[png, "a"], [png, "b"]])
    missing = write_csv(tmp_path / "b.csv", ["image", "label"], [[png, "a"], ["gone.png", "b"]])
    one_class = write_csv(tmp_path / "c.csv", ["image", "label"], [[png, "a"], [png, "a"]])
    image = HIPPOCAMPUS / "imagesTr" / "hippocampus_001.nii.gz"
    no_mask = write_csv(tmp_path / "d.csv", ["image", "patient_id"], [[image, "P1"]])
    series = ct_copy(tmp_path / "ct")
    seg = "task='segment', "
    calls = [
        f"pipelines.healthcare.train(data='csv:{tmp_path}/none.csv', run_dir='{tmp_path}/r0')",
        f"pipelines.healthcare.train(data='csv:{no_label}', run_dir='{tmp_path}/r1')",
        f"pipelines.healthcare.train(data='csv:{missing}', run_dir='{tmp_path}/r2')",
        f"pipelines.healthcare.train(data='csv:{one_class}', run_dir='{tmp_path}/r3')",
        f"pipelines.healthcare.train({seg}data='csv:{no_mask}', run_dir='{tmp_path}/r4')",
        f"pipelines.healthcare.train({seg}data='dicom:{series}', run_dir='{tmp_path}/r5')",
        f"pipelines.healthcare.train({seg}data='dicom:{series}', "
        f"overrides=['data.mask={LIVER}'], run_dir='{tmp_path}/r6')",
        f"pipelines.healthcare.train(data='nrrd:{LIVER}', run_dir='{tmp_path}/r7')",
    ]
    errors = errors_before_tensorflow(calls, REPO)
    assert "does not exist" in errors[0] and "none.csv" in errors[0]
    assert "no column 'label'" in errors[1] and "'image', 'diagnosis'" in errors[1]
    assert "row 2" in errors[2] and str(tmp_path / "gone.png") in errors[2]
    assert "one class ('a'" in errors[3]
    assert "no column 'mask'" in errors[4] and "segment needs a mask" in errors[4]
    assert "data.mask" in errors[5] and "without a label map" in errors[5]
    assert "evaluation only" in errors[6] and "--mask" in errors[6]
    assert "use --task segment" in errors[7]
    assert not any((tmp_path / f"r{k}").exists() for k in range(8))


def test_bad_manifest_on_the_cli_is_one_error_line_and_exit_2(cli, tmp_path):
    manifest = write_csv(tmp_path / "m.csv", ["path", "label"], [["a.png", "x"]])
    code, _, err = cli(
        "healthcare", "train", "--data", f"csv:{manifest}", "--run-dir", str(tmp_path / "run")
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:")
    assert "no column 'image'" in lines[0] and "columns found: 'path', 'label'" in lines[0]
    assert not (tmp_path / "run").exists()
