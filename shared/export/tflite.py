"""TFLite conversion with post-training quantization, and running a .tflite file.

Quantization modes (TensorFlow's post-training quantization):
- "none": float32 weights and activations.
- "dynamic": int8 weights, float activations (no data needed).
- "float16": float16 weights.
- "int8": int8 weights and activations, calibrated on a representative dataset (real
  examples of the run's data); inputs and outputs stay float32 so callers need not
  know the quantization parameters.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from shared.run_dir import write_atomic

QUANTIZE_MODES = ("none", "dynamic", "float16", "int8")


def convert(
    model,
    input_shape: tuple[int, ...],
    quantize: str = "none",
    representative: Callable[[], Iterable[list[np.ndarray]]] | None = None,
) -> bytes:
    """The Keras `model` (single float32 input of `input_shape` without batch) as TFLite."""
    import tensorflow as tf

    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    del input_shape  # the converter reads it from the model's input
    # `from_keras_model` (it goes through Keras' own SavedModel export) freezes the
    # variables; a hand-made concrete function of a Keras 3 model converts, but its
    # variables stay resources and read back as garbage in the interpreter.
    # It also prints Keras' export summary (every captured variable) on stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        return _convert(converter, quantize, representative)


def _convert(converter, quantize: str, representative) -> bytes:
    import tensorflow as tf

    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative is None:
            raise ValueError("int8 quantization needs a representative dataset")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert()


def write(path: Path, flatbuffer: bytes) -> None:
    write_atomic(path, flatbuffer)


class TFLiteRunner:
    """Batch inference over a .tflite model with one float input and one output."""

    def __init__(self, model: str | Path | bytes):
        import tensorflow as tf

        content = model if isinstance(model, bytes) else None
        path = None if content is not None else str(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's move-to-LiteRT notice
            self.interpreter = tf.lite.Interpreter(
                model_path=path, model_content=content, num_threads=os.cpu_count() or 1
            )
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        outputs = []
        for example in inputs:
            self.interpreter.set_tensor(
                self.input["index"], example[None].astype(self.input["dtype"])
            )
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_tensor(self.output["index"])[0])
        return np.asarray(outputs, np.float32)
