"""`builtin:phantom`: seeded CT-like abdominal images with exact label maps (numpy/scipy only).

Every case is drawn from a `numpy.random.Generator` seeded by the caller, so the same seed
gives the same arrays on every machine, and no data has to be downloaded or shipped.

Anatomy (positions, sizes and in-plane rotations random within fixed ranges per case): an
elliptic body (an elliptic cylinder tapering towards both ends of the volume in 3D) in air,
under a layer of subcutaneous fat, holding a liver (a large right lobe plus a smaller left
lobe, on the patient's right = image left, radiological convention), a spleen (patient's
left), two kidneys (posterior, either side of the spine), a vertebral body (cortical shell
and cancellous core) and the aorta, and 0-3 hypodense lesions (spheres) inside the liver.

Labels: 0 background, 1 liver, 2 kidney, 3 spleen, 4 lesion (a lesion overrides the liver
it lies in; every lesion voxel is a liver voxel before the override). Bone and aorta are
deliberately left unlabelled (background): bright structures a model must learn to ignore,
as in real CT, where the aorta is about as bright as the kidneys.

Intensities are Hounsfield units of a portal-venous-phase contrast CT (`TISSUE_HU`: a range
per tissue, one value drawn per case). Contrast CT rather than non-contrast, because without
contrast kidney and spleen differ from muscle by ~10 HU, less than the noise, and the
phantom is meant to be learnable by a small U-Net; the liver-lesion contrast (>= 60 HU) is
that of a typical hypodense metastasis. Realism comes from, in order: partial-volume blur of
the image only (masks stay exact), a mild smooth additive inhomogeneity inside the body,
and white Gaussian noise (sigma 10-20 HU).

Crops (`phantom_crop`, for 3D classification): the same whole-abdomen anatomy rendered only
over a small grid centred on the liver's right lobe (jittered), at a finer spacing (28^3
voxels of 4 mm by default, as MedMNIST 3D ships 28^3 organ-centred crops), with smaller
lesions (5-12 mm radius, 10-19 mm in whole-field cases), kept only where the crop shows
them. Whole-field volumes at 8 mm made a lesion 2-5 voxels across in a 48x48x32 abdomen,
which a 3D ResNet did not learn (test AUC 0.52).

Axes: 2D images are (rows, cols) = (anterior->posterior, patient right->left); volumes are
(rows, cols, slices), slices last, with `spacing` in mm per axis in the same order. The
default spacing makes a 384 mm x 384 mm (x 256 mm) field of view, an adult abdomen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

BUILTIN_NAME = "builtin:phantom"
LABEL_NAMES = ["background", "liver", "kidney", "spleen", "lesion"]
LIVER, KIDNEY, SPLEEN, LESION = 1, 2, 3, 4
FIELD_OF_VIEW_MM = (384.0, 384.0, 256.0)
# (low, high) HU per tissue; each case draws one value per tissue.
TISSUE_HU: dict[str, tuple[float, float]] = {
    "air": (-1000.0, -1000.0),
    "fat": (-110.0, -80.0),
    "soft_tissue": (35.0, 55.0),
    "liver": (90.0, 110.0),
    "spleen": (115.0, 135.0),
    "kidney": (160.0, 200.0),
    "lesion": (-20.0, 25.0),
    "aorta": (140.0, 170.0),
    "cancellous_bone": (200.0, 300.0),
    "cortical_bone": (650.0, 850.0),
}
NOISE_SIGMA_HU = (10.0, 20.0)
MAX_LESIONS = 3
# `phantom_crop`: MedMNIST-3D-sized crops around the liver (112 mm a side), their centre
# moved by up to CROP_JITTER_MM per axis.
CROP_SHAPE = (28, 28, 28)
CROP_SPACING_MM = (4.0, 4.0, 4.0)
CROP_JITTER_MM = 8.0
CROP_LESION_RADIUS_MM = (5.0, 12.0)

Seed = int | Sequence[int] | np.random.SeedSequence


class _Grid:
    """Millimetre coordinates of a 2D or 3D grid, centred on the field of view.

    In-plane arrays have shape (H, W[, 1]) and the slice axis (1, 1, D), so every shape
    test broadcasts to the full grid without materialising per-axis copies.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        spacing: tuple[float, ...],
        origin: Sequence[float] | None = None,
        field: Sequence[float] | None = None,
    ):
        """`origin`: the grid's centre in mm (a crop; default the field of view's centre);
        `field`: the field of view in mm that the body is scaled to (default the grid's own
        extent), so a crop holds the anatomy of a whole-field case at its own spacing."""
        self.shape, self.spacing = shape, spacing
        extra = (1,) if len(shape) == 3 else ()
        origin = tuple(origin) if origin is not None else (0.0,) * len(shape)
        if field is None:
            field = tuple(n * s for n, s in zip(shape, spacing, strict=True))

        def axis(i: int) -> np.ndarray:
            steps = np.arange(shape[i], dtype=np.float32) + 0.5 - shape[i] / 2
            return (steps * spacing[i] + origin[i]).astype(np.float32)

        self.y = axis(0).reshape(-1, 1, *extra)  # anterior -> posterior
        self.x = axis(1).reshape(1, -1, *extra)  # patient right -> left
        self.half = (field[0] / 2, field[1] / 2)
        if len(shape) == 3:
            self.half_z = field[2] / 2
            self.z = axis(2).reshape(1, 1, -1)
            self.zn = self.z / self.half_z  # -1..1 along the slices
        else:
            self.half_z, self.z, self.zn = 0.0, None, None


