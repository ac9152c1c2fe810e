"""Finance benchmarks, each beside its baseline in the same script; JSON lines to stdout.

    python -m benchmarks.finance_models credit-cv     German credit, 5-fold stratified CV:
                                                      FeatureSpace MLP vs scikit-learn
                                                      LogisticRegression and HistGradientBoosting
    python -m benchmarks.finance_models fraud         synthetic stream, time split: MLP,
                                                      sequence GRU, autoencoder vs HistGradientBoosting
    python -m benchmarks.finance_models throughput    exported credit model, rows/s at batch 1 and 1024

Every number in docs/finance.md comes from these commands; `make bench`
runs all three through `run(quick)`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def _sklearn_tables(frame, schema, train_rows, test_rows):
    """One-hot + standardised numbers for LR; ordinal categories for gradient boosting."""
    import pandas as pd
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numbers = frame[schema.numeric].to_numpy(float)
    categories = frame[schema.categorical].astype(str)
    scaler = StandardScaler().fit(numbers[train_rows])
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(
        categories.iloc[train_rows]
    )
    dense = np.hstack([scaler.transform(numbers), onehot.transform(categories)])
    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(
        categories.iloc[train_rows]
    )
    trees = pd.DataFrame(np.hstack([numbers, ordinal.transform(categories)]))
    # HistGradientBoosting takes at most 255 categories; larger ones (merchant ids) stay ordinal.
    categorical_mask = [False] * len(schema.numeric) + [
        categories[c].nunique() <= 255 for c in schema.categorical
    ]
    return dense, trees.to_numpy(), categorical_mask


# === German credit: 5-fold CV ===
def credit_cv(folds: int = 5, seed: int = 42) -> dict:
    import keras
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from domains.finance import features
    from domains.finance.config import FinanceConfig
    from domains.finance.data import load
    from domains.finance.models import build_mlp, compile_model
    from pipelines.configs import config_path
    from shared.config import read_yaml, validate

    config = validate(FinanceConfig, read_yaml(config_path("finance", "credit")))
    data = load(config)
    frame, labels, schema = data.frame, data.labels, data.schema
    scores: dict[str, list[float]] = {
        "deepfield_mlp": [],
        "logistic_regression": [],
        "hist_gradient_boosting": [],
    }
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    start = time.perf_counter()
    for fold, (train_rows, test_rows) in enumerate(splitter.split(frame, labels)):
        keras.utils.set_random_seed(seed + fold)
        space = features.build_feature_space(schema, frame.iloc[train_rows], config.model)
        x = features.encode(space, frame, schema)
        model = build_mlp(x.shape[1], config)
        compile_model(model, keras.optimizers.Adam(config.train.learning_rate), config)
        model.fit(x[train_rows], labels[train_rows, None].astype("float32"), epochs=config.train.epochs,
                  batch_size=config.train.batch_size, verbose=0)  # fmt: skip
        logits = model.predict(x[test_rows], verbose=0)[:, 0]
        scores["deepfield_mlp"].append(roc_auc_score(labels[test_rows], logits))
        dense, trees, mask = _sklearn_tables(frame, schema, train_rows, test_rows)
        lr = LogisticRegression(max_iter=2000, C=0.3).fit(dense[train_rows], labels[train_rows])
        scores["logistic_regression"].append(
            roc_auc_score(labels[test_rows], lr.predict_proba(dense[test_rows])[:, 1])
        )
        hgb = HistGradientBoostingClassifier(
            categorical_features=mask, max_iter=200, learning_rate=0.05, random_state=seed
        )
        hgb.fit(trees[train_rows], labels[train_rows])
        scores["hist_gradient_boosting"].append(
            roc_auc_score(labels[test_rows], hgb.predict_proba(trees[test_rows])[:, 1])
        )
    record = {
        "benchmark": "finance_credit_cv",
        "folds": folds,
        "metric": "roc_auc",
        "seconds": round(time.perf_counter() - start, 1),
    }
    for name, values in scores.items():
        record[f"{name}_mean"] = round(float(np.mean(values)), 4)
        record[f"{name}_std"] = round(float(np.std(values)), 4)
    emit(record)
    return record


# === Fraud: models side by side on one time split ===
def fraud(out: Path) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score

    from domains.finance.config import FinanceConfig
    from domains.finance.data import load
    from pipelines import finance
    from pipelines.configs import config_path
    from shared.config import read_yaml, validate

    record = {"benchmark": "finance_fraud_stream", "metric": "pr_auc (test, last 20% of time)"}
    for name in ("fraud", "fraud_sequence", "fraud_autoencoder"):
        start = time.perf_counter()
        run = finance.train(config=name, run_dir=out / name)
        record[f"{name}_pr_auc"] = round(run.metrics["pr_auc"], 4)
        record[f"{name}_roc_auc"] = round(run.metrics["roc_auc"], 4)
        record[f"{name}_recall_at_fpr_1pct"] = round(run.metrics["recall_at_fpr_1pct"], 4)
        record[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
    config = validate(FinanceConfig, read_yaml(config_path("finance", "fraud")))
    data = load(config)
    train_rows, test_rows = (
        np.r_[data.splits["train"], data.splits["validation"]],
        data.splits["test"],
    )
    _, trees, mask = _sklearn_tables(data.frame, data.schema, train_rows, test_rows)
    start = time.perf_counter()
    hgb = HistGradientBoostingClassifier(
        categorical_features=mask, max_iter=300, learning_rate=0.05, random_state=0
    )
    hgb.fit(trees[train_rows], data.labels[train_rows])
    p = hgb.predict_proba(trees[test_rows])[:, 1]
    record["hist_gradient_boosting_pr_auc"] = round(
        float(average_precision_score(data.labels[test_rows], p)), 4
    )
    record["hist_gradient_boosting_roc_auc"] = round(
        float(roc_auc_score(data.labels[test_rows], p)), 4
    )
    record["hist_gradient_boosting_seconds"] = round(time.perf_counter() - start, 1)
    record["test_rows"] = int(len(test_rows))
    record["test_positive_rate"] = round(float(data.labels[test_rows].mean()), 4)
    emit(record)
    return record


# === Serving throughput ===
def throughput(out: Path, seconds: float = 5.0) -> dict:
    import tensorflow as tf

    from pipelines import finance

    run = finance.train(config="credit", run_dir=out / "credit")
    exported = finance.export(run, to=out / "serving")
    serve = tf.saved_model.load(str(exported.path)).signatures["serving_default"]
    warmup = json.loads((run.path / "serving_examples.json").read_text())
    record = {
        "benchmark": "finance_serving_throughput",
        "model": "credit mlp (with reason codes)",
        "threads": os.cpu_count(),
    }
    for batch in (1, 1024):
        request = {}
        for name, values in warmup["columns"].items():
            tiled = (values * (batch // len(values) + 1))[:batch]
            request[name] = tf.constant(
                tiled, tf.float32 if warmup["kinds"][name] == "numeric" else tf.string
            )
        serve(**request)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            serve(**request)
            calls += 1
        elapsed = time.perf_counter() - start
        record[f"rows_per_second_batch_{batch}"] = round(calls * batch / elapsed, 1)
        record[f"latency_ms_batch_{batch}"] = round(1000 * elapsed / calls, 2)
    emit(record)
    return record


def run(quick: bool) -> list[dict]:
    """All three, for `benchmarks.run_all` (quick: 2 folds and a 1 s throughput window)."""
    with tempfile.TemporaryDirectory(prefix="deepfield-finance-bench-") as tmp:
        records = [
            credit_cv(folds=2 if quick else 5),
            fraud(Path(tmp) / "fraud"),
            throughput(Path(tmp) / "throughput", seconds=1.0 if quick else 5.0),
        ]
    return [{**rec, "quick": quick} for rec in records]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", choices=["credit-cv", "fraud", "throughput", "all"])
    parser.add_argument(
        "--out", type=Path, default=None, help="where runs go (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deepfield-finance-bench-") as tmp:
        out = args.out or Path(tmp)
        if args.which in ("credit-cv", "all"):
            credit_cv()
        if args.which in ("fraud", "all"):
            fraud(out / "fraud")
        if args.which in ("throughput", "all"):
            throughput(out / "throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
