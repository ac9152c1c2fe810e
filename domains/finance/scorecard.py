"""Scorecard points from a probability of default: points = offset + factor * ln(odds).

`odds` are the odds of good credit, (1 - p) / p. With the defaults, an applicant at odds
50:1 scores exactly 600 points and every 20 points double the odds:
factor = pdo / ln 2, offset = base_points - factor * ln(base_odds).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from domains.finance.config import ScorecardConfig

EPS = 1e-9


def factor_offset(config: ScorecardConfig) -> tuple[float, float]:
    factor = config.pdo / math.log(2.0)
    return factor, config.base_points - factor * math.log(config.base_odds)


def points(probability_of_default, config: ScorecardConfig) -> np.ndarray:
    factor, offset = factor_offset(config)
    p = np.clip(np.asarray(probability_of_default, np.float64), EPS, 1 - EPS)
    return offset + factor * np.log((1 - p) / p)


def points_tf(probability_of_default: tf.Tensor, config: ScorecardConfig) -> tf.Tensor:
    factor, offset = factor_offset(config)
    p = tf.clip_by_value(tf.cast(probability_of_default, tf.float64), EPS, 1 - EPS)
    return tf.cast(offset + factor * tf.math.log((1 - p) / p), tf.float32)
