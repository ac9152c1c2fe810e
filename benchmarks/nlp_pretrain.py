"""Masked-LM pretraining then fine-tuning against the same BERT trained from scratch.

`python -m benchmarks.run_all --only nlp_pretrain` (or `python -m benchmarks.nlp_pretrain
[--data NAME ...] [--seeds N] [--quick]` for one text set): the `bert` config (2 layers,
hidden 128, WordPiece vocabulary from the training split), mean-pooled, trained twice
per seed on the same splits: once after `PRETRAIN_EPOCHS` of masked-LM pretraining on the training
split's texts (no other text: what the pretraining buys is a better start, not more
data), once with `pretrain.epochs=0`. Accuracy and macro F1 on the test split, mean and
standard deviation over the seeds. `ratio` is the pretrained model's mean F1 over the
scratch model's; the target, 1.0, asks that pretraining not hurt.

Text sets: `sentiment` (the shipped Yelp + Amazon sentences, 2,000), and in a full run
`yelp` and `amazon` (1,000 sentences each, read as headerless tab-separated files).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import record

DATA_DIR = Path(__file__).resolve().parents[1] / "domains" / "nlp" / "data"
HEADERLESS = ("data.header=false", "data.columns=[sentence,label]")
DATASETS = {
    "sentiment": ("builtin:sentiment-sentences",),
    "yelp": (f"csv:{DATA_DIR / 'yelp_labelled.txt'}", *HEADERLESS),
    "amazon": (f"csv:{DATA_DIR / 'amazon_cells_labelled.txt'}", *HEADERLESS),
}
SEEDS = 3
PRETRAIN_EPOCHS = 100
# Both arms mean-pool: a first token that masked-LM never trained reads worse (one-off,
# seeds 0 and 1: pretrained 0.778 and 0.763 against scratch 0.798 and 0.803 with cls).
POOLING = ("model.pooling=mean",)
QUICK = ("data.max_examples=300", "train.epochs=1")


def train_once(data: tuple[str, ...], seed: int, pretrain: bool, quick: bool, root: Path):
    from pipelines import nlp

    epochs = (1 if quick else PRETRAIN_EPOCHS) if pretrain else 0
    overrides = [*data[1:], f"runtime.seed={seed}", f"pretrain.epochs={epochs}", *POOLING]
    overrides += QUICK if quick else ()
    start = time.perf_counter()
    run = nlp.train(
        config="bert",
        data=data[0],
        overrides=overrides,
        run_dir=root / f"{'pretrained' if pretrain else 'scratch'}-{seed}",
    )
    return run.metrics, time.perf_counter() - start


def compare(name: str, seeds: int, quick: bool) -> dict:
    scores: dict[str, dict[str, list[float]]] = {
        kind: {"accuracy": [], "f1": [], "seconds": []} for kind in ("pretrained", "scratch")
    }
    with tempfile.TemporaryDirectory(prefix="deepfield-nlp-pretrain-") as tmp:
        for seed in range(seeds):
            for kind in scores:
                metrics, seconds = train_once(
                    DATASETS[name], seed, kind == "pretrained", quick, Path(tmp)
                )
                scores[kind]["accuracy"].append(metrics["accuracy"])
                scores[kind]["f1"].append(metrics["f1"])
                scores[kind]["seconds"].append(seconds)
                test_texts = metrics["num_examples"]

    def mean(kind: str, key: str) -> float:
        return statistics.fmean(scores[kind][key])

    def spread(kind: str, key: str) -> float:
        values = scores[kind][key]
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return record(
        "nlp_pretrain",
        quick=quick,
        data=name,
        seeds=seeds,
        test_texts=test_texts,
        **{
            f"{kind}_{key}{suffix}": fn(kind, key)
            for kind in scores
            for key in ("accuracy", "f1")
            for suffix, fn in (("", mean), ("_std", spread))
        },
        pretrained_seconds=mean("pretrained", "seconds"),
        scratch_seconds=mean("scratch", "seconds"),
        per_seed={kind: {k: v for k, v in scores[kind].items()} for kind in scores},
        ratio=mean("pretrained", "f1") / max(mean("scratch", "f1"), 1e-9),
        target=1.0,
    )


def run(quick: bool = False, names: tuple[str, ...] | None = None, seeds: int | None = None):
    names = names or (("sentiment",) if quick else tuple(DATASETS))
    seeds = seeds or (1 if quick else SEEDS)
    return [compare(name, seeds, quick) for name in names]


def main(argv: list[str] | None = None) -> int:
    """One text set (or several) on its own, its records appended to benchmarks/results."""
    from benchmarks.common import save_records

    parser = argparse.ArgumentParser(prog="python -m benchmarks.nlp_pretrain")
    parser.add_argument("--data", action="append", choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    save_records(
        "nlp_pretrain", run(args.quick, tuple(args.data) if args.data else None, args.seeds)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
