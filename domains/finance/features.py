"""Preprocessing with Keras `FeatureSpace`: from raw columns to one float vector per row.

Numbers are normalised (and, with `model.numeric_bins`, also one-hot encoded by
quantile bins, as a scorecard would bin them; integer-code columns, `Schema.codes`, also
one-hot by value); categories go through a string lookup
with one out-of-vocabulary bucket, so a category never seen in training maps to that
bucket instead of failing; configured pairs of categories are crossed (hashed). The
feature space is adapted on the training split only and saved beside the model
(`feature_space.keras`); serving calls the same layers inside the exported graph.

Inputs are named after the columns (`Schema.input_names`: a name changes only where
TensorFlow requires it). The encoded vector concatenates the feature space's outputs in sorted name order;
`attribution_matrix` maps each encoded position back to its raw column, which is how
attributions over the vector become reasons named after columns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from domains.finance.config import FinanceModelConfig
from domains.finance.schema import Schema
from shared.errors import UserError

BINS_SUFFIX = "__bins"  # quantile bins of a number, fed from the number's input
CODES_SUFFIX = "__codes"  # one-hot of an integer code, fed from the number's input
DERIVED = (BINS_SUFFIX, CODES_SUFFIX)
LOG = logging.getLogger("deepfield.finance")
FeatureSpace = keras.utils.FeatureSpace


def build_feature_space(
    schema: Schema, train: pd.DataFrame, model: FinanceModelConfig
) -> FeatureSpace:
    """A FeatureSpace for the schema's features, adapted on the training rows."""
    names = schema.input_names()
    features = {}
    for column in schema.numeric:
        features[names[column]] = FeatureSpace.float_normalized()
        if model.numeric_bins:
            features[names[column] + BINS_SUFFIX] = FeatureSpace.float_discretized(
                num_bins=model.numeric_bins
            )
        if column in schema.codes:
            features[names[column] + CODES_SUFFIX] = FeatureSpace.string_categorical(
                num_oov_indices=1
            )
    for column in schema.categorical:
        features[names[column]] = FeatureSpace.string_categorical(num_oov_indices=1)
    crosses = []
    for pair in model.crosses:
        if not any(c in schema.kinds for c in pair):
            # A named config's crosses (for the builtin stream) on a table without them.
            LOG.warning("model.crosses %s: no such columns in this data; cross skipped", pair)
            continue
        unknown = [c for c in pair if c not in schema.categorical]
        if len(pair) != 2 or unknown:
            raise UserError(
                f"model.crosses entry {pair} must name two categorical feature columns "
                f"(categorical: {', '.join(schema.categorical) or 'none'})"
            )
        crosses.append(
            FeatureSpace.cross(tuple(names[c] for c in pair), crossing_dim=model.crossing_dim)
        )
    space = FeatureSpace(
        features, output_mode="dict", crosses=crosses or None, name="feature_space"
    )
    # Adapting each preprocessor on its whole column at once gives the statistics of
    # `space.adapt(dataset)` much faster (no tf.data pipeline per layer); then
    # `build_from_config` marks the space adapted, as loading a saved one does.
    for name, values in raw_inputs(train, schema, model.numeric_bins > 0).items():
        space.preprocessors[name].adapt(values[:, None])
    space.build_from_config(space.get_build_config())
    space.get_inputs()  # builds the encoders and crossers
    space.built = True
    return space


def skewed_columns(train: pd.DataFrame, schema: Schema) -> list[str]:
    """Non-negative, long-tailed numbers (amounts, speeds, gaps): fed as log(1 + x).

    A normalised amount of 40 standard deviations swamps an MLP; its logarithm does not.
    Trees do not care, networks do, so this is part of the network's preprocessing.
    """
    skewed = []
    for column in schema.numeric:
        values = train[column]
        if values.min() >= 0 and values.nunique() > 10 and values.skew() > 2.0:
            skewed.append(column)
    return skewed


def log_transform(values, log: bool):
    """log(1 + max(x, 0)) for a skewed column (NumPy or TensorFlow), else x unchanged."""
    if not log:
        return values
    if isinstance(values, np.ndarray):
        return np.log1p(np.maximum(values, 0)).astype("float32")
    return tf.math.log1p(tf.maximum(values, 0.0))


