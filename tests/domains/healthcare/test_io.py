"""Healthcare volume I/O: DICOM series, NIfTI, MSD folders, NRRD label maps, geometry checks.

Fixtures: real CT slices and their liver label map (dcmqi test data), three MSD hippocampus
cases (see data/README.md), pydicom's bundled test files, and copies modified in tmp_path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from domains.healthcare.dicom_io import read_dicom
from domains.healthcare.nifti_io import read_msd, read_nifti, read_nifti_source, read_nrrd
from domains.healthcare.volume import Volume, audit, canonical, resample, to_nifti, world
from shared.errors import UserError

DATA = Path(__file__).resolve().parent / "data"
CT = DATA / "ct"
LIVER = DATA / "liver_seg.nrrd"
MSD = DATA / "hippocampus"
CT_UID = "1.2.392.200103.20080913.113635.1.2009.6.22.21.43.10.23430.1"
SMARTSCORE_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"  # 5 CT slices, 2.5 mm
BRAIN_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1196530851.28319.0.2"  # 4 CT slices with a gap


@pytest.fixture(scope="module")
def ct() -> Volume:
    return read_dicom(CT)


def ct_slices() -> list[pydicom.Dataset]:
    """The three CT slices, fully read, in file-name order (z = -126.69, -127.69, -128.69)."""
    return [pydicom.dcmread(p) for p in sorted(CT.glob("*.dcm"))]


def save(datasets, folder: Path, names=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, ds in enumerate(datasets):
        ds.save_as(folder / (names[k] if names else f"s{k}.dcm"))
    return folder


def voxel_at(volume: Volume, point: np.ndarray) -> tuple[int, int, int]:
    """The voxel index whose centre is at world `point` (asserting it is a voxel centre)."""
    index = np.linalg.solve(volume.affine[:3, :3], point - volume.affine[:3, 3])
    assert np.allclose(index, np.round(index), atol=1e-3), index
    return tuple(int(v) for v in np.round(index))


# --- DICOM ------------------------------------------------------------------------------


def test_ct_series_in_position_order_as_hounsfield_units(ct):
    assert ct.shape == (512, 512, 3) and ct.array.dtype == np.float32
    assert ct.modality == "CT" and ct.meta["patient_id"] == "99000" and ct.meta["n_slices"] == 3
    assert ct.meta["series_uid"] == CT_UID
    assert np.allclose(ct.spacing, (0.810547, 0.810547, 1.0), atol=1e-6)  # SliceThickness: 1.25
    assert ct.orientation == ("L", "P", "S")  # DICOM's own layout, in RAS+ terms
    assert [Path(f).name for f in ct.meta["files"]] == [f"ct-3slice-0{i}.dcm" for i in (3, 2, 1)]
    assert ct.array.min() == -3024 and np.median(ct.array) < -500  # HU: air, outside the FOV


def hand_placed(ds: pydicom.Dataset, row: int, col: int) -> tuple[np.ndarray, float]:
    """RAS world point and value of pixel (row, col), worked out from the file's own tags."""
    iop = np.array(ds.ImageOrientationPatient, float)
    lps = (
        np.array(ds.ImagePositionPatient, float)
        + col * float(ds.PixelSpacing[1]) * iop[:3]  # PixelSpacing[1]: between columns
        + row * float(ds.PixelSpacing[0]) * iop[3:]  # PixelSpacing[0]: between rows
    )
    hu = ds.pixel_array[row, col] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return lps * [-1, -1, 1], hu


def test_affine_places_a_dicom_pixel_where_dicom_says(ct):
    ras, hu = hand_placed(pydicom.dcmread(CT / "ct-3slice-01.dcm"), row=100, col=300)
    for volume in (ct, canonical(ct)):
        assert volume.array[voxel_at(volume, ras)] == hu


def test_sagittal_slices_with_non_square_pixels(tmp_path):
    """Rows 0.5 mm apart, columns 0.8 mm: the two PixelSpacing values must not be swapped."""
    slices = ct_slices()
    for ds, x in zip(slices, (6.0, 5.0, 7.0), strict=True):
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # rows run posterior, columns down
        ds.ImagePositionPatient = [x, 10.0, 20.0]  # normal: -x (LPS), x = 7, 6, 5 in order
        ds.PixelSpacing = [0.5, 0.8]
    volume = read_dicom(save(slices, tmp_path / "sagittal"))
    assert volume.spacing == pytest.approx((0.8, 0.5, 1.0))
    assert volume.orientation == ("P", "I", "R")  # i posterior, j down, k to the right
    for ds in slices:
        ras, hu = hand_placed(ds, row=400, col=37)
        for v in (volume, canonical(volume)):
            assert v.array[voxel_at(v, ras)] == hu
    assert canonical(volume).spacing == pytest.approx((1.0, 0.8, 0.5))


