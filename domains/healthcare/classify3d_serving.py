"""Healthcare 3D classify export: raw volumes and their spacing in, calibrated classes out.

`serving_default` takes `volume` (float32 (B, D, H, W), batch first as segment's export:
HU for a CT-trained run, any intensity for a MedMNIST-trained one; canonical RAS axes,
slices last, for NIfTI/DICOM-derived volumes) and `spacing` ((B, 3) mm). Inside the graph,
the run's preprocessing (`classify3d_data.prepare_volumes`: the CT window, or min-max per
volume; a trilinear antialiased resize to the model's input), the network, and the run's
calibration. Outputs: `probabilities` (calibrated), `class_id`, `label`, and for a binary
run `probability` (the positive class's calibrated probability) and `positive` (at the
threshold chosen on validation); `field_of_view_mm` ((B, 3): size x spacing) lets a client
compare its volume's extent with the training data's (in deepfield.json where known).

A volume is resized whole, as MedMNIST resized its crops, so the spacing does not change
the voxels the network sees. A volume holding NaN or infinite values, or a spacing that is
not positive, fails the request with INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from domains.healthcare import classify
from domains.healthcare import classify3d_data as vol_data
from domains.healthcare.config import HealthcareConfig
from domains.healthcare.serving import CalibratedOutputs
from shared import model_io
from shared.export import ServingSpec, served_examples
from shared.run_dir import RunDir

WARMUP_SINGLE = 4  # one-volume requests replayed at load
WARMUP_BATCH = 4  # plus one batch, so batched kernels are warm too


class VolumeClassifierServing(CalibratedOutputs, tf.Module):
    """The volume classifier with its preprocessing, calibration and threshold."""

    def __init__(self, model, class_names: list[str], details: dict[str, Any], fitted):
        super().__init__(name="healthcare_volume_classifier")
        self.model = model
        self.class_names = tf.constant(list(class_names))
        self.fitted = dict(fitted)
        self.binary = len(class_names) == 2
        self.intensity = str(details["intensity"])
        self.window = tuple(float(v) for v in details["window"])
        self.model_input = tuple(int(v) for v in details["model_input"])
        self.serve = tf.function(
            self.classify,
            input_signature=[
                tf.TensorSpec([None, None, None, None], tf.float32, name="volume"),
                tf.TensorSpec([None, 3], tf.float32, name="spacing"),
            ],
        )

    def classify(self, volume: tf.Tensor, spacing: tf.Tensor) -> dict[str, tf.Tensor]:
        checks = [
            tf.debugging.assert_all_finite(volume, "volume: NaN or infinite voxel values"),
            tf.debugging.assert_positive(spacing, "spacing: every value must be > 0 mm"),
        ]
        with tf.control_dependencies(checks):
            volume = tf.identity(volume)
        details = {
            "intensity": self.intensity,
            "window": self.window,
            "model_input": self.model_input,
        }
        x = vol_data.prepare_volumes(volume, details)
        probabilities = self.calibrate(tf.cast(self.model(x, training=False), tf.float32))
        class_id = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "class_id": class_id,
            "label": tf.gather(self.class_names, class_id),
            **self.extra_outputs(probabilities),
            "field_of_view_mm": tf.cast(tf.shape(volume)[1:4], tf.float32) * spacing,
        }

    def signatures(self) -> dict[str, Any]:
        return {"serving_default": self.serve}


def raw_volumes(volumes: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """Training volumes (uint8 (N, D, H, W, 1)) as a client would send them: HU for a
    windowed run (the window inverted), the voxel values otherwise."""
    voxels = volumes[..., 0].astype(np.float32)
    if details["intensity"] != "window":
        return voxels
    low, high = (float(v) for v in details["window"])
    return low + voxels / 255.0 * (high - low)


def serving_spec(run: RunDir, config: HealthcareConfig) -> ServingSpec:
    """The export of a finished 3D classify run, warmed up with its test volumes."""
    details, class_names = vol_data.run_contract(run)
    fitted = classify.read_calibration(run)
    model = model_io.load_model(run.model_path)
    module = VolumeClassifierServing(model, class_names, details, fitted)
    signatures = module.signatures()
    data = vol_data.load(config.data, config.runtime.seed)
    volumes, _ = data.splits["test"].arrays(limit=WARMUP_SINGLE + WARMUP_BATCH)
    raw = raw_volumes(volumes, details)
    spacing = np.asarray(details.get("spacing") or (1.0, 1.0, 1.0), np.float32)
    batches = [raw[i : i + 1] for i in range(min(WARMUP_SINGLE, len(raw)))]
    if len(raw) > WARMUP_SINGLE:
        batches.append(raw[WARMUP_SINGLE:])
    requests = [{"volume": b, "spacing": np.tile(spacing, (len(b), 1))} for b in batches]
    warmup, expected = served_examples(signatures["serving_default"], requests)
    return ServingSpec(
        module=module,
        signatures=signatures,
        warmup=warmup,
        expected=expected,
        metadata={
            "domain": "healthcare",
            "task": "classify",
            "dims": 3,
            "class_names": class_names,
            "positive_class": details.get("positive_class"),
            "model_input": details["model_input"],
            "intensity": details["intensity"],
            "window": details["window"],
            "field_of_view_mm": details.get("field_of_view_mm"),
            "calibration": fitted,
            "input": "volume float32 (B, D, H, W), raw HU (CT) or intensity, canonical RAS "
            "axes (slices last); spacing float32 (B, 3) mm",
            "run": str(run.path.resolve()),
            "data": data.spec,
        },
    )
