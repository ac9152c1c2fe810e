"""Training fraud and credit models end to end: run directory, metrics, predict, monitor."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.domains.finance.conftest import SMALL_STREAM  # noqa: F401 - documents the data size


def test_credit_run_writes_the_run_directory(credit_run):
    files = {p.name for p in credit_run.path.iterdir()}
    assert {"config.yaml", "metrics.json", "history.csv", "model.keras", "MODEL_CARD.md", "feature_space.keras",
            "inputs.json", "data_splits.json", "finance.json", "monitor_reference.json", "fairness.json"} <= files  # fmt: skip
    plots = {p.name for p in credit_run.plots}
    assert {
        "pr_roc_curves.png",
        "reliability.png",
        "score_distribution.png",
        "fairness.png",
        "cost_vs_threshold.png",
    } <= plots
    metrics = credit_run.metrics
    assert (
        metrics["task"] == "credit"
        and metrics["split"] == "test"
        and metrics["num_examples"] == 200
    )
    assert metrics["roc_auc"] > 0.7
    assert metrics["gini"] == pytest.approx(2 * metrics["roc_auc"] - 1)
    assert 0 < metrics["brier"] < 0.25 and 0 <= metrics["ece"] < 0.15
    assert {
        "fairness_approval_rate_diff",
        "fairness_tpr_diff",
        "roc_auc_sex_male",
        "roc_auc_sex_female",
    } <= set(metrics)
    contract = json.loads((credit_run.path / "inputs.json").read_text())
    schema = contract["details"]["schema"]
    assert "sex" not in schema["categorical"]  # the protected attribute is not a feature
    assert contract["classes"] == ["approve", "decline"]
    served = {item["name"]: item["dtype"] for item in contract["inputs"]}
    assert served["duration_months"] == "float32" and served["purpose"] == "string"
    assert len(served) == len(schema["numeric"]) + len(schema["categorical"])


def _applicant(**changes):
    row = {
        "checking_status": "below_0", "duration_months": 36.0, "credit_history": "existing_paid_duly",
        "purpose": "car_new", "credit_amount": 6000.0, "savings": "below_100", "employment_since": "1_to_4y",
        "installment_rate": 4.0, "personal_status": "single", "other_debtors": "none", "residence_since": 2.0,
        "property": "car_or_other", "age": 28.0, "other_installment_plans": "none", "housing": "rent",
        "existing_credits": 1.0, "job": "skilled", "num_dependents": 1.0, "telephone": "none", "foreign_worker": "yes",
    }  # fmt: skip
    row.update(changes)
    return row


def test_credit_predict_gives_score_and_reasons_and_takes_unseen_categories(credit_run):
    results = credit_run.predict(
        [json.dumps(_applicant()), json.dumps(_applicant(purpose="crypto_mining"))]
    )
    assert len(results) == 2
    for result in results:
        assert 0 < result["probability"] < 1
        assert result["decision"] == int(
            result["probability"]
            >= json.loads((credit_run.path / "finance.json").read_text())["threshold"]
        )
        odds = (1 - result["probability"]) / result["probability"]
        assert result["score"] == pytest.approx(600 + 20 / np.log(2) * np.log(odds / 50), abs=0.02)
        assert 1 <= len(result["reason_codes"]) <= 3
        assert all(r["points"] < 0 for r in result["reasons"])  # each reason lowered the score


def test_missing_columns_are_named(credit_run, cli):
    code, _, err = cli("finance", "predict", "--run", str(credit_run.path), json.dumps({"age": 30}))
    assert code == 2
    assert (
        err.startswith("error: missing columns:") and "checking_status" in err and "age," not in err
    )
    code, _, err = cli("finance", "predict", "--task", "fraud", "--run", str(credit_run.path), "{}")
    assert code == 2 and "is a credit run, not fraud" in err


def test_fraud_mlp_finds_the_generated_patterns(fraud_run):
    metrics = fraud_run.metrics
    assert metrics["task"] == "fraud"
    assert metrics["positive_rate"] < 0.03
    assert metrics["pr_auc"] > 10 * metrics["positive_rate"]
    assert metrics["roc_auc"] > 0.85
    assert 0 < metrics["threshold"] < 1
    assert metrics["recall_card_testing"] > 0.5
    split = json.loads((fraud_run.path / "data_splits.json").read_text())
    assert split["splits"]["train"]["size"] > split["splits"]["validation"]["size"] > 0


def test_sequence_model_trains_on_customer_histories(sequence_run):
    assert sequence_run.load_model().get_layer("recurrent").cell == "gru"
    assert sequence_run.metrics["roc_auc"] > 0.8


def test_autoencoder_scores_fraud_as_anomalies(tmp_path):
    from pipelines import finance

    overrides = SMALL_STREAM + [
        "train.epochs=3",
        "model.hidden=[16]",
        "model.latent=4",
        "calibration.method=isotonic",
    ]
    run = finance.train(config="fraud_autoencoder", run_dir=tmp_path / "ae", overrides=overrides)
    assert run.metrics["roc_auc"] > 0.7
    assert (
        json.loads((run.path / "finance.json").read_text())["calibration"]["method"] == "isotonic"
    )


def test_monitor_reports_stable_and_shifted_data(credit_run, tmp_path, cli):
    from domains.finance.german_credit import load_german_credit

    frame = load_german_credit()
    same, shifted = tmp_path / "same.csv", tmp_path / "shifted.csv"
    frame.to_csv(same, index=False)
    moved = frame.assign(age=frame["age"] + 25, credit_amount=frame["credit_amount"] * 3)
    moved.to_csv(shifted, index=False)
    stable = credit_run.monitor(f"csv:{same}")
    assert stable["score_psi"] < 0.1 and max(v["psi"] for v in stable["features"].values()) < 0.1
    code, out, err = cli(
        "finance", "monitor", "--run", str(credit_run.path), "--data", f"csv:{shifted}"
    )
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert set(report["shifted"]) >= {"age", "credit_amount"}
    saved = json.loads((credit_run.path / "monitor.json").read_text())
    assert saved["features"]["age"]["psi"] > 0.25
    assert (credit_run.path / "plots" / "monitor_psi.png").is_file()


def test_evaluate_on_a_users_csv_and_explain(credit_run, tmp_path, cli):
    from domains.finance.german_credit import load_german_credit

    path = tmp_path / "applicants.csv"
    load_german_credit().to_csv(path, index=False)
    out = tmp_path / "metrics.json"
    code, _, err = cli(
        "finance",
        "evaluate",
        "--run",
        str(credit_run.path),
        "--data",
        f"csv:{path}",
        "--out",
        str(out),
    )
    assert code == 0, err
    metrics = json.loads(out.read_text())
    assert (
        metrics["split"] == "all" and metrics["num_examples"] == 1000 and metrics["roc_auc"] > 0.7
    )
    code, stdout, err = cli(
        "finance", "explain", "--run", str(credit_run.path), "--out", str(tmp_path / "attr.png")
    )
    assert code == 0, err
    importance = json.loads((tmp_path / "attr.json").read_text())
    assert len(importance) == 20 and all(v >= 0 for v in importance.values())


def test_csv_training_with_bad_input_exits_2(tmp_path, cli):
    path = tmp_path / "t.csv"
    pd.DataFrame({"amount": [1.0, 2.0, 3.0], "label": [0, 0, 0]}).to_csv(path, index=False)
    code, _, err = cli("finance", "train", "--task", "fraud", "--data", f"csv:{path}", "--set", "data.target=label",
                       "--run-dir", str(tmp_path / "run"))  # fmt: skip
    assert code == 2
    assert (
        err.strip()
        == "error: target column 'label' has one class (0); training needs examples of both outcomes"
    )
    assert not (tmp_path / "run").exists()
    code, _, err = cli(
        "finance", "train", "--task", "fraud", "--data", f"csv:{path}", "--set", "data.target=nope"
    )
    assert code == 2 and "target column 'nope' is not in the data (columns: amount, label)" in err