def test_dicom_to_nifti_round_trip_keeps_world_coordinates(ct, tmp_path):
    volume = canonical(ct)
    assert volume.orientation == ("R", "A", "S")
    back = read_nifti(to_nifti(volume, tmp_path / "ct.nii.gz"))
    assert back.orientation == ("R", "A", "S") and back.shape == volume.shape
    assert np.abs(back.affine - volume.affine).max() < 1e-4
    corners = np.array([[0, 0, 0], [511, 511, 2], [511, 0, 1]])
    assert np.abs(world(back, corners) - world(volume, corners)).max() < 1e-4
    assert np.array_equal(back.array, volume.array)


def test_liver_nrrd_lies_on_the_ct_grid(ct):
    mask = read_nrrd(LIVER)
    assert mask.meta["nrrd_space"] == "left-posterior-superior"
    assert mask.orientation == ("R", "A", "S") and np.issubdtype(mask.array.dtype, np.integer)
    image = canonical(ct)
    audit(image, mask)
    liver = mask.array > 0
    assert liver.sum() == 107098
    assert 20 < np.median(image.array[liver]) < 80  # soft tissue HU: the mask is aligned


def test_order_comes_from_positions_not_file_names_or_instance_numbers(ct, tmp_path):
    slices = ct_slices()
    for ds, number in zip(slices, (2, 3, 1), strict=True):
        ds.InstanceNumber = number
    folder = save(slices, tmp_path / "shuffled", names=["b.dcm", "c.dcm", "a.dcm"])
    volume = read_dicom(folder)
    assert np.array_equal(volume.array, ct.array)
    assert np.allclose(volume.affine, ct.affine)


def test_slice_spacing_comes_from_positions_not_slice_thickness(tmp_path):
    slices = ct_slices()
    for ds in slices:
        ds.SliceThickness = 5.0
        ds.SpacingBetweenSlices = 3.0
    volume = read_dicom(save(slices, tmp_path / "thick"))
    assert volume.spacing[2] == pytest.approx(1.0, abs=1e-6)
    assert volume.meta["slice_spacing_from"] == "ImagePositionPatient"


def test_uneven_slice_spacing_is_refused(tmp_path):
    slices = ct_slices()
    slices[2].ImagePositionPatient[2] = -129.69  # 1 mm then 2 mm: a missing slice
    with pytest.raises(UserError, match=r"not uniform \(1 mm x1, 2 mm x1\)"):
        read_dicom(save(slices, tmp_path / "gap"))


def test_duplicate_slice_positions_are_refused(tmp_path):
    slices = ct_slices()
    slices[1].ImagePositionPatient = slices[0].ImagePositionPatient
    with pytest.raises(UserError, match="duplicate slice position"):
        read_dicom(save(slices, tmp_path / "dup"))


def test_two_series_are_listed_and_one_can_be_picked(tmp_path):
    folder = save(ct_slices(), tmp_path / "two")
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "small.dcm")
    with pytest.raises(UserError, match="2 series") as error:
        read_dicom(folder)
    message = str(error.value)
    other = pydicom.dcmread(folder / "small.dcm").SeriesInstanceUID
    assert f"{CT_UID} (CT, 'no description', 3 slices)" in message
    assert f"{other} (CT, 'no description', 1 slices)" in message
    assert read_dicom(folder, series=CT_UID).shape == (512, 512, 3)
    single = read_dicom(folder, series="1.3.6")  # a unique prefix
    assert single.shape == (128, 128, 1) and single.spacing[2] == pytest.approx(5.0)
    assert single.meta["slice_spacing_from"] == "SpacingBetweenSlices (single slice)"
    with pytest.raises(UserError, match="matches several series"):
        read_dicom(folder, series="1.")


def test_dicomdir_lists_series_and_reads_the_chosen_one():
    dicomdir = get_testdata_file("DICOMDIR")
    with pytest.raises(UserError, match=f"series, pick one with series=.*{SMARTSCORE_UID}"):
        read_dicom(dicomdir)
    volume = read_dicom(dicomdir, series=SMARTSCORE_UID)
    assert volume.shape[2] == 5 and volume.spacing[2] == pytest.approx(2.5, abs=1e-4)
    with pytest.raises(UserError, match=r"not uniform \(1.25 mm x2, 202.5 mm x1\)"):
        read_dicom(dicomdir, series=BRAIN_UID)  # a real series with a gap


