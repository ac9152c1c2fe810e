"""Finance tables: load a source, infer or read its schema, clean it, split it.

Every column gets a kind: `numeric` and `categorical` columns are features, `time`
orders the rows (validation by time), `id` columns identify rows or customers, the
`target` is the label, and `ignore` columns are kept out of the model. Kinds are
inferred from names and values unless declared with `data.columns.NAME=KIND`, and the
result is reported back to the user (`describe_schema`).

Integer codes: an inferred numeric column holding 3 to `MAX_CODES` distinct
non-negative integers below 100, with at least `ROWS_PER_CODE` rows per distinct value
on average (`installment_rate` 1-4, a `job` coded 0-3), is also one-hot encoded as
categories beside its normalised number, since such a column may be a code rather than a
quantity; the schema report lists these columns. (Two values need no one-hot: the
normalised number carries the same information.) A protected attribute holding integer
codes (`sex` as 1/2) is grouped by code.

Missing values in feature columns are imputed by default (numbers: the training split's
median; categories: a `missing` category), counted, and reported in the log and the
model card; `data.on_missing=fail` refuses them instead, naming columns and counts.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.finance import fairness
from domains.finance.config import FairnessConfig, FinanceConfig, FinanceDataConfig
from shared.data.spec import parse_spec
from shared.data.splits import split_indices
from shared.data.table import read_table, table_options
from shared.errors import UserError

LOG = logging.getLogger("deepfield.finance")
ACCEPTED_SPECS = ("builtin", "csv", "jsonl")
BUILTINS = ("german-credit", "transactions")
TIME_NAMES = ("time", "timestamp", "date", "datetime", "event_time", "transaction_time")
POSITIVE_NAMES = ("1", "1.0", "true", "yes", "y", "fraud", "bad", "default", "positive")
MISSING_CATEGORY = "missing"
HISTORY_LENGTH = "history_length"  # the sequence model's serving input beside the columns
MAX_CODES = 10  # integer columns with 3..MAX_CODES distinct values may be codes
ROWS_PER_CODE = 20  # ... when each value has this many rows on average


@dataclass
class Schema:
    """What each column is, which value of the target is positive, and the features."""

    kinds: dict[str, str]
    target: str
    positive: str
    numeric: list[str]
    categorical: list[str]
    time: str | None = None
    group: str | None = None
    protected: str | None = None
    medians: dict[str, float] = field(default_factory=dict)  # filled when imputing
    log_numeric: list[str] = field(default_factory=list)  # log1p before normalising
    codes: list[str] = field(default_factory=list)  # numeric columns also one-hot by value

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def input_names(self) -> dict[str, str]:
        """Feature column -> the name of its model and serving input (see `input_names`)."""
        return input_names(self.features, reserved=(HISTORY_LENGTH,))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schema:
        return cls(**data)


@dataclass
class TableData:
    spec: str
    frame: pd.DataFrame  # cleaned: numbers float64, categories str
    labels: np.ndarray  # 0/1
    schema: Schema
    splits: dict[str, np.ndarray]  # split -> row positions
    missing: dict[str, int] = field(default_factory=dict)  # feature column -> missing values
    split_report: dict[str, Any] = field(default_factory=dict)  # how the splits were made


def safe_name(column: str) -> str:
    """`column` as TensorFlow accepts a signature input name, changed only where it must be.

    TensorFlow renames function arguments that are not Python identifiers
    (`function_type.sanitize_arg_name`), so an input keeps the column's name only if it
    is one: ASCII letters, digits and `_`, starting with a letter. Accents are dropped
    (`Größe` -> `Gro_e`), other characters become `_`, and a name not starting with a
    letter gets `f_` in front (`2nd_income` -> `f_2nd_income`).
    """
    ascii_name = "".join(
        c
        for c in unicodedata.normalize("NFKD", str(column).strip())
        if not unicodedata.combining(c)
    )
    name = re.sub(r"[^A-Za-z0-9_]", "_", ascii_name)
    return name if re.match(r"^[A-Za-z]", name) else f"f_{name}"


def input_names(columns: list[str], reserved: tuple[str, ...] = ()) -> dict[str, str]:
    """Column -> a unique `safe_name` (`_2`, `_3`, ... where two columns would collide,
    or one collides with a `reserved` input such as `history_length`)."""
    names: dict[str, str] = {}
    taken = set(reserved)
    for column in columns:
        base = name = safe_name(column)
        count = 1
        while name in taken:
            count += 1
            name = f"{base}_{count}"
        taken.add(name)
        names[column] = name
    return names


def integer_values(values: pd.Series) -> np.ndarray | None:
    """The distinct values of a column of small non-negative integers (0..99), else None."""
    numbers = pd.to_numeric(values.dropna(), errors="coerce")
    if numbers.empty or numbers.isna().any() or pd.api.types.is_bool_dtype(values):
        return None
    numbers = numbers.to_numpy(dtype="float64")
    if not (np.all(numbers == np.rint(numbers)) and numbers.min() >= 0 and numbers.max() < 100):
        return None
    return np.unique(numbers).astype("int64")


def is_code_column(values: pd.Series) -> bool:
    """Whether a numeric column looks like integer codes (the rule in the module docstring)."""
    distinct = integer_values(values)
    return (
        distinct is not None
        and 3 <= len(distinct) <= MAX_CODES
        and values.notna().sum() >= ROWS_PER_CODE * len(distinct)
    )


def category_strings(values: pd.Series) -> pd.Series:
    """Categories as text, integral numbers without a decimal point (1.0 and "1" -> "1"),
    so a code reads the same from a CSV with gaps (floats), JSON (ints) or a string."""
    numbers = pd.to_numeric(values, errors="coerce")
    integral = numbers.notna() & (numbers == np.rint(numbers.fillna(0))) & (numbers.abs() < 2**53)
    text = values.astype("string")
    text[integral] = numbers[integral].astype("int64").astype(str)
    return text.fillna(MISSING_CATEGORY).astype(str)


# === Reading ===
def read_source(
    source: str, data: FinanceDataConfig
) -> tuple[pd.DataFrame, dict[str, str], str | None]:
    """The raw table, kinds the source declares, and its default target."""
    scheme, value = parse_spec(source, accepted=ACCEPTED_SPECS)
    if scheme == "builtin":
        if value == "german-credit":
            from domains.finance.german_credit import TARGET, load_german_credit

            return load_german_credit(), {TARGET: "target"}, TARGET
        if value == "transactions":
            from domains.finance.transactions import SCHEMA, TARGET, generate_transactions

            LOG.info("generating builtin:transactions (%d customers, %d days, fraud rate %.2f%%)",
                     data.transactions.customers, data.transactions.days, 100 * data.transactions.fraud_rate)  # fmt: skip
            return generate_transactions(data.transactions), dict(SCHEMA), TARGET
        raise UserError(f"unknown builtin finance data {value!r}; builtins: {', '.join(BUILTINS)}")
    return read_table(f"{scheme}:{value}", **table_options(data))[0], {}, None


def read_csv(path: Path) -> pd.DataFrame:
    """A user's table file (csv, tsv, txt, ... or .jsonl), read by the shared table source."""
    return read_table(Path(path))[0]


