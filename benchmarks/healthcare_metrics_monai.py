"""Our Dice and HD95 (`domains.healthcare.seg_metrics`) against MONAI's, pair by pair.

100 random 3D mask pairs on an anisotropic grid (0.8 x 0.8 x 2.5 mm): 5 with both masks
empty, 5 with the prediction empty (a missed structure), 5 with the ground truth empty (a
spurious one), and 85 where both are non-empty (shifted, dilated, eroded, boundary-noisy,
with a spurious extra blob, or disjoint). MONAI's side is `compute_dice(ignore_empty=False)`
(and its default `ignore_empty=True`, for the record) and
`compute_hausdorff_distance(percentile=95, spacing=...)` with its defaults (undirected,
Euclidean, face-connected edges).

Where both masks are non-empty the two must agree (the record's `*_max_abs_diff`). Where
either is empty we differ by design, and the record lists each side's values: we give
Dice 1.0 (both empty) or 0.0 (one empty), and HD95 0.0 (both empty) or the volume's
diagonal in mm (one empty), where MONAI gives NaN or inf.

Needs torch and MONAI, which the project does not install (`pip install torch monai`;
torch's CPU wheel is enough). Run: `python -m benchmarks.healthcare_metrics_monai [--quick]`.
The record's `ratio` is None: this benchmark checks agreement, not speed (the seconds are
there for information).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
import warnings
from typing import Any

import numpy as np
from scipy import ndimage

SHAPE = (40, 40, 20)
SPACING = (0.8, 0.8, 2.5)
EMPTY_KINDS = ("both_empty", "pred_empty", "true_empty")
REGULAR_KINDS = ("shifted", "dilated", "eroded", "noisy_boundary", "extra_blob", "disjoint")
MISSING = (
    "this benchmark needs torch and MONAI, which the project does not install: "
    "pip install -e '.[health-bench]' --extra-index-url https://download.pytorch.org/whl/cpu"
)


def _ellipsoid(rng: np.random.Generator) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    semi = rng.uniform([3, 3, 2], [9, 9, 5])
    center = [rng.uniform(s, n - s) for s, n in zip(semi, SHAPE, strict=True)]
    return sum(((g - c) / s) ** 2 for g, c, s in zip(grid, center, semi, strict=True)) <= 1.0


def _regular_pair(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    true = _ellipsoid(rng)
    if kind == "shifted":
        pred = ndimage.shift(true, rng.integers(-3, 4, 3), order=0)
    elif kind == "dilated":
        pred = ndimage.binary_dilation(true, iterations=int(rng.integers(1, 3)))
    elif kind == "eroded":
        pred = ndimage.binary_erosion(true, iterations=1)
    elif kind == "noisy_boundary":
        band = ndimage.binary_dilation(true) & ~ndimage.binary_erosion(true)
        pred = true ^ (band & (rng.uniform(size=SHAPE) < 0.3))
    elif kind == "extra_blob":
        pred = true | _ellipsoid(rng)
    else:  # disjoint: somewhere else entirely (Dice 0, HD95 still defined)
        pred = _ellipsoid(rng) & ~true
    if not pred.any() or not true.any():  # an eroded sliver can vanish: keep it defined
        pred = true.copy()
    return pred.astype(bool), true.astype(bool)


def make_pairs(count: int, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """`count` (kind, pred, true) pairs: 5% of each empty kind (at least one), the rest
    cycling through the regular kinds."""
    rng = np.random.default_rng(seed)
    empty = np.zeros(SHAPE, bool)
    per_kind = max(1, count // 20)
    pairs = []
    for _ in range(per_kind):
        pairs.append(("both_empty", empty, empty))
        pairs.append(("pred_empty", empty, _ellipsoid(rng)))
        pairs.append(("true_empty", _ellipsoid(rng), empty))
    for i in range(count - len(pairs)):
        kind = REGULAR_KINDS[i % len(REGULAR_KINDS)]
        pairs.append((kind, *_regular_pair(rng, kind)))
    return pairs


def ours(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    from domains.healthcare.seg_metrics import dice, hd95

    return {"dice": dice(pred, true), "hd95": hd95(pred, true, SPACING)}


def monai(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance

    y_pred = torch.from_numpy(pred[None, None].astype(np.float32))
    y = torch.from_numpy(true[None, None].astype(np.float32))
    with warnings.catch_warnings():  # MONAI warns on every empty mask
        warnings.simplefilter("ignore")
        strict = compute_dice(y_pred, y, include_background=True, ignore_empty=False)
        default = compute_dice(y_pred, y, include_background=True)
        hd = compute_hausdorff_distance(
            y_pred, y, include_background=True, percentile=95, spacing=SPACING
        )
    return {
        "dice": float(strict.item()),
        "dice_ignore_empty": float(default.item()),
        "hd95": float(hd.item()),
    }


def _json_number(value: float) -> float | str:
    """NaN and inf as strings: JSON has no literal for them."""
    return value if math.isfinite(value) else str(value)


def compare(count: int) -> dict[str, Any]:
    """Both libraries on `count` pairs: agreement where defined, values where not."""
    pairs = make_pairs(count)
    rows, ours_seconds, monai_seconds = [], 0.0, 0.0
    for kind, pred, true in pairs:
        start = time.perf_counter()
        mine = ours(pred, true)
        ours_seconds += time.perf_counter() - start
        start = time.perf_counter()
        theirs = monai(pred, true)
        monai_seconds += time.perf_counter() - start
        rows.append((kind, mine, theirs))
    defined = [(m, t) for kind, m, t in rows if kind not in EMPTY_KINDS]
    by_design = {}
    for kind in EMPTY_KINDS:
        kind_rows = [(m, t) for k, m, t in rows if k == kind]
        by_design[kind] = {
            "pairs": len(kind_rows),
            "ours_dice": sorted({m["dice"] for m, _ in kind_rows}),
            "monai_dice_ignore_empty_false": sorted(
                {_json_number(t["dice"]) for _, t in kind_rows}, key=str
            ),
            "monai_dice_default": sorted(
                {_json_number(t["dice_ignore_empty"]) for _, t in kind_rows}, key=str
            ),
            "ours_hd95": sorted({round(m["hd95"], 3) for m, _ in kind_rows}),
            "monai_hd95": sorted({_json_number(t["hd95"]) for _, t in kind_rows}, key=str),
        }
    dice_diff = [abs(m["dice"] - t["dice"]) for m, t in defined]
    hd_diff = [abs(m["hd95"] - t["hd95"]) for m, t in defined]
    return {
        "pairs": len(rows),
        "defined_pairs": len(defined),
        "dice_max_abs_diff": max(dice_diff),
        "hd95_max_abs_diff": max(hd_diff),
        "hd95_max_rel_diff": max(
            d / max(t["hd95"], 1e-9) for d, (_, t) in zip(hd_diff, defined, strict=True)
        ),
        "hd95_mean_mm": float(np.mean([m["hd95"] for m, _ in defined])),
        "agree_within_1e-4": bool(max(dice_diff) < 1e-4 and max(hd_diff) < 1e-4),
        "by_design": by_design,
        "ours_seconds": ours_seconds,
        "monai_seconds": monai_seconds,
    }


def monai_installed() -> bool:
    return all(importlib.util.find_spec(name) for name in ("torch", "monai"))


def run(quick: bool = False) -> list[dict]:
    """One record: agreement of our Dice and HD95 with MONAI's (`quick`: 30 pairs)."""
    from benchmarks.common import record

    if not monai_installed():
        return [record("healthcare_metrics_monai", ratio=None, target=None, skipped=MISSING)]
    import monai as monai_module
    import torch

    result = compare(30 if quick else 100)
    return [
        record(
            "healthcare_metrics_monai",
            ratio=None,
            target=None,
            quick=quick,
            shape=list(SHAPE),
            spacing=list(SPACING),
            monai=monai_module.__version__,
            torch=torch.__version__,
            **result,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.healthcare_metrics_monai")
    parser.add_argument("--quick", action="store_true", help="30 pairs instead of 100")
    args = parser.parse_args(argv)
    if not monai_installed():
        print(MISSING, file=sys.stderr)
        return 2
    from benchmarks.common import save_records

    save_records("healthcare_metrics_monai", run(quick=args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
