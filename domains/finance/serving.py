"""The served model: raw named columns in; probability, decision (score, reason codes) out.

`serving_default` takes one named tensor per feature column (numbers, integer codes
included, as float32; categories as strings), batch first, which is what TF Serving
builds from a row-format request
`{"instances": [{"amount": 12.5, "merchant_category": "grocery", ...}]}`. Inputs are named
after the table's columns; a name changes only where TensorFlow requires it (a Python
identifier: `Credit Amount` -> `Credit_Amount`), and the export's metadata
(`assets.extra/deepfield.json`, "columns") maps every column to its input name. The
sequence model takes each column as (batch, history), oldest first and the current
transaction last, plus `history_length` (how many of those steps are real, counted
from the end). Everything else happens in the graph: a missing number (NaN) takes the
training median as in `predict`, then the FeatureSpace (its lookup tables tracked by
the module), the Keras model, calibration, the threshold, scorecard points and
integrated-gradients reason codes for credit.

`classify` takes serialized `tf.Example`s (input `inputs`) whose feature keys are the
columns' own names, for TF Serving's classify API, and returns `classes` and `scores`
for the two outcomes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import tensorflow as tf

from domains.finance import features, reasons, scorecard
from domains.finance.config import FinanceConfig
from domains.finance.schema import HISTORY_LENGTH
from domains.finance.scoring import Scorer
from shared import calibration
from shared.export import ServingSpec
from shared.run_dir import RunDir

EXAMPLES = "serving_examples.json"
CLASSIFY_METHOD = "tensorflow/serving/classify"


class FinanceServingModule(tf.Module):
    """Tracks the feature space, its lookup tables and the model; runs the whole path."""

    def __init__(self, scorer: Scorer):
        super().__init__(name="finance_serving")
        self.space = scorer.space
        self.model = scorer.model
        self.tables = features.lookup_tables(scorer.space)
        # Every variable, dropout seed states included (RNN cells keep one even at serve time).
        self.model_variables = list(scorer.model.variables)
        self._kind = scorer.kind
        self._task = scorer.config.task
        self._calibration = scorer.artifact["calibration"]
        self._threshold = float(scorer.artifact["threshold"])
        self._scorecard = scorer.config.scorecard
        self._reason_count = scorer.config.reasons.count
        self._steps = scorer.config.reasons.steps
        self._history = scorer.config.model.sequence.history if scorer.kind == "sequence" else None
        schema = scorer.schema
        self.columns = schema.input_names()  # column -> input name
        self._numeric = [self.columns[c] for c in schema.numeric]
        self._categorical = [self.columns[c] for c in schema.categorical]
        self._log_numeric = [self.columns[c] for c in schema.log_numeric]
        self._medians = {self.columns[c]: m for c, m in schema.medians.items() if c in self.columns}
        self._names = list(schema.features)
        matrix, _ = features.attribution_matrix(scorer.space, scorer.schema)
        self._matrix = tf.constant(matrix)
        self._baseline = (
            tf.constant(scorer.baseline(), tf.float32) if scorer.kind != "autoencoder" else None
        )
        self._classes = (
            ("approve", "decline") if self._task == "credit" else ("legitimate", "fraud")
        )

    # === Signatures' input specs ===
    def input_specs(self) -> dict[str, tf.TensorSpec]:
        shape = [None] if self._history is None else [None, self._history]
        specs = {n: tf.TensorSpec(shape, tf.float32, name=n) for n in self._numeric}
        specs.update({n: tf.TensorSpec(shape, tf.string, name=n) for n in self._categorical})
        if self._history is not None:
            specs[HISTORY_LENGTH] = tf.TensorSpec([None], tf.int32, name=HISTORY_LENGTH)
        return specs

    # === The path ===
    def _encode(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        columns = {n: inputs[n] for n in self._numeric + self._categorical}
        for name, median in self._medians.items():
            columns[name] = tf.where(tf.math.is_nan(columns[name]), median, columns[name])
        for name in self._log_numeric:
            columns[name] = features.log_transform(columns[name], True)
        if self._history is None:
            return features.encode_tensors(self.space, columns)
        flat = {n: tf.reshape(v, [-1]) for n, v in columns.items()}
        encoded = features.encode_tensors(self.space, flat)
        batch = tf.shape(inputs[HISTORY_LENGTH])[0]
        encoded = tf.reshape(encoded, [batch, self._history, -1])
        steps = tf.range(self._history)[None, :]
        real = steps >= self._history - tf.cast(inputs[HISTORY_LENGTH], tf.int32)[:, None]
        return encoded * tf.cast(real, tf.float32)[..., None]

    def _raw_score(self, x: tf.Tensor) -> tf.Tensor:
        out = self.model(x, training=False)
        if self._kind == "autoencoder":
            return tf.math.log(tf.reduce_mean(tf.square(out - x), axis=-1) + 1e-8)
        return out[:, 0]

    def score(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        x = self._encode(inputs)
        probability = calibration.apply_tf(self._calibration, self._raw_score(x))
        outputs = {
            "probability": probability,
            "decision": tf.cast(probability >= self._threshold, tf.int64),
        }
        if self._task == "credit":
            outputs["score"] = scorecard.points_tf(probability, self._scorecard)
            if self._baseline is not None:
                attr = reasons.integrated_gradients(
                    lambda batch: self.model(batch, training=False), x, self._baseline, self._steps
                )
                columns = tf.matmul(
                    tf.reduce_sum(attr, 1) if len(attr.shape) == 3 else attr, self._matrix
                )
                outputs["reason_codes"] = reasons.reason_codes_tf(
                    columns, self._names, self._reason_count
                )
        return outputs

    def classify(self, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        numeric = set(self._numeric)
        spec = {
            column: tf.io.FixedLenFeature([], tf.float32 if name in numeric else tf.string)
            for column, name in self.columns.items()
        }
        parsed = tf.io.parse_example(serialized, spec)
        probability = self.score({self.columns[c]: v for c, v in parsed.items()})["probability"]
        batch = tf.shape(probability)[0]
        classes = tf.tile(tf.constant([list(self._classes)]), [batch, 1])
        return {"classes": classes, "scores": tf.stack([1.0 - probability, probability], axis=1)}


def warmup_requests(run: RunDir) -> list[dict[str, np.ndarray]]:
    """Real rows saved at training time, as serving_default requests (1 row, then 8)."""
    saved = json.loads((run.path / EXAMPLES).read_text())
    request = {}
    for name, values in saved["columns"].items():
        dtype = np.float32 if saved["kinds"][name] == "numeric" else object
        request[name] = np.array(values, dtype=dtype)
    if HISTORY_LENGTH in saved:
        request[HISTORY_LENGTH] = np.array(saved[HISTORY_LENGTH], np.int32)
    single = {k: v[:1] for k, v in request.items()}
    return [single, request]


def serving_spec(run: RunDir, config: FinanceConfig) -> ServingSpec:
    """The ServingSpec for `shared.export.export_saved_model`."""
    scorer = Scorer.load(run, config)
    module = FinanceServingModule(scorer)
    specs = module.input_specs()
    default = tf.function(module.score).get_concrete_function(specs)
    signatures: dict[str, Any] = {"serving_default": default}
    if module._history is None:
        signatures["classify"] = tf.function(module.classify).get_concrete_function(
            tf.TensorSpec([None], tf.string, name="inputs")
        )
    warmup = warmup_requests(run)
    expected = [
        {k: v.numpy() for k, v in default(**{k: tf.constant(v) for k, v in req.items()}).items()}
        for req in warmup
    ]
    return ServingSpec(
        module=module,
        signatures=signatures,
        warmup=warmup,
        expected=expected,
        metadata={
            "domain": "finance",
            "task": config.task,
            "model": config.model.name,
            "inputs": {
                n: ("numeric" if n in module._numeric else "categorical")
                for n in module._numeric + module._categorical
            },
            # The table's column -> its serving_default input (classify's tf.Example
            # features keep the column names).
            "columns": module.columns,
            "threshold": module._threshold,
            "classes": list(module._classes),
            "history": module._history,
        },
        tolerance=1e-4,
        method_names={"classify": CLASSIFY_METHOD} if "classify" in signatures else {},
    )
