"""A user's own credit CSV with nothing but `data.target` set (issue 11's defects): missing
values imputed and reported, `sex` coded 1/2 grouped by code, columns named as in the file
at serving time, the config checked against the data before training, multi-worker refused,
snake_case numbers in metrics.json."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from domains.finance import data as finance_data
from domains.finance import fairness
from domains.finance import schema as finance_schema
from domains.finance.config import FinanceConfig
from domains.finance.german_credit import load_german_credit
from domains.finance.metrics import recall_at_fpr_key
from shared.config import read_yaml, validate
from shared.errors import UserError
from shared.run_dir import RunDir

CREDIT_YAML = Path(__file__).parents[3] / "pipelines" / "configs" / "finance" / "credit.yaml"
RENAMED = {"credit_amount": "Credit Amount", "duration_months": "duration-months"}


@pytest.fixture(scope="module")
def users_csv(tmp_path_factory) -> Path:
    """300 applicants as a user would export them: sex coded 1/2, three gaps, odd names."""
    frame = load_german_credit().head(300).rename(columns=RENAMED)
    frame["sex"] = frame["sex"].map({"male": 1, "female": 2})
    frame.loc[[4, 40], "Credit Amount"] = np.nan
    frame.loc[7, "purpose"] = np.nan
    path = tmp_path_factory.mktemp("user") / "applicants.csv"
    frame.to_csv(path, index=False)
    return path


def credit_config(source: str, **sets) -> FinanceConfig:
    """The named credit config with `--data` and `--set data.target=default` (and `sets`)."""
    raw = read_yaml(CREDIT_YAML)
    raw["data"] = {**raw["data"], "source": source, "target": "default"}
    for key, value in sets.items():
        section, name = key.split("__")
        raw.setdefault(section, {})[name] = value
    return validate(FinanceConfig, raw)


@pytest.fixture(scope="module")
def users_run(users_csv, tmp_path_factory):
    from domains.finance import task

    config = credit_config(f"csv:{users_csv}", train__epochs=2)
    run = RunDir(tmp_path_factory.mktemp("runs") / "credit")
    run.prepare()
    logger = logging.getLogger("deepfield.finance")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        task.train(config, run)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return run, config, [r.getMessage() for r in records]


def test_users_credit_csv_trains_with_codes_gaps_and_the_named_fairness_attribute(users_run):
    run, _, log = users_run
    metrics = json.loads(run.metrics_path.read_text())
    assert metrics["num_examples"] > 0 and 0 <= metrics["roc_auc"] <= 1
    descriptive = {"split", "task", "domain"}
    for key, value in metrics.items():
        assert re.fullmatch(r"[a-z0-9_]+", key), key
        assert key in descriptive or value is None or isinstance(value, int | float), key
    assert "recall_at_fpr_1pct" in metrics
    assert {"approval_rate_sex_1", "approval_rate_sex_2", "fairness_tpr_diff"} <= set(metrics)
    schema = json.loads((run.path / "inputs.json").read_text())["details"]["schema"]
    assert schema["protected"] == "sex" and "sex" not in schema["numeric"]
    assert {"installment_rate", "residence_since"} <= set(schema["codes"])
    assert "Credit Amount" in schema["numeric"] and "Credit Amount" in schema["medians"]
    imputed = "Credit Amount 2 (train median"
    assert any("imputed 3 missing values" in m and imputed in m for m in log)
    assert any("codes       installment_rate" in m for m in log)  # the schema report
    card = run.model_card_path.read_text()
    assert imputed in card and "purpose 1 ('missing' category)" in card
    assert "| protected attribute (not a feature) | sex |" in card


def test_served_credit_model_takes_the_tables_column_names(users_run, tmp_path):
    import tensorflow as tf

    from domains.finance.serving import serving_spec

    run, config, _ = users_run
    spec = serving_spec(run, config)
    columns = spec.metadata["columns"]
    assert columns["Credit Amount"] == "Credit_Amount"
    assert columns["duration-months"] == "duration_months"
    unchanged = {c for c in columns if c not in RENAMED.values()}
    assert unchanged and all(columns[c] == c for c in unchanged)
    # Saved and loaded, TensorFlow keeps exactly these names (it renames what is not an
    # identifier, which is why the mapping exists).
    tf.saved_model.save(spec.module, str(tmp_path / "sm"), signatures=spec.signatures)
    serve = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    assert set(serve.structured_input_signature[1]) == set(columns.values())
    request = {name: tf.constant(values) for name, values in spec.warmup[1].items()}
    request["Credit_Amount"] = tf.constant([np.nan] * len(request["Credit_Amount"]), tf.float32)
    request["installment_rate"] = tf.constant([3.0] * len(request["Credit_Amount"]))
    probability = serve(**request)["probability"].numpy()
    assert np.isfinite(probability).all()  # a gap is imputed in the graph too


def test_config_is_checked_against_the_data_before_training(users_csv):
    source = f"csv:{users_csv}"
    with pytest.raises(UserError, match=r"missing values in 2 columns: Credit Amount \(2, first"):
        finance_data.load(credit_config(source, data__on_missing="fail"))
    with pytest.raises(UserError, match="fairness.protected names 'gender', which is not a column"):
        finance_data.load(credit_config(source, fairness__protected="gender"))
    with pytest.raises(
        UserError, match=r"'age' is numeric with \d+ distinct values: set fairness.cut"
    ):
        finance_data.load(credit_config(source, fairness__protected="age"))
    with pytest.raises(UserError, match="fairness.cut applies to a numeric attribute; 'job'"):
        finance_data.load(credit_config(source, fairness__protected="job", fairness__cut=2))
    with pytest.raises(UserError, match="data.positive='yes' is not a value of 'default'"):
        finance_data.load(credit_config(source, data__positive="yes"))
    # A named config's attribute is used only where the table has it (any case).
    frame = pd.read_csv(users_csv)
    named = credit_config(source).fairness
    assert (
        finance_schema.protected_column(frame.rename(columns={"sex": "Sex"}), named, "default")
        == "Sex"
    )
    assert finance_schema.protected_column(frame.drop(columns="sex"), named, "default") is None


def test_multi_worker_is_refused_before_any_data_is_read(tmp_path):
    from domains.finance import task

    config = credit_config(f"csv:{tmp_path / 'absent.csv'}", runtime__strategy="multi-worker")
    run = RunDir(tmp_path / "run")
    with pytest.raises(UserError, match="finance does not train with --strategy multi-worker"):
        task.train(config, run)
    assert not run.path.exists()


def test_input_names_change_only_where_tensorflow_requires_it():
    names = finance_schema.input_names(
        [
            "age",
            "Credit Amount",
            "age.years",
            "2nd_income",
            "Größe",
            "a b",
            "a_b",
            "history_length",
        ],
        reserved=("history_length",),
    )
    assert names == {
        "age": "age",
        "Credit Amount": "Credit_Amount",
        "age.years": "age_years",
        "2nd_income": "f_2nd_income",
        "Größe": "Gro_e",
        "a b": "a_b",
        "a_b": "a_b_2",
        "history_length": "history_length_2",
    }


def test_integer_codes_rule_and_category_text():
    rows = 200
    codes = pd.Series(np.arange(rows) % 4 + 1.0)
    assert finance_schema.is_code_column(codes)
    assert not finance_schema.is_code_column(codes.head(60))  # too few rows per code
    assert not finance_schema.is_code_column(pd.Series(np.arange(rows) % 2))  # two values
    assert not finance_schema.is_code_column(pd.Series(np.arange(rows) % 12))  # too many
    assert not finance_schema.is_code_column(codes + 0.5)  # not integers
    assert not finance_schema.is_code_column(codes - 3)  # negative
    text = finance_schema.category_strings(pd.Series([1.0, "1", 2, np.nan, "a"], dtype=object))
    assert text.tolist() == ["1", "1", "2", "missing", "a"]


def test_protected_groups_and_metric_keys():
    sex = pd.Series([1.0, 2.0, np.nan, 2.0], name="Sex")
    assert fairness.groups_of(sex, None).tolist() == ["1", "2", "missing", "2"]
    report = fairness.fairness_report(
        sex, np.array([1, 0, 1, 1]), np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 1, 0]), None
    )
    flat = fairness.flat_metrics(report)
    assert {"tpr_sex_1", "tpr_sex_2", "tpr_sex_missing"} <= set(flat)
    ages = pd.Series([20.0, 30.0], name="age")
    assert set(fairness.flat_metrics(fairness.fairness_report(
        ages, np.array([1, 0]), np.array([0.7, 0.2]), np.array([1, 0]), 25.5
    ))) >= {"approval_rate_age_below_25_5", "approval_rate_age_25_5_or_more"}  # fmt: skip
    assert [recall_at_fpr_key(f) for f in (0.01, 0.005, 0.1)] == [
        "recall_at_fpr_1pct",
        "recall_at_fpr_0_5pct",
        "recall_at_fpr_10pct",
    ]
