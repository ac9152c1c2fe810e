"""NLP translate: the transformer beside the GRU encoder-decoder, on the same split.

`python -m benchmarks.nlp_translate [--quick]` (or through `benchmarks.run_all` once it
lists it): trains the named configs `translate` (transformer_seq2seq) and
`translate-gru` (rnn_seq2seq, GRU) on builtin:fra-eng, whose grouped split keeps every
translation of an English sentence in one split, and reports both models' BLEU and chrF
(sacreBLEU, against every reference of each test sentence) and their training speed in
target tokens per second. `ratio` is the transformer's BLEU over the GRU's; the target
is the issue's: at or above the recurrent baseline (1.0).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.common import record

CONFIGS = {"transformer": "translate", "gru": "translate-gru"}
QUICK = ["data.max_examples=2000", "train.epochs=2"]
_EPOCH_LINE = re.compile(r"^(\S+ \S+),\d+ INFO deepfield\.epochs: epoch (\d+):")


def epoch_seconds(log: Path) -> float | None:
    """Mean wall time of the epochs after the first (which also traces the graphs), from
    the per-epoch lines of the run's log; validation included. None with one epoch."""
    stamps = [
        datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
        for line in log.read_text().splitlines()
        if (m := _EPOCH_LINE.match(line))
    ]
    if len(stamps) < 2:
        return None
    return (stamps[-1] - stamps[0]).total_seconds() / (len(stamps) - 1)


def target_tokens(run_path: Path, config) -> int:
    """Real target tokens (what the loss counts, "[end]" included) in one training epoch."""
    from domains.nlp import pairs
    from domains.nlp.translate_serving import PairTokenizer
    from shared.run_dir import RunDir

    data = pairs.load(config)
    rows = data.splits["train"]
    sequences = PairTokenizer.read(RunDir(run_path)).target_sequences(data.targets[rows])
    return int((sequences[:, 1:] > 0).sum())


def train_one(name: str, overrides: list[str], folder: Path) -> dict:
    from pipelines import nlp

    config = nlp.resolve_config(name, overrides)
    start = time.perf_counter()
    run = nlp.train(config=name, overrides=overrides, run_dir=folder / name)
    seconds = time.perf_counter() - start
    epoch = epoch_seconds(run.path / "log.txt")
    tokens = target_tokens(run.path, config)
    return {
        "test_sentences": run.metrics["num_examples"],
        "test_references": int(run.metrics["num_references"]),
        "model": config.model.name,
        "bleu": run.metrics["bleu"],
        "chrf": run.metrics["chrf"],
        "perplexity": run.metrics["perplexity"],
        "epochs": config.train.epochs,
        "seconds": seconds,
        "epoch_seconds": epoch,
        "tokens_per_s": tokens / epoch if epoch else None,
    }


def run(quick: bool = False) -> list[dict]:
    overrides = QUICK if quick else []
    with tempfile.TemporaryDirectory(prefix="deepfield-translate-bench-") as tmp:
        results = {key: train_one(name, overrides, Path(tmp)) for key, name in CONFIGS.items()}
    # Both models see the same grouped split: its sizes are reported once.
    split = {
        k: [r.pop(k) for r in results.values()][0] for k in ("test_sentences", "test_references")
    }
    transformer, gru = results["transformer"], results["gru"]
    return [
        record(
            "nlp_translate",
            quick=quick,
            data="builtin:fra-eng",
            split="grouped by English sentence",
            **split,
            **{f"{key}_{k}": v for key, values in results.items() for k, v in values.items()},
            ratio=transformer["bleu"] / gru["bleu"] if gru["bleu"] else None,
            target=1.0,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Run this benchmark alone: JSON lines on stdout and in benchmarks/results/."""
    import argparse
    from datetime import UTC

    from benchmarks.common import RESULTS_DIR, append_jsonl

    parser = argparse.ArgumentParser(prog="python -m benchmarks.nlp_translate")
    parser.add_argument("--quick", action="store_true", help="2,000 pairs, 2 epochs")
    args = parser.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # Keras' progress lines: not the JSON
        records = run(args.quick)
    out = RESULTS_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    append_jsonl(out, records)
    for rec in records:
        print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