def test_non_dicom_files_in_a_folder_are_skipped_and_counted(ct, tmp_path):
    folder = save(ct_slices(), tmp_path / "mixed")
    (folder / "README").write_text("scan notes\n")
    (folder / "._s0.dcm").write_bytes(b"\x00\x05\x16\x07" + bytes(200))  # macOS AppleDouble
    volume = read_dicom(folder)
    assert volume.meta["skipped_files"] == 2 and np.array_equal(volume.array, ct.array)


def test_bad_inputs_are_user_errors_naming_the_file(tmp_path):
    data = (CT / "ct-3slice-01.dcm").read_bytes()
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=f"{truncated}: pixel data unreadable, truncated"):
        read_dicom(truncated)
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match=f"{noise}: not a DICOM file"):
        read_dicom(noise)
    ds = ct_slices()[0]
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    with pytest.raises(UserError, match="nopixels.dcm: DICOM file has no pixel data"):
        read_dicom(tmp_path / "nopixels.dcm")
    with pytest.raises(UserError, match="no DICOM images with pixel data"):
        read_dicom(save([ds], tmp_path / "nopixels"))
    with pytest.raises(UserError, match="missing.dcm: no such file or folder"):
        read_dicom(tmp_path / "missing.dcm")


def test_compressed_syntax_without_its_decoder_names_what_to_install():
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    try:
        _ = pydicom.dcmread(path).pixel_array
    except RuntimeError:
        pass
    else:
        pytest.skip("a JPEG-LS decoder is installed")
    with pytest.raises(UserError, match="cannot decode JPEG-LS.*pip install pylibjpeg"):
        read_dicom(path)


# --- NIfTI, MSD, NRRD -------------------------------------------------------------------


def test_msd_folder_with_label_names_ignores_stray_files(tmp_path):
    root = shutil.copytree(MSD, tmp_path / "Task04_Hippocampus")
    (root / "imagesTr" / "._hippocampus_001.nii.gz").write_bytes(b"\x00\x05\x16\x07" + bytes(80))
    dataset = read_msd(root)
    assert dataset.name == "Hippocampus" and dataset.modality == "MR"
    assert dataset.labels == ["background", "Anterior", "Posterior"]
    assert [c.id for c in dataset.cases] == [
        "hippocampus_001",
        "hippocampus_003",
        "hippocampus_039",
    ]
    for case in dataset.cases:  # uint8 and float32 images, a float32 label map
        image, mask = dataset.load(case)
        assert image.array.dtype == np.float32 and image.modality == "MR"
        assert mask.array.dtype == np.uint8 and set(np.unique(mask.array)) == {0, 1, 2}
        assert image.orientation == ("R", "A", "S") and image.spacing == (1.0, 1.0, 1.0)
    assert isinstance(read_nifti_source(root / "imagesTr" / "hippocampus_001.nii.gz"), Volume)


def test_msd_listed_file_missing_is_named(tmp_path):
    root = shutil.copytree(MSD, tmp_path / "msd")
    (root / "labelsTr" / "hippocampus_003.nii.gz").unlink()
    with pytest.raises(UserError, match="listed label .*hippocampus_003.nii.gz does not exist"):
        read_msd(root)
    spec = json.loads((root / "dataset.json").read_text())
    del spec["training"]
    (root / "dataset.json").write_text(json.dumps(spec))
    with pytest.raises(UserError, match="no 'training' list"):
        read_msd(root)


def test_mask_with_another_affine_is_refused_naming_both(tmp_path):
    image = read_nifti(MSD / "imagesTr" / "hippocampus_001.nii.gz")
    label = nib.load(MSD / "labelsTr" / "hippocampus_001.nii.gz")
    shifted = label.affine.copy()
    shifted[:3, 3] += [0.0, 2.0, 0.0]
    moved = tmp_path / "moved_label.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj), shifted), moved)
    mask = read_nifti(moved, label=True)
    with pytest.raises(UserError, match=r"mask .*moved_label.* image .*hippocampus_001.*2 mm"):
        audit(image, mask)
    with pytest.raises(UserError, match=r"shape \(35, 51, 34\) vs \(35, 51, 35\)"):
        audit(image, Volume(mask.array[..., :34], mask.affine, source="cropped"))


def test_nan_voxels_are_refused_unless_replaced(tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    array[0, 0, :3] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)
    with pytest.raises(UserError, match=f"{path}: 3 NaN voxels"):
        read_nifti(path)
    zero = read_nifti(path, on_nan="zero")
    assert zero.array[0, 0, 0] == 0 and zero.meta["nan_replaced"] == 3
    mean = read_nifti(path, on_nan="mean")
    assert mean.array[0, 0, 0] == pytest.approx(np.nanmean(array))


