"""NLP language model beside an interpolated Kneser-Ney 5-gram model, on the same split.

`python -m benchmarks.run_all --only nlp_lm`: trains the `lm` config (a character-level
GPT on Tiny Shakespeare) and reports its test perplexity per character beside the
n-gram model's, fitted on the same training span and scored on the same held-out tokens
(both come from the run's metrics.json), with the training throughput (tokens/s, the
median epoch after the first, which includes tracing). `ratio` is the n-gram's
perplexity over the GPT's; the target is 1.0: at least as predictive as the baseline.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import record

CONFIG = "lm"
QUICK = ("train.epochs=2", "train.steps_per_epoch=20", "generate.max_new_tokens=40")
PROMPT = "ROMEO:\n"


def run(quick: bool = False) -> list[dict]:
    from pipelines import nlp

    overrides = list(QUICK) if quick else []
    config = nlp.resolve_config(CONFIG, overrides)
    with tempfile.TemporaryDirectory(prefix="deepfield-lm-bench-") as tmp:
        start = time.perf_counter()
        run_ = nlp.train(config=CONFIG, overrides=overrides, run_dir=Path(tmp) / CONFIG)
        seconds = time.perf_counter() - start
        metrics, history = run_.metrics, run_.history
        speeds = [row["tokens_per_second"] for row in history if "tokens_per_second" in row]
        sample = run_.predict([PROMPT])[0]["generated_text"]
    return [
        record(
            "nlp_lm",
            quick=quick,
            config=CONFIG,
            data=config.data.source,
            unit=config.sequence.unit,
            model=f"{config.model.name} {config.model.options()}",
            context=config.sequence.length,
            epochs=len(history),
            test_tokens=metrics["num_examples"],
            perplexity=metrics["perplexity"],
            ngram_perplexity=metrics["ngram_perplexity"],
            next_token_accuracy=metrics["accuracy"],
            train_seconds=seconds,
            train_tokens_per_second=statistics.median(speeds[1:] or speeds),
            sample=PROMPT + sample,
            ratio=metrics["ngram_perplexity"] / metrics["perplexity"],
            target=1.0,
        )
    ]
