"""The one seeded splitter: partitions, stratification, groups, duplicates, errors."""

import subprocess
import sys

import numpy as np
import pytest

from shared.data.splits import split_indices
from shared.errors import UserError
from tests.conftest import REPO

PARTS = {"validation": 0.1, "test": 0.2}


def _split_of(positions: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Each row's split name; also checks the parts are disjoint and cover 0..n-1."""
    joined = np.concatenate(list(positions.values()))
    assert sorted(joined.tolist()) == list(range(n))
    out = np.empty(n, dtype=object)
    for name, rows in positions.items():
        assert np.all(np.diff(rows) > 0)  # sorted
        out[rows] = name
    return out


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels = np.arange(200) % 3
    first, report = split_indices(200, PARTS, 7, labels=labels)
    again, _ = split_indices(200, PARTS, 7, labels=labels)
    other, _ = split_indices(200, PARTS, 8, labels=labels)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["test"], other["test"])
    assert list(first) == ["train", "validation", "test"]
    assert report["sizes"] == {"train": 140, "validation": 20, "test": 40}
    _split_of(first, 200)


def test_stratified_without_groups_keeps_every_class_share() -> None:
    labels = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 40)
    rng = np.random.default_rng(0)
    labels = labels[rng.permutation(len(labels))]
    positions, report = split_indices(len(labels), PARTS, 1, labels=labels)
    totals = {"a": 500, "b": 300, "c": 40}
    for name, share in (("validation", 0.1), ("test", 0.2)):
        counts = report["class_counts"][name]
        for label, total in totals.items():
            assert abs(counts[label] - share * total) <= 1, (name, label, counts)
            assert counts[label] == int((labels[positions[name]] == label).sum())


def test_sizes_as_row_counts() -> None:
    positions, report = split_indices(50, {"validation": 5, "test": 7}, 0)
    assert report["sizes"] == {"train": 38, "validation": 5, "test": 7}
    assert report["stratified"] is False and "class_counts" not in report


def test_groups_never_straddle_and_stay_stratified() -> None:
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 300, 3000)
    labels = (rng.random(3000) < 0.2).astype(int)
    positions, report = split_indices(3000, PARTS, 5, labels=labels, groups=groups)
    split_of = _split_of(positions, 3000)
    for g in np.unique(groups):
        assert len(set(split_of[groups == g])) == 1, f"group {g} straddles splits"
    assert report["groups"] == len(np.unique(groups)) and report["grouped"] is True
    for name, share in (("validation", 0.1), ("test", 0.2)):
        assert abs(report["sizes"][name] - share * 3000) <= 0.02 * 3000
        positive = report["class_counts"][name]["1"] / report["sizes"][name]
        assert abs(positive - labels.mean()) < 0.03


def test_duplicates_are_kept_with_their_first_occurrence_and_reported() -> None:
    n = 400
    labels = np.arange(n) % 2
    keys = np.array([f"row{i}" for i in range(n)], dtype=object)
    keys[300:340] = keys[0:40]  # 40 exact repeats of rows 0..39, same labels
    keys[340] = keys[1]  # a third copy of row 1, with another label
    positions, report = split_indices(n, PARTS, 2, labels=labels, keys=keys)
    split_of = _split_of(positions, n)
    for key in set(keys[300:341]):
        assert len(set(split_of[keys == key])) == 1
    duplicates = report["duplicates"]
    assert duplicates["rows"] == 41 and duplicates["keys"] == 40
    assert duplicates["across_splits"] == 0
    assert duplicates["would_straddle"] > 0  # a plain split would have leaked some
    assert duplicates["conflicting_labels"] == 1
    assert duplicates["handling"] == "kept in the split of their first occurrence"


def test_a_shared_key_joins_two_groups() -> None:
    groups = np.repeat(np.arange(60), 5)
    keys = np.arange(300)
    keys[7] = keys[100]  # group 1 and group 20 share one exact duplicate
    positions, _ = split_indices(300, PARTS, 4, groups=groups, keys=keys)
    split_of = _split_of(positions, 300)
    assert len(set(split_of[(groups == 1) | (groups == 20)])) == 1


def test_all_identical_rows_are_split_anyway_and_reported() -> None:
    positions, report = split_indices(30, PARTS, 0, labels=np.arange(30) % 2, keys=np.zeros(30))
    assert report["sizes"] == {"train": 21, "validation": 3, "test": 6}
    assert report["duplicates"]["across_splits"] == 9
    assert report["duplicates"]["handling"].startswith("left where the split put them")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 2}, "only 2 examples, too few"),
        ({"groups": np.arange(30) % 2}, "only 2 group"),
        ({"parts": {"test": 1.5}}, "fraction must be between 0 and 1"),
        ({"parts": {"train": 0.5}}, "'train' is the remainder"),
    ],
)
def test_impossible_splits_are_user_errors(kwargs: dict, message: str) -> None:
    args = {"n": 30, "parts": PARTS, "seed": 0, **kwargs}
    with pytest.raises(UserError, match=message):
        split_indices(args.pop("n"), args.pop("parts"), args.pop("seed"), **args)


def test_splitter_and_table_reader_import_without_tensorflow() -> None:
    code = (
        "import sys, shared.data.splits, shared.data.table, shared.data.spec; "
        "sys.exit('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True)
    assert result.returncode == 0, result.stderr.decode()[-500:]


def test_cross_validation_folds_recut_train_and_validation_and_leave_test() -> None:
    """Inside cross_validation_fold(k, K) the rows outside test are cut into K folds,
    grouped and stratified like the split itself; fold k validates, the test part is the
    one the seed gives without folds, and outside the context nothing changes."""
    from shared.data.splits import cross_validation_fold

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 600)
    groups = rng.integers(0, 150, 600)  # 4 rows per group on average
    plain, _ = split_indices(600, PARTS, 3, labels=labels, groups=groups)
    pool = np.union1d(plain["train"], plain["validation"])
    validations = []
    for k in range(3):
        with cross_validation_fold(k, 3) as fold:
            positions, report = split_indices(600, PARTS, 3, labels=labels, groups=groups)
        assert fold.cut == 1 and report["cv"] == {"fold": k, "folds": 3}
        assert np.array_equal(positions["test"], plain["test"])
        split_of = _split_of(positions, 600)
        for name in ("validation", "test"):  # no group straddles train and another part
            assert not set(groups[split_of == name]) & set(groups[split_of == "train"])
        share = np.bincount(labels[positions["validation"]], minlength=4) / len(
            positions["validation"]
        )
        assert np.abs(share - np.bincount(labels[pool], minlength=4) / len(pool)).max() < 0.05
        validations.append(positions["validation"])
    joined = np.concatenate(validations)
    assert sorted(joined.tolist()) == pool.tolist()  # the folds partition the pool
    assert abs(len(validations[0]) - len(pool) / 3) < 20
    again, _ = split_indices(600, PARTS, 3, labels=labels, groups=groups)
    assert all(np.array_equal(again[k], plain[k]) for k in plain)
    # Too few groups outside test for the folds: one clear error.
    groups = np.repeat(np.arange(8), 3)  # about 6 groups outside test, 10 folds
    with cross_validation_fold(0, 10), pytest.raises(UserError, match="too few rows"):
        split_indices(24, {"validation": 3, "test": 3}, 0, groups=groups)