# === Schema ===
def _looks_like_time(name: str, values: pd.Series) -> bool:
    if name.strip().lower() in TIME_NAMES:
        return True
    if values.dtype != object:
        return False
    sample = values.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}").all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.95)


def _non_numeric_example(column: str, values: pd.Series) -> str:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() & values.notna()]
    row = int(bad.index[0])
    return f"column {column!r} is numeric but row {row + 1} holds {str(bad.iloc[0])!r}"


def infer_kind(name: str, values: pd.Series) -> str:
    """One column's kind from its name and values (see the module docstring)."""
    lower = name.strip().lower()
    if (
        lower in ("id", "index")
        or lower.endswith("_id")
        or lower.startswith("unnamed:")
        or lower == ""
    ):
        return "id"
    if _looks_like_time(name, values):
        return "time"
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return "numeric"
    present = values.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    share = float(numbers.notna().mean()) if len(present) else 0.0
    if share == 1.0:
        return "numeric"
    if share >= 0.9:
        raise UserError(
            _non_numeric_example(name, values)
            + f"; fix the file or declare it with --set data.columns.{name}=categorical"
        )
    if present.nunique() == len(values) and len(values) > 50:
        return "id"
    return "categorical"


def _positive_value(target: str, values: pd.Series, declared: str | None) -> str:
    classes = sorted(values.astype(str).unique())
    if len(classes) < 2:
        raise UserError(
            f"target column {target!r} has one class ({classes[0] if classes else 'none'}); "
            "training needs examples of both outcomes"
        )
    if len(classes) > 2:
        shown = ", ".join(classes[:8])
        raise UserError(
            f"target column {target!r} must have two classes, found {len(classes)}: {shown}"
        )
    if declared is not None:
        if str(declared) not in classes:
            raise UserError(
                f"data.positive={declared!r} is not a value of {target!r} ({', '.join(classes)})"
            )
        return str(declared)
    known = [c for c in classes if c.strip().lower() in POSITIVE_NAMES]
    if len(known) == 1:
        return known[0]
    raise UserError(
        f"which value of target {target!r} means fraud/default? set --set data.positive=VALUE "
        f"(values: {', '.join(classes)})"
    )