class _Body:
    """The body's frame: in-plane coordinates rotated with the body and divided by its
    semi-axes, so organs are placed as fractions of the body and scale with it."""

    def __init__(self, grid: _Grid, rng: np.random.Generator):
        self.center = rng.uniform(-0.04, 0.04, 2) * np.asarray(grid.half)  # (y, x) mm
        self.semi = (rng.uniform(0.58, 0.70) * grid.half[0], rng.uniform(0.78, 0.90) * grid.half[1])
        self.angle = np.deg2rad(rng.uniform(-8.0, 8.0))
        self.fat = rng.uniform(0.05, 0.09)  # subcutaneous fat, fraction of the radius
        self.taper = rng.uniform(1.6, 2.2)  # 3D: the body narrows towards the volume's ends
        self.frame(grid)

    def frame(self, grid: _Grid) -> None:
        """The body's coordinates (p, q, radius2) on `grid` (a crop is framed again)."""
        dy, dx = grid.y - self.center[0], grid.x - self.center[1]
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        self.p = (cos * dx + sin * dy) / self.semi[1]  # left-right, body units
        self.q = (-sin * dx + cos * dy) / self.semi[0]  # anterior-posterior, body units
        radius2 = self.p**2 + self.q**2
        if grid.zn is not None:
            radius2 = radius2 / (1.0 - (grid.zn / self.taper) ** 2)
        self.radius2 = radius2

    def to_mm(self, p: float, q: float) -> tuple[float, float]:
        """(y, x) in mm of a point given in body units."""
        x, y = p * self.semi[1], q * self.semi[0]
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        return (sin * x + cos * y + self.center[0], cos * x - sin * y + self.center[1])


