"""Masked-LM pretraining then fine-tuning against the same BERT trained from scratch.

`python -m benchmarks.run_all --only nlp_pretrain` (or `python -m benchmarks.nlp_pretrain
[--data NAME ...] [--seeds N] [--quick]` for one text set): the `bert` config (2 layers,
hidden 128, WordPiece vocabulary from the training split), mean-pooled, trained twice
per seed on the same splits: once after `PRETRAIN_EPOCHS` of masked-LM pretraining on
the training split's texts (no other text: what the pretraining buys is a better start,
not more data), once with `pretrain.epochs=0`. `--source corpus` pretrains instead for
`CORPUS_EPOCHS` on English text the package ships that is not in the sentiment sets
(`unlabeled_corpus`: 18,800 lines from fra-eng, Alice in Wonderland and the SMS texts);
`--source text:FILE` on a corpus of one's own for as many epochs.
Accuracy and macro F1 on the test split, mean and standard deviation over the seeds. `ratio` is the pretrained model's mean F1 over the
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
PRETRAIN_EPOCHS = 100  # on the training split's texts alone
CORPUS_EPOCHS = 8  # on `unlabeled_corpus` (about 13x the training split; --source corpus)
NEIGHBOUR_EPOCHS = 60  # on `neighbour_corpus` (about 2.4x the training split)
# Both arms mean-pool: a first token that masked-LM never trained reads worse (one-off,
# seeds 0 and 1: pretrained 0.778 and 0.763 against scratch 0.798 and 0.803 with cls).
POOLING = ("model.pooling=mean",)
FINETUNE_LR = "train.learning_rate="  # --finetune-lr: this override, pretrained arm only
QUICK = ("data.max_examples=300", "train.epochs=1", "pretrain.max_texts=300")


def unlabeled_corpus(tmp: Path) -> Path:
    """English text the package ships that no sentiment set contains, one text per line,
    shuffled: the English side of fra-eng (unique sentences), Alice in Wonderland's
    lines of four words or more, and the SMS messages (without their labels)."""
    import gzip
    import random

    def lines(name: str) -> list[str]:
        raw = (DATA_DIR / name).read_bytes()
        raw = gzip.decompress(raw) if name.endswith(".gz") else raw
        return raw.decode("utf-8", errors="replace").splitlines()

    english = sorted({line.split("\t")[0].strip() for line in lines("fra-eng.txt.gz")} - {""})
    alice = [line.strip() for line in lines("alice_in_wonderland.txt.gz")]
    sms = [line.split("\t", 1)[1].strip() for line in lines("sms_spam.tsv")[1:] if "\t" in line]
    texts = english + [line for line in alice if len(line.split()) >= 4] + sms
    random.Random(0).shuffle(texts)
    path = tmp / "unlabeled.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


# --source neighbour: the other review set's sentences (unlabeled) beside a set's own
# training split: in-domain text from elsewhere, none of the set's test sentences.
NEIGHBOURS = {"yelp": "amazon", "amazon": "yelp"}


def neighbour_corpus(tmp: Path, name: str, seed: int, quick: bool = False) -> Path:
    """`name`'s training-split sentences (the split a run at `seed` makes) and every
    sentence of its neighbour set, labels dropped, one per line, shuffled."""
    import random

    from pipelines import nlp

    data = DATASETS[name]
    quick_sets = QUICK if quick else ()
    own = nlp.load_data(
        config="bert", data=data[0], overrides=[*data[1:], f"runtime.seed={seed}", *quick_sets]
    )
    train = [str(t) for t in own.texts[own.splits["train"]]]
    other = DATASETS[NEIGHBOURS[name]]
    theirs = nlp.load_data(config="bert", data=other[0], overrides=list(other[1:]))
    texts = train + [str(t) for t in theirs.texts]
    random.Random(seed).shuffle(texts)
    path = tmp / f"{name}-neighbour-{seed}.txt"
    path.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    return path


def pretrain_epochs(quick: bool, corpus: Path | None) -> int:
    if quick:
        return 1
    if corpus is not None and "-neighbour-" in corpus.name:
        return NEIGHBOUR_EPOCHS
    return CORPUS_EPOCHS if corpus else PRETRAIN_EPOCHS


def train_once(
    data: tuple[str, ...],
    seed: int,
    pretrain: bool,
    quick: bool,
    root: Path,
    corpus: Path | None,
    pretrain_sets: tuple[str, ...] = (),
):
    from pipelines import nlp

    epochs = pretrain_epochs(quick, corpus) if pretrain else 0
    overrides = [*data[1:], f"runtime.seed={seed}", f"pretrain.epochs={epochs}", *POOLING]
    if pretrain and corpus is not None:
        overrides.append(f"pretrain.source=text:{corpus}")
    if pretrain:
        overrides += pretrain_sets
    overrides += QUICK if quick else ()
    start = time.perf_counter()
    run = nlp.train(
        config="bert",
        data=data[0],
        overrides=overrides,
        run_dir=root / f"{'pretrained' if pretrain else 'scratch'}-{seed}",
    )
    return run.metrics, time.perf_counter() - start


def compare(
    name: str,
    seeds: int,
    quick: bool,
    source: str = "split",
    pretrain_sets: tuple[str, ...] = (),
) -> dict:
    scores: dict[str, dict[str, list[float]]] = {
        kind: {"accuracy": [], "f1": [], "seconds": []} for kind in ("pretrained", "scratch")
    }
    with tempfile.TemporaryDirectory(prefix="deepfield-nlp-pretrain-") as tmp:
        corpus = unlabeled_corpus(Path(tmp)) if source == "corpus" else None
        if source.startswith("text:"):  # a user's unlabeled corpus, one text per line
            corpus = Path(source.removeprefix("text:")).resolve()
        for seed in range(seeds):
            if source == "neighbour":
                corpus = neighbour_corpus(Path(tmp), name, seed, quick)
            for kind in scores:
                metrics, seconds = train_once(
                    DATASETS[name],
                    seed,
                    kind == "pretrained",
                    quick,
                    Path(tmp),
                    corpus,
                    pretrain_sets,
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
        pretrain_source=source,
        # the pretrained arm's (--finetune-lr, one of its overrides); None: the config's
        finetune_learning_rate=next(
            (float(s.split("=", 1)[1]) for s in pretrain_sets if s.startswith(FINETUNE_LR)), None
        ),
        pretrain_sets=list(pretrain_sets),  # the pretrained arm's extra --set overrides
        pretrain_epochs=pretrain_epochs(quick, corpus),
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


def run(
    quick: bool = False,
    names: tuple[str, ...] | None = None,
    seeds: int | None = None,
    source: str = "split",
    pretrain_sets: tuple[str, ...] = (),
):
    names = names or (("sentiment",) if quick else tuple(DATASETS))
    seeds = seeds or (1 if quick else SEEDS)
    return [compare(name, seeds, quick, source, pretrain_sets) for name in names]


def main(argv: list[str] | None = None) -> int:
    """One text set (or several) on its own, its records appended to benchmarks/results."""
    from benchmarks.common import save_records

    parser = argparse.ArgumentParser(prog="python -m benchmarks.nlp_pretrain")
    parser.add_argument("--data", action="append", choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--source",
        default="split",
        help="pretrain on the training split's texts (default), on `unlabeled_corpus`, or "
        "(yelp, amazon) on the split's texts and the other review set's (`neighbour_corpus`), "
        "or text:FILE (unlabeled text, one per line; pretrained for CORPUS_EPOCHS = 8 epochs)",
    )
    parser.add_argument(
        "--finetune-lr",
        type=float,
        default=None,
        help="the pretrained arm's fine-tuning learning rate (default: the config's, as "
        "the scratch arm's); pretrained encoders are usually fine-tuned more gently",
    )
    parser.add_argument(
        "--pretrain-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for the pretrained arm only (e.g. pretrain.weight_decay=0.01)",
    )
    args = parser.parse_args(argv)
    if args.source not in ("corpus", "split", "neighbour") and not (
        args.source.startswith("text:") and Path(args.source[5:]).is_file()
    ):
        parser.error(f"--source {args.source}: corpus, split, neighbour or text:FILE (a file)")
    names = tuple(args.data) if args.data else None
    finetune = [f"{FINETUNE_LR}{args.finetune_lr}"] if args.finetune_lr is not None else []
    records = run(args.quick, names, args.seeds, args.source, (*finetune, *args.pretrain_set))
    save_records("nlp_pretrain", records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
