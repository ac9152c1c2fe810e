"""Finance data: German credit decoding, the transaction generator, schema inference, bad input."""

import numpy as np
import pandas as pd
import pytest

from domains.finance.config import FinanceConfig, TransactionsConfig
from domains.finance.data import load, split_rows
from domains.finance.german_credit import load_german_credit
from domains.finance.schema import infer_schema
from domains.finance.scoring import history_index
from domains.finance.transactions import PATTERN_SHARES, generate_transactions
from shared.errors import UserError


def test_german_credit_is_decoded_into_readable_categories():
    frame = load_german_credit()
    assert frame.shape == (1000, 22)
    assert int(frame["default"].sum()) == 300
    assert set(frame["checking_status"]) == {"below_0", "0_to_200", "200_or_more", "no_account"}
    assert set(frame["sex"]) == {"male", "female"}
    assert frame["credit_amount"].dtype == np.float64
    assert frame["age"].between(19, 75).all()


@pytest.fixture(scope="module")
def stream():
    return generate_transactions(
        TransactionsConfig(customers=200, merchants=60, days=15, fraud_rate=0.01)
    )


def test_transactions_have_every_fraud_pattern_at_the_configured_rate(stream):
    assert set(stream["fraud_pattern"]) == {"none", *PATTERN_SHARES}
    assert 0.007 < stream["is_fraud"].mean() < 0.02
    assert (stream["is_fraud"] == (stream["fraud_pattern"] != "none")).all()
    probes = stream[(stream["fraud_pattern"] == "card_testing") & (stream["amount"] <= 3.0)]
    assert len(probes) >= 3
    travel = stream[stream["fraud_pattern"] == "impossible_travel"]
    assert (travel["device_type"] == "magstripe").all()
    assert travel["speed_kmh"].median() > 300


def test_transactions_are_seeded_and_time_ordered(stream):
    again = generate_transactions(
        TransactionsConfig(customers=200, merchants=60, days=15, fraud_rate=0.01)
    )
    pd.testing.assert_frame_equal(stream, again)
    assert stream["timestamp"].is_monotonic_increasing


def test_history_features_use_only_the_past(stream):
    first = stream.groupby("customer_id").head(1)
    assert (first["minutes_since_last"] == 43200.0).all()
    assert (first["txn_count_1h"] == 0).all()
    assert (first["amount_to_avg"] == 1.0).all()


def _config(**data):
    return FinanceConfig.model_validate({"task": "credit", "data": data})


def test_schema_inference_reports_every_kind(tmp_path):
    frame = pd.DataFrame(
        {
            "Unnamed: 0": range(60),
            "Time": np.arange(60.0),
            "amount": np.linspace(1, 100, 60),
            "merchant": ["a", "b", "c"] * 20,
            "label": ["legit", "fraud"] * 30,
        }
    )
    schema = infer_schema(frame, _config(target="label"), {}, None)
    assert schema.kinds == {
        "Unnamed: 0": "id",
        "Time": "time",
        "amount": "numeric",
        "merchant": "categorical",
        "label": "target",
    }
    assert schema.positive == "fraud"
    assert schema.features == ["amount", "merchant"]


@pytest.mark.parametrize(
    ("frame", "data", "message"),
    [
        (
            pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}),
            {"target": "missing"},
            "target column 'missing' is not in the data",
        ),
        (pd.DataFrame({"x": [1.0, 2.0], "y": [1, 1]}), {"target": "y"}, "has one class"),
        (
            pd.DataFrame({"x": [1.0, 2.0], "y": ["p", "q"]}),
            {"target": "y"},
            "set --set data.positive",
        ),
        (
            pd.DataFrame({"x": ["1.5"] * 19 + ["lots"], "y": [0, 1] * 10}),
            {"target": "y"},
            "row 20 holds 'lots'",
        ),
    ],
)
def test_bad_tables_are_user_errors(frame, data, message):
    with pytest.raises(UserError, match=message):
        infer_schema(frame, _config(**data), {}, None)


def _write(tmp_path, frame):
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return f"csv:{path}"


def _table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "kind": rng.choice(["a", "b"], n),
            "y": np.r_[np.zeros(n - 40), np.ones(40)].astype(int),
        }
    )


def test_nan_amounts_are_imputed_by_default_or_refused(tmp_path):
    frame = _table()
    frame.loc[5, "amount"] = np.nan
    frame.loc[[7, 9], "kind"] = np.nan
    source = _write(tmp_path, frame)
    data = load(_config(source=source, target="y"))
    assert not data.frame["amount"].isna().any()
    assert data.frame.loc[5, "amount"] == data.schema.medians["amount"] > 0
    assert data.frame.loc[7, "kind"] == "missing" and data.missing == {"amount": 1, "kind": 2}
    message = (
        r"missing values in 2 columns: amount \(1, first at row 6\), kind \(2, first at row 8\); "
        r"fix the data or --set data.on_missing=impute"
    )
    with pytest.raises(UserError, match=message):
        load(_config(source=source, target="y", on_missing="fail"))
    # Runs saved before `fail` was named wrote `error`; it means the same.
    assert _config(on_missing="error").data.on_missing == "fail"