def code_strings(values):
    """An integer code's category: the rounded number as text (NumPy or TensorFlow)."""
    if isinstance(values, np.ndarray):
        return np.rint(values).astype("int64").astype(str).astype(object)
    return tf.strings.as_string(tf.cast(tf.round(values), tf.int64))


def raw_inputs(frame: pd.DataFrame, schema: Schema, with_bins: bool) -> dict[str, np.ndarray]:
    """The feature space's inputs: float32 numbers, str categories (binned copies and
    integer codes' categories added)."""
    names = schema.input_names()
    inputs: dict[str, np.ndarray] = {}
    for column in schema.numeric:
        values = log_transform(
            frame[column].to_numpy(dtype="float32"), column in schema.log_numeric
        )
        inputs[names[column]] = values
        if with_bins:
            inputs[names[column] + BINS_SUFFIX] = values
        if column in schema.codes:
            inputs[names[column] + CODES_SUFFIX] = code_strings(values)
    for column in schema.categorical:
        inputs[names[column]] = frame[column].astype(str).to_numpy(dtype=object)
    return inputs


def has_bins(space: FeatureSpace) -> bool:
    return any(name.endswith(BINS_SUFFIX) for name in space.features)


def encode_tensors(space: FeatureSpace, inputs: dict) -> tf.Tensor:
    """Graph-friendly encoding: raw input tensors (one per column) -> (batch, width) float32."""
    inputs = dict(inputs)
    for name in list(space.features):
        if name.endswith(BINS_SUFFIX) and name not in inputs:
            inputs[name] = inputs[name.removesuffix(BINS_SUFFIX)]
        if name.endswith(CODES_SUFFIX) and name not in inputs:
            inputs[name] = code_strings(inputs[name.removesuffix(CODES_SUFFIX)])
    encoded = space(inputs)
    return tf.concat([tf.cast(encoded[name], tf.float32) for name in sorted(encoded)], axis=-1)


def encode(
    space: FeatureSpace, frame: pd.DataFrame, schema: Schema, batch: int = 16384
) -> np.ndarray:
    """Every row of `frame` encoded, as a float32 matrix."""
    inputs = raw_inputs(frame, schema, has_bins(space))
    parts = []
    for start in range(0, len(frame), batch):
        chunk = {k: v[start : start + batch] for k, v in inputs.items()}
        parts.append(encode_tensors(space, chunk).numpy())
    if not parts:
        return np.zeros((0, encoded_width(space)), "float32")
    return np.concatenate(parts).astype("float32")


def encoded_widths(space: FeatureSpace) -> dict[str, int]:
    """Encoded name -> width, in the order of the encoded vector."""
    probe = {}
    for name, feature in space.features.items():
        probe[name] = (
            np.array(["x"], dtype=object) if feature.dtype == "string" else np.zeros(1, "float32")
        )
    encoded = space(probe)
    return {name: int(encoded[name].shape[-1]) for name in sorted(encoded)}


def encoded_width(space: FeatureSpace) -> int:
    return sum(encoded_widths(space).values())


def attribution_matrix(space: FeatureSpace, schema: Schema) -> tuple[np.ndarray, list[str]]:
    """(encoded width, raw features) matrix summing encoded attributions per raw column.

    A crossed pair's share is split evenly between its two columns.
    """
    columns = schema.features
    by_input = {name: i for i, name in enumerate(schema.input_names().values())}
    widths = encoded_widths(space)
    matrix = np.zeros((sum(widths.values()), len(columns)), "float32")
    start = 0
    for name, width in widths.items():
        if name in space.crosses_by_name:
            owners = [by_input[n] for n in space.crosses_by_name[name].feature_names]
        else:
            base = name
            for suffix in DERIVED:
                base = base.removesuffix(suffix)
            owners = [by_input[base]]
        for owner in owners:
            matrix[start : start + width, owner] = 1.0 / len(owners)
        start += width
    return matrix, columns


def save_feature_space(space: FeatureSpace, path: Path) -> None:
    space.save(str(path))


def load_feature_space(path: Path) -> FeatureSpace:
    return keras.models.load_model(str(path), safe_mode=True)


def lookup_tables(space: FeatureSpace) -> list:
    """The lookup tables inside the feature space, for a tf.Module to track on export."""
    tables = []
    for layer in space.preprocessors.values():
        table = getattr(layer, "lookup_table", None)
        if table is not None:
            tables.append(table)
    return tables