def infer_schema(
    frame: pd.DataFrame, config: FinanceConfig, declared: dict[str, str], default_target: str | None
) -> Schema:
    """Kinds for every column: declared ones first, then inferred; checks the target."""
    data = config.data
    overrides = data.columns if isinstance(data.columns, dict) else {}
    kinds = {**declared, **overrides}
    for name in overrides:
        if name not in frame.columns:
            raise UserError(
                f"data.columns names {name!r}, which is not a column ({', '.join(map(str, frame.columns))})"
            )
    target = (
        data.target or next((c for c, k in kinds.items() if k == "target"), None) or default_target
    )
    if target is None:
        raise UserError(
            f"no target column: set --set data.target=COLUMN (columns: {', '.join(map(str, frame.columns))})"
        )
    if target not in frame.columns:
        raise UserError(
            f"target column {target!r} is not in the data (columns: {', '.join(map(str, frame.columns))})"
        )
    for name, kind in list(kinds.items()):
        if kind == "target" and name != target:
            kinds[name] = "ignore"
    kinds[target] = "target"
    inferred = [name for name in frame.columns if name not in kinds]
    for name in inferred:
        kinds[name] = infer_kind(str(name), frame[name])
    codes = [n for n in inferred if kinds[n] == "numeric" and is_code_column(frame[n])]
    for name in data.exclude:
        if name not in frame.columns:
            raise UserError(f"data.exclude names {name!r}, which is not a column")
        kinds[name] = "ignore"
    protected = protected_column(frame, config.fairness, str(target))
    excluded = set(data.exclude) | (
        {protected} if protected and not config.fairness.use_as_feature else set()
    )
    present = frame[target].dropna()
    if len(present) < len(frame):
        raise UserError(f"target column {target!r} has {len(frame) - len(present)} missing values")
    positive = _positive_value(target, present, data.positive)
    in_file_order = [c for c in frame.columns if c not in excluded]
    numeric = [c for c in in_file_order if kinds[c] == "numeric"]
    categorical = [c for c in in_file_order if kinds[c] == "categorical"]
    if not numeric and not categorical:
        raise UserError(
            "no feature columns left: every column is an id, time, target or excluded one"
        )
    times = [c for c, k in kinds.items() if k == "time"]
    group = data.group_column
    if group is None:
        group = next(
            (c for c in ("customer_id", "account_id", "card_id") if c in frame.columns), None
        )
    elif group not in frame.columns:
        raise UserError(f"data.group_column names {group!r}, which is not a column")
    return Schema(
        kinds={str(k): v for k, v in kinds.items()},
        target=str(target),
        positive=positive,
        numeric=[str(c) for c in numeric],
        categorical=[str(c) for c in categorical],
        time=str(times[0]) if times else None,
        group=group,
        protected=protected,
        codes=[str(c) for c in codes if c in numeric],
    )


