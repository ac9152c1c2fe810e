"""Reading a DICOM series (a file, a folder, or a DICOMDIR) into a `Volume`.

What a DICOM series gets wrong in practice, and how it is handled here:

- several series in one folder: refused with a list, unless `series=` picks one;
- files in arbitrary order, InstanceNumber unreliable: slices are ordered by position along
  the slice normal (cross product of the ImageOrientationPatient direction cosines);
- SliceThickness is not the distance between slices: the spacing comes from the positions,
  and gaps or duplicate positions are refused rather than stretched over;
- stored values are not Hounsfield units: RescaleSlope/RescaleIntercept are applied;
- the world is LPS in DICOM: the affine is converted to the RAS+ world of `Volume`.

The array is laid out as DICOM stores it (i along a row, j down the columns, k along the
slice normal): pass the result to `volume.canonical` for RAS+ axes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.fileset import FileSet
from pydicom.uid import MediaStorageDirectoryStorage

from domains.healthcare.volume import Volume
from shared.errors import UserError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
DEFER = "64 KB"  # pixel data is read only for the chosen series
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
DUPLICATE_MM = 1e-3

# What to install for a compressed transfer syntax pydicom cannot decode as installed.
_JPEG = "pip install pylibjpeg pylibjpeg-libjpeg (or python-gdcm)"
_J2K = "pip install pylibjpeg pylibjpeg-openjpeg (or python-gdcm)"
INSTALL_HINTS = {
    "JPEG Baseline": _JPEG,
    "JPEG Extended": _JPEG,
    "JPEG Lossless": _JPEG,
    "JPEG-LS": "pip install pylibjpeg pylibjpeg-libjpeg (or pyjpegls, or python-gdcm)",
    "JPEG 2000": _J2K,
    "High-Throughput JPEG 2000": _J2K,
    "RLE": "pip install pylibjpeg pylibjpeg-rle",
}


def read_dicom(path: str | Path, series: str | None = None) -> Volume:
    """One DICOM series as a float32 `Volume` (HU for CT), affine in RAS+ mm.

    `path` is a DICOM file, a folder (walked; files that are not DICOM are skipped and
    counted in meta["skipped_files"]), or a DICOMDIR. `series` picks a SeriesInstanceUID
    (or a unique prefix of one) where there are several.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        files, skipped = _read_folder(path)
    else:
        first = _read_file(path)
        if _is_dicomdir(first):
            files, skipped = _read_dicomdir(path, first), 0
        else:
            if not _has_pixels(first):
                raise UserError(f"{path}: DICOM file has no pixel data (not an image)")
            files, skipped = [(path, first)], 0
    uid, slices = _choose_series(path, files, series)
    volume = _build(f"{path} (series {uid})", slices)
    volume.meta["skipped_files"] = skipped
    return volume


def _read_file(path: Path, must: bool = True) -> pydicom.Dataset | None:
    """The dataset (pixel data deferred), or None for a non-DICOM file when not `must`."""
    try:
        return pydicom.dcmread(path, defer_size=DEFER)
    except InvalidDicomError:
        if must:
            raise UserError(f"{path}: not a DICOM file (no DICM header)") from None
        return None
    except Exception as exc:  # truncated or mangled headers raise many kinds of error
        raise UserError(f"{path}: unreadable DICOM file ({type(exc).__name__}: {exc})") from None


def _has_pixels(ds: pydicom.Dataset) -> bool:
    return any(tag in ds for tag in PIXEL_TAGS)


def _is_dicomdir(ds: pydicom.Dataset) -> bool:
    sop = getattr(ds, "file_meta", pydicom.Dataset()).get("MediaStorageSOPClassUID")
    return sop == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in ds


def _read_folder(folder: Path) -> tuple[list, int]:
    """(path, dataset) of every DICOM image under `folder`, and how many files were not."""
    files, skipped = [], 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds = _read_file(path, must=False)
        if ds is None or _is_dicomdir(ds) or not _has_pixels(ds):
            skipped += 1
        else:
            files.append((path, ds))
    if not files:
        raise UserError(
            f"{folder}: no DICOM images with pixel data found ({skipped} other files skipped)"
        )
    return files, skipped


def _read_dicomdir(path: Path, ds: pydicom.Dataset) -> list:
    """(path, dataset) of every image the DICOMDIR references."""
    try:
        instances = list(FileSet(ds))
    except Exception as exc:
        raise UserError(f"{path}: unreadable DICOMDIR ({exc})") from None
    files = []
    for instance in instances:
        file = Path(instance.path)
        if not file.is_file():
            raise UserError(f"{path}: DICOMDIR references a missing file {file}")
        image = _read_file(file)
        if _has_pixels(image):
            files.append((file, image))
    if not files:
        raise UserError(f"{path}: the DICOMDIR references no images with pixel data")
    return files


def _choose_series(path: Path, files: list, series: str | None) -> tuple[str, list]:
    """The one series to read: the only one, or the one `series` names."""
    groups: dict[str, list] = {}
    for file, ds in files:
        groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((file, ds))
    listing = "; ".join(_describe(uid, group) for uid, group in groups.items())
    if series is None:
        if len(groups) > 1:
            raise UserError(f"{path} holds {len(groups)} series, pick one with series=: {listing}")
        return next(iter(groups.items()))
    matches = [uid for uid in groups if uid == series] or [
        u for u in groups if u.startswith(series)
    ]
    if len(matches) != 1:
        which = "matches no series" if not matches else "matches several series"
        raise UserError(f"{path}: series {series!r} {which}; series found: {listing}")
    return matches[0], groups[matches[0]]


