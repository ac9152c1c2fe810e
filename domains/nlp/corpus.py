"""Language-model data: one plain-text corpus, split into contiguous blocks.

Pure Python (no TensorFlow), so `deepfield nlp train --task lm` refuses an empty or
unreadable file before TensorFlow starts. Sources: `builtin:shakespeare` and
`builtin:alice` (shipped gzipped), `text:PATH` / `txt:PATH` (a file in any common
encoding, or a folder of .txt files), and `csv:` / `jsonl:` tables whose text column is
read as one text per line.

A language model must never be scored on text it was trained on, and text is not a set
of independent rows: the corpus is cut into three contiguous spans, training first, then
validation, then test (the last `data.test_split` of the characters), each cut placed at
the paragraph boundary nearest its share (a line, then a space boundary when the text
has no paragraphs). `data.max_examples` keeps the first N lines (a table's first N
texts).
"""

from __future__ import annotations

import bisect
import gzip
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domains.nlp.config import NLPConfig
from domains.nlp.data import TEXT_NAMES, pick
from shared.data.spec import parse_spec
from shared.data.table import decode_text, read_table, table_options
from shared.errors import UserError

LOG = logging.getLogger("deepfield.nlp")
DATA = Path(__file__).parent / "data"
# builtin name -> gzipped UTF-8 file in domains/nlp/data (see its README)
BUILTINS = {
    "shakespeare": "tinyshakespeare.txt.gz",
    "alice": "alice_in_wonderland.txt.gz",
}
SPLITS = ("train", "validation", "test")
# Where a cut may fall, best first: after a blank line, after a line, after a space.
BOUNDARIES = (
    ("paragraph", re.compile(r"\n[^\S\n]*\n\s*")),
    ("line", re.compile(r"\n\s*")),
    ("space", re.compile(r"\s+")),
)


@dataclass(repr=False)
class CorpusData:
    """A language model's corpus, cut into contiguous train, validation and test spans."""

    spec: str
    text: str
    splits: dict[str, tuple[int, int]]  # name -> [start, end) character offsets
    report: dict[str, Any] = field(default_factory=dict)

    def split_text(self, name: str) -> str:
        if name not in self.splits:
            raise UserError(f"no split {name!r}; splits: {', '.join(self.splits)}")
        start, end = self.splits[name]
        return self.text[start:end]

    def summary(self) -> str:
        """Characters and lines per split, and where the cuts fall."""
        lines = [
            f"{self.spec}: {len(self.text):,} characters, {len(self.text.splitlines()):,} lines; "
            f"contiguous splits cut at {self.report.get('cut_at', 'character')} boundaries"
        ]
        for name, (start, end) in self.splits.items():
            part = self.text[start:end]
            lines.append(
                f"  {name:<10} {end - start:>10,} characters, {len(part.splitlines()):>7,} lines "
                f"(characters {start:,} to {end:,})"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name} {end - start}" for name, (start, end) in self.splits.items())
        return f"CorpusData({self.spec!r}, {len(self.text)} characters, {sizes})"


# === Reading ===
def read_text(config: NLPConfig) -> tuple[str, dict[str, Any]]:
    """(text, report) of the configured source; newlines normalised to \\n."""
    source = config.data.source
    kind, rest = parse_spec(source, ("builtin", "text", "txt", "csv", "jsonl"))
    if kind == "builtin":
        if rest not in BUILTINS:
            raise UserError(
                f"unknown builtin text corpus {rest!r}; builtins for --task lm: "
                f"{', '.join(BUILTINS)}"
            )
        text = gzip.decompress((DATA / BUILTINS[rest]).read_bytes()).decode("utf-8-sig")
        report: dict[str, Any] = {"encoding": "utf-8", "undecodable_bytes": 0, "notes": []}
    elif kind in ("text", "txt"):
        text, report = read_text_files(Path(rest).expanduser(), config.data.encoding)
    else:
        text, report = read_table_texts(config)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"{source} holds no text (empty or whitespace only)")
    return text, report


def read_text_files(path: Path, encoding: str | None) -> tuple[str, dict[str, Any]]:
    """A file, or every .txt file of a folder (sorted, joined by a blank line)."""
    if not path.exists():
        raise UserError(f"text file {path} does not exist")
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise UserError(f"folder {path} has no .txt files")
    texts, notes, undecodable, encodings = [], [], 0, []
    for file in files:
        try:
            raw = file.read_bytes()
        except OSError as err:
            raise UserError(f"cannot read text file {file}: {err.strerror or err}") from None
        if not raw.strip():
            if len(files) == 1:
                raise UserError(f"text file {file} is empty")
            continue
        # The table reader's decoder: one encoding detector (UTF-8 with or without BOM,
        # UTF-16 with BOM, else cp1252 or latin-1) and one count of undecodable bytes.
        text, found = decode_text(raw, encoding)
        texts.append(text)
        undecodable += found["undecodable_bytes"]
        encodings.append(found["encoding"])
        notes += [f"{file.name}: {note}" for note in found["notes"]]
    for note in notes:
        LOG.warning("%s", note)
    report = {
        "files": len(files),
        "encoding": ", ".join(sorted(set(encodings))) or "none",
        "undecodable_bytes": undecodable,
        "notes": notes,
    }
    return "\n\n".join(texts), report


