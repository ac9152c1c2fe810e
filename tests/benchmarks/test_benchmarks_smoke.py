"""Smoke test of the benchmark harness: the cheap input-pipeline benchmark in quick mode.

Checks the record's shape and that its numbers are positive, not the speed target: the
heavy benchmarks and the targets belong to `make bench`, not to the test suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# `benchmarks` is a top-level folder, not an installed package: import it from the repo.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import input_pipeline  # noqa: E402

IDENTITY = ("benchmark", "machine", "tf", "keras")
VERDICT = ("ratio", "target", "meets_target")
MEASURED = (
    "naive_images_per_s",
    "pipeline_first_epoch_images_per_s",
    "pipeline_cached_epoch_images_per_s",
    "ratio_cached_epoch",
    "scan_seconds",
)


def test_input_pipeline_quick_record() -> None:
    records = input_pipeline.run(quick=True)

    assert len(records) == 1
    rec = records[0]
    for key in IDENTITY + MEASURED + VERDICT:
        assert key in rec, key
    assert rec["benchmark"] == "input_pipeline"
    assert rec["quick"] is True
    assert all(isinstance(rec[key], str) and rec[key] for key in ("machine", "tf", "keras"))
    for key in (*MEASURED, "ratio", "target", "images"):
        assert rec[key] > 0, key
    for key in ("naive_epoch_seconds", "pipeline_first_epoch_seconds"):
        assert rec[key] and all(t > 0 for t in rec[key]), key
    assert isinstance(rec["meets_target"], bool)
    assert rec["meets_target"] == (rec["ratio"] >= rec["target"])
    json.dumps(rec)  # one JSON line per record
