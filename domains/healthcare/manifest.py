"""`csv:PATH` manifests: a real project's images listed one per row (pandas, no TensorFlow).

Columns, named in the data config: `data.image_column` (default `image`), the target,
`data.mask_column` (`mask`, segment) or `data.label_column` (`label`, classify), and
`data.patient_column` (`patient_id`): rows of one patient never straddle train, validation
and test; a manifest without that column splits row by row. Relative paths resolve against
the CSV's folder. The file is read by the shared table reader (comma, tab, semicolon or
pipe separated, any common encoding).

- segment: an image is a NIfTI or NRRD file, a DICOM series folder or a DICOM file; a
  mask a NIfTI or NRRD label map or a DICOM series whose pixel values are the labels
  (`seg_data` reads and audits each pair);
- classify: an image is a PNG/JPEG (any format TensorFlow decodes) or a one-slice DICOM
  file, windowed as `predict` windows it (CT through `data.window`, other modalities
  min-max scaled); a label is a class name or an integer id. `classify_data` decodes
  every image into memory at `data.image_size`, else the first image's size.

`read_manifest` refuses, before TensorFlow loads, a missing column (listing those
found), an empty cell or a missing file (naming the row, counted from 1 after the header,
and the path), a file of a kind the task cannot read, and a classify manifest with one
class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domains.healthcare.config import HealthcareDataConfig
from shared.errors import UserError

LOG = logging.getLogger("deepfield.healthcare")
# What classify decodes with TensorFlow; DICOM files are told by suffix or DICM preamble.
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_LISTED = 20
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-16 text holds NUL bytes; other text does not


@dataclass
class ManifestRow:
    """One row: its number (from 1, after the header), the image, its mask path (segment)
    or label text (classify), and its patient (None without a patient column)."""

    number: int
    image: Path
    target: Path | str
    patient: str | None


@dataclass
class Manifest:
    path: Path
    rows: list[ManifestRow]
    patient_column: str | None

    def groups(self) -> np.ndarray:
        """The split group of every row: its patient, or the row itself."""
        return np.array(
            [row.patient if row.patient is not None else f"row {row.number}" for row in self.rows]
        )

    def where(self, row: ManifestRow) -> str:
        return f"csv manifest {self.path} row {row.number}"


def read_manifest(source: str, data: HealthcareDataConfig, task: str) -> Manifest:
    """The rows of `csv:PATH` for `task` ("segment" or "classify"), every file checked."""
    from domains.healthcare.nifti_io import volume_kind
    from shared.data.table import read_table

    path = Path(source.partition(":")[2]).expanduser()
    if not path.is_file():
        raise UserError(f"csv manifest {path} does not exist")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head and not head.startswith(UTF16_BOMS):
        raise UserError(
            f"csv manifest {path} is a binary file, not a table of image paths (columns "
            f"{data.image_column!r}, ...)"
        )
    frame, _ = read_table(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    found = list(frame.columns)
    segment = task == "segment"
    target_key = "mask_column" if segment else "label_column"
    target_column = getattr(data, target_key)
    for key, column in (("image_column", data.image_column), (target_key, target_column)):
        if column not in found:
            need = (
                "segment needs a mask for every image"
                if key == "mask_column"
                else "classify needs a label for every image"
                if key == "label_column"
                else "one image path per row"
            )
            raise UserError(
                f"csv manifest {path} has no column {column!r} (data.{key}; {need}); columns "
                f"found: {_listed(found)}"
            )
    patient_column = data.patient_column if data.patient_column in found else None
    if data.patient_column and patient_column is None:
        LOG.info("%s: no column %r: split row by row", path, data.patient_column)
    manifest = Manifest(path, [], patient_column)
    for number, record in enumerate(frame.to_dict("records"), start=1):
        where = f"csv manifest {path} row {number}"
        image = _file(path, record, data.image_column, where)
        target = (
            _file(path, record, target_column, where)
            if segment
            else _text(record, target_column, where, "label")
        )
        patient = _text(record, patient_column, where, "patient id") if patient_column else None
        manifest.rows.append(ManifestRow(number, image, target, patient))
        if segment:
            for what, file in (("image", image), ("mask", target)):
                if volume_kind(file) is None:
                    raise UserError(
                        f"{where}: {what} {file} is not NIfTI (.nii, .nii.gz), NRRD (.nrrd) or "
                        "a DICOM series (a folder or a DICOM file)"
                    )
        elif not (
            image.suffix.lower() in PICTURE_SUFFIXES
            or (image.is_file() and volume_kind(image) == "dicom")
        ):
            raise UserError(
                f"{where}: image {image} is not PNG/JPEG/BMP/GIF or a DICOM file "
                "(classify reads 2D images; segment reads volumes)"
            )
    if not segment:
        classes = sorted({str(row.target) for row in manifest.rows})
        if len(classes) < 2:
            raise UserError(
                f"csv manifest {path} has one class ({classes[0]!r} in column "
                f"{target_column!r}, {len(manifest.rows)} rows); classify needs at least 2"
            )
    return manifest


def manifest_labels(
    manifest: Manifest, class_names: list[str] | None
) -> tuple[np.ndarray, list[str] | None]:
    """(label ids, class names) of a classify manifest. Integer labels are class ids
    (named by `class_names` if given, else renumbered by the shared loader); names map to
    `class_names` order if given, else to their sorted order."""
    texts = [str(row.target) for row in manifest.rows]
    if all(_is_int(t) for t in texts):
        ids = np.array([int(t) for t in texts], np.int64)
        return ids, [str(n) for n in class_names] if class_names else None
    names = [str(n) for n in class_names] if class_names else sorted(set(texts))
    for row, text in zip(manifest.rows, texts, strict=True):
        if text not in names:
            raise UserError(
                f"{manifest.where(row)}: label {text!r} is not one of data.class_names "
                f"({', '.join(names)})"
            )
    return np.array([names.index(t) for t in texts], np.int64), names


def classify_data(data: HealthcareDataConfig, seed: int):
    """The manifest's images and labels as the shared `ImageData`, split grouped by patient."""
    from shared.data import image_data_from_arrays

    manifest = read_manifest(data.source, data, "classify")
    labels, names = manifest_labels(manifest, data.class_names)
    images = decode_images(manifest, data)
    loaded = image_data_from_arrays(
        data.source,
        {"train": (images, labels)},
        names,
        validation_split=data.validation_split,
        test_split=data.test_split,
        seed=seed,
        groups=manifest.groups(),
    )
    loaded.split_info["patient_column"] = manifest.patient_column
    return loaded


