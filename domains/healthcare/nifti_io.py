"""NIfTI volumes, Medical Segmentation Decathlon (MSD) folders, and NRRD label maps.

Every reader returns a `Volume` reoriented to RAS+ (`volume.canonical`), so an image and a
mask from different formats can be audited against each other directly. Images become
float32; label maps (`label=True`) keep an integer dtype, rounded from any float storage.
`read_volume` reads any of them, or a DICOM series (`dicom_io`), by what the path is
(`volume_kind`): the image or mask of a segmentation case, whatever its format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import nrrd
import numpy as np

from domains.healthcare.volume import Volume, audit, canonical
from shared.errors import UserError

OnNan = Literal["error", "zero", "mean"]
NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")
# dataset.json modality names -> DICOM Modality codes.
MODALITIES = {"CT": "CT", "MRI": "MR", "MR": "MR", "PET": "PT", "PT": "PT", "US": "US"}
MR_SEQUENCES = {"T1", "T1W", "T1GD", "T2", "T2W", "FLAIR", "ADC", "DWI", "PD"}
# NRRD `space` -> sign of each world axis to reach RAS.
NRRD_SPACES = {
    "left-posterior-superior": (-1, -1, 1),
    "LPS": (-1, -1, 1),
    "right-anterior-superior": (1, 1, 1),
    "RAS": (1, 1, 1),
    "left-anterior-superior": (-1, 1, 1),
    "LAS": (-1, 1, 1),
}


def read_nifti(
    path: str | Path, label: bool = False, on_nan: OnNan = "error", modality: str | None = None
) -> Volume:
    """A .nii/.nii.gz file as a canonical (RAS+) `Volume`.

    NaN voxels are refused by default (`on_nan="error"`); "zero" or "mean" (of the other
    voxels) replaces them, and the count is kept in meta["nan_replaced"].
    """
    path = _existing(path)
    try:
        image = nib.load(path)
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel, gzip and zlib raise many kinds of error
        raise UserError(f"{path}: unreadable NIfTI file ({type(exc).__name__}: {exc})") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise UserError(f"{path}: expected a 3D volume, got shape {array.shape}")
    array, replaced = _fix_nan(path, array, on_nan)
    meta = {
        "disk_dtype": str(image.get_data_dtype()),
        "disk_orientation": tuple(nib.aff2axcodes(image.affine)),
        "nan_replaced": replaced,
    }
    array = _as_labels(path, array) if label else array.astype(np.float32, copy=False)
    return canonical(Volume(array, image.affine, modality, str(path), meta))


def read_nrrd(path: str | Path, label: bool = True, modality: str | None = None) -> Volume:
    """A 3D NRRD file (e.g. a 3D Slicer label map) as a canonical `Volume`.

    The affine comes from `space directions` and `space origin`; an LPS or LAS `space` is
    converted to RAS.
    """
    path = _existing(path)
    try:
        array, header = nrrd.read(str(path))
    except Exception as exc:
        raise UserError(f"{path}: unreadable NRRD file ({type(exc).__name__}: {exc})") from None
    if array.ndim != 3:
        raise UserError(f"{path}: expected a 3D volume, got shape {array.shape}")
    space = header.get("space")
    if space not in NRRD_SPACES:
        raise UserError(
            f"{path}: NRRD space {space!r} is not one of {', '.join(NRRD_SPACES)}; "
            "cannot place it in patient coordinates"
        )
    directions = np.asarray(header.get("space directions", np.full((3, 3), np.nan)), float)
    origin = np.asarray(header.get("space origin", np.zeros(3)), float)
    if directions.shape != (3, 3) or not np.all(np.isfinite(directions)):
        raise UserError(f"{path}: NRRD has no usable 'space directions' for its 3 axes")
    affine = np.eye(4)
    affine[:3, :3] = directions.T  # each row of `space directions` is one axis' step
    affine[:3, 3] = origin
    affine = np.diag([*NRRD_SPACES[space], 1.0]) @ affine
    array = _as_labels(path, array) if label else array.astype(np.float32, copy=False)
    meta = {"nrrd_space": space, "disk_dtype": str(header.get("type"))}
    return canonical(Volume(array, affine, modality, str(path), meta))


@dataclass
class MSDCase:
    """One training case of an MSD folder."""

    id: str
    image: Path
    label: Path


@dataclass
class MSDDataset:
    """An MSD task folder: `dataset.json`, `imagesTr/`, `labelsTr/`."""

    root: Path
    name: str
    modality: str | None
    channels: list[str]
    labels: list[str]
    cases: list[MSDCase]
    info: dict = field(default_factory=dict)

    def case(self, which: MSDCase | str | int) -> MSDCase:
        """A case by object, id ("hippocampus_001") or index."""
        if isinstance(which, MSDCase):
            return which
        if isinstance(which, int):
            return self.cases[which]
        for case in self.cases:
            if case.id == which:
                return case
        raise UserError(f"{self.root}: no case {which!r} in dataset.json")

    def load(self, which: MSDCase | str | int) -> tuple[Volume, Volume]:
        """(image, mask) of one case, both canonical, audited to share one voxel grid."""
        case = self.case(which)
        image = read_nifti(case.image, modality=self.modality)
        mask = read_nifti(case.label, label=True)
        audit(image, mask)
        low, high = int(mask.array.min()), int(mask.array.max())
        if low < 0 or high >= len(self.labels):
            raise UserError(
                f"{case.label}: label values {low}..{high} outside the {len(self.labels)} "
                f"labels of {self.root / 'dataset.json'}"
            )
        return image, mask


def read_msd(folder: str | Path) -> MSDDataset:
    """An MSD folder from its dataset.json; only the listed training cases are used (stray
    files such as macOS `._*` copies are ignored), and each listed file must exist."""
    root = _existing(folder)
    spec_path = root / "dataset.json"
    if not spec_path.is_file():
        raise UserError(f"{root}: no dataset.json (expected the MSD layout)")
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{spec_path}: unreadable JSON ({exc})") from None
    if not isinstance(spec.get("training"), list) or not spec["training"]:
        raise UserError(f"{spec_path}: no 'training' list of image/label pairs")
    channels = [str(v) for _, v in sorted(spec.get("modality", {}).items(), key=_by_int)]
    codes = {_modality_code(c) for c in channels}
    cases = []
    for entry in spec["training"]:
        image, label = (root / entry.get(key, "") for key in ("image", "label"))
        for key, file in (("image", image), ("label", label)):
            if not entry.get(key) or not file.is_file():
                raise UserError(f"{spec_path}: listed {key} {file} does not exist")
        cases.append(MSDCase(_stem(image), image, label))
    return MSDDataset(
        root=root,
        name=str(spec.get("name", root.name)),
        modality=codes.pop() if len(codes) == 1 else None,
        channels=channels,
        labels=_label_names(spec_path, spec.get("labels", {})),
        cases=cases,
        info={k: spec[k] for k in ("description", "reference", "licence") if k in spec},
    )


def volume_kind(path: Path) -> str | None:
    """The kind of an existing path: nifti, nrrd or dicom (a folder, a DICOMDIR, a .dcm
    file or a file with the DICM preamble); None for anything else."""
    name = path.name.lower()
    if path.is_dir():
        return "dicom"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(NRRD_SUFFIXES):
        return "nrrd"
    if name.endswith(".dcm") or name == "dicomdir":
        return "dicom"
    try:
        with path.open("rb") as handle:
            return "dicom" if handle.read(132)[128:] == b"DICM" else None
    except OSError:
        return None


def read_volume(
    path: str | Path, label: bool = False, on_nan: OnNan = "error", modality: str | None = None
) -> Volume:
    """A NIfTI or NRRD file or a DICOM series (folder, DICOMDIR or file) as a canonical
    `Volume`; `label=True` reads a label map (a DICOM mask series' pixel values are the
    labels). NaN voxels of an image are handled as `read_nifti` handles them."""
    from domains.healthcare.dicom_io import read_dicom

    path = _existing(path)
    kind = volume_kind(path)
    if kind == "nifti":
        return read_nifti(path, label=label, on_nan=on_nan, modality=modality)
    if kind is None:
        raise UserError(
            f"{path}: not a NIfTI (.nii, .nii.gz) or NRRD (.nrrd, .nhdr) file, nor a DICOM "
            "series (a folder, a DICOMDIR or a DICOM file)"
        )
    if kind == "nrrd":
        volume = read_nrrd(path, label=label, modality=modality)
    else:
        volume = canonical(read_dicom(path))
        volume.modality = modality or volume.modality
        if label:
            volume.array = _as_labels(path, volume.array)
    if not label:
        volume.array, volume.meta["nan_replaced"] = _fix_nan(path, volume.array, on_nan)
    return volume


def read_nifti_source(path: str | Path) -> MSDDataset | Volume:
    """An MSD folder (has dataset.json) as an `MSDDataset`, or one NIfTI file as a `Volume`."""
    path = _existing(path)
    return read_msd(path) if path.is_dir() else read_nifti(path)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    return path


def _fix_nan(path: Path, array: np.ndarray, on_nan: OnNan) -> tuple[np.ndarray, int]:
    """The array with NaNs refused or replaced, and how many there were."""
    if on_nan not in ("error", "zero", "mean"):
        raise UserError(f"on_nan must be 'error', 'zero' or 'mean', got {on_nan!r}")
    if not np.issubdtype(array.dtype, np.floating):
        return array, 0
    nan = np.isnan(array)
    count = int(nan.sum())
    if count == 0:
        return array, 0
    if on_nan == "error":
        raise UserError(
            f"{path}: {count} NaN voxels; pass on_nan='zero' or on_nan='mean' to replace them"
        )
    fill = float(np.mean(array[~nan])) if on_nan == "mean" and count < nan.size else 0.0
    return np.where(nan, fill, array), count


def _as_labels(path: Path, array: np.ndarray) -> np.ndarray:
    """Label map values rounded to the smallest integer dtype that holds them."""
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)):
            raise UserError(f"{path}: label map has NaN or infinite values")
        array = np.rint(array)
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for dtype in (np.uint8, np.int16, np.int32, np.int64):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return array.astype(dtype, copy=False)
    raise UserError(f"{path}: label values {low}..{high} do not fit an integer type")


def _label_names(spec_path: Path, labels: dict) -> list[str]:
    """Label names by id from {"0": "background", ...} (or nnU-Net v2's {"background": 0})."""
    if labels and all(isinstance(v, int) for v in labels.values()):
        labels = {str(v): k for k, v in labels.items()}
    try:
        by_id = {int(k): str(v) for k, v in labels.items()}
    except ValueError:
        raise UserError(f"{spec_path}: 'labels' keys must be label ids: {labels}") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise UserError(f"{spec_path}: label ids must be 0..n-1, got {sorted(by_id)}")
    return [by_id[i] for i in range(len(by_id))]


def _modality_code(name: str) -> str:
    upper = name.strip().upper()
    return MODALITIES.get(upper) or ("MR" if upper in MR_SEQUENCES else upper)


def _by_int(item: tuple[str, object]) -> int:
    return int(item[0]) if str(item[0]).isdigit() else 0


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
