"""Translation pairs: (source sentence, translation) from the builtin or a user's file,
split so that no source sentence straddles two splits.

Pandas only (no TensorFlow), so the domain checks a user's file before TensorFlow starts.
The shipped English-French pairs repeat 4,417 English sentences with several French
translations ("Run!" -> "Cours !", "Courez !"): every translation of a source sentence
stays in its split, and evaluation scores each distinct source sentence once, against
all of its references.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.nlp.config import NLPConfig
from domains.nlp.data import normalise
from shared.data.spec import parse_spec
from shared.data.splits import split_indices, split_sizes, with_split_column
from shared.data.table import read_table, table_options
from shared.errors import UserError

LOG = logging.getLogger("deepfield.nlp")
DATA = Path(__file__).parent / "data"
# builtin name -> (file, source language, target language); manythings.org's layout:
# source TAB translation [TAB attribution], no header.
BUILTINS: dict[str, tuple[str, str, str]] = {"fra-eng": ("fra-eng.txt.gz", "English", "French")}
HEADERLESS = ("source", "target", "attribution")
SOURCE_NAMES = ("source", "src", "source_text", "input", "text", "sentence")
TARGET_NAMES = ("target", "tgt", "target_text", "translation", "reference", "output")
STRATEGIES = ("greedy", "beam")
GROUPED_BY = "normalised source sentence (lower-case, spaces collapsed)"
WHOLE = "all"  # the one split of a source evaluated whole
# A header field is a name (letters, digits, _, single spaces or hyphens between
# words); sentences and attributions carry punctuation, so a first row without any
# such field is a pair, not a header.
_NAME = re.compile(r"[^\W\d]\w*(?:[ _-]\w+)*")


@dataclass(repr=False)
class PairData:
    """Translation pairs and their splits (pair positions, grouped by source sentence)."""

    spec: str
    sources: np.ndarray  # str, one per pair
    targets: np.ndarray  # str, one per pair
    groups: np.ndarray  # int: the pair's distinct (normalised) source sentence
    splits: dict[str, np.ndarray]  # pair positions
    report: dict[str, Any] = field(default_factory=dict)

    def dataframe(self, split: str | None = None) -> pd.DataFrame:
        """One row per pair: `source`, `target`, `group` (its source sentence), `split`."""
        frame = pd.DataFrame({"source": self.sources, "target": self.targets, "group": self.groups})
        return with_split_column(frame, self.splits, split)

    def summary(self) -> str:
        """Pairs and distinct source sentences per split (a sentence never straddles two)."""
        report = self.report
        languages = f" ({report['languages']})" if report.get("languages") else ""
        lines = [
            f"{self.spec}{languages}: {len(self.sources):,} pairs, "
            f"{report.get('source_sentences', len(np.unique(self.groups))):,} distinct source "
            f"sentences, {report.get('repeated_sources', 0):,} with several translations; "
            f"seed {report.get('seed', '-')}"
        ]
        for name, rows in self.splits.items():
            sentences = len(np.unique(self.groups[rows]))
            lines.append(f"  {name:<10} {len(rows):>7,} pairs, {sentences:,} source sentences")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = split_sizes(self.splits)
        return f"PairData({self.spec!r}, {len(self.sources)} pairs, {sizes})"

    def references(self, rows: np.ndarray) -> tuple[list[str], list[list[str]]]:
        """The distinct source sentences of these pairs (as first spelled) and, for each,
        every translation it has: what BLEU and chrF score a translation against."""
        frame = pd.DataFrame({"group": self.groups[rows], "row": rows})
        sources, references = [], []
        for _, members in frame.groupby("group", sort=False)["row"]:
            positions = members.to_numpy()
            sources.append(str(self.sources[positions[0]]))
            references.append([str(t) for t in self.targets[positions]])
        return sources, references


# === Settings ===
def check_settings(config: NLPConfig) -> None:
    """Translate's settings that need no data, refused here because the domain's check
    (before TensorFlow) calls `load`: the decoding strategy and a seq2seq model."""
    from shared.model_catalog import check_model

    if config.generate.strategy not in STRATEGIES:
        raise UserError(
            f"translate decodes with generate.strategy greedy or beam, not "
            f"{config.generate.strategy!r} (sampling is for --task lm)"
        )
    check_model(config.model.name, lambda kind, _: kind == "seq2seq", "nlp translate")


# === Reading ===
def read_frame(config: NLPConfig) -> tuple[pd.DataFrame, str, str, str]:
    """(table, source column, target column, how the header was read)."""
    source = config.data.source
    kind, rest = parse_spec(source, ("builtin", "csv", "jsonl"))
    if kind == "builtin":
        if rest not in BUILTINS:
            raise UserError(
                f"unknown builtin translation data {rest!r}; builtins: {', '.join(BUILTINS)}"
            )
        frame = read_builtin(DATA / BUILTINS[rest][0])
        return (
            frame,
            config.data.text_column or "source",
            config.data.translation_column or "target",
            "none (manythings.org layout)",
        )
    frame, header = read_user_table(config, kind)
    source_column, target_column = pick_sides(frame, config, source)
    return frame, source_column, target_column, header


def read_builtin(path: Path) -> pd.DataFrame:
    """A shipped pair file, read as is: tab separated, no header, no quoting."""
    frame = pd.read_csv(
        path,
        sep="\t",
        header=None,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        dtype=str,
        encoding="utf-8",
    )
    frame.columns = headerless_names(frame.shape[1])
    return frame


def headerless_names(width: int) -> list[str]:
    """source, target, attribution, then column_4, ... for wider files."""
    return [*HEADERLESS[:width], *(f"column_{i + 1}" for i in range(len(HEADERLESS), width))]


def read_user_table(config: NLPConfig, kind: str) -> tuple[pd.DataFrame, str]:
    """The user's table; a headerless one (said, or sniffed) gets `headerless_names`."""
    data = config.data
    options = table_options(data)
    frame = read_table(data.source, **options)[0]
    if kind != "csv" or data.columns is not None:
        return frame, "as given"
    if not data.header:
        frame.columns = headerless_names(frame.shape[1])
        return frame, "none (data.header: false)"
    fields = [str(c) for c in frame.columns]
    if looks_like_header(fields, [data.text_column, data.translation_column]):
        return frame, "first row"
    LOG.info("%s: the first row is a pair, not a header: read without one", data.source)
    options.update(header=False, columns=headerless_names(len(fields)))
    return read_table(data.source, **options)[0], "none (sniffed)"