def protected_column(frame: pd.DataFrame, config: FairnessConfig, target: str) -> str | None:
    """The column fairness is measured over, checked against the data before training.

    `fairness.protected` must be a column; a named config's `protected_if_present` is
    used only where the table has one of its columns (matched in any case). The column
    must group rows: categories, integer codes, or numbers with `fairness.cut`.
    """
    columns = [str(c) for c in frame.columns]
    if config.protected is not None:
        if config.protected not in columns:
            raise UserError(
                f"fairness.protected names {config.protected!r}, which is not a column "
                f"(columns: {', '.join(columns)})"
            )
        protected = config.protected
    else:
        by_lower = {c.lower(): c for c in columns}
        found = [by_lower[c.lower()] for c in config.protected_if_present if c.lower() in by_lower]
        if not found:
            if config.protected_if_present:
                LOG.warning(
                    "fairness: no %s column in this data, so no fairness report; "
                    "--set fairness.protected=COLUMN names one",
                    " or ".join(config.protected_if_present),
                )
            return None
        protected = found[0]
    if protected == target:
        raise UserError(f"fairness.protected {protected!r} is the target column")
    groups = fairness.groups_of(frame[protected], config.cut)
    LOG.info("fairness over %r: groups %s", protected, ", ".join(sorted(set(groups.tolist()))))
    return protected


def describe_schema(
    schema: Schema, frame: pd.DataFrame, labels: np.ndarray, missing: dict[str, int] | None = None
) -> str:
    """The schema as the user sees it after loading: one line per kind, then the integer
    codes, the protected attribute and the missing values."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in schema.kinds.items():
        if kind in ("numeric", "categorical") and name not in schema.features:
            kind = "excluded"
        by_kind.setdefault(kind, []).append(name)
    lines = [f"{len(frame):,} rows, {int(labels.sum()):,} positive ({100 * labels.mean():.2f}%), "
             f"target {schema.target!r} positive value {schema.positive!r}"]  # fmt: skip
    for kind in ("numeric", "categorical", "time", "id", "target", "excluded", "ignore"):
        if by_kind.get(kind):
            lines.append(f"  {kind:<11} {', '.join(by_kind[kind])}")
    if schema.codes:
        lines.append(
            f"  codes       {', '.join(schema.codes)} (integer codes: one-hot as categories "
            "as well as numbers; data.columns.NAME=numeric or =categorical picks one)"
        )
    if schema.protected:
        lines.append(f"  protected   {schema.protected} (fairness report only, not a feature)")
    if missing:
        lines.append(f"  missing     {describe_missing(schema, missing)}")
    return "\n".join(lines)


def describe_missing(schema: Schema, missing: dict[str, int]) -> str:
    """`age 2 (train median 33), purpose 1 ('missing' category)`, or `none`."""
    parts = []
    for name, count in missing.items():
        if name in schema.medians:
            parts.append(f"{name} {count} (train median {schema.medians[name]:g})")
        else:
            parts.append(f"{name} {count} ({MISSING_CATEGORY!r} category)")
    return ", ".join(parts) or "none"


def missing_counts(frame: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Missing values per column, for the columns that have any."""
    counts = {name: int(frame[name].isna().sum()) for name in columns if name in frame.columns}
    return {name: count for name, count in counts.items() if count}


