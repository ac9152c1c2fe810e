"""Exported models: SavedModel latency/throughput vs the in-process Keras model, and TFLite.

One digits run (the `digits` config, a few epochs) is trained into a temporary folder and
exported. Then, on the same test images:

- batch-1 latency (p50, p99) and batch-64 throughput of the loaded SavedModel's
  `serving_image_tensor` signature (uint8 pixels in, the resize in the graph) and of
  `serving_default` (PNG bytes in, decode in the graph), beside the Keras model called
  in-process: called directly (`model(x, training=False)`, eager) and through its
  compiled predict function (`predict_on_batch`); `ratio` = the faster Keras path's p50 /
  SavedModel p50 at batch 1 (>= 1: the export is no slower). Calls are interleaved so
  drift hits all of them.
- TFLite int8 vs float32 conversions of the same model: size ratio (target <= 0.3) and
  the test-accuracy change (target: a drop of at most 0.5 points).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks.common import record

NAME = "export_serving"
SIZE_TARGET = 0.3
DROP_TARGET_POINTS = 0.5


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def run(quick: bool) -> list[dict]:
    from pipelines import vision
    from shared.export.image_serving import encode_png

    calls = 50 if quick else 500
    with tempfile.TemporaryDirectory(prefix="deepfield-bench-export-") as tmp:
        tmp = Path(tmp)
        trained = vision.train(
            config="digits", run_dir=tmp / "run", epochs=2 if quick else 10, overrides=[]
        )
        result = vision.export(trained, to=tmp / "models", name="digits")
        model = trained.load_model()
        loaded = tf.saved_model.load(str(result.path))
        serve_images = loaded.signatures["serving_image_tensor"]
        serve_bytes = loaded.signatures["serving_default"]

        from domains.vision.config import VisionConfig
        from domains.vision.export import _run_data

        data = _run_data(trained.dir, VisionConfig.model_validate(trained.config))
        images, _ = data.splits["test"].arrays(limit=64)
        pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8)
        floats = pixels.astype(np.float32)
        pngs = [encode_png(p) for p in pixels]

        def keras_call(batch):
            return model(floats[:batch], training=False)

        def keras_predict_on_batch(batch):
            return model.predict_on_batch(floats[:batch])

        def saved_tensor(batch):
            return serve_images(images=tf.constant(pixels[:batch]))

        def saved_bytes(batch):
            return serve_bytes(image_bytes=tf.constant(pngs[:batch]))

        candidates = {
            "keras": keras_call,
            "keras_predict_on_batch": keras_predict_on_batch,
            "saved_tensor": saved_tensor,
            "saved_bytes": saved_bytes,
        }
        latency: dict[str, list[float]] = {k: [] for k in candidates}
        for fn in candidates.values():
            fn(1), fn(64)  # trace / warm
        for _ in range(calls):
            for key, fn in candidates.items():
                start = time.perf_counter()
                fn(1)
                latency[key].append(time.perf_counter() - start)
        throughput = {}
        for key, fn in candidates.items():
            start = time.perf_counter()
            repeats = max(5, calls // 10)
            for _ in range(repeats):
                fn(64)
            throughput[key] = 64 * repeats / (time.perf_counter() - start)

        fields = {}
        for key in candidates:
            p50, p99 = _percentiles(latency[key])
            fields[f"{key}_b1_p50_ms"] = p50
            fields[f"{key}_b1_p99_ms"] = p99
            fields[f"{key}_b64_images_per_s"] = throughput[key]
        # The baseline is the faster of the two in-process Keras paths.
        keras_p50 = min(fields["keras_b1_p50_ms"], fields["keras_predict_on_batch_b1_p50_ms"])
        keras_b64 = max(throughput["keras"], throughput["keras_predict_on_batch"])
        serving = record(
            NAME,
            quick=quick,
            **fields,
            ratio_bytes=keras_p50 / fields["saved_bytes_b1_p50_ms"],
            ratio_b64_throughput=throughput["saved_tensor"] / keras_b64,
            ratio=keras_p50 / fields["saved_tensor_b1_p50_ms"],
            target=None,
        )

        lite = vision.export(
            trained, to=tmp / "lite", name="digits", format="tflite", quantize="int8"
        )
        drop = -lite["accuracy_delta_points"]
        tflite = record(
            f"{NAME}_tflite_int8",
            quick=quick,
            size_bytes=lite["size_bytes"],
            float_size_bytes=lite["float_size_bytes"],
            accuracy_keras=lite["accuracy_keras"],
            accuracy_int8=lite["accuracy_tflite"],
            accuracy_drop_points=drop,
            meets_accuracy_target=bool(drop <= DROP_TARGET_POINTS),
            # `record` compares ratio >= target; for size smaller is better, so invert.
            size_ratio=lite["size_ratio"],
            ratio=1 / lite["size_ratio"],
            target=1 / SIZE_TARGET,
        )
    return [serving, tflite]
