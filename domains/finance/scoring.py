"""`Scorer`: a finished run's preprocessing, model and decision rule, used by every verb.

Raw rows (a pandas table) -> encoded vectors (FeatureSpace) -> raw score (logit, or the
autoencoder's log reconstruction error) -> calibrated probability -> decision at the
run's threshold; for credit also scorecard points, and for every classifier the
integrated-gradients attributions behind the reason codes. The exported SavedModel
runs the same steps as TensorFlow ops (`serving.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import shared.blocks  # noqa: F401 - registers RecurrentStack for loading sequence models
from domains.finance import features, reasons, scorecard
from domains.finance.config import FinanceConfig
from domains.finance.data import clean_frame, time_order
from domains.finance.schema import HISTORY_LENGTH, Schema
from shared import calibration, model_io
from shared.input_contract import InputContract, InputSpec
from shared.run_dir import RunDir

ARTIFACT = "finance.json"
FEATURE_SPACE = "feature_space.keras"
MONITOR_REFERENCE = "monitor_reference.json"


def history_index(frame: pd.DataFrame, schema: Schema, history: int) -> np.ndarray:
    """(rows, history) positions of each row's customer's previous rows, current last.

    Only earlier rows of the same customer (by the time column, else file order) are
    used, and -1 pads customers with a shorter past.
    """
    n = len(frame)
    if schema.group and schema.group in frame.columns:
        codes = pd.factorize(frame[schema.group].astype(str))[0]
    else:
        codes = np.arange(n)
    order = (
        time_order(frame[schema.time])
        if schema.time and schema.time in frame.columns
        else np.arange(n, dtype=float)
    )
    ranked = np.lexsort((np.arange(n), order, codes))
    grouped = codes[ranked]
    start = np.r_[True, grouped[1:] != grouped[:-1]]
    first_of_group = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    position = np.arange(n) - first_of_group
    index = np.full((n, history), -1, dtype=np.int64)
    for back in range(history):
        earlier = np.r_[np.full(back, -1), ranked[: n - back]] if back else ranked
        index[ranked, history - 1 - back] = np.where(position >= back, earlier, -1)
    return index


class HistoryWindows:
    """Each row's history as (history, width) windows, gathered only when asked for.

    Holds the encoded rows once (plus a zero row for padding) and an index per row, so
    a stream of 100k transactions does not become a 100k x history x width array.
    """

    def __init__(self, encoded: np.ndarray, index: np.ndarray, padded: np.ndarray | None = None):
        self.padded = (
            padded
            if padded is not None
            else np.vstack([encoded, np.zeros((1, encoded.shape[1]), "float32")])
        )
        self.index = np.where(index < 0, len(self.padded) - 1, index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows) -> HistoryWindows:
        return HistoryWindows(None, self.index[rows], self.padded)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        windows = self.padded[self.index]
        return windows.astype(dtype) if dtype else windows


@dataclass
class Scorer:
    config: FinanceConfig
    schema: Schema
    space: Any
    model: keras.Model
    artifact: dict[str, Any]

    @classmethod
    def load(cls, run: RunDir, config: FinanceConfig) -> Scorer:
        schema = read_schema(run)
        space = features.load_feature_space(run.path / FEATURE_SPACE)
        model = model_io.load_model(run.model_path)
        artifact = json.loads((run.path / ARTIFACT).read_text())
        return cls(config, schema, space, model, artifact)

    # === Encoding ===
    @property
    def kind(self) -> str:
        return self.config.model.name

    def clean(self, frame: pd.DataFrame, *, require_target: bool = False) -> pd.DataFrame:
        return clean_frame(
            frame,
            self.schema,
            on_missing=self.config.data.on_missing,
            require_target=require_target,
        )

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return features.encode(self.space, frame, self.schema)

    def model_inputs(self, encoded: np.ndarray, frame: pd.DataFrame) -> np.ndarray | HistoryWindows:
        """What the Keras model takes: rows, or each row's zero-padded history (lazily)."""
        if self.kind != "sequence":
            return encoded
        return HistoryWindows(
            encoded, history_index(frame, self.schema, self.config.model.sequence.history)
        )

    # === Scores ===
    def raw_scores(self, inputs: np.ndarray | HistoryWindows, batch: int = 4096) -> np.ndarray:
        parts = []
        for start in range(0, len(inputs), batch):
            x = np.asarray(inputs[start : start + batch])
            out = np.asarray(self.model(x, training=False))
            if self.kind == "autoencoder":
                parts.append(np.log(np.mean((out - x) ** 2, axis=-1) + 1e-8))
            else:
                parts.append(out[:, 0])
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        return calibration.apply(self.artifact["calibration"], raw)

    def points(self, probabilities: np.ndarray) -> np.ndarray:
        return scorecard.points(probabilities, self.config.scorecard)

    def monitored_score(self, probabilities: np.ndarray) -> np.ndarray:
        """The score drift is watched on: points for credit, probability for fraud."""
        return self.points(probabilities) if self.config.task == "credit" else probabilities

    # === Attributions ===
    def baseline(self) -> np.ndarray:
        """The encoded reference row (a typical good row), as the model takes it."""
        row = pd.DataFrame([self.artifact["reference"]])
        encoded = self.encode(row)
        if self.kind == "sequence":
            zeros = np.zeros((self.config.model.sequence.history - 1, encoded.shape[1]), "float32")
            return np.vstack([zeros, encoded])
        return encoded[0]

    def attributions(self, inputs: np.ndarray, batch: int = 256) -> np.ndarray:
        """(rows, feature columns): each column's push towards the positive class."""
        matrix, _ = features.attribution_matrix(self.space, self.schema)
        parts = []
        for start in range(0, len(inputs), batch):
            x = tf.constant(np.asarray(inputs[start : start + batch]))
            parts.append(self.attributions_tf(x, matrix).numpy())
        return np.concatenate(parts) if parts else np.zeros((0, matrix.shape[1]))

    def attributions_tf(self, x: tf.Tensor, matrix: np.ndarray) -> tf.Tensor:
        if self.kind == "autoencoder":
            # An anomaly's reasons: where the reconstruction misses most.
            error = tf.square(self.model(x, training=False) - x)
            return reasons.column_attributions(error, matrix)
        baseline = tf.constant(self.baseline(), tf.float32)
        encoded = reasons.integrated_gradients(
            lambda batch: self.model(batch, training=False), x, baseline, self.config.reasons.steps
        )
        return reasons.column_attributions(encoded, matrix)

    def reason_list(
        self, attributions: np.ndarray, frame: pd.DataFrame
    ) -> list[list[dict[str, Any]]]:
        """Per row, the top columns that pushed towards the positive class, with impact."""
        names = self.schema.features
        slope = self.artifact["calibration"].get("a", 1.0)
        factor, _ = scorecard.factor_offset(self.config.scorecard)
        out = []
        for i, row in enumerate(attributions):
            order = [j for j in np.argsort(-row) if row[j] > 0][: self.config.reasons.count]
            items = []
            for j in order:
                value = frame[names[j]].iloc[i]
                item = {
                    "feature": names[j],
                    "value": value.item() if hasattr(value, "item") else value,
                    "attribution": round(float(row[j]), 5),
                }
                if self.config.task == "credit" and self.kind != "autoencoder":
                    item["points"] = round(float(-factor * slope * row[j]), 2)
                items.append(item)
            out.append(items)
        return out


# === The input contract ===
def write_input_contract(run: RunDir, config: FinanceConfig, schema: Schema) -> None:
    """inputs.json: one raw input per feature column (named as served), and the schema."""
    names = schema.input_names()
    history = [config.model.sequence.history] if config.model.name == "sequence" else []
    inputs = [
        InputSpec(names[c], "float32", history, f"column {c!r} (number; empty -> median)")
        for c in schema.numeric
    ] + [
        InputSpec(names[c], "string", history, f"column {c!r} (category)")
        for c in schema.categorical
    ]
    if history:
        inputs.append(InputSpec(HISTORY_LENGTH, "int32", [], "real rows in each history"))
    negative = "approve" if config.task == "credit" else "legitimate"
    positive = "decline" if config.task == "credit" else "fraud"
    InputContract(
        "finance",
        config.task,
        inputs,
        classes=[negative, positive],
        details={"schema": schema.to_json(), "columns": names},
    ).write(run)


def read_schema(run: RunDir) -> Schema:
    """The table schema a run was trained with, from its input contract."""
    return Schema.from_json(InputContract.read(run).details["schema"])