def test_missing_or_corrupt_nifti_and_nrrd_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_nifti(tmp_path / "none.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes((MSD / "imagesTr" / "hippocampus_001.nii.gz").read_bytes()[:3000])
    with pytest.raises(UserError, match=f"{bad}: unreadable NIfTI"):
        read_nifti(bad)
    garbage = tmp_path / "bad.nrrd"
    garbage.write_bytes(b"not a nrrd file\n")
    with pytest.raises(UserError, match=f"{garbage}: unreadable NRRD"):
        read_nrrd(garbage)


def test_nifti_reference_file_is_reoriented_like_nibabel():
    from nibabel.testing import data_path

    path = Path(data_path) / "example4d.nii.gz"  # 4D, two frames: refused
    with pytest.raises(UserError, match="expected a 3D volume"):
        read_nifti(path)
    path = Path(data_path) / "anatomical.nii"  # LAS, big-endian int16
    volume = read_nifti(path)
    expected = nib.as_closest_canonical(nib.load(path))
    assert np.allclose(volume.affine, expected.affine)
    assert np.allclose(volume.array, expected.get_fdata())


# --- geometry ---------------------------------------------------------------------------


def test_canonical_of_an_lps_volume_keeps_world_coordinates():
    rng = np.random.default_rng(0)
    array = rng.permutation(4 * 5 * 6).reshape(4, 5, 6).astype(np.float32)
    affine = np.array([[-2.0, 0, 0, 10], [0, -3.0, 0, 20], [0, 0, 4.0, -30], [0, 0, 0, 1]])
    lps = Volume(array, affine, source="lps")
    assert lps.orientation == ("L", "P", "S")
    ras = canonical(lps)
    assert ras.orientation == ("R", "A", "S") and ras.spacing == (2.0, 3.0, 4.0)
    voxel = (1, 3, 2)
    found = np.argwhere(ras.array == array[voxel])[0]
    assert np.allclose(world(ras, found), world(lps, voxel))
    assert canonical(ras) is ras


def test_resample_keeps_labels_and_world_position():
    array = np.zeros((20, 20, 10), np.uint8)
    array[6:12, 8:14, 4:8] = 2
    volume = Volume(array, np.diag([1.0, 1.0, 2.0, 1.0]), source="m")
    volume.affine[:3, 3] = [5, -7, 3]
    coarse = resample(volume, 2.0, order=0)
    assert coarse.shape == (10, 10, 10) and coarse.spacing == (2.0, 2.0, 2.0)
    assert coarse.array.dtype == np.uint8 and set(np.unique(coarse.array)) == {0, 2}

    def centre(v):
        return world(v, np.argwhere(v.array == 2)).mean(axis=0)

    assert np.allclose(centre(coarse), centre(volume), atol=0.5)
    same = resample(volume, (1.0, 1.0, 2.0), order=0)
    assert np.array_equal(same.array, array) and np.allclose(same.affine, volume.affine)


def test_healthcare_read_is_the_canonical_reader_in_the_python_api_and_the_cli(cli, ct):
    """`healthcare.read` (and `deepfield healthcare read`): read_volume's canonical RAS
    volume, the CT in HU; a list in, a list out; a bad path is a UserError / exit 2."""
    from pipelines import healthcare

    volume = healthcare.read(str(CT))
    assert isinstance(volume, Volume) and volume.orientation == ("R", "A", "S")
    assert volume.shape == (512, 512, 3) and np.allclose(volume.spacing, (0.810547, 0.810547, 1.0))
    assert np.array_equal(volume.array, canonical(ct).array)
    assert "shape (512, 512, 3)" in repr(volume) and "CT" in repr(volume)
    [label] = healthcare.read([LIVER], label=True)
    assert label.array.dtype == np.uint8 and set(np.unique(label.array)) == {0, 1}
    with pytest.raises(UserError, match="no such file"):
        healthcare.read(str(DATA / "missing"))

    code, out, _ = cli("healthcare", "read", str(CT), str(CT / "ct-3slice-01.dcm"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["shape"] for r in rows] == [[512, 512, 3], [512, 512, 1]]
    assert rows[0]["orientation"] == "RAS" and rows[0]["spacing_mm"] == [0.8105, 0.8105, 1.0]
    assert (rows[0]["modality"], rows[0]["min"], rows[0]["max"]) == ("CT", -3024.0, 1381.0)
    code, out, _ = cli("healthcare", "read", "--label", str(LIVER))
    assert code == 0 and json.loads(out)["dtype"] == "uint8" and json.loads(out)["max"] == 1.0
    code, _, err = cli("healthcare", "read")
    assert code == 2 and "at least one path" in err
