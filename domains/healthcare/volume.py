"""A 3D medical volume with its place in the world, and the geometry operations on it.

`Volume.array[i, j, k]` sits at world point `affine @ [i, j, k, 1]`, in millimetres, in the
RAS+ world that NIfTI and nibabel use (x grows toward the patient's right, y to the front, z
to the head). Readers build that affine from their format's own convention (DICOM and most
NRRD label maps are LPS), so an image and its mask can be compared whatever their files.

Geometry is never fixed up silently: `audit` refuses an image/mask pair that does not share a
voxel grid, and resampling happens only when asked for, with `resample`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations as ornt
from scipy import ndimage

from shared.errors import UserError

RAS = ("R", "A", "S")
TOLERANCE_MM = 1e-3


@dataclass
class Volume:
    """Voxels, the affine placing them in RAS+ world millimetres, and where they came from."""

    array: np.ndarray
    affine: np.ndarray
    modality: str | None = None
    source: str = "<memory>"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")
        if self.array.ndim != 3:
            raise ValueError(f"a Volume is 3D, got an array shaped {self.array.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.array.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm (the lengths of the affine's first three columns)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def orientation(self) -> tuple[str, str, str]:
        """Where each array axis points, e.g. ("R", "A", "S") or ("L", "P", "S")."""
        return tuple(ornt.aff2axcodes(self.affine))

    def info(self) -> dict:
        """Where it came from, its grid and its values, JSON-able (`healthcare read`)."""
        array = self.array
        return {
            "source": self.source,
            "shape": list(self.shape),
            "spacing_mm": [round(s, 4) for s in self.spacing],
            "orientation": "".join(self.orientation),
            "modality": self.modality,
            "dtype": str(array.dtype),
            "min": float(array.min()) if array.size else None,
            "max": float(array.max()) if array.size else None,
        }

    def __repr__(self) -> str:
        info = self.info()
        return (
            f"Volume({info['source']!r}, shape {tuple(info['shape'])}, spacing (mm) "
            f"{tuple(info['spacing_mm'])}, {info['orientation']}, modality {info['modality']}, "
            f"{info['dtype']} {info['min']:g}..{info['max']:g})"
        )


def world(volume: Volume, index) -> np.ndarray:
    """World coordinates (mm, RAS+) of voxel index/indices `index` (..., 3)."""
    index = np.asarray(index, dtype=np.float64)
    return index @ volume.affine[:3, :3].T + volume.affine[:3, 3]


def canonical(volume: Volume) -> Volume:
    """The same voxels, axes flipped/permuted to the closest RAS+ layout (as nibabel's
    `as_closest_canonical`); every voxel keeps its exact world position."""
    current = ornt.io_orientation(volume.affine)
    transform = ornt.ornt_transform(current, ornt.axcodes2ornt(RAS))
    if np.array_equal(transform, ornt.axcodes2ornt(RAS)):
        return volume
    array = np.ascontiguousarray(ornt.apply_orientation(volume.array, transform))
    affine = volume.affine @ ornt.inv_ornt_aff(transform, volume.shape)
    return Volume(array, affine, volume.modality, volume.source, dict(volume.meta))


def _corners(volume: Volume) -> np.ndarray:
    """World coordinates of the 8 corner voxel centres."""
    n = np.array(volume.shape) - 1
    idx = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])])
    return world(volume, idx)


def audit(image: Volume, mask: Volume, tol: float = TOLERANCE_MM) -> None:
    """Refuse (UserError) a mask that does not lie on its image's voxel grid.

    Shape, orientation codes, spacing and world position of the corners must agree within
    `tol` mm. Nothing is resampled: a mismatch usually means the wrong file or a wrong
    export, and guessing would train on misaligned labels.
    """
    pair = f"mask {mask.source} does not match image {image.source}"
    if image.shape != mask.shape:
        raise UserError(f"{pair}: shape {mask.shape} vs {image.shape}")
    if image.orientation != mask.orientation:
        raise UserError(f"{pair}: orientation {mask.orientation} vs {image.orientation}")
    si, sm = np.array(image.spacing), np.array(mask.spacing)
    if np.any(np.abs(si - sm) > tol * np.maximum(1.0, si)):
        raise UserError(f"{pair}: spacing {_fmt(sm)} vs {_fmt(si)} mm")
    gap = float(np.max(np.linalg.norm(_corners(image) - _corners(mask), axis=1)))
    if gap > tol:
        raise UserError(
            f"{pair}: their affines place the volume up to {gap:.4g} mm apart "
            f"(tolerance {tol:g} mm); check the mask belongs to this image"
        )


def resample(volume: Volume, spacing, order: int = 1) -> Volume:
    """The volume resampled to `spacing` mm along i, j, k (a number or 3 numbers).

    The outer corners of the field of view stay where they were, and the new affine says
    exactly where each new voxel was sampled. Use order=0 (nearest) for label maps: their
    dtype is kept; other orders give float32.
    """
    target = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    if np.any(target <= 0):
        raise UserError(f"resample spacing must be positive, got {_fmt(target)}")
    scale = target / np.array(volume.spacing)  # old voxels per new voxel
    shape = tuple(max(1, int(round(n / s))) for n, s in zip(volume.shape, scale, strict=True))
    offset = 0.5 * scale - 0.5  # new index x -> old index x * scale + offset (edge aligned)
    data = volume.array if order == 0 else volume.array.astype(np.float32, copy=False)
    array = ndimage.affine_transform(
        data, scale, offset=offset, output_shape=shape, order=order, mode="nearest"
    )
    step = np.eye(4)
    step[:3, :3] = np.diag(scale)
    step[:3, 3] = offset
    meta = {**volume.meta, "resampled_from": volume.spacing}
    return Volume(array, volume.affine @ step, volume.modality, volume.source, meta)


def to_nifti(volume: Volume, path: str | Path) -> Path:
    """Write the volume as NIfTI (.nii or .nii.gz), affine as both sform and qform."""
    path = Path(path)
    array = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    image = nib.Nifti1Image(array, volume.affine)
    image.set_sform(volume.affine, code="scanner")
    image.set_qform(volume.affine, code="scanner")
    image.header.set_xyzt_units("mm")
    nib.save(image, path)
    return path


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
