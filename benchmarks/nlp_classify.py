"""NLP classify beside a TF-IDF + logistic regression baseline, on the same splits.

`python -m benchmarks.run_all --only nlp_classify` (or `python -m benchmarks.nlp_classify
[--sets NAME ...] [--seeds N]`): for each text set, trains a Deepfield config and fits
scikit-learn's TfidfVectorizer (word 1-2 grams) + LogisticRegression on the same
training split (C=1, scikit-learn's default, and C=10), and scores all on the same test
split.

Text sets:
- `sms` (`default` config, builtin SMS spam) and `sentiment` (`sentiment` config,
  builtin Yelp + Amazon sentences): the issue's two targets; the SMS record also gives the
  spam class's precision, recall and F1.
- Other real text the `default` config was not tuned on, read as a user's files would
  be: `yelp` and `amazon` alone (headerless, tab-separated, 1,000 sentences each),
  `review-source` (which site a review sentence comes from, Yelp or Amazon: a latin-1
  CSV with a header, written here from the shipped files) and `speaker` (which of five
  Shakespeare characters speaks a speech, 876 speeches: a headerless TSV written here
  from the shipped Tiny Shakespeare).

`ratio` is Deepfield's accuracy over the C=1 baseline's; the target (1.0) asks that it
not fall below; `margin_c1` and `margin_c10` are the accuracy differences in points.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.common import record

DATA_DIR = Path(__file__).resolve().parents[1] / "domains" / "nlp" / "data"
HEADERLESS = ["data.header=false", "data.columns=[text,label]"]


def sets(tmp: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (config, overrides), writing the derived sets' files under `tmp`."""
    return {
        "sms": ("default", []),
        "sentiment": ("sentiment", []),
        "yelp": ("default", [f"data.source=csv:{DATA_DIR / 'yelp_labelled.txt'}", *HEADERLESS]),
        "amazon": (
            "default",
            [f"data.source=csv:{DATA_DIR / 'amazon_cells_labelled.txt'}", *HEADERLESS],
        ),
        "review-source": ("default", [f"data.source=csv:{review_source(tmp)}", "data.target=site"]),
        "speaker": ("default", [f"data.source=csv:{speakers(tmp)}", *HEADERLESS]),
    }


def review_source(tmp: Path) -> Path:
    path = tmp / "review_source.csv"
    rows = []
    for name, site in (("yelp_labelled.txt", "yelp"), ("amazon_cells_labelled.txt", "amazon")):
        for line in (DATA_DIR / name).read_text("utf-8", errors="replace").splitlines():
            if "\t" in line:
                rows.append((line.rsplit("\t", 1)[0], site))
    with path.open("w", newline="", encoding="latin-1", errors="replace") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "site"])
        writer.writerows(rows)
    return path


def speakers(tmp: Path, top: int = 5) -> Path:
    import gzip

    text = gzip.decompress((DATA_DIR / "tinyshakespeare.txt.gz").read_bytes()).decode()
    speeches = []
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        if len(lines) > 1 and lines[0].endswith(":"):
            speeches.append((" ".join(lines[1:]), lines[0][:-1]))
    kept = {name for name, _ in Counter(s for _, s in speeches).most_common(top)}
    path = tmp / "speakers.tsv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter="\t").writerows(s for s in speeches if s[1] in kept)
    return path


def baseline(data, C: float) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    train, test = data.splits["train"], data.splits["test"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2))
    model = LogisticRegression(max_iter=3000, C=C).fit(
        vectorizer.fit_transform(data.texts[train]), data.labels[train]
    )
    predicted = model.predict(vectorizer.transform(data.texts[test]))
    return {
        "accuracy": float(accuracy_score(data.labels[test], predicted)),
        "f1": float(f1_score(data.labels[test], predicted, average="macro")),
    }


def measure(name: str, config: str, overrides: list[str], seed: int, quick: bool, tmp: Path):
    from domains.nlp.data import load
    from pipelines import nlp

    overrides = [*overrides, f"runtime.seed={seed}"] + (["train.epochs=2"] if quick else [])
    start = time.perf_counter()
    run_ = nlp.train(config=config, overrides=overrides, run_dir=tmp / f"{name}-{seed}")
    seconds = time.perf_counter() - start
    data = load(nlp.resolve_config(config, overrides))
    metrics = run_.metrics
    out = {
        "accuracy": metrics["accuracy"],
        "f1": metrics["f1"],
        "seconds": seconds,
        "test_texts": metrics["num_examples"],
        "classes": len(data.class_names),
    }
    for C in (1, 10):
        base = baseline(data, C)
        out[f"lr_c{C}_accuracy"], out[f"lr_c{C}_f1"] = base["accuracy"], base["f1"]
    if "precision_spam" in metrics:
        p, r = metrics["precision_spam"], metrics["recall_spam"]
        out.update(spam_precision=p, spam_recall=r, spam_f1=2 * p * r / max(p + r, 1e-9))
    return out


def run(
    quick: bool = False,
    names: tuple[str, ...] | None = None,
    seeds: int = 1,
    extra: tuple[str, ...] = (),
) -> list[dict]:
    """`extra`: overrides applied to every set's config (to measure a variant)."""
    records = []
    with tempfile.TemporaryDirectory(prefix="deepfield-nlp-bench-") as tmp:
        available = sets(Path(tmp))
        for name in names or (("sms",) if quick else tuple(available)):
            config, overrides = available[name]
            overrides = [*overrides, *extra]
            per_seed = [
                measure(name, config, overrides, 42 + seed, quick, Path(tmp))
                for seed in range(seeds)
            ]
            mean = {key: statistics.fmean(r[key] for r in per_seed) for key in per_seed[0]}
            records.append(
                record(
                    "nlp_classify",
                    quick=quick,
                    set=name,
                    config=config,
                    overrides=list(extra),
                    seeds=seeds,
                    test_texts=per_seed[0]["test_texts"],
                    classes=per_seed[0]["classes"],
                    deepfield_accuracy=mean["accuracy"],
                    deepfield_f1=mean["f1"],
                    deepfield_seconds=mean["seconds"],
                    **{k: v for k, v in mean.items() if k.startswith(("spam_", "lr_"))},
                    margin_c1=100 * (mean["accuracy"] - mean["lr_c1_accuracy"]),
                    margin_c10=100 * (mean["accuracy"] - mean["lr_c10_accuracy"]),
                    per_seed_accuracy=[r["accuracy"] for r in per_seed],
                    ratio=mean["accuracy"] / max(mean["lr_c1_accuracy"], 1e-9),
                    target=1.0,
                )
            )
    return records


def main(argv: list[str] | None = None) -> int:
    """Some text sets on their own, their records appended to benchmarks/results."""
    from benchmarks.common import save_records

    parser = argparse.ArgumentParser(prog="python -m benchmarks.nlp_classify")
    parser.add_argument("--sets", nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=1, help="splits and seeds 42, 43, ...")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a config override"
    )
    args = parser.parse_args(argv)
    names = tuple(args.sets) if args.sets else None
    save_records("nlp_classify", run(args.quick, names, args.seeds, tuple(args.set)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
