"""Calibration: raw model scores -> probabilities that match observed rates.

Fitted on the validation split (finance's fraud and credit scores, healthcare's
classifiers). Temperature scaling (Guo et al. 2017) divides a softmax model's
log-probabilities by one number fitted by likelihood: it keeps the arg-max, so accuracy
is unchanged, and works for any number of classes. Platt scaling is a logistic regression on the raw score
(a logit, or the log reconstruction error of the autoencoder); isotonic regression is a
monotone step function, applied as linear interpolation between its thresholds (the
same rule as scikit-learn's `IsotonicRegression(out_of_bounds="clip")`). Both are plain
numbers in `finance.json`, and `apply_tf` runs them inside the exported graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


def fit_calibrator(method: str, raw: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    raw = np.asarray(raw, np.float64).ravel()
    if method == "none":
        return {"method": "none"}
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        fitted = LogisticRegression(C=1e6, max_iter=1000).fit(raw[:, None], labels)
        return {"method": "platt", "a": float(fitted.coef_[0, 0]), "b": float(fitted.intercept_[0])}
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, labels)
    xs, ys = fitted.X_thresholds_.tolist(), fitted.y_thresholds_.tolist()
    return {"method": "isotonic", "x": xs, "y": ys}


def apply(calibrator: dict[str, Any], raw: np.ndarray) -> np.ndarray:
    raw = np.asarray(raw, np.float64)
    method = calibrator["method"]
    if method == "none":
        return 1.0 / (1.0 + np.exp(-raw))
    if method == "platt":
        return 1.0 / (1.0 + np.exp(-(calibrator["a"] * raw + calibrator["b"])))
    return np.interp(raw, calibrator["x"], calibrator["y"])


def apply_tf(calibrator: dict[str, Any], raw: tf.Tensor) -> tf.Tensor:
    """The same mapping as `apply`, as TensorFlow ops (float32)."""
    raw = tf.cast(raw, tf.float32)
    method = calibrator["method"]
    if method == "none":
        return tf.sigmoid(raw)
    if method == "platt":
        return tf.sigmoid(calibrator["a"] * raw + calibrator["b"])
    xs = tf.constant(calibrator["x"], tf.float32)
    ys = tf.constant(calibrator["y"], tf.float32)
    if len(calibrator["x"]) == 1:
        return tf.fill(tf.shape(raw), ys[0])
    clipped = tf.clip_by_value(raw, xs[0], xs[-1])
    flat = tf.reshape(clipped, [-1])
    index = tf.clip_by_value(
        tf.searchsorted(xs, flat, side="right") - 1, 0, len(calibrator["x"]) - 2
    )
    x0, x1 = tf.gather(xs, index), tf.gather(xs, index + 1)
    y0, y1 = tf.gather(ys, index), tf.gather(ys, index + 1)
    span = x1 - x0
    t = tf.where(span > 0, (flat - x0) / tf.where(span > 0, span, 1.0), 0.0)
    return tf.reshape(y0 + t * (y1 - y0), tf.shape(raw))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of softmax(log p / T)."""
    from scipy.optimize import minimize_scalar

    logp = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0))
    labels = np.asarray(labels).astype(int)

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))

    best = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(best.x))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row."""
    z = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def apply_temperature_tf(probabilities: tf.Tensor, temperature: float) -> tf.Tensor:
    """`apply_temperature` as TensorFlow ops (float32), for exported graphs."""
    logp = tf.math.log(tf.clip_by_value(tf.cast(probabilities, tf.float32), 1e-12, 1.0))
    return tf.nn.softmax(logp / temperature, axis=-1)


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by count."""
    probabilities = np.asarray(probabilities, np.float64)
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(labels[inside].mean() - probabilities[inside].mean())
    return float(total)


def reliability_curve(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10):
    """(mean predicted, observed rate, count) per non-empty bin."""
    which = np.minimum((np.asarray(probabilities) * bins).astype(int), bins - 1)
    rows = [
        (
            float(probabilities[which == b].mean()),
            float(labels[which == b].mean()),
            int((which == b).sum()),
        )
        for b in range(bins)
        if (which == b).any()
    ]
    return np.array(rows).reshape(-1, 3)
