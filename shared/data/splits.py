"""One seeded splitter for every domain: stratified, grouped, duplicates kept together.

`split_indices(n, {"validation": 0.1, "test": 0.2}, seed, labels=..., groups=..., keys=...)`
cuts row positions 0..n-1 into the named parts plus the rest ("train"):

- stratified: every part holds about its share of every label;
- grouped: rows with the same group key (a customer, a patient, a source sentence, a scene)
  never straddle parts;
- duplicates: rows with equal `keys` (a content hash, a normalised text) are found, kept in
  the part of their first occurrence (they join one group), and counted in the report.

Inside `cross_validation_fold(k, K)` (how `tune --cv K` scores a trial) every split that
cuts a "validation" part re-cuts its train and validation rows into K folds by the same
rules, validating on fold k; the test part stays where the seed put it. A split by time
rolls its validation window back instead (`rolling_origin`): no fold trains on the future.

No TensorFlow here, so every domain can split before it imports it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.errors import UserError

REST = "train"
VALIDATION = "validation"


@dataclass
class Fold:
    """Cross-validation fold `index` (0-based) of `count`; `cut` counts the splits re-cut."""

    index: int
    count: int
    cut: int = 0


_FOLD: contextvars.ContextVar[Fold | None] = contextvars.ContextVar("cv_fold", default=None)


def active_fold() -> Fold | None:
    """The cross-validation fold in effect (see cross_validation_fold), if any."""
    return _FOLD.get()


@contextmanager
def cross_validation_fold(index: int, count: int) -> Iterator[Fold]:
    """While active, every `split_indices` call with a "validation" part pools its train
    and validation rows and cuts them into `count` folds (stratified, grouped, duplicates
    together, as the split itself), validating on fold `index` and training on the others;
    the test part is the one the seed gives without folds. Yields the Fold: a `cut` of 0
    after loading means the data came with its own validation split (nothing to fold)."""
    if not (isinstance(count, int) and count >= 2 and 0 <= index < count):
        raise ValueError(f"fold {index} of {count}: need count >= 2 and 0 <= index < count")
    fold = Fold(index, count)
    token = _FOLD.set(fold)
    try:
        yield fold
    finally:
        _FOLD.reset(token)


def rolling_origin(past: np.ndarray, size: int, what: str = "the data") -> dict[str, np.ndarray]:
    """A split by time's train and validation rows: `past` (the rows before the test part,
    oldest first) ends in a validation window of `size` rows, the rest trains.

    Inside `cross_validation_fold(k, K)` the window rolls back (rolling-origin evaluation,
    scikit-learn's TimeSeriesSplit with a fixed test size): fold k validates on the
    `size` rows that end (K - 1 - k) windows before the usual one and trains on every row
    before them, never on later rows; fold K - 1 is the split without folds.
    """
    fold = _FOLD.get()
    back = 0 if fold is None else fold.count - 1 - fold.index
    end = len(past) - back * size
    if end - size < 1:
        raise UserError(
            f"{what} has too few rows before the test split for "
            f"{fold.count if fold else 1} validation window(s) of {size} rows and a "
            "training part; use fewer folds or a smaller validation split"
        )
    if fold is not None:
        fold.cut += 1
    return {REST: past[: end - size], VALIDATION: past[end - size : end]}


def split_indices(
    n: int,
    parts: Mapping[str, float | int],
    seed: int,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    keys: np.ndarray | None = None,
    what: str = "the data",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split positions 0..n-1 into `parts` plus the rest as "train"; (positions, report).

    `parts` maps a name to a fraction of n (a float in (0, 1)) or a row count (an int >= 1);
    each part gets at least one row. Positions come back sorted. The report holds `seed`,
    `sizes`, `class_counts` (when stratified), `groups`, and `duplicates` (when `keys` are
    given): `rows` repeating an earlier row's key, distinct `keys` repeated,
    `conflicting_labels` (a key seen with several labels), `would_straddle` (duplicate rows a
    split ignoring keys would have put in another part than their first occurrence),
    `across_splits` (after this split; 0 unless keeping duplicates together would leave a
    part empty) and `handling`.
    """
    sizes = _part_sizes(n, parts, what)
    labels = _column(labels, n, "labels")
    groups = _column(groups, n, "groups")
    keys = _column(keys, n, "keys")
    if labels is not None:
        label_ids, classes = _codes(labels, sort=True)
    else:
        label_ids, classes = np.zeros(n, np.int64), np.zeros(1)
    group_ids = _codes(groups)[0] if groups is not None else np.arange(n)

    def assign(units: np.ndarray) -> np.ndarray | None:
        """Each row's part number (len(sizes): the rest), or None if a part stays empty."""
        if len(np.unique(units)) <= len(sizes):
            return None
        split_of = _assign(units, label_ids, len(classes), sizes, n, seed)
        return split_of if np.bincount(split_of, minlength=len(sizes) + 1).min() > 0 else None

    by_groups = assign(group_ids)
    if by_groups is None:
        raise UserError(
            f"{what} has only {len(np.unique(group_ids))} group(s) of rows that must stay "
            f"together, too few (or too large) to split into {REST} and {' and '.join(sizes)}; "
            f"add data or change the split fractions"
        )
    # Duplicates join their first occurrence's group unless that leaves a part empty
    # (a data set of near-identical rows); then they stay where the groups put them.
    merged = _merge(group_ids, _codes(keys)[0]) if keys is not None else None
    together = assign(merged) if merged is not None else None
    split_of = by_groups if together is None else together
    fold = _FOLD.get() if VALIDATION in sizes else None  # tune --cv: re-cut train+validation
    if fold is not None:
        units = group_ids if together is None else merged
        split_of = _refold(split_of, units, label_ids, len(classes), list(sizes), fold, seed, what)
    positions = {
        name: np.flatnonzero(split_of == part)
        for part, name in [(len(sizes), REST), *enumerate(sizes)]
    }
    report: dict[str, Any] = {
        "seed": int(seed),
        "sizes": {name: len(rows) for name, rows in positions.items()},
        "stratified": labels is not None,
        "grouped": groups is not None,
        "groups": int(len(np.unique(group_ids))) if groups is not None else None,
    }
    if fold is not None:
        report["cv"] = {"fold": fold.index, "folds": fold.count}
    if labels is not None:
        report["class_counts"] = {
            name: {
                str(classes[c]): int(count)
                for c, count in enumerate(np.bincount(label_ids[rows], minlength=len(classes)))
            }
            for name, rows in positions.items()
        }
    if keys is not None:
        report["duplicates"] = duplicate_report(keys, split_of, by_groups, label_ids)
        if together is None:
            report["duplicates"]["handling"] = (
                "left where the split put them: keeping them together leaves a split empty"
            )
    return positions, report


def duplicate_report(
    keys: np.ndarray,
    split_of: np.ndarray,
    alternative: np.ndarray | None = None,
    label_ids: np.ndarray | None = None,
) -> dict[str, Any]:
    """Exact duplicates among `keys`, given each row's split number.

    `across_splits` counts rows whose key already occurred in another split (earlier in row
    order); with `alternative` (another assignment), `would_straddle` counts the same there.
    """
    codes = _codes(keys)[0]
    first = np.unique(codes, return_index=True)[1]  # codes are 0..K-1: first[code] = row
    repeat = first[codes] != np.arange(len(codes))
    report: dict[str, Any] = {
        "rows": int(repeat.sum()),
        "keys": int(len(np.unique(codes[repeat]))),
        "across_splits": int((repeat & (split_of != split_of[first[codes]])).sum()),
    }
    if label_ids is not None:
        pairs = np.unique(np.stack([codes, label_ids]), axis=1)
        report["conflicting_labels"] = int((np.bincount(pairs[0]) > 1).sum())
    if alternative is not None:
        report["would_straddle"] = int((repeat & (alternative != alternative[first[codes]])).sum())
        report["handling"] = "kept in the split of their first occurrence"
    return report


def split_sizes(splits: Mapping[str, Any]) -> str:
    """ "train 1258, validation 180, test 359": each split's name and size (anything with a
    length: row positions, frames, cases), for a loaded data object's `repr`."""
    return ", ".join(f"{name} {len(rows)}" for name, rows in splits.items())


def with_split_column(frame: Any, positions: Mapping[str, np.ndarray], split: str | None = None):
    """A pandas `frame` of one row per example with a `split` column (from split -> row
    positions, what `split_indices` returns), or only the rows of `split`: how a loaded
    data object shows itself as a table (`.dataframe()`)."""
    if split is not None and split not in positions:
        raise UserError(f"no split {split!r}; splits: {', '.join(positions)}")
    names = np.full(len(frame), "", dtype=object)
    for name, rows in positions.items():
        names[np.asarray(rows, dtype=np.int64)] = name
    frame = frame.assign(split=names)
    if split is None:
        return frame
    return frame.iloc[np.asarray(positions[split], dtype=np.int64)]


# --------------------------------------------------------------------------- helpers


def _part_sizes(n: int, parts: Mapping[str, float | int], what: str) -> dict[str, int]:
    """Row counts per named part: fractions of n rounded (at least 1), or given counts."""
    if REST in parts:
        raise UserError(f"{REST!r} is the remainder of the split; do not size it")
    sizes = {}
    for name, value in parts.items():
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if value < 1:
                raise UserError(f"the {name} split needs at least 1 row; got {value}")
            sizes[name] = int(value)
        elif 0.0 < float(value) < 1.0:
            sizes[name] = max(1, round(n * float(value)))
        else:
            raise UserError(f"the {name} fraction must be between 0 and 1; got {value}")
    if sum(sizes.values()) >= n:
        raise UserError(
            f"{what} has only {n} examples, too few to split off "
            f"{' and '.join(sizes)} and keep a {REST} split; add data"
        )
    return sizes


def _column(values: Any, n: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values)
    if values.shape != (n,):
        raise ValueError(f"{name} must have one entry per row, shape ({n},); got {values.shape}")
    return values


def _codes(values: np.ndarray, *, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(dense codes 0..K-1, the K distinct values) for any hashable values."""
    import pandas as pd  # factorize handles object values (bytes, mixed) that np.unique may not

    codes, uniques = pd.factorize(pd.Series(values), sort=sort, use_na_sentinel=False)
    return codes.astype(np.int64), np.asarray(uniques)


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of rows linked by equal `a` or equal `b` codes."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(a)
    # Rows are nodes 0..n-1; each code of a and of b is one more node joining its rows.
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([n + a, n + a.max() + 1 + b])
    size = n + a.max() + 1 + b.max() + 1
    graph = coo_matrix((np.ones(2 * n, np.int8), (rows, cols)), shape=(size, size))
    return connected_components(graph, directed=False)[1][:n]


def _assign(
    units: np.ndarray,
    label_ids: np.ndarray,
    num_classes: int,
    sizes: dict[str, int],
    n: int,
    seed: int,
) -> np.ndarray:
    """The split number of every row (len(sizes) is the rest), keeping each unit together.

    Units of several rows go first, largest first (seeded order among equals), each to the
    part where it most reduces the squared gap between the part's class counts and its
    target (share x class total): a greedy, deterministic stand-in for StratifiedGroupKFold
    that honours unequal part sizes. Single rows then fill what is left: shuffled, ranked
    within their class as a fraction of the class, and cut in that order, so every part
    holds about its share of every class and exactly its size where the units allow.
    """
    rng = np.random.default_rng(seed)
    num_parts = len(sizes) + 1
    target_sizes = np.array([*sizes.values(), n - sum(sizes.values())], np.float64)
    class_totals = np.bincount(label_ids, minlength=num_classes).astype(np.float64)
    target = np.outer(target_sizes / n, class_totals)  # (parts, classes)
    placed = np.zeros_like(target)
    split_of = np.full(n, num_parts - 1, np.int64)

    _, units, unit_sizes = np.unique(units, return_inverse=True, return_counts=True)
    multi = np.flatnonzero(unit_sizes > 1)
    if len(multi):
        counts = np.zeros((len(unit_sizes), num_classes))
        np.add.at(counts, (units, label_ids), 1)
        multi = multi[rng.permutation(len(multi))]
        multi = multi[np.argsort(-unit_sizes[multi], kind="stable")]
        chosen = np.empty(len(unit_sizes), np.int64)
        for u in multi:
            c = counts[u]
            cost = (c * (2 * (placed - target) + c)).sum(axis=1)
            best = int(np.argmin(cost))
            chosen[u] = best
            placed[best] += c
        in_multi = unit_sizes[units] > 1
        split_of[in_multi] = chosen[units[in_multi]]

    singles = np.flatnonzero(unit_sizes[units] == 1)
    order = singles[rng.permutation(len(singles))]
    if len(multi):
        # Groups rarely follow the class mix (spam repeats more than ham), so the single
        # rows fill each part's remaining per-class gap, not the class mix of the singles.
        return _fill_class_gaps(order, label_ids, num_classes, sizes, target, placed, split_of)
    rank = np.empty(n)
    for c in np.unique(label_ids[order]):
        members = order[label_ids[order] == c]
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = order[np.argsort(rank[order], kind="stable")]
    start = 0
    for part, size in enumerate(sizes.values()):
        take = max(0, size - int(placed[part].sum()))
        split_of[order[start : start + take]] = part
        start += take
    return split_of


def _refold(
    split_of: np.ndarray,
    units: np.ndarray,
    label_ids: np.ndarray,
    num_classes: int,
    names: list[str],
    fold: Fold,
    seed: int,
    what: str,
) -> np.ndarray:
    """`split_of` with its train and validation rows re-cut as `fold` (see
    cross_validation_fold): K equal folds by `_assign`, the same stratified, grouped cut."""
    validation, rest = names.index(VALIDATION), len(names)
    pool = np.flatnonzero((split_of == validation) | (split_of == rest))
    count = fold.count
    sizes = {f"fold {i}": len(pool) // count for i in range(count - 1)}  # the last: the rest
    fold_of = None
    if len(np.unique(units[pool])) > count - 1 and len(pool) // count >= 1:
        fold_of = _assign(units[pool], label_ids[pool], num_classes, sizes, len(pool), seed)
    if fold_of is None or np.bincount(fold_of, minlength=count).min() == 0:
        raise UserError(
            f"{what} has too few rows (or groups of rows that stay together) outside the "
            f"test split to cut {count} cross-validation folds; use fewer folds"
        )
    out = split_of.copy()
    out[pool] = np.where(fold_of == fold.index, validation, rest)
    fold.cut += 1
    return out


def _fill_class_gaps(
    order: np.ndarray,
    label_ids: np.ndarray,
    num_classes: int,
    sizes: dict[str, int],
    target: np.ndarray,
    placed: np.ndarray,
    split_of: np.ndarray,
) -> np.ndarray:
    """Give each part (in order) its remaining size in single rows, split across classes
    in proportion to each class's remaining gap to its target (largest remainders)."""
    pools = [list(order[label_ids[order] == c]) for c in range(num_classes)]
    for part, size in enumerate(sizes.values()):
        available = np.array([len(pool) for pool in pools], np.float64)
        need = int(min(max(0, size - int(placed[part].sum())), available.sum()))
        if need == 0:
            continue
        gap = np.clip(target[part] - placed[part], 0, None)
        weights = gap if gap.sum() > 0 else available
        quota = np.minimum(weights / weights.sum() * need, available)
        take = np.floor(quota).astype(int)
        while take.sum() < need:  # hand out the rounding, largest remainder first
            spare = np.where(take < available, quota - take, -np.inf)
            spare = np.where(take < available, np.maximum(spare, 0), -np.inf)
            take[int(np.argmax(spare))] += 1
        for c in range(num_classes):
            split_of[pools[c][: take[c]]] = part
            pools[c] = pools[c][take[c] :]
    return split_of
