"""The default healthcare classify config on a MedMNIST set against the MedMNIST v2
paper's ResNet-18 (28) and a logistic regression on the pixels, on the same splits.

`python -m benchmarks.healthcare_classify [--data npz:PATH] [--seeds N] [--quick]`
(default: the shipped BreastMNIST, 3 seeds); `--timing` instead times the default config
on a PneumoniaMNIST-sized archive (4,708 / 524 / 624 images) against 15 minutes. Each seed trains `--config default` and
reports test AUC (MedMNIST's: column 1 for binary, mean one-vs-rest otherwise) and
accuracy at the arg-max, with the calibration figures. The baseline is scikit-learn's
logistic regression on the raw pixels (scaled to 0..1, C=1), fitted on the training
split in the same script. The paper's figures are the targets for the shipped set;
`ratio` is the mean AUC over the paper's ResNet-18 (28) AUC.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import record

# MedMNIST v2 (Yang et al., Scientific Data 2023), Table 3, ResNet-18 (28): (AUC, ACC).
PAPER_RESNET18_28 = {
    "breastmnist": (0.901, 0.863),
    "pneumoniamnist": (0.944, 0.854),
    "dermamnist": (0.917, 0.735),
    "retinamnist": (0.717, 0.524),
    "bloodmnist": (0.998, 0.958),
    "organamnist": (0.997, 0.935),
    "organcmnist": (0.992, 0.900),
    "organsmnist": (0.972, 0.782),
    "pathmnist": (0.983, 0.907),
    "octmnist": (0.943, 0.743),
    "tissuemnist": (0.930, 0.676),
}
SEEDS = 3
QUICK = ("train.epochs=2", "model.width=8")


def dataset_name(source: str) -> str:
    return "breastmnist" if source == "builtin:breastmnist" else Path(source).stem.lower()


def pixel_baseline(source: str) -> dict[str, float]:
    """Logistic regression on the pixels of the same splits: test AUC and accuracy."""
    from sklearn.linear_model import LogisticRegression

    from domains.healthcare import clinical
    from domains.healthcare.config import HealthcareDataConfig
    from domains.healthcare.data import load

    data = load(HealthcareDataConfig(source=source), seed=42)
    x, y = data.splits["train"].arrays()
    xt, yt = data.splits["test"].arrays()
    model = LogisticRegression(C=1.0, max_iter=2000).fit(x.reshape(len(x), -1) / 255.0, y)
    p = model.predict_proba(xt.reshape(len(xt), -1) / 255.0)
    return {"auc": clinical.roc_auc(yt, p), "accuracy": float((p.argmax(1) == yt).mean())}


def run(quick: bool = False, source: str = "builtin:breastmnist", seeds: int | None = None):
    from pipelines import healthcare

    seeds = seeds or (1 if quick else SEEDS)
    scores: dict[str, list[float]] = {
        k: [] for k in ("roc_auc", "accuracy", "ece", "ece_uncalibrated", "seconds")
    }
    with tempfile.TemporaryDirectory(prefix="deepfield-hc-classify-") as tmp:
        for seed in range(seeds):
            start = time.perf_counter()
            run_ = healthcare.train(
                config="default",
                data=source,
                overrides=[f"runtime.seed={seed}", *(QUICK if quick else ())],
                run_dir=Path(tmp) / f"seed-{seed}",
            )
            scores["seconds"].append(time.perf_counter() - start)
            for key in ("roc_auc", "accuracy", "ece", "ece_uncalibrated"):
                scores[key].append(run_.metrics[key])
    name = dataset_name(source)
    paper_auc, paper_acc = PAPER_RESNET18_28.get(name, (None, None))
    baseline = pixel_baseline(source)

    def mean(key: str) -> float:
        return statistics.fmean(scores[key])

    def std(key: str) -> float:
        return statistics.stdev(scores[key]) if len(scores[key]) > 1 else 0.0

    return [
        record(
            "healthcare_classify",
            quick=quick,
            data=source,
            seeds=seeds,
            auc=mean("roc_auc"),
            auc_std=std("roc_auc"),
            accuracy=mean("accuracy"),
            accuracy_std=std("accuracy"),
            ece=mean("ece"),
            ece_uncalibrated=mean("ece_uncalibrated"),
            seconds_per_run=mean("seconds"),
            per_seed={k: v for k, v in scores.items()},
            paper_resnet18_28_auc=paper_auc,
            paper_resnet18_28_accuracy=paper_acc,
            pixel_logreg_auc=baseline["auc"],
            pixel_logreg_accuracy=baseline["accuracy"],
            beats_paper_accuracy=None if paper_acc is None else mean("accuracy") > paper_acc,
            ratio=mean("roc_auc") / paper_auc if paper_auc else None,
            target=1.0 if paper_auc else None,
        )
    ]


# PneumoniaMNIST's split sizes (MedMNIST v2): the "a few thousand 28x28 images".
PNEUMONIA_SIZES = {"train": 4708, "val": 524, "test": 624}
TIMING_LIMIT_S = 15 * 60


def pneumonia_sized_archive(path: Path, seed: int = 0) -> Path:
    """A MedMNIST-format archive with PneumoniaMNIST's split sizes, drawn from the shipped
    BreastMNIST images (with replacement, random mirror, +-8 grey-level noise): the timing
    depends on the sizes, not the pictures, and PneumoniaMNIST cannot be fetched offline."""
    import numpy as np

    from domains.healthcare.data import DATA_DIR

    rng = np.random.default_rng(seed)
    arrays = {}
    with np.load(DATA_DIR / "breastmnist.npz") as shipped:
        for split, n in PNEUMONIA_SIZES.items():
            images, labels = shipped[f"{split}_images"], shipped[f"{split}_labels"]
            pick = rng.integers(0, len(images), n)
            noisy = images[pick].astype(np.int16) + rng.integers(-8, 9, (n, *images.shape[1:]))
            mirror = rng.random(n) < 0.5
            noisy[mirror] = noisy[mirror][:, :, ::-1]
            arrays[f"{split}_images"] = np.clip(noisy, 0, 255).astype(np.uint8)
            arrays[f"{split}_labels"] = labels[pick]
    np.savez_compressed(path, **arrays)
    return path


def timing() -> list[dict]:
    """The default config on a PneumoniaMNIST-sized archive: wall seconds against 15 min."""
    from pipelines import healthcare

    with tempfile.TemporaryDirectory(prefix="deepfield-hc-timing-") as tmp:
        archive = pneumonia_sized_archive(Path(tmp) / "pneumonia_sized.npz")
        start = time.perf_counter()
        run_ = healthcare.train(config="default", data=f"npz:{archive}", run_dir=Path(tmp) / "run")
        seconds = time.perf_counter() - start
        roc_auc = run_.metrics["roc_auc"]  # read before the folder goes
    return [
        record(
            "healthcare_classify_timing",
            data="PneumoniaMNIST-sized (4708/524/624 28x28, from BreastMNIST images)",
            seconds=seconds,
            limit_seconds=TIMING_LIMIT_S,
            roc_auc=roc_auc,
            ratio=TIMING_LIMIT_S / seconds,
            target=1.0,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    from benchmarks.common import save_records

    parser = argparse.ArgumentParser(prog="python -m benchmarks.healthcare_classify")
    parser.add_argument("--data", default="builtin:breastmnist")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--timing",
        action="store_true",
        help="instead: time the default config on a PneumoniaMNIST-sized archive (15 min limit)",
    )
    args = parser.parse_args(argv)
    if args.timing:
        save_records("healthcare_classify_timing", timing())
        return 0
    save_records("healthcare_classify", run(args.quick, args.data, args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
