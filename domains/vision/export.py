"""Vision export: TF Serving SavedModels and TFLite files, and using an exported model.

`predict_exported` and `evaluate_exported` run the artifact a user will deploy (the
SavedModel's own signatures), not the training run's model.keras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from domains.vision import data as vision_data
from domains.vision import serving
from domains.vision.config import VisionConfig
from domains.vision.task import DOMAIN, TASK, load_model
from shared.data import ImageData, image_files
from shared.errors import UserError
from shared.export import ExportResult, ServingSpec, export_saved_model, resolve_export
from shared.export import tflite as tflite_export
from shared.export.saved_model import read_metadata
from shared.metrics import classification_metrics
from shared.run_dir import RunDir, write_json


def _run_data(run: RunDir, config: VisionConfig, source: str | None = None) -> ImageData:
    """The run's data (or `source` split the same way), at the run's image shape."""
    image_shape, _ = vision_data.run_inputs(run)
    data_config = config.data.model_copy(
        update={"source": source or config.data.source, "image_size": tuple(image_shape[:2])}
    )
    return vision_data.load(data_config, config.runtime.seed)


def build_spec(run: RunDir, config: VisionConfig) -> ServingSpec:
    spec = serving.serving_spec(run, load_model(run), _run_data(run, config))
    spec.metadata["data_config"] = config.data.model_dump(mode="json")
    spec.metadata["seed"] = config.runtime.seed
    return spec


def export(
    run: RunDir,
    config: VisionConfig,
    to: Path,
    name: str,
    version: int | None,
    overwrite: bool,
    base_path: str = "/models",
) -> ExportResult:
    """`to/name/version` SavedModel with warmup, verified in a fresh process."""
    return export_saved_model(
        build_spec(run, config), to, name, version, overwrite=overwrite, base_path=base_path
    )


# === TFLite ===
def export_tflite(
    run: RunDir, config: VisionConfig, to: Path, name: str, quantize: str, overwrite: bool
) -> dict[str, Any]:
    """`to/name.tflite` (+ `.json` report): size and test accuracy beside the float model.

    The report compares the converted model with the Keras model on the run's test
    split, and its size with a float32 conversion of the same model.
    """
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {to} is a file; give a folder")
    target = to / f"{name}.tflite"
    if target.exists() and not overwrite:
        raise UserError(f"{target} already exists; pass --overwrite or another --name")
    model = load_model(run)
    data = _run_data(run, config)
    shape = tuple(data.image_shape)
    train_images, _ = data.splits["train"].arrays(limit=200)

    def representative():
        for image in train_images:
            yield [image[None].astype(np.float32)]

    flatbuffer = tflite_export.convert(model, shape, quantize, representative)
    float_size = (
        len(flatbuffer) if quantize == "none" else len(tflite_export.convert(model, shape, "none"))
    )
    split = "test" if len(data.splits["test"]) else "validation"
    images, labels = data.splits[split].arrays()
    keras_accuracy = float(
        np.mean(model.predict(images, verbose=0, batch_size=256).argmax(1) == labels)
    )
    lite_accuracy = float(
        np.mean(tflite_export.TFLiteRunner(flatbuffer).predict(images).argmax(1) == labels)
    )
    report = {
        "path": str(target),
        "quantize": quantize,
        "size_bytes": len(flatbuffer),
        "float_size_bytes": float_size,
        "size_ratio": round(len(flatbuffer) / float_size, 4),
        "split": split,
        "num_examples": int(len(labels)),
        "accuracy_keras": keras_accuracy,
        "accuracy_tflite": lite_accuracy,
        "accuracy_delta_points": round(100 * (lite_accuracy - keras_accuracy), 3),
        "class_names": list(data.class_names),
        "image_shape": list(shape),
    }
    try:
        to.mkdir(parents=True, exist_ok=True)
        tflite_export.write(target, flatbuffer)
        write_json(to / f"{name}.tflite.json", report)
    except PermissionError as err:
        raise UserError(f"--to {to}: not writable ({err.strerror})") from None
    return report


# === Using an exported model ===
class ExportedClassifier:
    """A vision SavedModel loaded for prediction, with its export metadata."""

    def __init__(self, path: str | Path):
        self.path = resolve_export(path)
        self.metadata = read_metadata(self.path)
        if self.metadata.get("domain") != DOMAIN:
            raise UserError(
                f"{self.path} is a {self.metadata.get('domain')} export, not a vision one"
            )
        loaded = tf.saved_model.load(str(self.path))
        self._loaded = loaded  # keeps the signatures' variables alive
        self.serve_bytes = loaded.signatures["serving_default"]
        self.serve_images = loaded.signatures["serving_image_tensor"]
        self.class_names: list[str] = list(self.metadata["class_names"])
        self.image_shape = tuple(self.metadata["image_shape"])

    def predict_bytes(self, encoded: list[bytes]) -> dict[str, np.ndarray]:
        out = self.serve_bytes(image_bytes=tf.constant(encoded, dtype=tf.string))
        return {k: v.numpy() for k, v in out.items()}

    def predict_images(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """Probabilities for (N, H, W, C) 0..255 pixels, sent as uint8 like a client."""
        pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        parts = [
            self.serve_images(images=tf.constant(pixels[i : i + batch]))["probabilities"].numpy()
            for i in range(0, len(pixels), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.class_names)))


def decode_error(err: tf.errors.InvalidArgumentError) -> str:
    """The useful line of a failed decode inside a graph (not "Graph execution error")."""
    lines = [line.strip() for line in err.message.splitlines() if line.strip()]
    for line in lines:
        if "image_bytes:" in line:
            return line[line.index("image_bytes:") :].rstrip("]")
    for line in lines:
        if not line.startswith(("Graph execution error", "Detected at", "<stack", "[[")):
            return line
    return lines[0] if lines else "invalid image"


def predict_exported(model_path: str | Path, inputs: list[str], top_k: int = 3):
    """One result per image file, from the SavedModel's serving_default (file bytes)."""
    model = ExportedClassifier(model_path)
    paths = image_files.expand_inputs(inputs)
    results = []
    for path in paths:
        try:
            out = model.predict_bytes([path.read_bytes()])
        except tf.errors.InvalidArgumentError as err:
            raise UserError(f"cannot decode image {path}: {decode_error(err)}") from None
        probs = out["probabilities"][0]
        order = np.argsort(-probs)[: min(top_k, len(model.class_names))]
        results.append(
            {
                "input": str(path),
                "label": out["label"][0].decode(),
                "class_id": int(out["class_id"][0]),
                "probability": round(float(probs[order[0]]), 6),
                "top_k": [
                    {"label": model.class_names[int(i)], "probability": round(float(probs[i]), 6)}
                    for i in order
                ],
                "model": str(model.path),
            }
        )
    return results


