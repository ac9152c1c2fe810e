"""Finance table schemas: what each column is, inferred or declared, and how it is served.

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

Served inputs are named after the columns (`safe_name`), changed only where TensorFlow
requires it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from domains.finance import fairness
from domains.finance.config import FairnessConfig, FinanceConfig
from shared.errors import UserError

LOG = logging.getLogger("deepfield.finance")
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


def non_numeric_example(column: str, values: pd.Series) -> str:
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
            non_numeric_example(name, values)
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


def documented_kinds(source: str) -> dict[str, str]:
    """Column kinds a builtin's documentation fixes, so inference does not guess them."""
    if source == "builtin:german-credit":
        from domains.finance.german_credit import NUMERIC

        return dict.fromkeys(NUMERIC, "numeric")
    return {}
