"""Tables from `csv:PATH` and `jsonl:PATH`, read as a user's own file comes, with a report.

`read_table` takes any file name (.csv, .tsv, .txt, ...), sniffs the delimiter (comma, tab,
semicolon or pipe), reads a header row or takes column names, and detects the encoding
(UTF-8, UTF-8 with BOM, UTF-16 with BOM, else cp1252 or latin-1). Nothing in the file makes
it crash: undecodable bytes are replaced and counted, and the rows read are checked against
the file's non-blank lines, because a stray quote at the start of a text field silently
merges the lines up to the next quote. The report says what was found; its `notes` are the
sentences a user should read, and they are logged as warnings.

No TensorFlow here: a domain reads and checks its table before TensorFlow starts.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from shared.errors import UserError

log = logging.getLogger(__name__)

TABLE_SCHEMES = ("csv", "jsonl")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
DELIMITERS = ",\t;|"
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SNIFF_CHARS = 64 << 10
MAX_LINE_EXAMPLES = 5

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what surrogateescape turns a bad byte into
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_CONTENT_LINE = re.compile(r"^[^\S\n]*\S", re.MULTILINE)


def read_table(
    source: str | Path,
    *,
    delimiter: str | None = None,
    header: bool = True,
    columns: list[str] | None = None,
    encoding: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(DataFrame, report) for `csv:PATH`, `jsonl:PATH` or a path (.jsonl/.ndjson: JSON lines).

    `delimiter` forces the CSV delimiter (a character, or tab/comma/semicolon/pipe);
    `header=False` reads the first line as data, with `columns` as names (column_1, ... when
    None); with a header, `columns` renames it. `encoding` forces the encoding. Problems
    the user must fix (missing or empty file, wrong column count, nothing parseable) are
    `UserError`s; problems that can be worked around are reported and logged.
    """
    fmt, path = _locate(source)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {fmt} file {path}: {err.strerror or err}") from None
    if not raw.strip():
        raise UserError(f"{fmt} file {path} is empty")
    text, report = decode_text(raw, encoding)
    if not text.strip():
        raise UserError(f"{fmt} file {path} is empty")
    report = {"path": str(path), "format": fmt, **report}
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if fmt == "jsonl":
        frame = _read_jsonl(text, path, columns, report)
    else:
        frame = _read_csv(text, path, delimiter, header, columns, report)
    report["rows"] = len(frame)
    report["columns"] = [str(c) for c in frame.columns]
    for note in report["notes"]:
        log.warning("%s: %s", path, note)
    return frame, report


def table_options(data: Any) -> dict[str, Any]:
    """`read_table`'s keyword arguments from a domain's data config, where it has them.

    Reads `data.delimiter`, `data.header`, `data.encoding`, and `data.columns` when that is a
    list of names (some domains use `data.columns` for a mapping of kinds instead).
    """
    columns = getattr(data, "columns", None)
    return {
        "delimiter": getattr(data, "delimiter", None),
        "header": getattr(data, "header", True),
        "columns": list(columns) if isinstance(columns, list | tuple) else None,
        "encoding": getattr(data, "encoding", None),
    }


# --------------------------------------------------------------------------- locating, decoding


def _locate(source: str | Path) -> tuple[str, Path]:
    """(format, path): from a `csv:`/`jsonl:` spec, or from a path's suffix."""
    if isinstance(source, str) and source.partition(":")[0].strip().lower() in TABLE_SCHEMES:
        scheme, _, rest = source.partition(":")
        fmt, path = scheme.strip().lower(), Path(rest.strip()).expanduser()
    else:
        path = Path(source).expanduser()
        fmt = "jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "csv"
    if not path.exists():
        raise UserError(f"{fmt} file {path} does not exist")
    if path.is_dir():
        raise UserError(f"{path} is a folder; {fmt}: expects a file")
    return fmt, path