def evaluate_exported(
    model_path: str | Path, source: str | None, split: str, out: Path | None
) -> dict[str, Any]:
    """Metrics of the exported model on a split of its training data or of `source`.

    The split is the one the run used (same fractions and seed, recorded in the
    export), so `evaluate --model` on the default source reproduces the run's test set.
    """
    from domains.vision.config import VisionDataConfig

    model = ExportedClassifier(model_path)
    data_config = VisionDataConfig.model_validate(model.metadata["data_config"])
    if source:
        data_config = data_config.model_copy(update={"source": source})
    data = vision_data.load(data_config, int(model.metadata.get("seed", 0)))
    if list(data.class_names) != model.class_names:
        raise UserError(
            f"classes of {data.spec} ({', '.join(data.class_names)}) differ from the "
            f"model's ({', '.join(model.class_names)})"
        )
    images, labels = data.splits[split].arrays()
    if not len(labels):
        raise UserError(f"split {split!r} of {data.spec} is empty")
    metrics = {
        **classification_metrics(labels, model.predict_images(images)),
        "split": split,
        "num_examples": int(len(labels)),
        "task": TASK,
        "domain": DOMAIN,
    }
    if out is not None:
        RunDir(out.parent).write_metrics(metrics, path=out)  # the metrics.json contract
    return {**metrics, "model": str(model.path)}