def decode_images(manifest: Manifest, data: HealthcareDataConfig) -> np.ndarray:
    """Every row's image as uint8 (N, H, W, C): `data.image_size` (else the first image's
    size), channels by `data.color_mode` (auto: RGB if any image is colour)."""
    import tensorflow as tf

    from domains.healthcare.inputs import dicom_pixels
    from shared.data.sources.pixels import fit_channels, resize_uint8

    decoded = []
    for row in manifest.rows:
        if row.image.suffix.lower() in PICTURE_SUFFIXES:
            try:
                raw = tf.io.read_file(str(row.image))
                image = tf.io.decode_image(raw, channels=0, expand_animations=False).numpy()
            except tf.errors.OpError as err:
                raise UserError(
                    f"{manifest.where(row)}: cannot decode image {row.image}: "
                    f"{err.message.splitlines()[0]}"
                ) from None
            decoded.append(image[..., :-1] if image.shape[-1] in (2, 4) else image)
        else:
            pixels = dicom_pixels(row.image, data.window)
            decoded.append(np.round(pixels).astype(np.uint8)[..., None])
    channels = {"grayscale": 1, "rgb": 3}.get(data.color_mode)
    if channels is None:
        channels = 3 if any(image.shape[-1] == 3 for image in decoded) else 1
    size = tuple(data.image_size) if data.image_size else decoded[0].shape[:2]
    out = np.zeros((len(decoded), *size, channels), np.uint8)
    for k, image in enumerate(decoded):
        fitted = fit_channels(tf.constant(image), channels)
        if tuple(image.shape[:2]) != size:
            fitted = resize_uint8(fitted, size)
        out[k] = fitted.numpy()
    return out


def _file(manifest: Path, record: dict[str, Any], column: str, where: str) -> Path:
    text = _text(record, column, where, "path")
    path = Path(text).expanduser()
    path = path if path.is_absolute() else manifest.parent / path
    if not path.exists():
        raise UserError(f"{where}: {column} {path} does not exist")
    return path


def _text(record: dict[str, Any], column: str, where: str, what: str) -> str:
    """A cell as text (an integer stored as a float, 3.0, as "3"); empty is refused."""
    value = record[column]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise UserError(f"{where}: no {what} in column {column!r}")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if not text:
        raise UserError(f"{where}: no {what} in column {column!r}")
    return text


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _listed(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:MAX_LISTED])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > MAX_LISTED else "")
