"""The exported SavedModel: raw named columns in, the same answers as the Python API out."""

import json

import numpy as np
import pytest
import tensorflow as tf


def _rows():
    base = {
        "checking_status": "no_account", "duration_months": 12.0, "credit_history": "critical_account",
        "purpose": "radio_tv", "credit_amount": 1500.0, "savings": "unknown_or_none", "employment_since": "7y_or_more",
        "installment_rate": 2.0, "personal_status": "single", "other_debtors": "none", "residence_since": 4.0,
        "property": "real_estate", "age": 45.0, "other_installment_plans": "none", "housing": "own",
        "existing_credits": 2.0, "job": "skilled", "num_dependents": 1.0, "telephone": "yes", "foreign_worker": "yes",
    }  # fmt: skip
    risky = dict(base, checking_status="below_0", duration_months=48.0, credit_amount=12000.0, savings="below_100",
                 housing="never_seen_before", age=21.0)  # fmt: skip
    return [base, risky]


def _request(rows):
    """TF Serving's row format, as the tensors it builds: one named batch per column."""
    return {
        name: tf.constant(
            [row[name] for row in rows],
            tf.float32 if isinstance(rows[0][name], float) else tf.string,
        )
        for name in rows[0]
    }


def test_export_is_verified_and_lists_signatures(credit_export):
    result, root = credit_export
    assert result.path == root / "finance_credit" / "1"
    assert result.verification["checked"] and result.verification["max_abs_diff"] <= 1e-4
    assert set(result.signatures) == {"serving_default", "classify"}
    assert result.signatures["classify"]["method_name"] == "tensorflow/serving/classify"
    inputs = result.signatures["serving_default"]["inputs"]
    assert inputs["age"]["dtype"] == "float32" and inputs["purpose"]["dtype"] == "string"
    assert set(result.signatures["serving_default"]["outputs"]) == {
        "probability",
        "decision",
        "score",
        "reason_codes",
    }
    assert (root / "models.config").read_text().count('name: "finance_credit"') == 1
    assert (result.path / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0


def test_served_answers_match_predict_and_take_unseen_categories(credit_run, credit_export):
    result, _ = credit_export
    serve = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    rows = _rows()
    served = serve(**_request(rows))
    expected = credit_run.predict([json.dumps(row) for row in rows])
    np.testing.assert_allclose(
        served["probability"].numpy(), [e["probability"] for e in expected], atol=1e-4
    )
    np.testing.assert_allclose(served["score"].numpy(), [e["score"] for e in expected], atol=0.02)
    assert served["decision"].numpy().tolist() == [e["decision"] for e in expected]
    codes = [[c for c in row.astype(str) if c] for row in served["reason_codes"].numpy()]
    assert codes == [e["reason_codes"] for e in expected]
    assert served["probability"].numpy()[1] > served["probability"].numpy()[0]


def test_serving_without_a_column_names_it(credit_export):
    result, _ = credit_export
    serve = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    request = _request(_rows())
    del request["credit_amount"]
    with pytest.raises(TypeError, match="credit_amount"):
        serve(**request)


def test_classify_signature_reads_tf_examples(credit_export):
    result, _ = credit_export
    classify = tf.saved_model.load(str(result.path)).signatures["classify"]
    examples = []
    for row in _rows():
        feature = {
            k: tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
            if isinstance(v, float)
            else tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
            for k, v in row.items()
        }
        examples.append(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    out = classify(inputs=tf.constant(examples))
    assert out["classes"].numpy()[0].astype(str).tolist() == ["approve", "decline"]
    np.testing.assert_allclose(out["scores"].numpy().sum(axis=1), 1.0, atol=1e-6)


def test_sequence_export_takes_histories(sequence_run, tmp_path, cli):
    code, out, err = cli(
        "finance", "export", "--run", str(sequence_run.path), "--to", str(tmp_path)
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["verify_checked"] and summary["signatures"] == ["serving_default"]
    serve = tf.saved_model.load(summary["path"]).signatures["serving_default"]
    spec = serve.structured_input_signature[1]
    assert spec["amount"].shape.as_list() == [None, 4] and spec["history_length"].dtype == tf.int32
    warmup = json.loads((sequence_run.path / "serving_examples.json").read_text())
    request = {
        name: tf.constant(values, tf.float32 if warmup["kinds"][name] == "numeric" else tf.string)
        for name, values in warmup["columns"].items()
    }
    request["history_length"] = tf.constant(warmup["history_length"], tf.int32)
    probability = serve(**request)["probability"].numpy()
    assert (
        probability.shape == (len(warmup["rows"]),)
        and ((probability >= 0) & (probability <= 1)).all()
    )
    code, _, err = cli(
        "finance",
        "export",
        "--run",
        str(sequence_run.path),
        "--to",
        str(tmp_path),
        "--version",
        "1",
    )
    assert code == 2 and "already exists" in err
