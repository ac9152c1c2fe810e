"""The digits noise study's bookkeeping (benchmarks/search_noise.py), without training:
the image rows it follows and the statistics its summary gives."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import search_noise  # noqa: E402


def test_digit_rows_match_scikit_learn_rows() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = search_noise.digits_rows()

    assert len(rows) == len(digits.images) == 1797
    for row in (0, 794, 1658, 1796):  # the builtin source scales 0..16 to 0..255
        pixels = np.round(digits.images[row] * (255.0 / 16.0)).astype(np.uint8)
        assert rows[pixels.tobytes()] == row


def test_summary_spread_of_the_three_seed_mean_and_the_images_missed_by_most_runs() -> None:
    per_seed = {0: [0.99, 1.0], 1: [1.0, 1.0], 2: [0.98, 1.0]}
    missed = Counter({7: 2, 9: 1, 11: 1})
    tested = Counter({7: 2, 9: 4, 11: 2})

    summary = search_noise.summarize(None, per_seed, missed, tested, [1, 0, 0, 0, 2, 0], 2, ())

    variances = [0.00005, 0.0, 0.0002]  # sample variances of the seeds' repeats
    sd = math.sqrt(sum(variances)) / 3
    assert math.isclose(summary["three_seed_mean_sd"], sd, rel_tol=1e-3)  # records keep 4 digits
    assert math.isclose(summary["smallest_telling_gain"], 2 * math.sqrt(2) * sd, rel_tol=1e-3)
    assert math.isclose(summary["three_seed_mean"], (0.995 + 1.0 + 0.99) / 3, rel_tol=1e-4)
    # missed by at least half of the runs whose test split held it: 7 (2 of 2), 11 (1 of 2)
    assert summary["missed_by_half_or_more"] == {"7": [2, 2], "11": [1, 2]}
    assert summary["missed_counts"]["9"] == [1, 4]
    assert summary["errors_per_run"] == 0.5
    assert summary["images_missed"] == 3