def decode_text(raw: bytes, forced: str | None) -> tuple[str, dict[str, Any]]:
    """The text and how it was decoded; undecodable bytes become U+FFFD and are counted."""
    notes = []
    if forced:
        try:
            name = codecs.lookup(forced).name
        except LookupError:
            raise UserError(f"unknown encoding {forced!r} (try utf-8, cp1252, latin-1)") from None
    else:
        name = _detect_encoding(raw)
        if name not in ("utf-8", "utf-8-sig"):
            notes.append(f"not UTF-8; decoded as {name}")
    try:
        text = raw.decode(name, errors="surrogateescape")
    except UnicodeDecodeError:  # surrogateescape takes only bytes >= 0x80: count U+FFFD
        text = raw.decode(name, errors="replace").replace("\ufffd", "\udcff")
    bad = [m.start() for m in _UNDECODABLE.finditer(text)]
    if bad:
        lines = sorted({text.count("\n", 0, pos) + 1 for pos in bad[:1000]})[:MAX_LINE_EXAMPLES]
        notes.append(
            f"{len(bad)} byte(s) are not valid {name} and were replaced by U+FFFD "
            f"(first on line(s) {', '.join(map(str, lines))}); set data.encoding if another "
            f"encoding is meant"
        )
        text = _UNDECODABLE.sub("\ufffd", text)
    return text, {
        "encoding": name,
        "encoding_forced": bool(forced),
        "undecodable_bytes": len(bad),
        "notes": notes,
    }


def _detect_encoding(raw: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else cp1252, else latin-1 (decodes anything).

    Text that is mostly valid UTF-8 with a few broken bytes stays UTF-8 (the broken bytes
    are counted); text with no UTF-8 multi-byte sequences at all is a single-byte encoding.
    """
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    broken = len(_UNDECODABLE.findall(raw.decode("utf-8", errors="surrogateescape")))
    if len(_UTF8_SEQUENCE.findall(raw)) > broken:
        return "utf-8"
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; latin-1 has them all
        return "latin-1"


# --------------------------------------------------------------------------- csv


def _read_csv(
    text: str,
    path: Path,
    delimiter: str | None,
    header: bool,
    columns: list[str] | None,
    report: dict[str, Any],
) -> pd.DataFrame:
    if not isinstance(header, bool):
        raise UserError(f"data.header must be true or false; got {header!r}")
    sep = _delimiter(delimiter) if delimiter is not None else _sniff(text)
    first = text[_CONTENT_LINE.search(text).start() :].split("\n", 1)[0]
    width = len(next(csv.reader([first], delimiter=sep)))
    names = _column_names(columns, width, header, path, sep, report)
    data_lines = len(_CONTENT_LINE.findall(text)) - int(header)
    if data_lines == 0:
        raise UserError(f"csv file {path} has a header but no rows")
    report.update(delimiter=sep, delimiter_sniffed=delimiter is None, header=header)
    report.update(data_lines=data_lines, quoting="standard", stray_quote_lines=[])

    def parse(buffer: str) -> pd.DataFrame:
        return pd.read_csv(
            io.StringIO(buffer),
            sep=sep,
            header=0 if header else None,
            names=names,
            low_memory=False,
        )

    try:
        frame, error = parse(text), None
    except pd.errors.ParserError as err:
        frame, error = None, str(err).strip().splitlines()[-1]
    if frame is not None and len(frame) == data_lines:
        return frame
    repaired = _quote_safe_rows(text, sep, width)
    if repaired is not None:
        rows, stray = repaired
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=sep, lineterminator="\n").writerows(rows)
        frame = parse(buffer.getvalue())
        report.update(quoting="off on lines with a stray quote", stray_quote_lines=stray)
        report["notes"].append(
            f"{len(stray)} line(s) hold a stray quote that would merge them with the lines "
            f"after (first on line(s) {', '.join(map(str, stray[:MAX_LINE_EXAMPLES]))}); "
            f"read those lines with quoting off, keeping the quote as text"
        )
        return frame
    if frame is None:
        raise UserError(f"cannot parse csv file {path}: {error}")
    odd = _odd_quote_lines(text)
    report["notes"].append(
        f"{data_lines} data lines but {len(frame)} rows: quoted fields span several lines"
        + (f" (first on line {odd[0]})" if odd else "")
        + "; check the quoting if that is not meant"
    )
    return frame


def _delimiter(value: str) -> str:
    sep = DELIMITER_NAMES.get(value.lower(), value)
    if len(sep) != 1:
        raise UserError(
            f"data.delimiter must be one character or one of {', '.join(DELIMITER_NAMES)}; "
            f"got {value!r}"
        )
    return sep


def _sniff(text: str) -> str:
    """The delimiter of a sample of whole lines: csv.Sniffer, else the most consistent one."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        pass
    lines = [line for line in sample.split("\n") if line.strip()][:50]
    counts = {d: {line.count(d) for line in lines} for d in DELIMITERS}
    consistent = [d for d, seen in counts.items() if len(seen) == 1 and 0 not in seen]
    return max(consistent, key=lambda d: next(iter(counts[d])), default=",")


def _column_names(
    columns: list[str] | None, width: int, header: bool, path: Path, sep: str, report: dict
) -> list[str] | None:
    if columns is None:
        if header:
            return None
        report["notes"].append(f"no header row and no column names; named them column_1..{width}")
        return [f"column_{i + 1}" for i in range(width)]
    columns = [str(c) for c in columns]
    if len(columns) != width:
        raise UserError(
            f"{path} has {width} column(s) (delimiter {sep!r}) but data.columns names "
            f"{len(columns)}: {', '.join(columns)}"
        )
    if len(set(columns)) != len(columns):
        raise UserError(f"data.columns names a column twice: {', '.join(columns)}")
    return columns


def _quote_safe_rows(text: str, sep: str, width: int) -> tuple[list[list[str]], list[int]] | None:
    """Rows parsed one line at a time, quoting off on lines whose quotes do not close.

    Parsing each physical line on its own is what keeps a stray quote from running into the
    next lines; the rest keep normal quoting, so legitimately quoted fields stay intact. None
    when that does not give every line `width` fields (then quoted fields really do span
    lines) or no line needed it.
    """
    rows, stray = [], []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line], delimiter=sep, strict=True))
        except csv.Error:
            fields = None
        if fields is None or len(fields) != width:
            fields = next(csv.reader([line], delimiter=sep, quoting=csv.QUOTE_NONE))
            if len(fields) != width:
                return None
            stray.append(number)
        rows.append(fields)
    return (rows, stray) if stray else None