def _describe(uid: str, group: list) -> str:
    ds = group[0][1]
    desc = str(ds.get("SeriesDescription", "")).strip() or "no description"
    return f"{uid} ({ds.get('Modality', '?')}, '{desc}', {len(group)} slices)"


def _geometry(source: str, slices: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-slice orientation (6,), pixel spacing (2,) and positions (n, 3), checked."""
    for tag in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        missing = [f for f, ds in slices if tag not in ds]
        if missing:
            raise UserError(f"{missing[0]}: no {tag}, cannot place the slice in space")
    iop = np.array([[float(v) for v in ds.ImageOrientationPatient] for _, ds in slices])
    spacing = np.array([[float(v) for v in ds.PixelSpacing] for _, ds in slices])
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in slices])
    if np.abs(iop - iop[0]).max() > 1e-4:
        raise UserError(
            f"{source}: slices have different ImageOrientationPatient "
            "(localizer or reformat mixed in?); pick the files of one stack"
        )
    sizes = {(int(ds.Rows), int(ds.Columns)) for _, ds in slices}
    if len(sizes) > 1 or np.abs(spacing - spacing[0]).max() > 1e-4:
        raise UserError(f"{source}: slices differ in size or PixelSpacing: {sorted(sizes)}")
    return iop[0], spacing[0], positions


def _slice_step(source: str, slices: list, positions: np.ndarray, normal: np.ndarray):
    """(order, step vector in LPS mm, where the spacing came from), refusing gaps/duplicates."""
    depth = positions @ normal
    order = np.argsort(depth, kind="stable")
    if len(slices) == 1:
        ds = slices[0][1]
        for tag in ("SpacingBetweenSlices", "SliceThickness"):
            if ds.get(tag):
                return order, normal * float(ds.get(tag)), f"{tag} (single slice)"
        return order, normal * 1.0, "assumed 1 mm (single slice, no SliceThickness)"
    gaps = np.diff(depth[order])
    if np.any(gaps < DUPLICATE_MM):
        k = int(np.argmax(gaps < DUPLICATE_MM))
        a, b = slices[order[k]][0], slices[order[k + 1]][0]
        raise UserError(
            f"{source}: duplicate slice position {_mm(positions[order[k]])} in {a} and {b} "
            "(several echoes, phases or acquisitions in one series?)"
        )
    mean = float(np.mean(gaps))
    if np.abs(gaps - mean).max() > max(0.01, 0.01 * mean):
        found = Counter(np.round(gaps, 3).tolist())
        listed = ", ".join(f"{g:g} mm x{n}" for g, n in sorted(found.items()))
        raise UserError(
            f"{source}: slice spacing is not uniform ({listed}); missing slices? "
            "refusing to guess the geometry"
        )
    first, last = positions[order[0]], positions[order[-1]]
    step = (last - first) / (len(slices) - 1)  # keeps a gantry tilt as a sheared affine
    line = first + np.arange(len(slices))[:, None] * step
    if np.linalg.norm(positions[order] - line, axis=1).max() > max(0.01, 0.01 * mean):
        raise UserError(f"{source}: slice positions do not lie on one line")
    return order, step, "ImagePositionPatient"


def _pixels(path: Path, ds: pydicom.Dataset) -> np.ndarray:
    """One slice's values after RescaleSlope/RescaleIntercept, float32, (rows, columns)."""
    if int(ds.get("NumberOfFrames", 1) or 1) > 1 or int(ds.get("SamplesPerPixel", 1)) != 1:
        raise UserError(
            f"{path}: multi-frame or colour DICOM is not supported; convert it to NIfTI "
            "(e.g. with dcm2niix) and read that"
        )
    try:
        raw = ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        syntax = ds.file_meta.get("TransferSyntaxUID")
        name = getattr(syntax, "name", str(syntax))
        if syntax is not None and syntax.is_compressed:
            hint = next((h for k, h in INSTALL_HINTS.items() if name.startswith(k)), None)
            hint = hint or "pip install python-gdcm"
            raise UserError(f"{path}: cannot decode {name} pixel data; {hint}") from None
        raise UserError(f"{path}: cannot decode pixel data ({exc})") from None
    except Exception as exc:
        raise UserError(f"{path}: pixel data unreadable, truncated or corrupt ({exc})") from None
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return (raw.astype(np.float64) * slope + intercept).astype(np.float32)


def _build(source: str, slices: list) -> Volume:
    """Stack one series' slices in position order, with their affine."""
    iop, pixel_spacing, positions = _geometry(source, slices)
    row_dir, col_dir = iop[:3], iop[3:]  # along a row (column index grows), down a column
    normal = np.cross(row_dir, col_dir)
    order, step, spacing_from = _slice_step(source, slices, positions, normal)
    ordered = [slices[k] for k in order]
    array = np.stack([_pixels(f, ds).T for f, ds in ordered], axis=-1)  # [column, row, slice]
    lps = np.eye(4)
    lps[:3, 0] = row_dir * pixel_spacing[1]  # PixelSpacing = (between rows, between columns)
    lps[:3, 1] = col_dir * pixel_spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = positions[order[0]]
    ds = ordered[0][1]
    meta = {
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "series_description": str(ds.get("SeriesDescription", "")),
        "patient_id": str(ds.get("PatientID", "")),
        "n_slices": len(ordered),
        "slice_spacing_from": spacing_from,
        "files": [str(f) for f, _ in ordered],
    }
    modality = str(ds.get("Modality", "")) or None
    return Volume(array, LPS_TO_RAS @ lps, modality, source, meta)


def _mm(point: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in point) + ")"