class _Ellipsoid:
    """An organ: an ellipse in the body's frame (rotated by its own angle) times, in 3D,
    an extent along the slices (centre and semi-axis in units of half the volume's depth)."""

    def __init__(self, rng: np.random.Generator, center, semi, angle_deg, z_center, z_semi):
        jitter = np.asarray(center[2])
        self.center = np.asarray(center[:2]) + rng.uniform(-jitter, jitter)
        self.semi = np.asarray(semi[:2]) * rng.uniform(1 - semi[2], 1 + semi[2], 2)
        self.angle = np.deg2rad(rng.uniform(*angle_deg))
        self.z_center, self.z_semi = rng.uniform(*z_center), rng.uniform(*z_semi)

    def inside(self, body: _Body, grid: _Grid) -> np.ndarray:
        dp, dq = body.p - self.center[0], body.q - self.center[1]
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        u = (cos * dp + sin * dq) / self.semi[0]
        v = (-sin * dp + cos * dq) / self.semi[1]
        value = u**2 + v**2
        if grid.zn is not None:
            value = value + ((grid.zn - self.z_center) / self.z_semi) ** 2
        return value <= 1.0

    def random_point(self, rng: np.random.Generator, shrink: float) -> tuple[float, ...]:
        """A point drawn uniformly inside the ellipsoid scaled by `shrink`: (p, q, zn)."""
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        u, v, w = direction * rng.uniform() ** (1 / 3) * shrink
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        a, b = u * self.semi[0], v * self.semi[1]
        p = cos * a - sin * b + self.center[0]
        q = sin * a + cos * b + self.center[1]
        return p, q, self.z_center + w * self.z_semi


def _anatomy(rng: np.random.Generator) -> dict[str, _Ellipsoid]:
    """The organs of one case, in the body's frame: (p, q) centres with jitter, semi-axes
    with relative jitter, rotation range in degrees, slice-axis centre and semi-axis."""
    kidney_tilt = rng.uniform(10.0, 30.0)
    return {
        "liver": _Ellipsoid(
            rng, (-0.40, -0.10, 0.05), (0.38, 0.45, 0.1), (-20, 20), (0.05, 0.3), (0.6, 0.8)
        ),
        "liver_left_lobe": _Ellipsoid(
            rng, (-0.05, -0.38, 0.04), (0.28, 0.16, 0.1), (-15, 15), (0.15, 0.35), (0.35, 0.5)
        ),
        "spleen": _Ellipsoid(
            rng, (0.55, 0.18, 0.04), (0.14, 0.26, 0.15), (-25, 25), (0.1, 0.35), (0.35, 0.5)
        ),
        "kidney_right": _Ellipsoid(
            rng,
            (-0.36, 0.50, 0.03),
            (0.11, 0.17, 0.1),
            (kidney_tilt - 5, kidney_tilt + 5),
            (-0.35, -0.1),
            (0.35, 0.5),
        ),
        "kidney_left": _Ellipsoid(
            rng,
            (0.36, 0.48, 0.03),
            (0.11, 0.17, 0.1),
            (-kidney_tilt - 5, -kidney_tilt + 5),
            (-0.25, 0.0),
            (0.35, 0.5),
        ),
    }


def _place_lesions(
    rng: np.random.Generator,
    grid: _Grid,
    body: _Body,
    liver: _Ellipsoid,
    liver_region: np.ndarray,
    count: int,
    radius_mm: tuple[float, float] | None = None,
) -> np.ndarray:
    """Up to `count` non-overlapping spheres inside the liver region, of a radius drawn from
    `radius_mm` (default 5-10% of the smaller in-plane half field of view: 10-19 mm)."""
    lesions = np.zeros(grid.shape, dtype=bool)
    placed: list[tuple[np.ndarray, float]] = []
    reference = min(grid.half)
    low, high = radius_mm if radius_mm is not None else (0.05 * reference, 0.10 * reference)
    gap = 2.0 * max(grid.spacing)
    for _ in range(count):
        for _attempt in range(20):
            radius = rng.uniform(low, high)
            p, q, zn = liver.random_point(rng, shrink=0.7)
            y, x = body.to_mm(p, q)
            centre = np.array([y, x, zn * grid.half_z])
            if any(np.linalg.norm(centre - c) < radius + r + gap for c, r in placed):
                continue
            distance2 = (grid.y - y) ** 2 + (grid.x - x) ** 2
            if grid.z is not None:
                distance2 = distance2 + (grid.z - centre[2]) ** 2
            sphere = distance2 <= radius**2
            lesion = sphere & liver_region
            # Keep a lesion only where most of it lies in the liver (else try again).
            if lesion.sum() >= max(3, 0.6 * sphere.sum()):
                lesions |= lesion
                placed.append((centre, radius))
                break
    return lesions


