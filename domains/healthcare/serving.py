"""Healthcare classify export: the shared image-classifier module with the run's
calibration inside the graph.

`serving_default` takes `image_bytes` (PNG/JPEG; `serving_image_tensor` takes uint8
tensors) and returns the calibrated `probabilities`, `class_id` and `label`; a binary
classifier adds `probability` (the calibrated probability of the positive class) and
`positive` (true at or above the threshold chosen on the validation split).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from domains.healthcare import classify
from domains.healthcare import data as hc_data
from domains.healthcare.config import HealthcareConfig
from shared import calibration, model_io
from shared.export import ServingSpec
from shared.export.image_serving import ImageClassifierServing, class_outputs, warmup_requests
from shared.run_dir import RunDir


class CalibratedOutputs:
    """The run's temperature or isotonic map and its threshold, in the graph: what every
    healthcare classifier export (2D images, 3D volumes) serves. Needs `fitted` (the
    run's calibration.json) and `binary`."""

    fitted: dict[str, Any]
    binary: bool

    def calibrate(self, probabilities: tf.Tensor) -> tf.Tensor:
        method = self.fitted["method"]
        if method == "temperature":
            return calibration.apply_temperature_tf(probabilities, self.fitted["temperature"])
        if method == "isotonic":
            positive = int(self.fitted["positive"])
            p = tf.clip_by_value(probabilities[:, positive], 1e-7, 1 - 1e-7)
            q = calibration.apply_tf(self.fitted["isotonic"], tf.math.log(p / (1 - p)))
            columns = [1 - q, q] if positive == 1 else [q, 1 - q]
            return tf.stack(columns, axis=-1)
        return probabilities

    def extra_outputs(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
        if not self.binary:
            return {}
        probability = probabilities[:, int(self.fitted["positive"])]
        return {
            "probability": probability,
            "positive": probability >= float(self.fitted["threshold"]),
        }


class CalibratedServing(CalibratedOutputs, ImageClassifierServing):
    """The 2D classifier with its calibration and threshold."""

    def __init__(self, model, class_names, image_shape, fitted: dict[str, Any]):
        super().__init__(model, class_names, image_shape, name="healthcare_classifier")
        self.fitted = dict(fitted)
        self.binary = len(class_names) == 2


def serving_spec(run: RunDir, config: HealthcareConfig) -> ServingSpec:
    """The export of a finished classify run, warmed up with its test images."""
    image_shape, class_names, positive_name = hc_data.run_inputs(run)
    fitted = classify.read_calibration(run)
    model = classify.scoring_model(model_io.load_model(run.model_path), fitted.get("tta", False))
    module = CalibratedServing(model, class_names, image_shape, fitted)
    data = hc_data.load(
        config.data.model_copy(update={"image_size": tuple(image_shape[:2])}),
        config.runtime.seed,
    )
    images, _ = data.splits["test"].arrays(limit=64)

    def outputs(decoded: np.ndarray) -> dict[str, np.ndarray]:
        raw = np.asarray(model.predict(decoded, verbose=0), np.float64)
        calibrated = classify.apply_calibration(fitted, raw)
        out = class_outputs(calibrated, class_names)
        if len(class_names) == 2:
            probability = calibrated[:, int(fitted["positive"])].astype(np.float32)
            out["probability"] = probability
            out["positive"] = probability >= np.float32(fitted["threshold"])
        return out

    warmup, expected = warmup_requests(images, image_shape, outputs)
    return ServingSpec(
        module=module,
        signatures=module.signatures(),
        warmup=warmup,
        expected=expected,
        metadata={
            "domain": "healthcare",
            "task": "classify",
            "class_names": class_names,
            "positive_class": positive_name,
            "image_shape": list(image_shape),
            "calibration": fitted,
            "run": str(run.path.resolve()),
            "data": data.spec,
        },
    )
