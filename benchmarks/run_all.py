"""Run the benchmarks: `python -m benchmarks.run_all [--quick] [--only NAME ...]`.

Prints one JSON object per benchmark record on stdout and appends the same lines to
`benchmarks/results/<UTC timestamp>.jsonl`. A benchmark that fails yields an error
record (and exit status 1) instead of stopping the others.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import sys
import time
import traceback
from datetime import UTC, datetime

import benchmarks  # noqa: F401  (sets TF_CPP_MIN_LOG_LEVEL before TensorFlow loads)

# Benchmark name -> module with `run(quick: bool) -> list[dict]`, in running order.
BENCHMARKS = {
    "input_pipeline": "benchmarks.input_pipeline",
    "trainer_overhead": "benchmarks.trainer_overhead",
    "resnet50_mfu": "benchmarks.resnet50_mfu",
    "precision_jit": "benchmarks.precision_jit",
    "zoo_speed": "benchmarks.zoo_speed",
    "export_serving": "benchmarks.export_serving",
    "finance_models": "benchmarks.finance_models",
    "nlp_classify": "benchmarks.nlp_classify",
    "nlp_lm": "benchmarks.nlp_lm",
    "nlp_translate": "benchmarks.nlp_translate",
    "nlp_pretrain": "benchmarks.nlp_pretrain",
    "nlp_speed": "benchmarks.nlp_speed",
    "rl_cartpole": "benchmarks.rl_cartpole",
    "healthcare_classify": "benchmarks.healthcare_classify",
    "healthcare_metrics_monai": "benchmarks.healthcare_metrics_monai",
    "healthcare_segment": "benchmarks.healthcare_segment",
    "healthcare_sliding_window": "benchmarks.healthcare_sliding_window",
    "driving_multitask": "benchmarks.driving_multitask",
    "driving_speed": "benchmarks.driving_speed",
    "search_targets": "benchmarks.search_targets",
    "search_noise": "benchmarks.search_noise",
    "compress_targets": "benchmarks.compress_targets",
}


def run_one(name: str, quick: bool) -> list[dict]:
    """Records of benchmark `name`, or one error record if it raised."""
    import keras

    from benchmarks.common import record

    start = time.perf_counter()
    try:
        # Anything a library prints must not mix with the JSON lines on stdout.
        with contextlib.redirect_stdout(sys.stderr):
            records = importlib.import_module(BENCHMARKS[name]).run(quick)
    except Exception as e:
        traceback.print_exc()
        records = [
            record(name, quick=quick, error=f"{type(e).__name__}: {e}", ratio=None, target=None)
        ]
    finally:
        keras.backend.clear_session()
        gc.collect()
    for rec in records:
        rec["seconds"] = round(time.perf_counter() - start, 1)
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fast smoke version")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    args = parser.parse_args(argv)
    from benchmarks.common import RESULTS_DIR, append_jsonl  # loads TensorFlow: after --help

    names = [name for name in BENCHMARKS if not args.only or name in args.only]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"{stamp}.jsonl"
    failed = False
    for name in names:
        records = run_one(name, args.quick)
        for rec in records:
            print(json.dumps(rec), flush=True)
            failed |= "error" in rec
        append_jsonl(out, records)
    print(f"results appended to {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
