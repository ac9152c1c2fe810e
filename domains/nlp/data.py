"""NLP data: labelled texts from the builtins or a user's table, split without leaks.

Pandas only (no TensorFlow), so the domain checks a user's file before TensorFlow starts.
Texts that repeat exactly (after lower-casing and collapsing spaces) stay in one split:
the SMS collection repeats 281 messages, which would otherwise be tested on after being
trained on.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.nlp.config import NLPConfig
from shared.data.spec import parse_spec
from shared.data.splits import split_indices, split_sizes, with_split_column
from shared.data.table import read_table, table_options
from shared.errors import UserError

LOG = logging.getLogger("deepfield.nlp")
DATA = Path(__file__).parent / "data"
# builtin name -> (files, has header, columns, text column, target column)
BUILTINS: dict[str, tuple[tuple[str, ...], bool, list[str] | None, str, str]] = {
    "sms-spam": (("sms_spam.tsv",), True, None, "SMS", "Label"),
    "sentiment-sentences": (
        ("yelp_labelled.txt", "amazon_cells_labelled.txt"),
        False,
        ["sentence", "label"],
        "sentence",
        "label",
    ),
}
TEXT_NAMES = (
    "text",
    "sentence",
    "message",
    "sms",
    "review",
    "comment",
    "body",
    "content",
    "description",
)
TARGET_NAMES = ("label", "target", "class", "category", "sentiment", "y")


@dataclass(repr=False)
class TextData:
    """Labelled texts and their splits (row positions), as classify trains on them."""

    spec: str
    texts: np.ndarray  # str
    labels: np.ndarray  # int class ids
    class_names: list[str]
    splits: dict[str, np.ndarray]
    report: dict[str, Any] = field(default_factory=dict)

    def dataframe(self, split: str | None = None) -> pd.DataFrame:
        """One row per text: `text`, `label` (the class name), `split`; or one split's."""
        frame = pd.DataFrame(
            {"text": self.texts, "label": np.asarray(self.class_names, dtype=object)[self.labels]}
        )
        return with_split_column(frame, self.splits, split)

    def summary(self) -> str:
        """Texts and classes, each split's size and class shares, duplicates kept together."""
        lines = [
            f"{self.spec}: {len(self.texts):,} texts, {len(self.class_names)} classes "
            f"({', '.join(self.class_names)}); seed {self.report.get('seed', '-')}"
        ]
        for name, rows in self.splits.items():
            counts = np.bincount(self.labels[rows], minlength=len(self.class_names))
            shares = ", ".join(
                f"{c} {n / max(len(rows), 1):.1%}"
                for c, n in zip(self.class_names, counts, strict=True)
            )
            lines.append(f"  {name:<10} {len(rows):>7,}  ({shares})")
        duplicates = self.report.get("duplicates") or {}
        if duplicates.get("rows"):
            lines.append(
                f"  {duplicates['rows']} repeated texts kept in the split of their first copy "
                f"({duplicates.get('across_splits', 0)} across splits)"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = split_sizes(self.splits)
        return f"TextData({self.spec!r}, {len(self.texts)} texts, {self.class_names}, {sizes})"


def read_frame(config: NLPConfig) -> tuple[pd.DataFrame, str, str]:
    """(table, text column, target column) of the configured source."""
    source = config.data.source
    kind, rest = parse_spec(source, ("builtin", "csv", "jsonl", "tfds"))
    if kind == "builtin":
        if rest not in BUILTINS:
            raise UserError(f"unknown builtin nlp data {rest!r}; builtins: {', '.join(BUILTINS)}")
        files, header, columns, text, target = BUILTINS[rest]
        frames = [
            read_table(f"csv:{DATA / name}", delimiter="\t", header=header, columns=columns)[0]
            for name in files
        ]
        frame = pd.concat(frames, ignore_index=True)
        return frame, config.data.text_column or text, config.data.target or target
    if kind == "tfds":
        frame = read_tfds(rest)
    else:
        frame = read_table(source, **table_options(config.data))[0]
    return (
        frame,
        pick(frame, config.data.text_column, TEXT_NAMES, "text_column"),
        pick(frame, config.data.target, TARGET_NAMES, "target"),
    )


def read_tfds(rest: str) -> pd.DataFrame:
    """`tfds:NAME[:SPLIT]` (default split train) as a table: its text features as
    columns and its class label as the class name (imdb_reviews serves "pos"/"neg",
    ag_news_subset "World", "Sports", ...). The split is then split again by the shared
    splitter, so duplicates stay together. Imports TensorFlow Datasets (and with it
    TensorFlow); only this spec kind does."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.registered import DatasetNotFoundError

    name, _, split = rest.partition(":")
    try:
        builder = tfds.builder(name)
    except DatasetNotFoundError:
        raise UserError(f"unknown tfds dataset {name!r}") from None
    try:
        builder.download_and_prepare()
        dataset = builder.as_dataset(split=split or "train", shuffle_files=False)
    except Exception as e:  # network, manual download, an unknown split alike
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot read tfds:{rest}: {first}") from e
    features = builder.info.features
    columns: dict[str, list] = {}
    for example in tfds.as_numpy(dataset):
        for key, value in example.items():
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            elif hasattr(features[key], "names"):  # a ClassLabel: its name, not its id
                value = features[key].names[int(value)]
            columns.setdefault(key, []).append(value)
    if not columns:
        raise UserError(f"tfds:{rest} has no examples")
    return pd.DataFrame(columns)


def pick(frame: pd.DataFrame, given: str | None, names: tuple[str, ...], key: str) -> str:
    """The named column, or the one whose name says what it is; else a UserError."""
    columns = [str(c) for c in frame.columns]
    if given is not None:
        if given not in columns:
            raise UserError(f"data.{key} {given!r} is not a column; columns: {', '.join(columns)}")
        return given
    found = [c for c in columns if c.strip().lower() in names]
    if len(found) == 1:
        return found[0]
    raise UserError(
        f"set data.{key} to one of the columns: {', '.join(columns)}"
        + (" (it could be any of " + ", ".join(found) + ")" if found else "")
    )


def normalise(text: str) -> str:
    """The key under which two texts count as the same message."""
    return re.sub(r"\s+", " ", text.strip().lower())


def load(config: NLPConfig) -> TextData:
    """Read, clean and split the configured source (stratified, duplicates together)."""
    frame, text_column, target = read_frame(config)
    if text_column == target:
        raise UserError(f"data.text_column and data.target are both {target!r}")
    texts = frame[text_column].astype("string").fillna("").str.strip()
    values = frame[target].astype("string").str.strip()
    keep = (texts != "") & values.notna() & (values != "")
    dropped = int((~keep).sum())
    if dropped:
        LOG.warning("dropped %d rows with an empty text or no label", dropped)
    texts, values = texts[keep].to_numpy(str), values[keep].to_numpy(str)
    if config.data.max_examples:
        texts, values = texts[: config.data.max_examples], values[: config.data.max_examples]
    class_names = [str(c) for c in sorted(set(values), key=_class_order)]
    if len(class_names) < 2:
        raise UserError(
            f"target {target!r} has a single class ({class_names[0] if class_names else 'none'})"
            "; classification needs at least two"
        )
    labels = np.array([class_names.index(v) for v in values], np.int64)
    splits, report = split_indices(
        len(texts),
        {"validation": config.data.validation_split, "test": config.data.test_split},
        config.runtime.seed,
        labels=labels,
        keys=np.array([normalise(t) for t in texts], dtype=object),
        what=config.data.source,
    )
    report.update(text_column=text_column, target=target, dropped_rows=dropped)
    LOG.info(
        "%s: %d texts, classes %s; splits %s; %d duplicate texts kept in one split",
        config.data.source,
        len(texts),
        ", ".join(class_names),
        {k: len(v) for k, v in splits.items()},
        report.get("duplicates", {}).get("rows", 0),
    )
    return TextData(config.data.source, texts, labels, class_names, splits, report)


def _class_order(value: str) -> tuple[int, float | str]:
    """Numbers in numeric order (2 before 10), then names alphabetically."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


# === --init-from (checked before TensorFlow starts) ===
@dataclass(frozen=True)
class InitSource:
    kind: str  # run | preset
    path: Path


def init_source(given: str | None) -> InitSource | None:
    """What `--init-from` names: a run directory, a KerasHub preset, or a UserError."""
    if not given:
        return None
    path = Path(given).expanduser()
    if not path.is_dir():
        raise UserError(f"--init-from {given}: no such directory")
    if (path / "model.keras").is_file() and (path / "config.yaml").is_file():
        return InitSource("run", path)
    if (path / "config.json").is_file() and (path / "metadata.json").is_file():
        return InitSource("preset", path)
    raise UserError(
        f"--init-from {given} is neither a finished run (model.keras and config.yaml) nor a "
        "KerasHub preset directory (config.json and metadata.json, as save_to_preset writes)"
    )
