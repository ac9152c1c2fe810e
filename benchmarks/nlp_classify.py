"""NLP classify beside a TF-IDF + logistic regression baseline, on the same splits.

`python -m benchmarks.run_all --only nlp_classify`: for each shipped text set, trains
the named config (`default`: SMS spam, `sentiment`: Yelp + Amazon sentences) and fits
scikit-learn's TfidfVectorizer (word 1-2 grams) + LogisticRegression (C=10) on the same
training split, and scores both on the same test split. `ratio` is Deepfield's macro F1
over the baseline's; the target is the issue's: at or above the baseline (1.0).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import record

CONFIGS = ("default", "sentiment")


def baseline(data) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    train, test = data.splits["train"], data.splits["test"]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2))
    model = LogisticRegression(max_iter=2000, C=10).fit(
        vectorizer.fit_transform(data.texts[train]), data.labels[train]
    )
    predicted = model.predict(vectorizer.transform(data.texts[test]))
    return {
        "accuracy": float(accuracy_score(data.labels[test], predicted)),
        "f1": float(f1_score(data.labels[test], predicted, average="macro")),
    }


def run(quick: bool = False) -> list[dict]:
    from domains.nlp.data import load
    from pipelines import nlp

    records = []
    with tempfile.TemporaryDirectory(prefix="deepfield-nlp-bench-") as tmp:
        for name in CONFIGS[:1] if quick else CONFIGS:
            config = nlp.resolve_config(name, ["train.epochs=2"] if quick else [])
            start = time.perf_counter()
            run_ = nlp.train(config=name, overrides=["train.epochs=2"] if quick else [],
                             run_dir=Path(tmp) / name)  # fmt: skip
            seconds = time.perf_counter() - start
            base = baseline(load(config))
            records.append(
                record(
                    "nlp_classify",
                    quick=quick,
                    config=name,
                    data=config.data.source,
                    test_texts=run_.metrics["num_examples"],
                    deepfield_accuracy=run_.metrics["accuracy"],
                    deepfield_f1=run_.metrics["f1"],
                    deepfield_seconds=seconds,
                    tfidf_lr_accuracy=base["accuracy"],
                    tfidf_lr_f1=base["f1"],
                    ratio=run_.metrics["f1"] / base["f1"],
                    target=1.0,
                )
            )
    return records
