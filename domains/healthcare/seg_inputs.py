"""Files a user hands `healthcare predict` and `explain` for a segment run (numpy only).

NIfTI files and DICOM series (a folder, a DICOMDIR or a `.dcm` file) are read as
canonical RAS volumes, resampled to the run's spacing when it trained at one, segmented,
and the labels put back on the input's own voxel grid: a NIfTI mask is written in the
input file's orientation with its exact affine, so it overlays the input in any viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from nibabel import orientations as ornt
from scipy import ndimage

from domains.healthcare.volume import Volume, canonical, resample, to_nifti
from shared.errors import UserError

NIFTI = (".nii", ".nii.gz")


@dataclass
class InputVolume:
    """One input: its canonical volume, and the on-disk grid its mask is written on."""

    path: Path
    name: str
    volume: Volume
    original_affine: np.ndarray

    @property
    def original_spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in np.linalg.norm(self.original_affine[:3, :3], axis=0))


def read_input(path: str, on_nan: str = "error") -> InputVolume:
    """A NIfTI file or a DICOM series as an `InputVolume`; anything else is a UserError."""
    from domains.healthcare.dicom_io import read_dicom
    from domains.healthcare.nifti_io import read_nifti

    source = Path(path).expanduser()
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    lower = source.name.lower()
    if source.is_file() and lower.endswith(NIFTI):
        import nibabel as nib

        volume = read_nifti(source, on_nan=on_nan)
        original = np.asarray(nib.load(source).affine, np.float64)
        name = source.name[: -len(".nii.gz")] if lower.endswith(".gz") else source.stem
        return InputVolume(source, name, volume, original)
    if source.is_dir() or lower.endswith(".dcm") or lower == "dicomdir":
        raw = read_dicom(source)
        volume = canonical(raw)
        return InputVolume(source, source.stem or source.name, volume, volume.affine)
    raise UserError(
        f"{source}: segment predicts NIfTI files (.nii, .nii.gz) and DICOM series (a folder, "
        "a DICOMDIR or .dcm files)"
    )


def model_grid(volume: Volume, contract: dict[str, Any]) -> Volume:
    """The volume at the run's training spacing (unchanged when it trained on its own)."""
    spacing = contract.get("spacing")
    if not spacing:
        return volume
    if contract["dims"] == 2:
        spacing = [*spacing[:2], volume.spacing[2]]
    return resample(volume, spacing, order=1)


def back_to_input(labels: np.ndarray, grid: Volume, item: InputVolume) -> np.ndarray:
    """Labels on the model's grid -> the input file's array (nearest neighbour), in the
    file's own axis order."""
    target = item.volume
    if labels.shape != target.shape or not np.allclose(grid.affine, target.affine):
        # canonical index -> world -> grid index
        step = np.linalg.inv(grid.affine) @ target.affine
        labels = ndimage.affine_transform(
            labels,
            step[:3, :3],
            offset=step[:3, 3],
            output_shape=target.shape,
            order=0,
            mode="nearest",
        )
    transform = ornt.ornt_transform(
        ornt.io_orientation(target.affine), ornt.io_orientation(item.original_affine)
    )
    back = ornt.apply_orientation(labels, transform)
    affine = target.affine @ ornt.inv_ornt_aff(transform, target.shape)
    if not np.allclose(affine, item.original_affine, atol=1e-4):
        raise RuntimeError(f"{item.path}: reorienting the mask back did not restore its affine")
    return np.ascontiguousarray(back).astype(np.uint8)


def write_mask(mask: np.ndarray, item: InputVolume, path: Path) -> Path:
    """The mask as NIfTI with exactly the input's affine."""
    return to_nifti(Volume(mask, item.original_affine, source=str(item.path)), path)
