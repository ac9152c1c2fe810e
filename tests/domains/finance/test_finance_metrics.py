"""Scorecard anchor, PSI bands, calibration in numpy and in the graph, costs, fairness, IG."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from domains.finance import fairness, metrics, monitor, reasons, scorecard
from domains.finance.config import CostConfig, ScorecardConfig
from shared import calibration


def test_scorecard_anchor_is_600_points_at_odds_50_to_1():
    config = ScorecardConfig()
    p_at_50_to_1 = 1.0 / 51.0
    assert scorecard.points(p_at_50_to_1, config) == pytest.approx(600.0, abs=1e-9)
    assert scorecard.points(1.0 / 101.0, config) == pytest.approx(620.0, abs=1e-9)  # odds doubled
    assert float(scorecard.points_tf(tf.constant([p_at_50_to_1]), config)[0]) == pytest.approx(
        600.0, abs=1e-3
    )


def test_psi_is_zero_for_identical_data_and_large_for_shifted_data():
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"amount": rng.lognormal(3, 1, 5000), "kind": rng.choice(["a", "b", "c"], 5000)}
    )
    scores = rng.random(5000)
    reference = monitor.build_reference(train, ["amount"], ["kind"], scores)
    same = monitor.compare(reference, train, scores)
    assert same["score_psi"] < 1e-9
    assert same["features"]["amount"]["psi"] < 1e-9 and same["features"]["kind"]["band"] == "stable"
    shifted = pd.DataFrame({"amount": train["amount"] * 2.5, "kind": rng.choice(["a", "d"], 5000)})
    report = monitor.compare(reference, shifted, scores**3)
    assert report["score_psi"] > 0.25
    assert report["features"]["amount"]["psi"] > 0.25
    assert report["features"]["kind"]["band"] == "significant"
    assert set(report["shifted"]) == {"amount", "kind"}
    assert monitor.band(0.05) == "stable" and monitor.band(0.2) == "moderate"


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_in_the_graph_matches_numpy(method):
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 2, 2000)
    labels = (rng.random(2000) < 1 / (1 + np.exp(-(0.5 * raw - 1)))).astype(int)
    fitted = calibration.fit_calibrator(method, raw, labels)
    probe = np.linspace(-8, 8, 101)
    expected = calibration.apply(fitted, probe)
    got = calibration.apply_tf(fitted, tf.constant(probe, tf.float32)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    calibrated = calibration.apply(fitted, raw)
    assert calibration.expected_calibration_error(labels, calibrated) < 0.05
    if method == "platt":
        assert fitted["a"] == pytest.approx(0.5, abs=0.1)


def test_cost_threshold_minimises_total_cost():
    labels = np.array([0] * 90 + [1] * 10)
    probabilities = np.r_[np.linspace(0, 0.4, 90), np.linspace(0.3, 1.0, 10)]
    cost = CostConfig(false_negative=100, false_positive=1, true_positive=0)
    threshold = metrics.choose_threshold(labels, probabilities, cost)
    best = metrics.total_cost(labels, (probabilities >= threshold).astype(int), cost)
    assert best == min(
        metrics.total_cost(labels, (probabilities >= t).astype(int), cost)
        for t in np.linspace(0, 1, 201)
    )
    assert (probabilities[labels == 1] >= threshold).all()  # a miss costs 100 reviews
    result = metrics.binary_metrics(labels, probabilities, threshold, cost, metrics.MetricsConfig())
    assert result["recall"] == 1.0 and result["false_negatives"] == 0
    assert result["precision_at_100"] == pytest.approx(0.1)


def test_fairness_report_counts_groups():
    values = pd.Series(["f", "f", "m", "m", "m", "f"], name="sex")
    labels = np.array([1, 0, 1, 0, 0, 1])
    probabilities = np.array([0.9, 0.2, 0.4, 0.3, 0.1, 0.8])
    decisions = np.array([1, 0, 0, 1, 0, 1])
    report = fairness.fairness_report(values, labels, probabilities, decisions, None)
    assert report["groups"]["f"]["approval_rate"] == pytest.approx(1 / 3)
    assert report["groups"]["m"]["approval_rate"] == pytest.approx(2 / 3)
    assert report["approval_rate_diff"] == pytest.approx(1 / 3)
    assert report["tpr_diff"] == pytest.approx(1.0)  # f: 2/2 caught, m: 0/1
    ages = pd.Series([20, 30, 40], name="age")
    assert fairness.groups_of(ages, 25).tolist() == ["below_25", "25_or_more", "25_or_more"]


def test_integrated_gradients_add_up_to_the_logit_difference():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    x = tf.constant(np.random.default_rng(0).normal(size=(3, 4)), tf.float32)
    baseline = tf.zeros(4)
    attr = reasons.integrated_gradients(model, x, baseline, steps=128)
    gap = (model(x) - model(baseline[None]))[:, 0]
    np.testing.assert_allclose(tf.reduce_sum(attr, 1).numpy(), gap.numpy(), atol=1e-3)
    codes = reasons.reason_codes_tf(tf.constant([[0.5, -1.0, 2.0, 0.0]]), ["a", "b", "c", "d"], 3)
    assert codes.numpy().astype(str).tolist() == [["c", "a", ""]]
