"""Finance tables: read a source, type it by its schema (`schema.py`), clean it, split it.

Missing values in feature columns are imputed by default (numbers: the training split's
median; categories: a `missing` category), counted, and reported in the log and the
model card; `data.on_missing=fail` refuses them instead, naming columns and counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domains.finance.config import FinanceConfig, FinanceDataConfig
from domains.finance.schema import (
    Schema,
    category_strings,
    describe_missing,
    describe_schema,
    documented_kinds,
    infer_schema,
    missing_counts,
    non_numeric_example,
)
from shared.data.spec import parse_spec
from shared.data.splits import rolling_origin, split_indices, split_sizes, with_split_column
from shared.data.table import read_table, table_options
from shared.errors import UserError

LOG = logging.getLogger("deepfield.finance")
ACCEPTED_SPECS = ("builtin", "csv", "jsonl")
BUILTINS = ("german-credit", "transactions")


@dataclass(repr=False)
class TableData:
    """A typed, cleaned table, its 0/1 labels and its splits, as fraud and credit train."""

    spec: str
    frame: pd.DataFrame  # cleaned: numbers float64, categories str
    labels: np.ndarray  # 0/1
    schema: Schema
    splits: dict[str, np.ndarray]  # split -> row positions
    missing: dict[str, int] = field(default_factory=dict)  # feature column -> missing values
    split_report: dict[str, Any] = field(default_factory=dict)  # how the splits were made

    def dataframe(self, split: str | None = None) -> pd.DataFrame:
        """The cleaned rows with the target (1 = `schema.positive`) and a `split` column,
        or one split's rows: the columns a model input, `predict` and `monitor` take."""
        frame = self.frame.assign(**{self.schema.target: self.labels})
        return with_split_column(frame, self.splits, split)

    def summary(self) -> str:
        """Rows, features and the positive rate of each split, and how it was split."""
        schema = self.schema
        lines = [
            f"{self.spec}: {len(self.frame):,} rows, target {schema.target!r} "
            f"(positive: {schema.positive}), {len(schema.numeric)} numeric and "
            f"{len(schema.categorical)} categorical features; "
            f"{self.split_report.get('method', '?')} split"
            + (f", seed {self.split_report['seed']}" if "seed" in self.split_report else "")
        ]
        for name, rows in self.splits.items():
            lines.append(
                f"  {name:<10} {len(rows):>8,} rows, {self.labels[rows].mean():.2%} positive"
            )
        if self.missing:
            lines.append(f"  missing values imputed: {describe_missing(schema, self.missing)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        sizes = split_sizes(self.splits)
        return f"TableData({self.spec!r}, {len(self.frame)} rows, target {self.schema.target!r}, {sizes})"


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
            raise UserError(non_numeric_example(name, values))
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
        # tune --cv: the validation window rolls back in time, one fold at a time
        splits = {**rolling_origin(ranked[: n - n_test], n_val), "test": ranked[n - n_test :]}
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
