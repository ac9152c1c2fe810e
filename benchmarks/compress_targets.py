"""Issue 16's compression targets, over several seeds; JSON lines out.

    python -m benchmarks.compress_targets prune      digits: 50% and 80% pruning
    python -m benchmarks.compress_targets distill    BreastMNIST: distillation into a
                                                     student with a quarter of the parameters
    python -m benchmarks.compress_targets lm         Tiny Shakespeare: the character GPT
                                                     pruned 50% and quantized int8 (no target)

`prune`: per seed, `vision train --config digits` at that seed, then `compress --prune
0.5` and `--prune 0.8` of it (the default fine-tuning). The accuracy drop in points
(original minus pruned, on the same 359 test images: one image is 0.28 points), mean
over the seeds. Targets: <= 0.5 points at 50%, <= 2 points at 80%.

`distill`: per seed, the teacher (`healthcare train`, the default ResNet-18 of width 32
on BreastMNIST), the student trained alone (the same config with `model.width=16`: a
quarter of the parameters), and the student distilled from the teacher (`compress
--run TEACHER --distill-from TEACHER --set model.width=16`). Test accuracy and ROC AUC;
the share of the gap closed is (distilled - alone) / (teacher - alone) on the means.
Target: at least half (0.5).

`lm`: one seed of `nlp train --task lm` (the default character GPT on Tiny
Shakespeare), then `compress --prune 0.5` (default fine-tuning) and `compress
--quantize int8`: test perplexity, zipped size and batch-1 latency beside the
original's. No target: a first figure for a sequence model.

Every run lives in a temporary folder, deleted at the end. Records are appended to
`benchmarks/results/<time>-compress_targets.jsonl` as each one finishes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit, record, results_file

SEEDS = (0, 1, 2)
PRUNE_TARGETS = {0.5: 0.5, 0.8: 2.0}  # sparsity -> largest accuracy drop allowed (points)
STUDENT = ("model.width=16",)  # ResNet-18 at half width: a quarter of the parameters
DISTILL_METRICS = ("accuracy", "roc_auc")


def _mean(values: list[float]) -> float:
    return statistics.fmean(values)


def prune(out: Path | None, seeds=SEEDS) -> list[dict]:
    import pipelines

    api = pipelines.vision
    drops: dict[float, list[float]] = {s: [] for s in PRUNE_TARGETS}
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmp:
        for seed in seeds:
            original = api.train(config="digits", run_dir=Path(tmp) / f"t{seed}", seed=seed)
            base = float(original.metrics["accuracy"])
            for sparsity in PRUNE_TARGETS:
                start = time.perf_counter()
                pruned = api.compress(
                    original, prune=sparsity, run_dir=Path(tmp) / f"p{seed}-{sparsity}"
                )
                acc = float(pruned.metrics["accuracy"])
                drops[sparsity].append(100 * (base - acc))
                emit(
                    out,
                    record(
                        "compress_targets.prune_seed",
                        ratio=None,
                        target=None,
                        seed=seed,
                        sparsity=sparsity,
                        measured_sparsity=pruned.metrics.get("sparsity"),
                        original_accuracy=base,
                        pruned_accuracy=acc,
                        drop_points=drops[sparsity][-1],
                        compress_s=time.perf_counter() - start,
                    ),
                )
    summaries = []
    for sparsity, allowed in PRUNE_TARGETS.items():
        mean_drop = _mean(drops[sparsity])
        summaries.append(
            record(
                "compress_targets.prune",
                ratio=None,
                target=None,
                sparsity=sparsity,
                seeds=list(seeds),
                drops_points=drops[sparsity],
                mean_drop_points=mean_drop,
                allowed_points=allowed,
                meets=mean_drop <= allowed,
                command="python -m benchmarks.compress_targets prune",
            )
        )
        emit(out, summaries[-1])
    return summaries


def distill(out: Path | None, seeds=SEEDS) -> dict:
    import pipelines

    api = pipelines.healthcare
    scores: dict[str, dict[str, list[float]]] = {
        arm: {m: [] for m in DISTILL_METRICS} for arm in ("teacher", "alone", "distilled")
    }
    params: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        for seed in seeds:
            start = time.perf_counter()
            teacher = api.train(run_dir=Path(tmp) / f"teacher{seed}", seed=seed)
            alone = api.train(overrides=STUDENT, run_dir=Path(tmp) / f"alone{seed}", seed=seed)
            distilled = api.compress(
                teacher,
                distill_from=teacher,
                overrides=STUDENT,
                run_dir=Path(tmp) / f"distilled{seed}",
            )
            runs = {"teacher": teacher, "alone": alone, "distilled": distilled}
            for arm, run in runs.items():
                for metric in DISTILL_METRICS:
                    scores[arm][metric].append(float(run.metrics[metric]))
                params.setdefault(arm, int(run.load_model().count_params()))
            emit(
                out,
                record(
                    "compress_targets.distill_seed",
                    ratio=None,
                    target=None,
                    seed=seed,
                    **{f"{arm}_{m}": scores[arm][m][-1] for arm in scores for m in DISTILL_METRICS},
                    seconds=time.perf_counter() - start,
                ),
            )
    closed = {}
    for metric in DISTILL_METRICS:
        teacher_m, alone_m, distilled_m = (_mean(scores[a][metric]) for a in scores)
        gap = teacher_m - alone_m
        closed[metric] = (distilled_m - alone_m) / gap if gap > 0 else None
    summary = record(
        "compress_targets.distill",
        ratio=closed["roc_auc"],
        target=0.5,
        seeds=list(seeds),
        parameters=params,
        parameter_ratio=params["distilled"] / params["teacher"],
        **{f"{arm}_{m}_mean": _mean(scores[arm][m]) for arm in scores for m in DISTILL_METRICS},
        gap_closed=closed,
        command="python -m benchmarks.compress_targets distill",
    )
    emit(out, summary)
    return summary


def lm(out: Path | None, seeds=(0,)) -> list[dict]:
    import pipelines

    api = pipelines.nlp
    found = []
    with tempfile.TemporaryDirectory(prefix="bench-lm-") as tmp:
        for seed in seeds:
            start = time.perf_counter()
            original = api.train(task="lm", run_dir=Path(tmp) / f"t{seed}", seed=seed)
            train_s = time.perf_counter() - start
            for name, options in (("prune 0.5", {"prune": 0.5}), ("int8", {"quantize": "int8"})):
                start = time.perf_counter()
                small = api.compress(original, run_dir=Path(tmp) / f"{name[:5]}{seed}", **options)
                m = small.metrics
                found.append(
                    record(
                        "compress_targets.lm",
                        ratio=m["perplexity"] / m["original_perplexity"],
                        target=None,
                        seed=seed,
                        compression=name,
                        perplexity=m["perplexity"],
                        original_perplexity=m["original_perplexity"],
                        size_bytes=m["size_bytes"],
                        original_size_bytes=m["original_size_bytes"],
                        latency_ms=m["latency_ms"],
                        original_latency_ms=m["original_latency_ms"],
                        sparsity=m.get("sparsity"),
                        train_s=train_s,
                        compress_s=time.perf_counter() - start,
                        command="python -m benchmarks.compress_targets lm",
                    )
                )
                emit(out, found[-1])
    return found


def run(quick: bool) -> list[dict]:
    """`make bench` entry: pruning at one seed when quick, both at every seed otherwise."""
    out = None  # run_all saves the records
    if quick:
        return prune(out, seeds=(0,))
    return [*prune(out), distill(out)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["prune", "distill", "lm"])
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    args = parser.parse_args(argv)
    out = results_file("compress_targets")
    seeds = tuple(range(args.seeds))
    {"prune": prune, "distill": distill, "lm": lm}[args.what](out, seeds)
    print(f"results appended to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
