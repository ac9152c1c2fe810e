"""How much the digits test accuracy moves when nothing but the run changes; JSON lines out.

    python -m benchmarks.search_noise                 the default digits config
    python -m benchmarks.search_noise --set model.filters=[64,128] \\
        --set train.learning_rate=0.0047

Issue 16's digits target compares a search's test accuracy with the default config's, as
a mean over 3 seeds, on the 359-image test split each seed cuts. This benchmark measures
the yardstick itself: the config (the default `digits`, or with `--set` overrides, e.g. a
search's choice) is trained `--repeats` times at each seed, every run alike, and each
run's test accuracy and misclassified test images are recorded. An image is named by its
row in scikit-learn's `load_digits()`, so the same image can be followed across seeds,
runs and configs.

Per seed: the accuracies of the repeats (TensorFlow's CPU training is not bit-for-bit
reproducible, so they differ), and how often each image was missed. Summary: the spread
of the 3-seed mean that repeats alone give (its standard deviation, from the per-seed
variances), the smallest gain a comparison of two 3-seed means could tell from that noise
(two standard deviations of their difference), the images missed by most runs (candidates
for an irreducible error) and the mean count of errors per run.

Runs live in a temporary folder, deleted at the end. Records are appended to
`benchmarks/results/<time>-search_noise.jsonl` as each one finishes.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import emit, record, results_file

SEEDS = (0, 1, 2)
REPEATS = 6


def digits_rows() -> dict[bytes, int]:
    """Pixel bytes of each scikit-learn digit, as `builtin:digits` loads it -> its row.
    The 1,797 images are all distinct (the splitter's duplicate report finds none)."""
    from shared.data.sources.builtin import BUILTINS

    images, _, _ = BUILTINS.get("digits")()
    rows = {image.tobytes(): row for row, image in enumerate(images)}
    if len(rows) != len(images):
        raise SystemExit("digits: two images share their pixels; rows cannot be matched")
    return rows


def test_errors(run, rows: dict[bytes, int]) -> tuple[float, list[dict], list[int]]:
    """(test accuracy, the misclassified test images, the rows of all test images) of a
    finished vision run, predicted again from its saved model on its seed's test split."""
    import pipelines
    from domains.vision import data as vision_data
    from domains.vision import task

    run, config = pipelines.vision.open(run)  # the run's own config, as evaluate reads it
    data = vision_data.load(config.data, config.runtime.seed)
    model = run.load_model()
    images, labels, probabilities = task.predict_probabilities(model, data, "test")
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    tested = [rows[image.reshape(8, 8).tobytes()] for image in images]
    errors = [
        {
            "row": tested[i],
            "label": int(labels[i]),
            "predicted": int(predicted[i]),
            "confidence": round(float(probabilities[i, predicted[i]]), 4),
        }
        for i in wrong
    ]
    return 1.0 - len(wrong) / len(labels), errors, tested


def study(out: Path | None, repeats: int, seeds=SEEDS, overrides=()) -> dict:
    import pipelines

    rows = digits_rows()
    per_seed: dict[int, list[float]] = {}
    missed: Counter[int] = Counter()
    tested: Counter[int] = Counter()  # an image is in the test split of one seed or more
    errors_per_run: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-noise-") as tmp:
        for seed in seeds:
            for repeat in range(repeats):
                start = time.perf_counter()
                run = pipelines.vision.train(
                    config="digits",
                    overrides=list(overrides),
                    run_dir=Path(tmp) / f"{seed}-{repeat}",
                    seed=seed,
                )
                seconds = time.perf_counter() - start
                accuracy, errors, rows_tested = test_errors(run, rows)
                if abs(accuracy - float(run.metrics["accuracy"])) > 1e-6:
                    raise SystemExit(
                        f"seed {seed}: recomputed accuracy {accuracy} != the run's "
                        f"{run.metrics['accuracy']}"
                    )
                per_seed.setdefault(seed, []).append(accuracy)
                missed.update(e["row"] for e in errors)
                tested.update(rows_tested)
                errors_per_run.append(len(errors))
                emit(
                    out,
                    record(
                        "search_noise.run",
                        ratio=None,
                        target=None,
                        seed=seed,
                        repeat=repeat,
                        overrides=list(overrides),
                        accuracy=accuracy,
                        errors=errors,
                        train_s=seconds,
                    ),
                )
    return summarize(out, per_seed, missed, tested, errors_per_run, repeats, overrides)


def summarize(out, per_seed, missed, tested, errors_per_run, repeats, overrides) -> dict:
    """Spread of a 3-seed mean from repeats alone: var(mean) = sum(var_seed) / seeds²."""
    seeds = sorted(per_seed)
    variances = [statistics.variance(v) if len(v) > 1 else 0.0 for v in map(per_seed.get, seeds)]
    mean_sd = math.sqrt(sum(variances)) / len(seeds)
    summary = record(
        "search_noise.summary",
        ratio=None,
        target=None,
        overrides=list(overrides),
        seeds=seeds,
        repeats=repeats,
        accuracy_by_seed={
            str(s): {
                "mean": statistics.fmean(per_seed[s]),
                "min": min(per_seed[s]),
                "max": max(per_seed[s]),
                "values": per_seed[s],
            }
            for s in seeds
        },
        three_seed_mean=statistics.fmean(statistics.fmean(per_seed[s]) for s in seeds),
        three_seed_mean_sd=mean_sd,
        # Two 3-seed means, each with this spread: their difference has sd * sqrt(2); a
        # gain under two of those is within what repeats alone give.
        smallest_telling_gain=2 * math.sqrt(2) * mean_sd,
        errors_per_run=statistics.fmean(errors_per_run),
        images_missed=len(missed),
        # "row": [runs that missed it, runs that tested it]
        missed_by_half_or_more={
            str(row): [n, tested[row]] for row, n in missed.most_common() if 2 * n >= tested[row]
        },
        missed_counts={str(row): [n, tested[row]] for row, n in missed.most_common()},
        command="python -m benchmarks.search_noise"
        + f" --repeats {repeats}"
        + "".join(f" --set {o}" for o in overrides),
    )
    emit(out, summary)
    return summary


def run(quick: bool) -> list[dict]:
    """`make bench` entry: the default config, 2 runs at one seed when quick (a minute),
    6 runs at each of 3 seeds otherwise (about 5 minutes on 2 cores)."""
    if quick:
        return [study(None, 2, SEEDS[:1])]  # run_all saves the records
    return [study(None, REPEATS, SEEDS)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    out = results_file("search_noise")
    study(out, args.repeats, tuple(range(args.seeds)), args.overrides)
    print(f"results appended to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