def _draw_hu(rng: np.random.Generator) -> dict[str, float]:
    return {name: float(rng.uniform(low, high)) for name, (low, high) in TISSUE_HU.items()}


def _inhomogeneity(rng: np.random.Generator, grid: _Grid) -> np.ndarray:
    """A smooth additive field (at most ~1 cycle across the field of view, +-5..15 HU)."""
    amplitude = rng.uniform(5.0, 15.0)
    field = 0.0
    for _ in range(2):
        ky, kx = rng.uniform(-np.pi, np.pi, 2) / np.asarray(grid.half)
        phase = rng.uniform(0, 2 * np.pi)
        term = ky * grid.y + kx * grid.x + phase
        if grid.z is not None:
            term = term + rng.uniform(-np.pi, np.pi) / grid.half_z * grid.z
        field = field + np.cos(term)
    return (amplitude / 2) * np.asarray(field, dtype=np.float32)


def _spacing(shape: tuple[int, ...], spacing: Sequence[float] | None) -> tuple[float, ...]:
    if spacing is None:
        return tuple(FIELD_OF_VIEW_MM[i] / n for i, n in enumerate(shape))
    values = tuple(float(s) for s in spacing)
    if len(values) != len(shape) or min(values) <= 0:
        raise ValueError(f"spacing must be {len(shape)} positive numbers, got {spacing!r}")
    return values