# === Cleaning ===
def clean_frame(
    frame: pd.DataFrame, schema: Schema, *, on_missing: str, require_target: bool = True
) -> pd.DataFrame:
    """Numbers as float64 (text and inf refused, gaps filled with the training median),
    categories as str (gaps: the `missing` category); `on_missing="fail"` refuses gaps."""
    missing = [c for c in schema.features if c not in frame.columns]
    if require_target and schema.target not in frame.columns:
        missing.append(schema.target)
    if missing:
        raise UserError(f"missing columns: {', '.join(missing)}")
    gaps = missing_counts(frame, schema.features)
    # A number without a training median (a run trained with on_missing=fail) cannot be filled.
    unfilled = [name for name in schema.numeric if name not in schema.medians]
    refused = {n: c for n, c in gaps.items() if on_missing == "fail" or n in unfilled}
    if refused:
        shown = ", ".join(
            f"{name} ({count}, first at row {int(np.argmax(frame[name].isna().to_numpy())) + 1})"
            for name, count in refused.items()
        )
        raise UserError(
            f"missing values in {len(refused)} column{'s' if len(refused) > 1 else ''}: {shown}; "
            "fix the data or --set data.on_missing=impute (numbers: training median, "
            "categories: a 'missing' category)"
        )
    out = pd.DataFrame(index=frame.index)
    for name in schema.numeric:
        values = frame[name]
        numbers = (
            pd.to_numeric(values, errors="coerce")
            if values.dtype == object
            else values.astype("float64")
        )
        if numbers.isna().sum() > values.isna().sum():
            raise UserError(_non_numeric_example(name, values))
        numbers = numbers.astype("float64")
        infinite = np.isinf(numbers.to_numpy())
        if infinite.any():
            raise UserError(
                f"column {name!r} holds an infinite value at row {int(np.argmax(infinite)) + 1}"
            )
        if numbers.isna().any():
            numbers = numbers.fillna(schema.medians[name])
        out[name] = numbers
    for name in schema.categorical:
        out[name] = category_strings(frame[name])
    for name in (schema.time, schema.group, schema.protected, "fraud_pattern"):
        if name and name in frame.columns and name not in out.columns:
            out[name] = frame[name]
    return out


def time_order(values: pd.Series) -> np.ndarray:
    """Seconds (or the raw numbers) of a time column, for ordering rows."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype="float64")
    parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    if parsed.isna().any():
        row = int(np.argmax(parsed.isna().to_numpy())) + 1
        raise UserError(
            f"time column {values.name!r} has an unreadable time at row {row}: {values.iloc[row - 1]!r}"
        )
    return (parsed - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy()


# === Splits ===
def split_rows(
    labels: np.ndarray,
    order: np.ndarray | None,
    data: FinanceDataConfig,
    seed: int,
    *,
    groups: np.ndarray | None = None,
    keys: np.ndarray | None = None,
    report: dict | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """train/validation/test row positions: by time (past -> future) or stratified random.

    The random split is the shared seeded splitter: stratified by label, `groups` (e.g.
    customers) never straddling splits, rows with equal `keys` kept in one split. What
    the splitter found (class counts, groups, duplicates) goes into `report` when given.
    """
    n = len(labels)
    how = data.split
    if how == "auto":
        how = "time" if order is not None else "random"
    if how == "time" and order is None:
        raise UserError(
            "data.split=time needs a time column (declare one with data.columns.NAME=time)"
        )
    n_test = max(1, int(round(n * data.test_split)))
    n_val = max(1, int(round(n * data.validation_split)))
    if n - n_test - n_val < 10:
        raise UserError(f"only {n} rows: too few to split into train, validation and test")
    if how == "time":
        ranked = np.argsort(order, kind="stable")
        splits = {
            "train": ranked[: n - n_test - n_val],
            "validation": ranked[n - n_test - n_val : n - n_test],
            "test": ranked[n - n_test :],
        }
    else:
        splits, found = split_indices(
            n, {"validation": n_val, "test": n_test}, seed, labels=labels, groups=groups, keys=keys
        )
        LOG.info("stratified random split (seed %d): %s", seed, found["class_counts"])
        if found.get("duplicates", {}).get("rows"):
            LOG.warning("duplicate rows kept in one split: %s", found["duplicates"])
        if report is not None:
            report.update(found)
    for name, rows in splits.items():
        if len(np.unique(labels[rows])) < 2:
            raise UserError(
                f"the {name} split ({how}) holds one class only; use more data, another "
                "data.test_split/validation_split, or data.split=random"
            )
    return splits, how


def documented_kinds(source: str) -> dict[str, str]:
    """Column kinds a builtin's documentation fixes, so inference does not guess them."""
    if source == "builtin:german-credit":
        from domains.finance.german_credit import NUMERIC

        return dict.fromkeys(NUMERIC, "numeric")
    return {}