def looks_like_header(fields: list[str], named: list[str | None]) -> bool:
    """Whether a first row names columns: it holds a named or known column, or every
    field is a name rather than a sentence."""
    known = {n for n in (*named, *SOURCE_NAMES, *TARGET_NAMES) if n}
    if any(f in known or f.strip().lower() in known for f in fields):
        return True
    return all(_NAME.fullmatch(f.strip()) for f in fields)


def pick_sides(frame: pd.DataFrame, config: NLPConfig, spec: str) -> tuple[str, str]:
    """(source column, target column): the named ones, else the ones whose names say
    which side they are, else the first two columns in order."""
    columns = [str(c) for c in frame.columns]
    chosen = {}
    for key, given, names in (
        ("text_column", config.data.text_column, SOURCE_NAMES),
        ("translation_column", config.data.translation_column, TARGET_NAMES),
    ):
        if given is not None and given not in columns:
            raise UserError(f"data.{key} {given!r} is not a column; columns: {', '.join(columns)}")
        found = [c for c in columns if c.strip().lower() in names]
        chosen[key] = given or (found[0] if len(found) == 1 else None)
    if len(columns) < 2:
        raise UserError(
            f"{spec} has one column ({columns[0]}); translation pairs need two: the source "
            "sentence (data.text_column) and its translation (data.translation_column)"
        )
    rest = [c for c in columns if c not in chosen.values()]
    source = chosen["text_column"] or rest.pop(0)
    target = chosen["translation_column"] or rest.pop(0)
    if source == target:
        raise UserError(f"data.text_column and data.translation_column are both {source!r}")
    return source, target


# === Cleaning and splitting ===
def load(config: NLPConfig, split: bool = True) -> PairData:
    """Read, clean and split the configured pairs (grouped by source sentence); with
    `split=False`, every pair in one split, `WHOLE` (a source evaluated whole)."""
    check_settings(config)
    spec = config.data.source
    frame, source_column, target_column, header = read_frame(config)
    kind, rest = parse_spec(spec, ("builtin", "csv", "jsonl"))
    languages = " -> ".join(BUILTINS[rest][1:]) if kind == "builtin" else None
    sources = side(frame, source_column, "source sentence", "text_column", spec)
    targets = side(frame, target_column, "translation", "translation_column", spec)
    keep = (sources != "") & (targets != "")
    dropped = int((~keep).sum())
    if dropped:
        LOG.warning("%s: dropped %d pairs with a missing side", spec, dropped)
    sources, targets = sources[keep].to_numpy(str), targets[keep].to_numpy(str)
    if config.data.max_examples is not None:
        sources = sources[: config.data.max_examples]
        targets = targets[: config.data.max_examples]
    groups = pd.factorize(pd.Series([normalise(s) for s in sources]))[0].astype(np.int64)
    if split:
        splits, _ = split_indices(
            len(sources),
            {"validation": config.data.validation_split, "test": config.data.test_split},
            config.runtime.seed,
            groups=groups,
            what=spec,
        )
    else:
        splits = {WHOLE: np.arange(len(sources))}
    counts = np.bincount(groups)
    report = {
        "languages": languages,
        "text_column": source_column,
        "translation_column": target_column,
        "header": header,
        "dropped_rows": dropped,
        "pairs": len(sources),
        "grouped_by": GROUPED_BY,
        "source_sentences": int(len(counts)),
        "repeated_sources": int((counts > 1).sum()),
        "pairs_sharing_a_source": int(counts[counts > 1].sum()),
        "seed": config.runtime.seed,
    }
    LOG.info(
        "%s: %d pairs, %d distinct source sentences (%d with several translations); splits %s",
        spec,
        len(sources),
        report["source_sentences"],
        report["repeated_sources"],
        {k: len(v) for k, v in splits.items()},
    )
    return PairData(spec, sources, targets, groups, splits, report)


def side(frame: pd.DataFrame, column: str, what: str, key: str, spec: str) -> pd.Series:
    """One side's stripped strings ("" where missing); a side missing everywhere is a
    UserError naming the columns there are."""
    values = frame[column].astype("string").fillna("").str.strip()
    if not (values != "").any():
        raise UserError(
            f"{spec}: the {what} column {column!r} is empty in every row; columns: "
            f"{', '.join(map(str, frame.columns))} (set data.{key})"
        )
    return values