def _render(
    seed: Seed,
    shape: tuple[int, ...],
    spacing: Sequence[float] | None,
    num_lesions: int | None,
    noise_sigma: float | None,
    blur: float,
    inhomogeneity: bool,
    crop_jitter: float | None = None,
    lesion_radius: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One case. `crop_jitter` None renders the whole field of view over `shape`; a number
    (mm) renders a crop of `shape` voxels of `spacing` mm from a whole-field 3D case,
    centred on the liver's right lobe moved by up to `crop_jitter` mm along each axis."""
    if len(shape) not in (2, 3) or min(shape) < 8:
        raise ValueError(f"phantom shape must be 2D or 3D, at least 8 per axis; got {shape}")
    if num_lesions is not None and not 0 <= num_lesions <= MAX_LESIONS:
        raise ValueError(f"num_lesions must be 0..{MAX_LESIONS}, got {num_lesions}")
    rng = np.random.default_rng(seed)
    spacing = _spacing(shape, spacing)
    field = FIELD_OF_VIEW_MM[: len(shape)] if crop_jitter is not None else None
    grid = _Grid(shape, spacing, field=field)
    body = _Body(grid, rng)
    organs = _anatomy(rng)
    hu = _draw_hu(rng)
    lesion_count = int(rng.integers(0, MAX_LESIONS + 1)) if num_lesions is None else num_lesions
    sigma = float(rng.uniform(*NOISE_SIGMA_HU)) if noise_sigma is None else float(noise_sigma)
    if crop_jitter is not None:  # the same anatomy, framed on a grid around the liver
        liver = organs["liver"]
        centre = (*body.to_mm(*liver.center), liver.z_center * grid.half_z)[: len(shape)]
        centre = np.asarray(centre) + rng.uniform(-crop_jitter, crop_jitter, len(shape))
        grid = _Grid(shape, spacing, origin=centre, field=field)
        body.frame(grid)

    body_mask = np.broadcast_to(body.radius2 <= 1.0, shape)
    inner = np.broadcast_to(body.radius2 <= (1.0 - body.fat) ** 2, shape)
    mask = np.zeros(shape, dtype=np.uint8)
    liver = organs["liver"].inside(body, grid) | organs["liver_left_lobe"].inside(body, grid)
    mask[liver & inner] = LIVER
    mask[organs["spleen"].inside(body, grid) & inner] = SPLEEN
    kidneys = organs["kidney_right"].inside(body, grid) | organs["kidney_left"].inside(body, grid)
    mask[kidneys & inner] = KIDNEY
    lesions = _place_lesions(
        rng, grid, body, organs["liver"], mask == LIVER, lesion_count, lesion_radius
    )
    mask[lesions] = LESION

    # Unlabelled structures: the vertebral body (shell and core) and the aorta, in mm.
    spine_y, spine_x = body.to_mm(0.0, 0.66)
    spine_r = 0.16 * body.semi[0]
    spine_d = np.sqrt((grid.y - spine_y) ** 2 + (grid.x - spine_x) ** 2)
    aorta_y, aorta_x = body.to_mm(0.08, 0.36)
    aorta = (grid.y - aorta_y) ** 2 + (grid.x - aorta_x) ** 2 <= (0.075 * body.semi[0]) ** 2

    image = np.full(shape, hu["air"], dtype=np.float32)
    image[body_mask] = hu["fat"]
    image[inner] = hu["soft_tissue"]
    free = inner & (mask == 0)
    image[free & np.broadcast_to(aorta, shape)] = hu["aorta"]
    image[free & np.broadcast_to(spine_d <= spine_r, shape)] = hu["cortical_bone"]
    image[free & np.broadcast_to(spine_d <= 0.75 * spine_r, shape)] = hu["cancellous_bone"]
    for label, tissue in ((LIVER, "liver"), (SPLEEN, "spleen"), (KIDNEY, "kidney")):
        image[mask == label] = hu[tissue]
    image[mask == LESION] = hu["lesion"]

    if blur > 0:  # partial volume: the image only, the masks stay exact
        image = ndimage.gaussian_filter(image, sigma=blur, mode="nearest")
    if inhomogeneity:
        image += np.where(body_mask, _inhomogeneity(rng, grid), np.float32(0.0))
    image += rng.normal(0.0, sigma, shape).astype(np.float32)
    return image.astype(np.float32, copy=False), mask, spacing


def phantom_volume(
    seed: Seed,
    shape: Sequence[int] = (64, 64, 32),
    spacing: Sequence[float] | None = None,
    *,
    num_lesions: int | None = None,
    noise_sigma: float | None = None,
    blur: float = 0.6,
    inhomogeneity: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One 3D case: (image float32 HU, mask uint8 labels, spacing mm), slices on the last axis.

    `spacing` defaults to the 384 x 384 x 256 mm field of view over `shape` ((6, 6, 8) mm
    for the default shape). `num_lesions` None draws 0-3; `noise_sigma` None draws 10-20 HU;
    `blur` is the partial-volume Gaussian sigma in voxels (0 turns it off).
    """
    if len(shape) != 3:
        raise ValueError(f"phantom_volume makes 3D volumes; got shape {shape}")
    return _render(seed, tuple(shape), spacing, num_lesions, noise_sigma, blur, inhomogeneity)


def phantom_crop(
    seed: Seed,
    shape: Sequence[int] = CROP_SHAPE,
    spacing: Sequence[float] = CROP_SPACING_MM,
    *,
    jitter: float = CROP_JITTER_MM,
    lesion_radius: tuple[float, float] = CROP_LESION_RADIUS_MM,
    num_lesions: int | None = None,
    noise_sigma: float | None = None,
    blur: float = 0.6,
    inhomogeneity: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One 3D crop around the liver: (image float32 HU, mask uint8, spacing mm).

    A whole-abdomen case (the anatomy and intensities of `phantom_volume`, scaled to the
    384 x 384 x 256 mm field of view) rendered only over `shape` voxels of `spacing` mm
    centred on the liver's right lobe (where lesions are placed), the centre moved by up to
    `jitter` mm per axis: MedMNIST 3D's organ-centred crops. The default (28^3 at 4 mm,
    112 mm a side) holds most of the right lobe. Lesions are smaller than the whole-field
    ones (`lesion_radius`, default 5-12 mm: 1.25-3 voxels) and kept only where at least 3
    of their voxels lie in the crop's liver, so `num_lesions` counts lesions the crop shows.
    """
    if len(shape) != 3:
        raise ValueError(f"phantom_crop makes 3D volumes; got shape {shape}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 mm, got {jitter}")
    if not 0 < lesion_radius[0] <= lesion_radius[1]:
        raise ValueError(
            f"lesion_radius must be (low, high) mm, 0 < low <= high; got {lesion_radius}"
        )
    return _render(
        seed,
        tuple(shape),
        spacing,
        num_lesions,
        noise_sigma,
        blur,
        inhomogeneity,
        crop_jitter=float(jitter),
        lesion_radius=(float(lesion_radius[0]), float(lesion_radius[1])),
    )


def phantom_slice(
    seed: Seed,
    shape: Sequence[int] = (128, 128),
    spacing: Sequence[float] | None = None,
    *,
    num_lesions: int | None = None,
    noise_sigma: float | None = None,
    blur: float = 0.6,
    inhomogeneity: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One 2D axial slice through all organs: (image float32 HU, mask uint8, spacing mm)."""
    if len(shape) != 2:
        raise ValueError(f"phantom_slice makes 2D images; got shape {shape}")
    return _render(seed, tuple(shape), spacing, num_lesions, noise_sigma, blur, inhomogeneity)


def phantom_dataset(
    n: int,
    seed: int,
    dims: int = 2,
    shape: tuple[int, ...] | None = None,
    spacing: Sequence[float] | None = None,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], list[str]]:
    """`n` cases: (images (n, *shape) float32 HU, masks (n, *shape) uint8, the spacing all
    cases share, LABEL_NAMES). Case i is seeded by (seed, i), so it is the same whatever
    `n` is. `options` go to `phantom_slice` / `phantom_volume`."""
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    make = phantom_slice if dims == 2 else phantom_volume
    shape = tuple(shape) if shape is not None else ((128, 128) if dims == 2 else (64, 64, 32))
    images = np.empty((n, *shape), dtype=np.float32)
    masks = np.empty((n, *shape), dtype=np.uint8)
    case_spacing: tuple[float, ...] = _spacing(shape, spacing)
    for i in range(n):
        images[i], masks[i], case_spacing = make([seed, i], shape, spacing, **options)
    return images, masks, case_spacing, list(LABEL_NAMES)


def phantom_classification(
    n: int,
    seed: int,
    dims: int = 2,
    shape: tuple[int, ...] = (64, 64),
    *,
    crop: bool = False,
    spacing: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, *shape) float32 HU, labels (n,) int32): 1 = a liver lesion is present.

    Classes are balanced (n // 2 or n - n // 2 each, in seeded random order); a positive
    case is redrawn until its mask holds a lesion, so every label matches its mask.
    `crop` (3D only) makes liver-centred crops (`phantom_crop`, `spacing` mm, default
    CROP_SPACING_MM) instead of whole-field cases; a label then says whether a lesion lies
    inside the crop.
    """
    if dims not in (2, 3) or len(shape) != dims:
        raise ValueError(f"dims={dims} needs a shape of {dims} axes, got {shape}")
    if crop and dims != 3:
        raise ValueError("crop makes 3D crops; use dims=3")
    if crop:
        crop_spacing = CROP_SPACING_MM if spacing is None else tuple(spacing)

        def make(case_seed, case_shape, **options):
            return phantom_crop(case_seed, case_shape, crop_spacing, **options)

    else:
        whole = phantom_slice if dims == 2 else phantom_volume

        def make(case_seed, case_shape, **options):
            return whole(case_seed, case_shape, spacing, **options)

    labels = np.random.default_rng(seed).permutation(np.arange(n) % 2).astype(np.int32)
    images = np.empty((n, *shape), dtype=np.float32)
    for i, label in enumerate(labels):
        for attempt in range(20):
            case_rng = np.random.default_rng([seed, i, attempt])
            count = int(case_rng.integers(1, MAX_LESIONS + 1)) if label else 0
            image, mask, _ = make([seed, i, attempt], shape, num_lesions=count)
            if bool((mask == LESION).any()) == bool(label):
                break
        else:  # pragma: no cover - a lesion always fits within 20 draws
            raise RuntimeError(f"could not place a lesion in phantom case {i}")
        images[i] = image
    return images, labels
