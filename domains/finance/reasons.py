"""Reason codes: which columns pushed a row towards fraud or default, by integrated gradients.

Integrated gradients (Sundararajan et al., 2017) attributes the change in the model's
logit between a reference row and this row to each encoded input: (x - x0) times the
gradient averaged along the straight path from x0 to x (midpoint rule, `steps` points).
The encoded attributions are summed per raw column (`features.attribution_matrix`);
they add up to logit(x) - logit(x0), so in scorecard points each column's share is
-factor * a * attribution (Platt slope a). The reference is a typical good row: median
numbers and most frequent categories among the training split's negatives.

Reason codes are the `count` columns with the largest positive attribution (those that
lowered the score most), empty where fewer columns pushed that way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from domains.finance.schema import Schema
from shared.explain.integrated_gradients import integrated_gradients  # noqa: F401 - reasons.integrated_gradients


def reference_row(frame: pd.DataFrame, labels: np.ndarray, schema: Schema) -> dict:
    """Median numbers and modal categories of the negative (good) training rows."""
    good = frame[labels == 0] if (labels == 0).any() else frame
    row = {c: float(good[c].median()) for c in schema.numeric}
    row.update({c: str(good[c].mode().iloc[0]) for c in schema.categorical})
    return row


def column_attributions(encoded_attr: tf.Tensor, matrix: np.ndarray) -> tf.Tensor:
    """(batch, [time,] width) encoded attributions -> (batch, columns)."""
    attr = encoded_attr
    if len(attr.shape) == 3:
        attr = tf.reduce_sum(attr, axis=1)
    return tf.matmul(attr, tf.constant(matrix, tf.float32))


def reason_codes_tf(attributions: tf.Tensor, names: list[str], count: int) -> tf.Tensor:
    """(batch, count) strings: the columns with the largest positive attribution."""
    k = min(count, len(names))
    values, indices = tf.math.top_k(attributions, k=k)
    picked = tf.gather(tf.constant(names), indices)
    return tf.where(values > 0, picked, tf.fill(tf.shape(picked), ""))