def test_infinite_amounts_and_empty_files_are_refused(tmp_path):
    frame = _table()
    frame["amount"] = frame["amount"].astype(object)
    frame.loc[7, "amount"] = "inf"
    with pytest.raises(UserError, match="'amount' holds an infinite value at row 8"):
        load(_config(source=_write(tmp_path, frame), target="y"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UserError, match="is empty"):
        load(_config(source=f"csv:{empty}", target="y"))
    header = tmp_path / "header.csv"
    header.write_text("amount,y\n")
    with pytest.raises(UserError, match="no rows"):
        load(_config(source=f"csv:{header}", target="y"))


def test_time_split_trains_on_the_past():
    labels = np.tile([0, 0, 0, 1], 50)
    order = np.random.default_rng(1).permutation(200).astype(float)
    splits, how = split_rows(
        labels, order, _config().data.model_copy(update={"split": "auto"}), seed=0
    )
    assert how == "time"
    assert order[splits["train"]].max() < order[splits["validation"]].min()
    assert order[splits["validation"]].max() < order[splits["test"]].min()


def test_time_split_under_cross_validation_rolls_the_validation_window_back():
    """tune --cv K on a split by time: fold k validates on the window (K - 1 - k) windows
    before the usual one and trains only on earlier rows; the last fold is the usual
    split, the test rows never move, and too many folds for the rows is one error."""
    from shared.data.splits import cross_validation_fold

    labels = np.tile([0, 0, 0, 1], 50)
    order = np.random.default_rng(1).permutation(200).astype(float)
    data = _config().data.model_copy(update={"split": "time"})
    plain, _ = split_rows(labels, order, data, seed=0)
    windows = []
    for k in range(3):
        with cross_validation_fold(k, 3) as fold:
            splits, how = split_rows(labels, order, data, seed=0)
        assert how == "time" and fold.cut == 1
        assert np.array_equal(splits["test"], plain["test"])
        assert len(splits["validation"]) == len(plain["validation"])
        assert order[splits["train"]].max() < order[splits["validation"]].min()
        assert set(splits["train"]) | set(splits["validation"]) == {
            r for r in range(200) if order[r] <= order[splits["validation"]].max()
        }  # every earlier row trains, no later one
        windows.append(order[splits["validation"]])
    assert windows[0].max() < windows[1].min() and windows[1].max() < windows[2].min()
    assert set(windows[2]) == set(order[plain["validation"]])
    with cross_validation_fold(0, 9), pytest.raises(UserError, match="too few rows before"):
        split_rows(labels, order, data, seed=0)


def test_history_index_holds_only_earlier_rows_of_the_same_customer():
    from domains.finance.schema import Schema

    frame = pd.DataFrame({"customer_id": ["a", "b", "a", "a", "b"], "t": [1.0, 2.0, 3.0, 0.5, 9.0]})
    schema = Schema(
        kinds={},
        target="y",
        positive="1",
        numeric=[],
        categorical=[],
        time="t",
        group="customer_id",
    )
    index = history_index(frame, schema, 3)
    # customer a in time order: rows 3 (t=0.5), 0 (t=1), 2 (t=3)
    assert index[2].tolist() == [3, 0, 2]
    assert index[3].tolist() == [-1, -1, 3]
    assert index[4].tolist() == [-1, 1, 4]


def test_headerless_tsv_in_cp1252_loads_with_named_columns_and_reports_duplicates(tmp_path):
    """A user's own table: no header, tab separated, Windows-1252, some exact duplicates."""
    rng = np.random.default_rng(0)
    rows = [
        f"{rng.uniform(100, 5000):.2f}\t{rng.integers(20, 70)}\t{'Café' if i % 3 else 'Bäckerei'}\t{int(i % 4 == 0)}"
        for i in range(240)
    ]
    rows += rows[:20]  # 20 rows repeated exactly: a leak if they straddle splits
    path = tmp_path / "loans.txt"
    path.write_bytes("\n".join(rows).encode("cp1252"))
    config = FinanceConfig.model_validate(
        {
            "task": "credit",
            "data": {
                "source": f"csv:{path}",
                "header": False,
                "columns": ["amount", "age", "merchant", "bad"],
                "target": "bad",
            },
            "fairness": {"protected_if_present": []},
        }
    )
    data = load(config)
    assert data.schema.numeric == ["amount", "age"] and data.schema.categorical == ["merchant"]
    assert set(data.frame["merchant"]) == {"Café", "Bäckerei"}
    assert sum(len(rows) for rows in data.splits.values()) == 260
    duplicates = data.split_report["duplicates"]
    assert duplicates["rows"] == 20 and duplicates["across_splits"] == 0
    where = {int(p): name for name, positions in data.splits.items() for p in positions}
    assert all(where[i] == where[240 + i] for i in range(20))
