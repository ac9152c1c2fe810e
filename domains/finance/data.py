"""Finance tables: load a source, infer or read its schema, clean it, split it.

Every column gets a kind: `numeric` and `categorical` columns are features, `time`
orders the rows (validation by time), `id` columns identify rows or customers, the
`target` is the label, and `ignore` columns are kept out of the model. Kinds are
inferred from names and values unless declared with `data.columns.NAME=KIND`, and the
result is reported back to the user (`describe_schema`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.finance.config import FinanceConfig, FinanceDataConfig
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

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

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


def safe_name(column: str) -> str:
    """A column name usable as a Keras input and a SavedModel input name."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(column).strip())
    return name if re.match(r"^[A-Za-z]", name) else f"f_{name}"


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
    kinds = {**declared, **data.columns}
    for name in data.columns:
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
    for name in frame.columns:
        if name not in kinds:
            kinds[name] = infer_kind(str(name), frame[name])
    for name in data.exclude:
        if name not in frame.columns:
            raise UserError(f"data.exclude names {name!r}, which is not a column")
        kinds[name] = "ignore"
    protected = config.fairness.protected
    if protected is not None and protected not in frame.columns:
        raise UserError(f"fairness.protected names {protected!r}, which is not a column")
    excluded = set(data.exclude) | (
        {protected} if protected and not config.fairness.use_as_feature else set()
    )
    present = frame[target].dropna()
    if len(present) < len(frame):
        raise UserError(f"target column {target!r} has {len(frame) - len(present)} missing values")
    positive = _positive_value(target, present, data.positive)
    numeric = [c for c, k in kinds.items() if k == "numeric" and c not in excluded]
    categorical = [c for c, k in kinds.items() if k == "categorical" and c not in excluded]
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
    )


def describe_schema(schema: Schema, frame: pd.DataFrame, labels: np.ndarray) -> str:
    """The schema as the user sees it after loading: one line per kind."""
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
    if schema.protected:
        lines.append(f"  protected   {schema.protected}")
    return "\n".join(lines)


# === Cleaning ===
def clean_frame(
    frame: pd.DataFrame, schema: Schema, *, on_missing: str, require_target: bool = True
) -> pd.DataFrame:
    """Numbers as float64 (text, inf and unhandled NaN refused), categories as str."""
    missing = [c for c in schema.features if c not in frame.columns]
    if require_target and schema.target not in frame.columns:
        missing.append(schema.target)
    if missing:
        raise UserError(f"missing columns: {', '.join(missing)}")
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
            if on_missing == "error" or name not in schema.medians:
                row = int(np.argmax(numbers.isna().to_numpy())) + 1
                raise UserError(
                    f"column {name!r} has {int(numbers.isna().sum())} missing values (first at row {row}); "
                    "fix the data or --set data.on_missing=impute (training median)"
                )
            numbers = numbers.fillna(schema.medians[name])
        out[name] = numbers
    for name in schema.categorical:
        out[name] = frame[name].astype("string").fillna(MISSING_CATEGORY).astype(str)
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
) -> tuple[dict[str, np.ndarray], str]:
    """train/validation/test row positions: by time (past -> future) or stratified random.

    The random split is the shared seeded splitter: stratified by label, `groups` (e.g.
    customers) never straddling splits, rows with equal `keys` kept in one split.
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
        splits, report = split_indices(
            n, {"validation": n_val, "test": n_test}, seed, labels=labels, groups=groups, keys=keys
        )
        LOG.info("stratified random split (seed %d): %s", seed, report["class_counts"])
        if report.get("duplicates", {}).get("rows"):
            LOG.info("duplicate rows kept in one split: %s", report["duplicates"])
    for name, rows in splits.items():
        if len(np.unique(labels[rows])) < 2:
            raise UserError(
                f"the {name} split ({how}) holds one class only; use more data, another "
                "data.test_split/validation_split, or data.split=random"
            )
    return splits, how


def load(config: FinanceConfig) -> TableData:
    """Read, type, clean and split the configured source."""
    source = config.source()
    raw, declared, default_target = read_source(source, config.data)
    raw.columns = [str(c) for c in raw.columns]
    schema = infer_schema(raw, config, declared, default_target)
    labels = (raw[schema.target].astype(str) == schema.positive).to_numpy().astype("int64")
    order = time_order(raw[schema.time]) if schema.time else None
    splits, how = split_rows(labels, order, config.data, config.runtime.seed)
    if config.data.on_missing == "impute":
        train = raw.iloc[splits["train"]]
        for name in schema.numeric:
            column = pd.to_numeric(train[name], errors="coerce")
            schema.medians[name] = float(column.median()) if column.notna().any() else 0.0
    frame = clean_frame(raw, schema, on_missing=config.data.on_missing)
    data = TableData(source, frame.reset_index(drop=True), labels, schema, splits)
    LOG.info("data %s (%s split):\n%s", source, how, describe_schema(schema, frame, labels))
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