def read_table_texts(config: NLPConfig) -> tuple[str, dict[str, Any]]:
    """A table's text column, one text per line (the first data.max_examples texts)."""
    frame, table_report = read_table(config.data.source, **table_options(config.data))
    column = pick(frame, config.data.text_column, TEXT_NAMES, "text_column")
    texts = frame[column].astype("string").fillna("").str.strip()
    texts = [t for t in texts.tolist() if t]
    if config.data.max_examples:
        texts = texts[: config.data.max_examples]
    report = {
        "encoding": table_report.get("encoding"),
        "undecodable_bytes": table_report.get("undecodable_bytes", 0),
        "notes": list(table_report.get("notes", [])),
        "text_column": column,
        "texts": len(texts),
    }
    return "\n".join(texts), report


# === Splitting ===
def cut_points(text: str, shares: tuple[float, float]) -> tuple[list[int], str]:
    """The two cuts (end of training, end of validation) and the boundary kind used:
    each at the boundary nearest its share of the characters, such that all three spans
    hold some text."""
    size = len(text)
    targets = [round(size * shares[0]), round(size * (shares[0] + shares[1]))]
    for kind, pattern in BOUNDARIES:
        candidates = [m.end() for m in pattern.finditer(text) if 0 < m.end() < size]
        if len(candidates) < 2:
            continue
        first = _nearest(candidates[:-1], targets[0])
        cuts = [first, _nearest([c for c in candidates if c > first], targets[1])]
        if _all_hold_text(text, cuts):
            return cuts, kind
    cuts = targets  # no usable boundary (one long word): cut anywhere
    if _all_hold_text(text, cuts):
        return cuts, "character"
    raise UserError(
        f"the corpus ({size} characters) is too short to cut into training, validation "
        "and test text"
    )


def _nearest(candidates: list[int], target: int) -> int:
    i = bisect.bisect_left(candidates, target)
    near = candidates[max(0, i - 1) : i + 1]
    return min(near, key=lambda c: abs(c - target))


def _all_hold_text(text: str, cuts: list[int]) -> bool:
    bounds = [0, *cuts, len(text)]
    return all(
        bounds[i] < bounds[i + 1] and text[bounds[i] : bounds[i + 1]].strip() for i in range(3)
    )


def load(config: NLPConfig) -> CorpusData:
    """Read, trim (data.max_examples lines) and split the configured corpus."""
    check_generate(config)
    text, report = read_text(config)
    kind = config.data.source.partition(":")[0].strip().lower()
    if config.data.max_examples and kind not in ("csv", "jsonl"):
        text = "\n".join(text.split("\n")[: config.data.max_examples])
        if not text.strip():
            raise UserError(f"the first {config.data.max_examples} lines hold no text")
    validation, test = config.data.validation_split, config.data.test_split
    if validation + test >= 1:
        raise UserError(
            f"data.validation_split + data.test_split = {validation + test:g} leaves no "
            "training text; keep their sum below 1"
        )
    cuts, boundary = cut_points(text, (1 - validation - test, validation))
    bounds = [0, *cuts, len(text)]
    splits = {name: (bounds[i], bounds[i + 1]) for i, name in enumerate(SPLITS)}
    report.update(
        method="contiguous spans in corpus order: training, then validation, then test",
        cut_at=boundary,
        characters=len(text),
        lines=len(text.splitlines()),
        max_examples_counts="lines" if kind not in ("csv", "jsonl") else "texts",
    )
    LOG.info(
        "%s: %d characters; contiguous splits cut at %s boundaries: %s",
        config.data.source,
        len(text),
        boundary,
        {name: end - start for name, (start, end) in splits.items()},
    )
    return CorpusData(config.data.source, text, splits, report)


def check_generate(config: NLPConfig) -> None:
    """Decoding settings the language model cannot use, refused before TensorFlow."""
    if config.generate.strategy == "beam":
        raise UserError(
            "--task lm generates with generate.strategy greedy or sample; beam search "
            "(translate's) finds the likeliest continuation, which for a language model "
            "is a loop of its commonest phrase"
        )
