"""Integrated gradients (Sundararajan et al., 2017): each input's share of an output.

Attributions are (x - baseline) times the mean gradient along the straight path from
the baseline to x (midpoint rule); they sum to about f(x) - f(baseline). Used by
finance's reason codes (encoded table rows) and nlp's token attributions (n-gram vectors).
"""

from __future__ import annotations

import tensorflow as tf


def integrated_gradients(logit_fn, x: tf.Tensor, baseline: tf.Tensor, steps: int) -> tf.Tensor:
    """Attributions with x's shape; `logit_fn` maps a batch like x to (batch, 1) logits."""
    x = tf.cast(x, tf.float32)
    baseline = tf.cast(baseline, tf.float32)
    alphas = (tf.range(steps, dtype=tf.float32) + 0.5) / steps
    extra = len(x.shape) - 1
    alpha_shape = tf.concat([[1, steps], tf.ones([extra], tf.int32)], 0)
    path = baseline[None, None] + tf.reshape(alphas, alpha_shape) * (x - baseline[None])[:, None]
    flat = tf.reshape(path, tf.concat([[-1], tf.shape(x)[1:]], 0))
    with tf.GradientTape() as tape:
        tape.watch(flat)
        out = tf.reduce_sum(logit_fn(flat))
    grads = tf.reshape(tape.gradient(out, flat), tf.shape(path))
    return (x - baseline[None]) * tf.reduce_mean(grads, axis=1)