def load(config: FinanceConfig) -> TableData:
    """Read, type, clean and split the configured source."""
    source = config.source()
    raw, declared, default_target = read_source(source, config.data)
    declared = {**documented_kinds(source), **declared}
    raw.columns = [str(c) for c in raw.columns]
    schema = infer_schema(raw, config, declared, default_target)
    labels = (raw[schema.target].astype(str) == schema.positive).to_numpy().astype("int64")
    order = time_order(raw[schema.time]) if schema.time else None
    # Rows of one customer never straddle a random split; exact duplicate rows are kept
    # in one split and counted (a leak the anchors' splitters do not look for).
    groups = raw[schema.group].astype(str).to_numpy() if schema.group else None
    keys = pd.util.hash_pandas_object(raw[[*schema.features, schema.target]], index=False)
    split_report: dict = {}
    splits, how = split_rows(
        labels,
        order,
        config.data,
        config.runtime.seed,
        groups=groups,
        keys=keys.to_numpy(),
        report=split_report,
    )
    if config.data.on_missing == "impute":
        train = raw.iloc[splits["train"]]
        for name in schema.numeric:
            column = pd.to_numeric(train[name], errors="coerce")
            schema.medians[name] = float(column.median()) if column.notna().any() else 0.0
    frame = clean_frame(raw, schema, on_missing=config.data.on_missing)
    missing = missing_counts(raw, schema.features)
    data = TableData(
        source,
        frame.reset_index(drop=True),
        labels,
        schema,
        splits,
        missing,
        {"method": how, **split_report},
    )
    LOG.info(
        "data %s (%s split):\n%s", source, how, describe_schema(schema, frame, labels, missing)
    )
    if missing:
        LOG.warning(
            "imputed %d missing values: %s",
            sum(missing.values()),
            describe_missing(schema, missing),
        )
    return data


def rows_from_inputs(inputs: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Rows to score from CSV files and/or JSON objects given on the command line."""
    import json

    frames, names = [], []
    for item in inputs:
        text = item.strip()
        if text.startswith("{"):
            try:
                row = json.loads(text)
            except ValueError as err:
                raise UserError(f"input {text[:40]!r} is not valid JSON: {err}") from None
            if not isinstance(row, dict):
                raise UserError("a JSON input must be an object of column -> value")
            frames.append(pd.DataFrame([row]))
            names.append(f"json:{len(names) + 1}")
        else:
            frame = read_csv(Path(item))
            frames.append(frame)
            names.extend([f"{item}:{i + 1}" for i in range(len(frame))][: len(frame)])
    if not frames:
        raise UserError("no inputs given: name CSV files or give JSON rows")
    frame = pd.concat(frames, ignore_index=True)
    frame.columns = [str(c) for c in frame.columns]
    return frame, names