def _odd_quote_lines(text: str) -> list[int]:
    return [n for n, line in enumerate(text.split("\n"), 1) if line.count('"') % 2][
        :MAX_LINE_EXAMPLES
    ]


# --------------------------------------------------------------------------- jsonl


def _read_jsonl(
    text: str, path: Path, columns: list[str] | None, report: dict[str, Any]
) -> pd.DataFrame:
    """One JSON object per line; other lines are skipped and reported, unless all are bad."""
    records, bad = [], []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            records.append(value)
        else:
            bad.append(number)
    shown = ", ".join(map(str, bad[:MAX_LINE_EXAMPLES])) + (
        ", ..." if len(bad) > MAX_LINE_EXAMPLES else ""
    )
    if not records:
        raise UserError(
            f"jsonl file {path}: none of its {len(bad)} line(s) is a JSON object "
            f"(bad lines: {shown}); jsonl: expects one {{...}} object per line"
        )
    report.update(
        data_lines=len(records) + len(bad), bad_lines=len(bad), bad_line_numbers=bad[:100]
    )
    if bad:
        report["notes"].append(
            f"skipped {len(bad)} line(s) that are not JSON objects (lines {shown})"
        )
    frame = pd.DataFrame.from_records(records)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UserError(
                f"jsonl file {path} has no column(s) {', '.join(missing)} "
                f"(columns: {', '.join(map(str, frame.columns))})"
            )
        frame = frame[list(columns)]
    return frame
